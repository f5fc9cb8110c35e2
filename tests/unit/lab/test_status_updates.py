"""The lab's status updates and results against in-memory ports: what the rules allow now,
the task token claimed by one update, a busy test, the correction phase, and what happens
when the execution cannot be resumed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from fakes.lab import fake_ports

from whoop_bridge import times
from whoop_bridge.lab import executions
from whoop_bridge.lab.errors import Busy, NotFound, TransitionForbidden
from whoop_bridge.lab.status_updates import apply_requisition_update, apply_status_update, submit_results
from whoop_bridge.lab.step_functions import WaitEnded
from whoop_bridge.models.lab_results import DiagnosticReport, LabStatusEvent
from whoop_bridge.models.requisition import RequisitionOutcome, RequisitionRecord
from whoop_bridge.models.service_request import ServiceRequestRecord, TokenPhase, WorkflowState
from whoop_bridge.models.task_status import TaskBusinessStatus as S

SR = "sr-1"
FINAL = {"status": "final", "observations": [{"code": "HDL", "value_numeric": 52}]}


def waiting(ports, sr_id=SR, status=S.ORDER_CONFIRMED, phase=TokenPhase.LAB_EVENT, **fields) -> ServiceRequestRecord:
    return ports.service_requests.add(
        ServiceRequestRecord(
            sr_id,
            "req-1",
            code="CBC",
            task_business_status=status,
            task_token=f"token-{sr_id}",
            token_phase=phase,
            workflow=phase.workflow,
            **fields,
        )
    )


def update(status: str, reason: str | None = None) -> LabStatusEvent:
    return LabStatusEvent.model_validate({"status": status, **({"reason": reason} if reason else {})})


@pytest.fixture
def ports():
    return fake_ports()


def test_an_allowed_update_claims_the_token_and_resumes_the_execution(ports):
    waiting(ports)

    accepted = apply_status_update(SR, update("APPOINTMENT_ATTENDED"), ports=ports)

    assert accepted["accepted"] == "status" and accepted["service_request_id"] == SR
    [(token, output)] = ports.executions.resumed
    assert token == "token-sr-1"
    assert output == {
        "kind": "status",
        "task_business_status": "APPOINTMENT_ATTENDED",
        "reason": None,
        "event_id": accepted["event_id"],
    }
    stored = ports.service_requests.get(SR)
    assert stored.task_token is None and stored.workflow is WorkflowState.PROCESSING
    assert stored.pending_update["event_id"] == accepted["event_id"]


def test_a_forbidden_update_names_what_may_come_next_and_resumes_nothing(ports):
    waiting(ports, status=S.APPOINTMENT_ATTENDED)

    with pytest.raises(TransitionForbidden) as forbidden:
        apply_status_update(SR, update("PARTIAL_RESULTS_READY"), ports=ports)

    assert str(forbidden.value) == "PARTIAL_RESULTS_READY is not allowed after APPOINTMENT_ATTENDED"
    assert forbidden.value.current == "APPOINTMENT_ATTENDED"
    assert forbidden.value.allowed == ["APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"]
    assert ports.executions.resumed == [] and ports.service_requests.get(SR).task_token == "token-sr-1"


def test_a_test_between_two_waits_is_busy_and_an_ended_one_forbidden(ports):
    ports.service_requests.add(ServiceRequestRecord(SR, "req-1", workflow=WorkflowState.RUNNING))
    with pytest.raises(Busy):
        apply_status_update(SR, update("APPOINTMENT_ATTENDED"), deadline=time.monotonic(), ports=ports)

    ports.service_requests.add(ServiceRequestRecord("sr-2", "req-1", workflow=WorkflowState.HELD))
    with pytest.raises(TransitionForbidden, match="the test is held"):
        apply_status_update("sr-2", update("APPOINTMENT_ATTENDED"), ports=ports)
    with pytest.raises(NotFound):
        apply_status_update("sr-unknown", update("APPOINTMENT_ATTENDED"), ports=ports)


def test_of_two_concurrent_updates_one_resumes_the_wait(ports):
    waiting(ports)

    def another_update_takes_the_token() -> None:
        ports.service_requests.claim_task_token(SR, "token-sr-1", {"kind": "status"})

    ports.service_requests.before_claim = another_update_takes_the_token
    with pytest.raises(Busy):
        apply_status_update(SR, update("APPOINTMENT_ATTENDED"), deadline=time.monotonic() + 0.3, ports=ports)
    assert ports.executions.resumed == []


def test_results_are_kept_before_the_execution_hears_of_them(ports):
    waiting(ports)

    accepted = submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports)

    [report] = ports.reports.list_for(SR)
    assert (report.report_id, report.report_kind, report.body) == (accepted["report_id"], "final", FINAL)
    [(_, output)] = ports.executions.resumed
    assert output["kind"] == "report" and output["report_kind"] == "final"


def test_a_report_that_cannot_be_kept_gives_the_token_back(ports):
    waiting(ports)
    ports.reports.fail_put = RuntimeError("table unavailable")

    with pytest.raises(RuntimeError):
        submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports)

    stored = ports.service_requests.get(SR)
    assert (stored.task_token, stored.workflow) == ("token-sr-1", WorkflowState.AWAITING_LAB_EVENT)
    assert ports.executions.resumed == []


def test_an_ended_wait_closes_the_test_and_a_transient_fault_restores_the_token(ports):
    waiting(ports)
    ports.executions.fail_resume = WaitEnded("TaskTimedOut")
    with pytest.raises(TransitionForbidden, match="workflow has ended"):
        apply_status_update(SR, update("APPOINTMENT_ATTENDED"), ports=ports)
    stored = ports.service_requests.get(SR)
    assert (stored.workflow, stored.closed_reason) == (WorkflowState.CLOSED, "wait ended (TaskTimedOut)")

    waiting(ports, "sr-2")
    ports.executions.fail_resume = ClientError({"Error": {"Code": "ThrottlingException"}}, "SendTaskSuccess")
    with pytest.raises(ClientError):
        apply_status_update("sr-2", update("APPOINTMENT_ATTENDED"), ports=ports)
    assert ports.service_requests.get("sr-2").task_token == "token-sr-2"


def test_in_the_correction_phase_only_corrections_within_the_window(ports):
    open_until = times.iso(datetime.now(UTC) + timedelta(days=1))
    waiting(ports, status=S.FULL_RESULTS_READY, phase=TokenPhase.CORRECTION, correction_deadline=open_until)
    amended = {"status": "amended", "observations": [{"code": "HDL", "value_numeric": 53}]}

    with pytest.raises(TransitionForbidden) as forbidden:
        apply_status_update(SR, update("RESULTS_ISSUE", "late"), ports=ports)
    assert forbidden.value.allowed == []
    with pytest.raises(TransitionForbidden, match="not accepted after FULL_RESULTS_READY"):
        submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports)
    assert submit_results(SR, DiagnosticReport.model_validate(amended), amended, ports)["accepted"] == "report"
    assert ports.executions.resumed[-1][1]["report_kind"] == "correction"

    closed = times.iso(datetime.now(UTC) - timedelta(seconds=1))
    waiting(ports, "sr-2", status=S.FULL_RESULTS_READY, phase=TokenPhase.CORRECTION, correction_deadline=closed)
    with pytest.raises(TransitionForbidden, match="within the correction window"):
        submit_results("sr-2", DiagnosticReport.model_validate(amended), amended, ports)


def test_an_order_wide_update_reports_each_test_and_409s_only_when_none_applies(ports, monkeypatch):
    monkeypatch.setattr(executions, "BUSY_WAIT_SECONDS", 0.0)
    ports.requisitions.records["req-1"] = RequisitionRecord(
        "req-1", RequisitionOutcome.RECEIVED, service_request_ids=["sr-1", "sr-2", "sr-3"]
    )
    waiting(ports, "sr-1")
    waiting(ports, "sr-2", status=S.APPOINTMENT_ATTENDED)
    ports.service_requests.add(ServiceRequestRecord("sr-3", "req-1", code="LIPID", workflow=WorkflowState.RUNNING))

    answer = apply_requisition_update("req-1", update("APPOINTMENT_ATTENDED"), ports)

    assert [(o["service_request_id"], o["outcome"]) for o in answer["service_requests"]] == [
        ("sr-1", "applied"),
        ("sr-2", "unchanged"),
        ("sr-3", "busy"),
    ]
    with pytest.raises(Busy):  # sr-3 may take it shortly
        apply_requisition_update("req-1", update("APPOINTMENT_ATTENDED"), ports)
    waiting(ports, "sr-1", status=S.APPOINTMENT_ATTENDED)  # the execution sent it and waits again
    ports.service_requests.records["sr-3"].workflow = WorkflowState.CLOSED
    with pytest.raises(TransitionForbidden, match="not a step forward for any test"):
        apply_requisition_update("req-1", update("APPOINTMENT_ATTENDED"), ports)
    with pytest.raises(NotFound):
        apply_requisition_update("req-unknown", update("APPOINTMENT_ATTENDED"), ports)
