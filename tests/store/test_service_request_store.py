"""service_request_store on a moto LabTable: the item as intake writes it, status history,
workflow ends, and the task token's conditional claim and restore."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from lab_tables import lab_table

from whoop_bridge.models.service_request import (
    AcceptedStatus,
    Decision,
    ServiceRequestRecord,
    TokenPhase,
    WorkflowState,
)
from whoop_bridge.models.task_status import TaskBusinessStatus as S
from whoop_bridge.store import service_request_store as store


@pytest.fixture
def table(monkeypatch):
    yield from lab_table(monkeypatch)


def new(sr_id: str = "sr-1", **fields) -> ServiceRequestRecord:
    defaults = {"code": "CBC", "decision": Decision.CONFIRM, "created_at": "t0"}
    return ServiceRequestRecord(sr_id, "req-1", **{**defaults, **fields})


def test_a_service_request_is_stored_once_with_plain_strings_and_no_empty_attributes(table):
    assert store.put_if_new(new())
    assert not store.put_if_new(new(code="OTHER"))

    item = table.get_item(Key={"pk": "SR#sr-1", "sk": "SR"})["Item"]
    assert item == {
        "pk": "SR#sr-1",
        "sk": "SR",
        "kind": "service_request",
        "service_request_id": "sr-1",
        "requisition_id": "req-1",
        "code": "CBC",
        "decision": "confirm",
        "workflow": "starting",
        "history": [],
        "created_at": "t0",
    }
    assert store.get("sr-1") == new()
    assert store.get("sr-unknown") is None


def test_many_are_read_in_the_order_asked(table):
    for sr_id in ("a", "b", "c"):
        store.put_if_new(new(sr_id))
    assert [r.service_request_id for r in store.get_many(["c", "x", "a", "b"])] == ["c", "a", "b"]


def test_a_status_joins_the_history_with_its_outbox_and_deadline(table):
    store.put_if_new(new())
    outbox = {"detail_type": "service_request.status_changed", "detail": {"n": 2}}
    store.record_status(
        "sr-1",
        AcceptedStatus(
            S.FULL_RESULTS_READY,
            event_id="e-1",
            workflow=WorkflowState.RUNNING,
            outbox=outbox,
            correction_deadline="2027-01-01T00:00:00Z",
        ),
    )
    store.record_status(
        "sr-1",
        AcceptedStatus(S.RESULTS_ISSUE, reason="late", event_id="e-2", workflow=WorkflowState.CLOSED, outbox=outbox),
    )

    record = store.get("sr-1")
    assert [(h["task_business_status"], h.get("reason")) for h in record.history] == [
        ("FULL_RESULTS_READY", None),
        ("RESULTS_ISSUE", "late"),
    ]
    assert (record.task_business_status, record.last_event_id, record.workflow) == (S.RESULTS_ISSUE, "e-2", "closed")
    assert record.outbox == outbox and record.correction_deadline == "2027-01-01T00:00:00Z"
    store.clear_outbox("sr-1")
    assert store.get("sr-1").outbox is None


def test_one_update_claims_the_token_and_a_restore_needs_it_free(table):
    store.put_if_new(new())
    store.store_task_token("sr-1", "token-1", TokenPhase.CORRECTION)
    waiting = store.get("sr-1")
    assert (waiting.task_token, waiting.token_phase, waiting.workflow) == (
        "token-1",
        "correction",
        "awaiting_correction",
    )

    assert store.claim_task_token("sr-1", "token-1", {"kind": "status", "event_id": "e-1"})
    assert not store.claim_task_token("sr-1", "token-1", {"kind": "status", "event_id": "e-2"})
    claimed = store.get("sr-1")
    assert claimed.task_token is None and claimed.workflow is WorkflowState.PROCESSING
    assert claimed.pending_update == {"kind": "status", "event_id": "e-1"}
    assert "pending_event" in table.get_item(Key={"pk": "SR#sr-1", "sk": "SR"})["Item"]

    store.restore_task_token("sr-1", "token-1", WorkflowState.AWAITING_CORRECTION)
    restored = store.get("sr-1")
    assert (restored.task_token, restored.workflow, restored.pending_update) == ("token-1", "awaiting_correction", None)
    with pytest.raises(ClientError):
        store.restore_task_token("sr-1", "token-2", WorkflowState.AWAITING_CORRECTION)


def test_a_token_is_stored_only_for_a_stored_service_request(table):
    with pytest.raises(ClientError):
        store.store_task_token("sr-unknown", "token", TokenPhase.LAB_EVENT)


def test_closing_or_failing_forgets_the_token(table):
    store.put_if_new(new())
    store.store_task_token("sr-1", "token-1", TokenPhase.LAB_EVENT)
    store.close("sr-1", closed_reason="wait ended (TaskTimedOut)")
    closed = store.get("sr-1")
    assert (closed.workflow, closed.task_token, closed.closed_reason, closed.closed_at) == (
        "closed",
        None,
        "wait ended (TaskTimedOut)",
        None,
    )
    store.record_failure("sr-1", {"error": "E", "cause": "c", "at": "t"})
    assert store.get("sr-1").failure == {"error": "E", "cause": "c", "at": "t"}
    assert store.get("sr-1").workflow is WorkflowState.FAILED
