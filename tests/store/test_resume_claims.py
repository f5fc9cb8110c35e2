"""The resume writes on a moto LabTable: a failed test's resume taken once per number (the
history entry and `resumes` in the same write), given back when its execution could not
start, and a requisition that failed intake made `awaiting_whoop` again, once."""

from __future__ import annotations

import pytest
from lab_tables import lab_table

from whoop_bridge.models.requisition import RequisitionOutcome
from whoop_bridge.models.service_request import Decision, ServiceRequestRecord, WorkflowState
from whoop_bridge.store import requisition_store
from whoop_bridge.store import service_request_store as store

FAILURE = {"error": "WhoopTransientError", "cause": "503", "at": "2026-12-01T00:00:00Z"}


@pytest.fixture
def table(monkeypatch):
    yield from lab_table(monkeypatch)


def failed_test(table) -> None:
    store.put_if_new(ServiceRequestRecord("sr-1", "req-1", code="CBC", decision=Decision.CONFIRM))
    store.record_failure("sr-1", FAILURE)


def entry(number: int) -> dict:
    return {"event": "resumed", "at": "t", "execution": f"sr-1-resume-{number}", "resending": [], "failure": {}}


def test_a_failed_test_is_resumed_once_per_number_with_its_history_entry(table):
    failed_test(table)
    assert not store.claim_resume("sr-1", 2, entry(2))  # not the next number

    assert store.claim_resume("sr-1", 1, entry(1))
    assert not store.claim_resume("sr-1", 1, entry(1))  # the concurrent one

    stored = store.get("sr-1")
    assert stored.workflow is WorkflowState.STARTING and stored.resumes == 1 and stored.failure is None
    assert stored.history == [entry(1)]

    store.record_failure("sr-1", FAILURE)
    assert not store.claim_resume("sr-1", 1, entry(1))
    assert store.claim_resume("sr-1", 2, entry(2))
    assert store.get("sr-1").history == [entry(1), entry(2)]


def test_a_test_that_is_not_failed_is_not_claimed(table):
    store.put_if_new(ServiceRequestRecord("sr-1", "req-1", code="CBC"))

    assert not store.claim_resume("sr-1", 1, entry(1))
    assert store.get("sr-1").workflow is WorkflowState.STARTING and store.get("sr-1").resumes == 0


def test_a_resume_whose_execution_did_not_start_is_given_back(table):
    failed_test(table)
    store.claim_resume("sr-1", 1, entry(1))

    store.release_resume("sr-1", 1, FAILURE, 0)

    stored = store.get("sr-1")
    assert stored.workflow is WorkflowState.FAILED and stored.failure == FAILURE
    assert stored.history == [] and stored.resumes == 1
    store.release_resume("sr-1", 1, FAILURE, 0)  # nothing more: it is not starting
    assert store.claim_resume("sr-1", 2, entry(2))


@pytest.mark.parametrize("outcome", ["not_found", "invalid"])
def test_a_requisition_that_failed_intake_is_awaiting_whoop_again_once(table, outcome):
    if outcome == "invalid":
        requisition_store.put_invalid("req-1", [{"field": "id", "problem": "missing"}])
    else:
        requisition_store.start_not_found_wait("req-1", "t0", "t1")
        requisition_store.give_up_not_found("req-1", "t0")

    assert requisition_store.restart_intake("req-1", "t5", "t9")
    assert not requisition_store.restart_intake("req-1", "t5", "t9")

    stored = requisition_store.get("req-1")
    assert stored.outcome is RequisitionOutcome.AWAITING_WHOOP and stored.is_waiting_since("t5")
    assert stored.retry_until == "t9"


def test_a_received_or_unknown_requisition_is_not_restarted(table):
    requisition_store.put_received({"id": "req-1", "service_requests": []}, "t0", [], [])

    assert not requisition_store.restart_intake("req-1", "t5", "t9")
    assert not requisition_store.restart_intake("req-unknown", "t5", "t9")
    assert requisition_store.get("req-1").outcome is RequisitionOutcome.RECEIVED
