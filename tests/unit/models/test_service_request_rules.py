"""The service request's rules as its model holds them: open or not, what the lab may send
in each phase, the correction window; and the small enums' rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whoop_bridge import times
from whoop_bridge.models.diagnostic_report import ReportKind
from whoop_bridge.models.document import DocumentState, FetchOutcome
from whoop_bridge.models.service_request import Decision, ServiceRequestRecord, TokenPhase, WorkflowState
from whoop_bridge.models.task_status import TaskBusinessStatus as S

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ISSUES = ["APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"]


def record(**fields) -> ServiceRequestRecord:
    return ServiceRequestRecord("sr-1", "req-1", **fields)


def test_the_nine_workflow_states_keep_their_stored_strings():
    assert [state.value for state in WorkflowState] == [
        "starting",
        "running",
        "processing",
        "awaiting_lab_event",
        "awaiting_correction",
        "closed",
        "failed",
        "skipped",
        "held",
    ]


@pytest.mark.parametrize("workflow", ["closed", "failed", "skipped", "held"])
def test_an_ended_test_accepts_nothing(workflow):
    ended = record(workflow=WorkflowState(workflow), task_business_status=S.ORDER_CONFIRMED)
    assert not ended.is_open
    assert ended.allowed_statuses() == [] and ended.accepted_report_statuses(NOW) == []


@pytest.mark.parametrize(
    ("status", "statuses", "reports"),
    [
        (None, ["APPOINTMENT_ATTENDED", *ISSUES], ["partial", "preliminary", "final"]),
        (S.ORDER_CONFIRMED, ["APPOINTMENT_ATTENDED", *ISSUES], ["partial", "preliminary", "final"]),
        (S.APPOINTMENT_ATTENDED, ISSUES, ["partial", "preliminary", "final"]),
        (S.PARTIAL_RESULTS_READY, ISSUES, ["partial", "preliminary", "final"]),
        (S.FULL_RESULTS_READY, [], []),
    ],
)
def test_waiting_for_the_lab_the_status_says_what_may_follow(status, statuses, reports):
    waiting = record(
        workflow=WorkflowState.AWAITING_LAB_EVENT, token_phase=TokenPhase.LAB_EVENT, task_business_status=status
    )
    assert [s.value for s in waiting.allowed_statuses()] == statuses
    assert waiting.accepted_report_statuses(NOW) == reports


def test_in_the_correction_phase_only_corrections_until_the_deadline():
    deadline = times.iso(NOW + timedelta(hours=1))
    correcting = record(
        workflow=WorkflowState.AWAITING_CORRECTION,
        token_phase=TokenPhase.CORRECTION,
        task_business_status=S.FULL_RESULTS_READY,
        correction_deadline=deadline,
    )
    assert correcting.allowed_statuses() == []
    assert correcting.accepted_report_statuses(NOW) == ["amended", "cancelled", "corrected"]
    assert correcting.accepted_report_statuses(NOW + timedelta(hours=2)) == []
    assert correcting.correction_seconds_left(NOW) == 3600
    assert correcting.correction_seconds_left(NOW + timedelta(hours=2)) == 0
    assert record().correction_seconds_left(NOW) == 0 and not record().correction_open(NOW)


def test_moving_states_are_between_two_waits():
    assert {state for state in WorkflowState if record(workflow=state).is_moving} == {
        WorkflowState.STARTING,
        WorkflowState.RUNNING,
        WorkflowState.PROCESSING,
    }
    assert TokenPhase.CORRECTION.workflow is WorkflowState.AWAITING_CORRECTION
    assert TokenPhase.LAB_EVENT.workflow is WorkflowState.AWAITING_LAB_EVENT


def test_a_retried_status_step_is_recognised_by_status_and_update():
    sent = record(task_business_status=S.APPOINTMENT_ATTENDED, last_event_id="e-1")
    assert sent.already_recorded(S.APPOINTMENT_ATTENDED, "e-1")
    assert not sent.already_recorded(S.APPOINTMENT_ATTENDED, "e-2")
    assert not sent.already_recorded(S.PARTIAL_RESULTS_READY, "e-1")


def test_the_small_enums_rules():
    assert {d for d in Decision if d.starts_execution} == {Decision.CONFIRM, Decision.REJECT, Decision.RESUME}
    assert [ReportKind.of(s) for s in ("partial", "preliminary", "final", "amended", "corrected", "cancelled")] == [
        "partial",
        "partial",
        "final",
        "correction",
        "correction",
        "correction",
    ]
    assert {o for o in FetchOutcome if o.settled} == {"stored", "linked", "unavailable"}
    assert {s for s in DocumentState if s.is_fetched} == {"stored", "linked"}
