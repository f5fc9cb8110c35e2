"""The WHOOP app's one rate budget (docs/whoop.md#rate-limits), on MemberTable in moto.

A manual clock drives it: `sleep` moves the clock, so minutes pass instantly and exactly.
"""

from __future__ import annotations

import random
import threading
import uuid

import pytest

from whoop_bridge.store import budget_store
from whoop_bridge.whoop import budget as budget_module
from whoop_bridge.whoop.budget import BACKGROUND, INTERACTIVE, WEBHOOK, BudgetExhausted, RateBudget


class ManualClock:
    def __init__(self, start: float = 1_795_300_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def real_seconds(self, seconds: float) -> float:
        return seconds


@pytest.fixture
def clock(bridge):
    manual = ManualClock()
    budget_module.use_clock(manual)
    yield manual
    budget_module.use_clock(None)


def fresh(per_minute: int = 10, per_day: int = 10_000) -> RateBudget:
    return RateBudget(f"app-{uuid.uuid4().hex[:8]}", per_minute, per_day, budget_store)


def take(budget: RateBudget, count: int, priority: str = WEBHOOK) -> int:
    """How many of `count` calls the budget grants right now (no waiting)."""
    granted = 0
    for _ in range(count):
        try:
            budget.acquire(priority, max_wait=0)
        except BudgetExhausted:
            break
        granted += 1
    return granted


def test_a_minute_holds_exactly_the_limit_and_the_next_call_waits_for_the_oldest(clock):
    budget = fresh(per_minute=10)
    assert take(budget, 10) == 10
    clock.now += 30
    with pytest.raises(BudgetExhausted) as exhausted:
        budget.acquire(WEBHOOK, max_wait=0)
    # The oldest call leaves the window 61 s after it was made.
    assert exhausted.value.retry_after == pytest.approx(31, abs=0.01)
    assert exhausted.value.reason == "minute"
    clock.now += 31
    assert take(budget, 10) == 10


def test_a_short_wait_is_waited_out_instead_of_deferred(clock):
    budget = fresh(per_minute=5)
    take(budget, 5)
    clock.now += 59.5
    budget.acquire(WEBHOOK, max_wait=5)
    assert clock.slept and clock.slept[-1] == pytest.approx(1.5, abs=0.01)


def test_after_a_webhook_background_work_leaves_a_reserve_of_the_minute(clock):
    budget = fresh(per_minute=20)
    assert take(budget, 19, WEBHOOK) == 19
    # One of twenty (five per cent) is kept for webhooks and members while they are active.
    with pytest.raises(BudgetExhausted) as exhausted:
        budget.acquire(BACKGROUND, max_wait=0)
    assert exhausted.value.reason == "minute"
    assert take(budget, 1, INTERACTIVE) == 1
    assert take(budget, 5, WEBHOOK) == 0


def test_a_waiting_webhooks_claim_is_stored_and_read_back(clock):
    budget = fresh(per_minute=10)
    for _ in range(10):
        budget.acquire(BACKGROUND, max_wait=10)  # the whole minute: no webhook seen
    clock.now += 2
    budget.acquire(WEBHOOK, max_wait=5)
    stored = budget_store.get(budget.app)
    assert stored.priority_seen_at == pytest.approx(clock.now, abs=0.01)
    assert stored.minute_reserve(clock.now, 10) == 1
    # A fresh container reads the claim: background work keeps a slot free.
    other = RateBudget(budget.app, 10, 10_000, budget_store)
    with pytest.raises(BudgetExhausted) as exhausted:
        other.acquire(BACKGROUND, max_wait=0)
    assert exhausted.value.reason == "minute"
    assert exhausted.value.retry_after == pytest.approx(2 * 61 / 10, abs=0.01)


def test_background_work_is_paced_through_the_minute_instead_of_bursting(clock):
    budget = fresh(per_minute=10)
    assert take(budget, 5, BACKGROUND) == 1
    with pytest.raises(BudgetExhausted) as exhausted:
        budget.acquire(BACKGROUND, max_wait=0)
    # No webhook seen: all ten calls a minute, one every 61/10 seconds.
    assert exhausted.value.reason == "pace"
    assert exhausted.value.retry_after == pytest.approx(61 / 10, abs=0.01)
    # Webhooks are not held by the pace.
    assert take(budget, 1, WEBHOOK) == 1
    started = clock.now
    for _ in range(6):
        budget.acquire(BACKGROUND, max_wait=10)
    # After the webhook, nine a minute: one every 61/9 seconds.
    assert clock.now - started == pytest.approx(61 / 10 + 5 * 61 / 9, abs=0.05)


def test_no_61_seconds_ever_hold_more_calls_than_the_limit(clock):
    budget = fresh(per_minute=7)
    rng = random.Random(4)
    granted: list[float] = []
    for _ in range(400):
        clock.now += rng.expovariate(1 / 4)  # about 15 attempts a minute for a limit of 7
        try:
            budget.acquire(rng.choice([WEBHOOK, BACKGROUND]), max_wait=0)
        except BudgetExhausted:
            continue
        granted.append(clock.now)
    assert len(granted) > 100
    for index, start in enumerate(granted):
        assert sum(1 for moment in granted[index:] if moment < start + 61) <= 7


def test_concurrent_callers_never_take_more_than_the_limit(clock):
    budget = fresh(per_minute=10)
    granted: list[int] = []
    refused: list[int] = []

    def caller() -> None:
        for _ in range(3):
            try:
                budget.acquire(WEBHOOK, max_wait=0)
                granted.append(1)
            except BudgetExhausted:
                refused.append(1)

    threads = [threading.Thread(target=caller) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 10
    assert len(refused) == 26


def test_a_429_holds_every_caller_until_whoops_reset(clock):
    budget = fresh(per_minute=100)
    budget.observe(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"})
    for priority in (WEBHOOK, BACKGROUND):
        with pytest.raises(BudgetExhausted) as exhausted:
            budget.acquire(priority, max_wait=0)
        assert exhausted.value.retry_after == pytest.approx(30, abs=0.01)
    clock.now += 30.01
    assert take(budget, 3) == 3


def test_a_429_without_a_reset_header_holds_a_full_minute(clock):
    budget = fresh()
    budget.observe(429, {})
    with pytest.raises(BudgetExhausted) as exhausted:
        budget.acquire(WEBHOOK, max_wait=0)
    assert exhausted.value.retry_after == pytest.approx(60, abs=0.01)


def test_whoops_lower_remaining_count_corrects_the_local_view(clock):
    budget = fresh(per_minute=100)
    take(budget, 1)
    # Someone else uses the same WHOOP app: WHOOP says 3 are left for 20 seconds.
    budget.observe(200, {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "20"})
    assert take(budget, 10) == 3
    clock.now += 20.01
    assert take(budget, 10) == 10


def test_a_stale_answer_of_the_same_window_keeps_the_lower_count_in_the_table(clock):
    budget = fresh(per_minute=100)
    take(budget, 1)
    budget.observe(200, {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "20"})
    assert take(budget, 5) == 5
    # An answer to a call sent before those five: its reset, in whole seconds, is 0.6 s later.
    clock.now += 0.6
    budget.observe(200, {"X-RateLimit-Remaining": "9", "X-RateLimit-Reset": "20"})
    assert budget_store.get(budget.app).whoop_remaining == 5
    assert take(budget, 10) == 5
    # A 429 in that window holds every call until its reset.
    budget.observe(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "20"})
    assert budget_store.get(budget.app).hold_until == pytest.approx(clock.now + 20)


def test_a_high_remaining_count_is_not_written(clock, bridge):
    budget = fresh(per_minute=100)
    take(budget, 1)
    budget.observe(200, {"X-RateLimit-Remaining": "99", "X-RateLimit-Reset": "59"})
    assert budget_store.get(budget.app).whoop_reset_at == 0


def test_the_daily_limit_defers_until_midnight_and_background_stops_at_four_fifths(clock):
    clock.now = 1_795_305_600.0 - 86400 + 3600  # 01:00 UTC
    budget = fresh(per_minute=10, per_day=20)
    assert take(budget, 10, WEBHOOK) == 10
    clock.now += 61
    assert take(budget, 6, WEBHOOK) == 6
    # 16 of 20 are spent: four fifths, all background work may have.
    with pytest.raises(BudgetExhausted) as exhausted:
        budget.acquire(BACKGROUND, max_wait=0)
    assert exhausted.value.reason == "day"
    assert take(budget, 10, WEBHOOK) == 4
    with pytest.raises(BudgetExhausted) as exhausted:
        budget.acquire(WEBHOOK, max_wait=0)
    assert exhausted.value.reason == "day"
    assert exhausted.value.retry_after == pytest.approx(86400 - 3600 - 61, abs=0.01)
    clock.now += exhausted.value.retry_after
    assert take(budget, 10) == 10


def test_a_lowered_limit_keeps_the_newest_calls(clock):
    app = f"app-{uuid.uuid4().hex[:8]}"
    assert take(RateBudget(app, 10, 10_000, budget_store), 6) == 6
    # Redeployed with 4 a minute: the 6 calls of the last minute already spend it.
    assert take(RateBudget(app, 4, 10_000, budget_store), 4) == 0
    clock.now += 61
    assert take(RateBudget(app, 4, 10_000, budget_store), 10) == 4


def test_an_unknown_priority_is_refused(clock):
    with pytest.raises(ValueError):
        fresh().acquire("urgent", max_wait=0)
