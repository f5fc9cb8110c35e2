"""Intake against in-memory ports: what a `lab_requisition.created` leads to, WHOOP's read
lag (404 fetched again, then not found), an order the bridge cannot read, and a duplicate
delivery that changes nothing. No AWS: tests/fakes/lab.py."""

from __future__ import annotations

import pytest
from fakes.lab import FakePartnerClient, fake_ports

from whoop_bridge import caches
from whoop_bridge.config import settings
from whoop_bridge.lab import intake
from whoop_bridge.lab.errors import TestDataUnavailable
from whoop_bridge.lab.intake import Unsettled, handle_partner_event, receive_requisition
from whoop_bridge.models.requisition import RequisitionOutcome
from whoop_bridge.models.service_request import Decision, WorkflowState
from whoop_bridge.whoop.http import WhoopNotFound

REQ = "req-1"


@pytest.fixture(autouse=True)
def lab_settings(monkeypatch):
    monkeypatch.setenv("ACCEPTED_TEST_CODES", "LIPID_PANEL,CBC")
    monkeypatch.setenv("REQUISITION_FETCH_RETRY_SECONDS", "900")
    caches.reset_all()
    yield
    caches.reset_all()


@pytest.fixture
def ports():
    return fake_ports()


def requisition(*service_requests: dict, **fields) -> dict:
    return {
        "id": REQ,
        "patient": {"first_name": "Jordan"},
        "service_requests": list(service_requests),
        "created_at": "2026-11-30T12:00:00Z",
        **fields,
    }


def sr(sr_id: str, code: str, **fields) -> dict:
    return {"id": sr_id, "code": code, "status": "active", "intent": "order", **fields}


def test_an_order_is_stored_its_tests_started_as_decided_and_published_once(ports):
    client = FakePartnerClient()
    client.requisitions[REQ] = requisition(
        sr("sr-1", "CBC"),
        sr("sr-2", "HBA1C"),
        sr("sr-3", "LIPID_PANEL", task_business_status="APPOINTMENT_ATTENDED"),
        sr("sr-4", "CBC", status="revoked"),
    )

    assert receive_requisition(REQ, client, ports=ports) == "received"

    stored = ports.requisitions.get(REQ)
    assert stored.outcome is RequisitionOutcome.RECEIVED and stored.published
    assert stored.service_request_ids == ["sr-1", "sr-2", "sr-3", "sr-4"]
    assert stored.patient == {"first_name": "Jordan"}
    decisions = {sr_id: ports.service_requests.get(sr_id).decision for sr_id in stored.service_request_ids}
    assert decisions == {"sr-1": "confirm", "sr-2": "reject", "sr-3": "resume", "sr-4": "skip"}
    assert ports.service_requests.get("sr-4").workflow is WorkflowState.SKIPPED
    assert set(ports.executions.started) == {"sr-1", "sr-2", "sr-3"}
    assert ports.executions.started["sr-2"] == {
        "service_request_id": "sr-2",
        "requisition_id": REQ,
        "decision": "reject",
        "reason": "Test code HBA1C is not offered by this lab.",
        "lab_event_timeout_seconds": 30 * 86400,
    }
    [published] = ports.bus.of("requisition.received")
    assert [entry["decision"] for entry in published["service_requests"]] == ["confirm", "reject", "resume", "skip"]


def test_a_duplicate_delivery_changes_nothing(ports):
    client = FakePartnerClient()
    client.requisitions[REQ] = requisition(sr("sr-1", "CBC"))
    receive_requisition(REQ, client, ports=ports)
    before = (ports.requisitions.get(REQ), ports.service_requests.get("sr-1"), dict(ports.executions.started))

    assert receive_requisition(REQ, client, ports=ports) == "received"

    assert (ports.requisitions.get(REQ), ports.service_requests.get("sr-1"), ports.executions.started) == before
    assert len(ports.bus.of("requisition.received")) == 1


def test_a_404_is_fetched_again_later_and_a_duplicate_joins_the_running_wait(ports):
    client = FakePartnerClient()
    client.requisitions[REQ] = WhoopNotFound("GET requisition", 404)

    with pytest.raises(Unsettled) as first:
        receive_requisition(REQ, client, ports=ports)
    with pytest.raises(Unsettled) as duplicate:
        receive_requisition(REQ, client, ports=ports)

    assert (first.value.outcome, duplicate.value.outcome) == ("retrying", "retrying")
    stored = ports.requisitions.get(REQ)
    assert stored.outcome is RequisitionOutcome.AWAITING_WHOOP
    [message] = ports.queue.messages  # one chain of retries
    assert message == {
        "event_type": "lab_requisition.created",
        "resource_id": REQ,
        "delay_seconds": 30,
        "not_found_since": stored.not_found_since,
        "not_found_attempt": 1,
    }
    assert ports.bus.published == []


def test_a_later_success_replaces_the_wait_and_a_stale_retry_is_superseded(ports):
    client = FakePartnerClient()
    client.requisitions[REQ] = [WhoopNotFound("GET requisition", 404), requisition(sr("sr-1", "CBC"))]
    with pytest.raises(Unsettled):
        receive_requisition(REQ, client, ports=ports)
    since = ports.requisitions.get(REQ).not_found_since

    assert receive_requisition(REQ, client, not_found_since=since, attempt=1, ports=ports) == "received"
    assert ports.requisitions.get(REQ).is_received

    client.requisitions[REQ] = WhoopNotFound("GET requisition", 404)
    with pytest.raises(Unsettled) as stale:
        receive_requisition(REQ, client, not_found_since=since, attempt=2, ports=ports)
    assert stale.value.outcome == "superseded"
    assert ports.requisitions.get(REQ).is_received


def test_once_the_bound_has_passed_a_404_is_not_found_published_once(ports, monkeypatch):
    monkeypatch.setenv("REQUISITION_FETCH_RETRY_SECONDS", "0")
    settings.cache_clear()
    client = FakePartnerClient()
    client.requisitions[REQ] = WhoopNotFound("GET requisition", 404)

    with pytest.raises(Unsettled) as raised:
        receive_requisition(REQ, client, ports=ports)

    assert raised.value.outcome == "not_found"
    assert ports.requisitions.get(REQ).outcome is RequisitionOutcome.NOT_FOUND
    assert ports.bus.of("requisition.unavailable") == [{"requisition_id": REQ, "outcome": "not_found"}]
    assert ports.queue.messages == []


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"id": REQ}, "service_requests"),
        ({"id": REQ, "service_requests": []}, "service_requests"),
        ({"id": "other", "service_requests": [{}]}, "id"),
    ],
)
def test_an_order_the_bridge_cannot_read_is_recorded_published_and_nothing_started(ports, answer, field):
    client = FakePartnerClient()
    client.requisitions[REQ] = answer

    for _ in range(2):  # a redelivery publishes nothing more
        with pytest.raises(Unsettled) as raised:
            receive_requisition(REQ, client, ports=ports)
        assert raised.value.outcome == "invalid"

    stored = ports.requisitions.get(REQ)
    assert stored.outcome is RequisitionOutcome.INVALID
    assert [problem["field"] for problem in stored.problems] == [field]
    [published] = ports.bus.of("requisition.unavailable")
    assert published["outcome"] == "invalid"
    assert ports.executions.started == {} and ports.service_requests.records == {}


def test_a_test_without_a_readable_code_is_held_and_the_others_go_ahead(ports):
    client = FakePartnerClient()
    client.requisitions[REQ] = requisition(sr("sr-1", "CBC"), {"id": "sr-2", "code": None})

    assert receive_requisition(REQ, client, ports=ports) == "received"

    held = ports.service_requests.get("sr-2")
    assert (held.decision, held.workflow) == (Decision.HOLD, WorkflowState.HELD)
    assert list(ports.executions.started) == ["sr-1"]
    assert [p["field"] for p in ports.requisitions.get(REQ).problems] == ["service_requests.1.code"]


def test_a_review_is_stored_and_published_once(ports):
    client = FakePartnerClient()
    for _ in range(2):
        assert (
            handle_partner_event(
                {"event_type": "clinical_report_review.requested", "resource_id": "rev-1"}, client, ports
            )
            == "review_stored"
        )
    assert ports.reviews.get("rev-1").published
    assert ports.bus.of("clinical_report_review.requested") == [{"review_id": "rev-1", "details_fetched": False}]


@pytest.mark.parametrize(
    ("event", "outcome"),
    [
        ({"event_type": "lab_requisition.created", "resource_id": ""}, "malformed"),
        ({"event_type": "lab_requisition.created"}, "malformed"),
        ({"event_type": "something.else", "resource_id": "x"}, "ignored"),
    ],
)
def test_messages_the_bridge_cannot_use_are_settled_without_effect(ports, event, outcome):
    assert handle_partner_event(event, FakePartnerClient(), ports) == outcome
    assert ports.requisitions.records == {} and ports.bus.published == []


def test_test_data_is_taken_in_like_an_order_and_refused_in_production(ports, monkeypatch):
    client = FakePartnerClient()
    assert intake.request_test_data(client, "MOBILE", ports) == "req-test"
    assert ports.queue.messages == [
        {"event_type": "lab_requisition.created", "resource_id": "req-test", "delay_seconds": 0}
    ]

    client.test_data = WhoopNotFound("POST add-test-data", 404)
    with pytest.raises(TestDataUnavailable, match="404"):
        intake.request_test_data(client, None, ports)

    monkeypatch.setenv("ENVIRONMENT", "production")
    settings.cache_clear()
    with pytest.raises(TestDataUnavailable, match="production"):
        intake.request_test_data(FakePartnerClient(), None, ports)
    assert len(ports.queue.messages) == 1
