"""The `task_business_status` order the bridge enforces (docs/whoop.md#task-business-status).

Forward only; PARTIAL_RESULTS_READY may repeat; nothing after FULL_RESULTS_READY or any
issue status. A lab that breaks the order gets a 409 from lab_api, so this table is what
a lab sees.
"""

from __future__ import annotations

import pytest

from whoop_bridge.models.task_status import (
    TaskBusinessStatus,
    allowed_next,
    is_allowed,
    known,
    lab_update_statuses,
    parse,
    status_after_report,
)

S = TaskBusinessStatus
ISSUES = [S.APPOINTMENT_ISSUE, S.RESULTS_ISSUE, S.ORDER_ISSUE]

# Written out by hand from §2.4, in workflow order.
EXPECTED_NEXT: dict[TaskBusinessStatus | None, list[TaskBusinessStatus]] = {
    None: [S.ORDER_CONFIRMED, S.APPOINTMENT_ATTENDED, S.PARTIAL_RESULTS_READY, S.FULL_RESULTS_READY, *ISSUES],
    S.ORDER_CONFIRMED: [S.APPOINTMENT_ATTENDED, S.PARTIAL_RESULTS_READY, S.FULL_RESULTS_READY, *ISSUES],
    S.APPOINTMENT_ATTENDED: [S.PARTIAL_RESULTS_READY, S.FULL_RESULTS_READY, *ISSUES],
    S.PARTIAL_RESULTS_READY: [S.PARTIAL_RESULTS_READY, S.FULL_RESULTS_READY, *ISSUES],
    S.FULL_RESULTS_READY: [],
    S.APPOINTMENT_ISSUE: [],
    S.RESULTS_ISSUE: [],
    S.ORDER_ISSUE: [],
}


def test_table_covers_every_status():
    assert set(EXPECTED_NEXT) == {None, *TaskBusinessStatus}


@pytest.mark.parametrize("current", list(EXPECTED_NEXT), ids=lambda s: "None" if s is None else s.value)
def test_allowed_next(current):
    assert allowed_next(current) == EXPECTED_NEXT[current]


@pytest.mark.parametrize("current", list(EXPECTED_NEXT), ids=lambda s: "None" if s is None else s.value)
def test_is_allowed_agrees_with_the_table_for_every_pair(current):
    for new in TaskBusinessStatus:
        assert is_allowed(current, new) is (new in EXPECTED_NEXT[current]), (current, new)


@pytest.mark.parametrize(
    ("current", "backwards"),
    [
        (S.APPOINTMENT_ATTENDED, S.ORDER_CONFIRMED),
        (S.PARTIAL_RESULTS_READY, S.APPOINTMENT_ATTENDED),
        (S.APPOINTMENT_ATTENDED, S.APPOINTMENT_ATTENDED),
        (S.ORDER_CONFIRMED, S.ORDER_CONFIRMED),
        (S.FULL_RESULTS_READY, S.PARTIAL_RESULTS_READY),
        (S.FULL_RESULTS_READY, S.RESULTS_ISSUE),
        (S.ORDER_ISSUE, S.ORDER_CONFIRMED),
        (S.APPOINTMENT_ISSUE, S.APPOINTMENT_ISSUE),
    ],
)
def test_backwards_repeated_and_after_terminal_moves_are_refused(current, backwards):
    assert not is_allowed(current, backwards)


@pytest.mark.parametrize("current", list(EXPECTED_NEXT), ids=lambda s: "None" if s is None else s.value)
def test_lab_update_statuses_never_offer_confirmation_or_results(current):
    offered = lab_update_statuses(current)
    assert not {S.ORDER_CONFIRMED, S.PARTIAL_RESULTS_READY, S.FULL_RESULTS_READY} & set(offered)
    # Whatever is offered must also be an allowed transition.
    assert set(offered) <= set(EXPECTED_NEXT[current])


def test_lab_update_statuses_for_each_stage():
    assert lab_update_statuses(None) == [S.APPOINTMENT_ATTENDED, *ISSUES]
    assert lab_update_statuses(S.ORDER_CONFIRMED) == [S.APPOINTMENT_ATTENDED, *ISSUES]
    assert lab_update_statuses(S.APPOINTMENT_ATTENDED) == ISSUES
    assert lab_update_statuses(S.PARTIAL_RESULTS_READY) == ISSUES
    for terminal in (S.FULL_RESULTS_READY, *ISSUES):
        assert lab_update_statuses(terminal) == []


@pytest.mark.parametrize(
    ("report_status", "expected"),
    [
        ("partial", S.PARTIAL_RESULTS_READY),
        ("preliminary", S.PARTIAL_RESULTS_READY),
        ("final", S.FULL_RESULTS_READY),
        ("amended", None),
        ("corrected", None),
        ("cancelled", None),
    ],
)
def test_status_after_report(report_status, expected):
    assert status_after_report(report_status) is expected


def test_parse_reads_whoop_values_and_null():
    assert parse(None) is None
    assert parse("APPOINTMENT_ATTENDED") is S.APPOINTMENT_ATTENDED
    with pytest.raises(ValueError):
        parse("appointment_attended")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ORDER_CONFIRMED", TaskBusinessStatus.ORDER_CONFIRMED),
        ("Specimen collected", None),
        ("order_confirmed", None),
        (None, None),
        (7, None),
    ],
)
def test_known_reads_whoops_free_text_without_failing(value, expected):
    assert known(value) is expected
