"""The rate budget's state and its pure rules (models/budget.py)."""

from __future__ import annotations

import pytest

from whoop_bridge.models.budget import (
    CALL_SPACING_SECONDS,
    RESERVE_LENT_AFTER_SECONDS,
    BudgetState,
    Priority,
    day_of,
    reserved,
    seconds_to_midnight,
)

NOW = 1_795_300_000.0  # seconds since the epoch (22:26 UTC)


def test_a_first_state_lets_any_priority_go_now():
    state = BudgetState.first(5)
    assert state.calls == (0.0,) * 5
    for priority in Priority:
        assert state.wait(NOW, priority, 5, 100).seconds == 0


def test_a_call_fills_the_oldest_slot_and_moves_the_head():
    state = BudgetState.first(3).taken(NOW, Priority.WEBHOOK, 3)
    assert state.calls == (NOW, 0.0, 0.0) and state.head == 1
    assert state.version == 1 and state.day == day_of(NOW) and state.day_used == 1
    assert state.whoop_remaining == -1 and state.background_next_at is None


def test_the_ring_stays_in_time_order_when_clocks_differ():
    state = BudgetState.first(2).taken(NOW, Priority.WEBHOOK, 2).taken(NOW - 5, Priority.WEBHOOK, 2)
    assert state.calls == (NOW, NOW)


def test_the_day_count_starts_over_on_a_new_utc_day():
    state = BudgetState.first(2).taken(NOW, Priority.WEBHOOK, 2)
    tomorrow = NOW + seconds_to_midnight(NOW)
    assert state.taken(tomorrow, Priority.WEBHOOK, 2).day_used == 1
    assert state.taken(NOW + 1, Priority.WEBHOOK, 2).day_used == 2


def test_a_full_ring_waits_for_its_oldest_call_to_leave_the_minute():
    state = BudgetState.first(2).taken(NOW, Priority.WEBHOOK, 2).taken(NOW + 10, Priority.WEBHOOK, 2)
    wait = state.wait(NOW + 30, Priority.WEBHOOK, 2, 100)
    assert wait.reason == "minute" and wait.seconds == pytest.approx(CALL_SPACING_SECONDS - 30)


def test_background_waits_while_only_the_reserve_is_left_after_a_webhook():
    state = BudgetState.first(20)
    for offset in range(19):
        state = state.taken(NOW + offset, Priority.WEBHOOK, 20)
    assert state.minute_reserve(NOW + 19, 20) == 1
    assert state.wait(NOW + 19, Priority.WEBHOOK, 20, 1000).seconds == 0
    wait = state.wait(NOW + 19, Priority.BACKGROUND, 20, 1000)
    # One slot is free, but it is the reserve: background waits for the call at NOW to leave.
    assert wait.reason == "minute" and wait.seconds == pytest.approx(CALL_SPACING_SECONDS - 19)


def test_the_minute_reserve_is_lent_to_background_once_no_webhook_was_seen_lately():
    never = BudgetState.first(100)
    assert never.minute_reserve(NOW, 100) == 0
    seen = never.taken(NOW, Priority.WEBHOOK, 100)
    assert seen.priority_seen_at == NOW
    assert seen.minute_reserve(NOW + RESERVE_LENT_AFTER_SECONDS - 1, 100) == 5
    assert seen.minute_reserve(NOW + RESERVE_LENT_AFTER_SECONDS, 100) == 0
    # At least one call, and never the whole minute.
    assert seen.minute_reserve(NOW, 10) == 1 and seen.minute_reserve(NOW, 1) == 0
    # Background calls do not bring it back.
    assert never.taken(NOW, Priority.BACKGROUND, 100).priority_seen_at == 0


def test_a_waiting_webhook_claims_the_reserve_with_a_new_version():
    state = BudgetState.first(10)
    waiting = state.waiting(NOW)
    assert waiting.version == 1 and waiting.priority_seen_at == NOW and waiting.calls == state.calls
    assert waiting.minute_reserve(NOW + 1, 10) == 1
    assert waiting.waiting(NOW - 5).priority_seen_at == NOW  # never moves back


def test_background_calls_are_paced_at_the_share_left_to_them():
    state = BudgetState.first(10).taken(NOW, Priority.BACKGROUND, 10)
    # No webhook seen: the whole minute, one call every 6.1 s.
    assert state.background_next_at == pytest.approx(NOW + CALL_SPACING_SECONDS / 10)
    wait = state.wait(NOW + 1, Priority.BACKGROUND, 10, 1000)
    assert wait.reason == "pace" and wait.seconds == pytest.approx(CALL_SPACING_SECONDS / 10 - 1)
    assert state.wait(NOW + 1, Priority.INTERACTIVE, 10, 1000).seconds == 0
    # A later webhook call keeps the pace as it was, and the next background call is paced
    # at the share the reserve leaves (nine of ten).
    after_webhook = state.taken(NOW + 2, Priority.WEBHOOK, 10)
    assert after_webhook.background_next_at == state.background_next_at
    paced = after_webhook.taken(NOW + 7, Priority.BACKGROUND, 10)
    assert paced.background_next_at == pytest.approx(NOW + 7 + CALL_SPACING_SECONDS / 9)


def test_the_day_reserve_holds_background_short_of_the_day_limit():
    state = BudgetState(calls=(0.0,) * 10, day=day_of(NOW), day_used=80)
    assert reserved(100) == 20
    assert state.wait(NOW, Priority.BACKGROUND, 10, 100).reason == "day"
    assert state.wait(NOW, Priority.WEBHOOK, 10, 100).seconds == 0


def test_the_longest_wait_wins():
    state = BudgetState(calls=(NOW,), hold_until=NOW + 5, whoop_reset_at=NOW + 40, whoop_remaining=0)
    wait = state.wait(NOW + 1, Priority.WEBHOOK, 1, 100)
    assert wait.reason == "minute" and wait.seconds == pytest.approx(CALL_SPACING_SECONDS - 1)
    wait = state.wait(NOW + 61, Priority.WEBHOOK, 1, 100)
    assert wait.seconds == 0


def test_a_lowered_limit_keeps_the_newest_calls_oldest_first():
    state = BudgetState(calls=(5.0, 6.0, 2.0, 3.0, 4.0), head=2)
    assert state.resized(5) is state
    smaller = state.resized(3)
    assert smaller.calls == (4.0, 5.0, 6.0) and smaller.head == 0
    larger = state.resized(7)
    assert larger.calls == (0.0, 0.0, 2.0, 3.0, 4.0, 5.0, 6.0) and larger.head == 0


def test_priorities_are_their_wire_names():
    assert [priority.value for priority in Priority] == ["interactive", "webhook", "background"]
    with pytest.raises(ValueError):
        Priority("urgent")


def test_a_late_background_call_keeps_the_pace_but_never_banks_more_than_one_call():
    state = BudgetState.first(10).taken(NOW, Priority.BACKGROUND, 10)
    spacing = CALL_SPACING_SECONDS / 10
    # Two seconds late (a slow wake-up): the next call is still due on the schedule.
    late = state.taken(NOW + spacing + 2, Priority.BACKGROUND, 10)
    assert late.background_next_at == pytest.approx(NOW + 2 * spacing)
    # After an idle stretch only one call may follow at once, then the pace again.
    idle = state.taken(NOW + 100, Priority.BACKGROUND, 10)
    assert idle.background_next_at == pytest.approx(NOW + 100)
    assert idle.taken(NOW + 100, Priority.BACKGROUND, 10).background_next_at == pytest.approx(NOW + 100 + spacing)
