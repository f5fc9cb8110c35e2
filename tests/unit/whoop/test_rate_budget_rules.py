"""The rate budget's rules (whoop/budget.py over models/budget.py) against an in-memory state
store and a hand-moved clock: no AWS, no moto. The same budget on MemberTable in moto is in
tests/integration/test_rate_budget.py."""

from __future__ import annotations

import pytest
from fakes.whoop import InMemoryBudgetStates, ManualClock

from whoop_bridge.models.budget import RESERVE_LENT_AFTER_SECONDS
from whoop_bridge.whoop import budget as budget_module
from whoop_bridge.whoop.budget import (
    BACKGROUND,
    INTERACTIVE,
    MAX_CONFLICTS,
    WEBHOOK,
    BudgetExhausted,
    RateBudget,
    app_budget,
)

APP = "app-1"


@pytest.fixture
def clock():
    manual = ManualClock()
    budget_module.use_clock(manual)
    yield manual
    budget_module.use_clock(None)


@pytest.fixture
def states() -> InMemoryBudgetStates:
    return InMemoryBudgetStates()


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


def take_waiting(budget: RateBudget, count: int, priority: str) -> int:
    """How many of `count` calls the budget grants within the next 60 seconds, each
    waiting for it (the pace, a claim) rather than being refused."""
    granted, end = 0, budget_module.clock().time() + 60
    for _ in range(count):
        try:
            budget.acquire(priority, max_wait=max(0.0, end - budget_module.clock().time()))
        except BudgetExhausted:
            break
        granted += 1
    return granted


def refused(budget: RateBudget, priority: str = WEBHOOK) -> BudgetExhausted:
    with pytest.raises(BudgetExhausted) as exhausted:
        budget.acquire(priority, max_wait=0)
    return exhausted.value


def test_the_first_call_creates_the_state_and_each_call_is_one_write(clock, states):
    budget = RateBudget(APP, 10, 10_000, states)
    assert take(budget, 3) == 3
    stored = states.states[APP]
    assert stored.version == 3 and stored.day_used == 3 and stored.head == 3
    assert states.writes == 4  # the creation and three takes
    # The container's own last write saves a read per call.
    assert states.reads == 2


def test_the_minute_holds_the_limit_and_frees_61_seconds_after_the_oldest(clock, states):
    budget = RateBudget(APP, 5, 10_000, states)
    assert take(budget, 5) == 5
    clock.now += 20
    exhausted = refused(budget)
    assert exhausted.reason == "minute" and exhausted.retry_after == pytest.approx(41)
    clock.now += 41
    assert take(budget, 5) == 5


def test_a_wait_within_max_wait_is_slept_on_the_budgets_clock(clock, states):
    budget = RateBudget(APP, 2, 10_000, states)
    take(budget, 2)
    clock.now += 58
    budget.acquire(INTERACTIVE, max_wait=5)
    assert clock.slept == [pytest.approx(3)]


def test_background_uses_the_whole_minute_while_no_webhook_was_seen(clock, states):
    budget = RateBudget(APP, 10, 10_000, states)
    started = clock.now
    for _ in range(10):
        budget.acquire(BACKGROUND, max_wait=10)
    # Paced one every 61/10 s, the whole limit: nothing is held back for webhooks.
    assert clock.now - started == pytest.approx(9 * 61 / 10)
    assert refused(budget, BACKGROUND).reason == "minute"


def test_after_a_webhook_background_leaves_a_small_reserve_until_it_is_lent_again(clock, states):
    budget = RateBudget(APP, 20, 10_000, states)
    assert take(budget, 1, WEBHOOK) == 1
    # One of twenty (five per cent, at least one) stays free for webhooks: 18 more.
    assert take_waiting(budget, 30, BACKGROUND) == 18
    assert refused(budget, BACKGROUND).reason == "minute"
    assert take(budget, 1, WEBHOOK) == 1  # the reserve
    # Two minutes without a webhook: the reserve is lent, background takes all twenty.
    clock.now = states.states[APP].priority_seen_at + RESERVE_LENT_AFTER_SECONDS
    assert take_waiting(budget, 30, BACKGROUND) == 20


class WakingClock(ManualClock):
    """A clock whose `sleep` first lets `during` run (another container, mid-wait)."""

    def __init__(self) -> None:
        super().__init__()
        self.during: list = []

    def sleep(self, seconds: float) -> None:
        while self.during:
            self.during.pop(0)(self.now, seconds)
        super().sleep(seconds)


def test_a_webhook_finding_the_minute_full_claims_the_next_slot_from_background_work():
    clock = WakingClock()
    budget_module.use_clock(clock)
    try:
        states = InMemoryBudgetStates()
        backfill, webhook = RateBudget(APP, 10, 10_000, states), RateBudget(APP, 10, 10_000, states)
        for _ in range(10):
            backfill.acquire(BACKGROUND, max_wait=10)
        clock.now += 2
        seen: list[str] = []

        def background_meanwhile(now: float, wait: float) -> None:
            # Another container's backfill, when the slot the webhook waits for frees up.
            clock.now = now + wait
            seen.append(refused(backfill, BACKGROUND).reason)
            clock.now = now

        clock.during.append(background_meanwhile)
        before = clock.now
        webhook.acquire(WEBHOOK, max_wait=5)
        # The claim brought the reserve back: background needed two free slots, one was.
        assert seen == ["minute"]
        assert states.claims == 1
        # The webhook waited one slot's spacing at most, not for a minute.
        assert clock.now - before <= 61 / 10
        # Background work goes on when two more slots are free: it keeps one for webhooks.
        assert refused(backfill, BACKGROUND).retry_after == pytest.approx(2 * 61 / 10)
        assert states.states[APP].minute_reserve(clock.now, 10) == 1
        # A second waiting webhook in the reserve's time writes no second claim.
        clock.now += 3
        webhook.acquire(WEBHOOK, max_wait=5)
        assert states.claims == 1
    finally:
        budget_module.use_clock(None)


def test_a_webhook_that_would_wait_past_its_limit_claims_nothing(clock, states):
    budget = RateBudget(APP, 2, 10_000, states)
    assert take_waiting(budget, 2, BACKGROUND) == 2
    assert refused(budget, WEBHOOK).reason == "minute"
    assert states.claims == 0 and states.states[APP].priority_seen_at == 0


def test_background_is_paced_at_its_share_of_the_minute(clock, states):
    budget = RateBudget(APP, 10, 10_000, states)
    assert take(budget, 1, BACKGROUND) == 1
    exhausted = refused(budget, BACKGROUND)
    assert exhausted.reason == "pace" and exhausted.retry_after == pytest.approx(61 / 10)
    assert states.states[APP].background_next_at == pytest.approx(clock.now + 61 / 10)
    assert take(budget, 1, WEBHOOK) == 1  # the pace holds background work only


def test_the_day_limit_waits_for_utc_midnight_and_background_stops_at_four_fifths(clock, states):
    clock.now = 1_795_305_600.0 - 600  # 23:50 UTC
    budget = RateBudget(APP, 100, 10, states)
    assert take(budget, 8) == 8
    exhausted = refused(budget, BACKGROUND)
    assert exhausted.reason == "day" and exhausted.retry_after == pytest.approx(600)
    assert take(budget, 5) == 2
    assert refused(budget).reason == "day"
    clock.now += 600  # a new UTC day
    assert take(budget, 5) == 5
    assert states.states[APP].day_used == 5


def test_a_container_whose_clock_lags_past_midnight_never_resets_the_days_count(clock, states):
    """Two containers' clocks differ by up to a second (CALL_SPACING_SECONDS allows for it).
    One already past UTC midnight starts the new day's count; one still before it restarted
    the count of the old day at 1 (and then the other the new day's), losing the calls of both."""
    midnight = 1_795_305_600.0
    ahead, behind = RateBudget(APP, 100, 10, states), RateBudget(APP, 100, 10, states)
    clock.now = midnight + 0.3
    assert take(ahead, 8) == 8
    clock.now = midnight - 0.4  # the same moment on a clock 0.7 s behind
    # The new day's count holds for the lagging clock too: 2 of 10 left, none for background.
    assert refused(behind, BACKGROUND).reason == "day"
    assert take(behind, 5) == 2
    assert states.states[APP].day_used == 10
    clock.now = midnight + 0.5
    assert refused(ahead).reason == "day"


def test_background_never_takes_the_days_reserve_even_when_the_minute_is_lent(clock, states):
    clock.now = 1_795_305_600.0 - 3600  # 23:00 UTC
    budget = RateBudget(APP, 1000, 100, states)
    assert take_waiting(budget, 200, BACKGROUND) == 80
    assert refused(budget, BACKGROUND).reason == "day"
    assert take(budget, 30, WEBHOOK) == 20


def test_a_429_holds_every_priority_until_whoops_reset(clock, states):
    budget = RateBudget(APP, 100, 10_000, states)
    budget.observe(429, {"X-RateLimit-Reset": "30", "X-RateLimit-Remaining": "0"})
    for priority in (INTERACTIVE, WEBHOOK, BACKGROUND):
        exhausted = refused(budget, priority)
        assert exhausted.reason == "WHOOP answered 429" and exhausted.retry_after == pytest.approx(30)
    clock.now += 30
    assert take(budget, 1) == 1


def test_a_429_without_a_usable_reset_holds_a_minute(clock, states):
    budget = RateBudget(APP, 100, 10_000, states)
    budget.observe(429, {"X-RateLimit-Reset": "soon"})
    assert refused(budget).retry_after == pytest.approx(budget_module.DEFAULT_RESET_SECONDS)


def test_whoops_low_remaining_count_wins_and_background_keeps_clear_of_it(clock, states):
    budget = RateBudget(APP, 10, 10_000, states)
    take(budget, 1)
    budget.observe(200, {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "20"})
    # After a webhook one of ten is the reserve: background may not take WHOOP's last one.
    for _ in range(2):
        budget.acquire(BACKGROUND, max_wait=61 / 9)  # the pace
    assert refused(budget, BACKGROUND).reason == "WHOOP's remaining count"
    assert take(budget, 5, WEBHOOK) == 1
    assert refused(budget).reason == "WHOOP's remaining count"
    clock.now += 20
    assert take(budget, 1) == 1


def test_a_stale_higher_remaining_count_of_the_same_window_does_not_undo_calls_taken_since(clock, states):
    """WHOOP's `X-RateLimit-Reset` is whole seconds: an answer to a call sent before others
    names the same window with a reset up to a second later. It overwrote the count the
    takes since had lowered, and the budget granted calls WHOOP no longer had (a 429)."""
    budget = RateBudget(APP, 100, 10_000, states)
    take(budget, 1)
    budget.observe(200, {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "20"})
    assert take(budget, 5) == 5  # WHOOP has 5 left now
    clock.now += 0.6  # the answer to a call made before those five: 9 left, reset in 20 s
    budget.observe(200, {"X-RateLimit-Remaining": "9", "X-RateLimit-Reset": "20"})
    assert states.states[APP].whoop_remaining == 5
    assert take(budget, 10) == 5
    assert refused(budget).reason == "WHOOP's remaining count"
    # A later window (its reset more than a second later) is taken as WHOOP says.
    clock.now += 20
    budget.observe(200, {"X-RateLimit-Remaining": "40", "X-RateLimit-Reset": "60"})
    assert states.states[APP].whoop_remaining == 40
    # A 429 in the same window still holds every call until its reset.
    budget.observe(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"})
    assert refused(budget).reason == "WHOOP answered 429"


def test_a_remaining_count_far_from_the_limit_is_not_written(clock, states):
    budget = RateBudget(APP, 10, 10_000, states)
    take(budget, 1)
    writes = states.writes
    budget.observe(200, {"X-RateLimit-Remaining": "6", "X-RateLimit-Reset": "20"})
    budget.observe(200, {"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "20"})
    budget.observe(200, {"X-RateLimit-Remaining": "nan", "X-RateLimit-Reset": "20"})
    budget.observe(200, None)
    assert states.writes == writes
    budget.observe(200, {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "20"})
    assert states.writes == writes + 1 and states.states[APP].whoop_remaining == 5


def test_a_lost_race_reads_the_state_again_and_takes_the_call(clock, states):
    budget = RateBudget(APP, 10, 10_000, states)
    take(budget, 1)
    states.lose_races = 3
    budget.acquire(WEBHOOK, max_wait=0)
    assert states.states[APP].day_used == 2
    assert states.reads == 2 + 3  # the first call's two reads, then one after each lost race


def test_endless_lost_races_defer_the_call_briefly_as_busy(clock, states):
    budget = RateBudget(APP, 10, 10_000, states)
    take(budget, 1)
    states.lose_races = MAX_CONFLICTS
    exhausted = refused(budget)
    assert exhausted.reason == "busy" and exhausted.retry_after == 1.0


def test_another_containers_calls_are_seen_before_waiting(clock, states):
    mine, theirs = RateBudget(APP, 4, 10_000, states), RateBudget(APP, 4, 10_000, states)
    assert take(mine, 2) == 2
    assert take(theirs, 2) == 2
    # `mine` still caches two free calls: its take fails, it reads, and it is refused.
    assert refused(mine).reason == "minute"


def test_an_unknown_priority_is_refused(clock, states):
    with pytest.raises(ValueError):
        RateBudget(APP, 10, 10_000, states).acquire("urgent", max_wait=0)


def test_the_deployments_budget_is_one_per_app_and_limits(clock, states, monkeypatch):
    monkeypatch.setenv("WHOOP_RATE_LIMIT_PER_MINUTE", "7")
    from whoop_bridge.config import settings

    settings.cache_clear()
    try:
        first = app_budget(APP, states)
        assert app_budget(APP, states) is first
        assert first.per_minute == 7
        assert app_budget("app-2", states) is not first
    finally:
        budget_module.reset()
        settings.cache_clear()
