"""The rate budget's rules (whoop/budget.py over models/budget.py) against an in-memory state
store and a hand-moved clock: no AWS, no moto. The same budget on MemberTable in moto is in
tests/integration/test_rate_budget.py."""

from __future__ import annotations

import pytest
from fakes.whoop import InMemoryBudgetStates, ManualClock

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


def test_background_leaves_the_reserved_fifth_to_webhooks_and_members(clock, states):
    budget = RateBudget(APP, 10, 10_000, states)
    assert take(budget, 8, WEBHOOK) == 8
    assert refused(budget, BACKGROUND).reason == "minute"
    assert take(budget, 2, INTERACTIVE) == 2
    assert refused(budget, WEBHOOK).reason == "minute"


def test_background_is_paced_at_its_share_of_the_minute(clock, states):
    budget = RateBudget(APP, 10, 10_000, states)
    assert take(budget, 1, BACKGROUND) == 1
    exhausted = refused(budget, BACKGROUND)
    assert exhausted.reason == "pace" and exhausted.retry_after == pytest.approx(61 / 8)
    assert states.states[APP].background_next_at == pytest.approx(clock.now + 61 / 8)
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
    # Two are the reserve of ten: background may not take WHOOP's last ones.
    assert take(budget, 5, BACKGROUND) == 1
    assert refused(budget, BACKGROUND).reason == "WHOOP's remaining count"
    assert take(budget, 5, WEBHOOK) == 2
    assert refused(budget).reason == "WHOOP's remaining count"
    clock.now += 20
    assert take(budget, 1) == 1


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
