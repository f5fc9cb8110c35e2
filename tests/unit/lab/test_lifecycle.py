"""The state machine's steps against in-memory ports: a status sent once and kept with its
bus message (outbox), the correction window, closing, and recording a failure."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from fakes.lab import FakePartnerClient, fake_ports

from whoop_bridge import caches, times
from whoop_bridge.lab import lifecycle
from whoop_bridge.lab.errors import ServiceRequestMissing
from whoop_bridge.models.diagnostic_report import ReportKind
from whoop_bridge.models.service_request import ServiceRequestRecord, TokenPhase, WorkflowState
from whoop_bridge.models.task_status import TaskBusinessStatus

SR = "sr-1"


@pytest.fixture(autouse=True)
def lab_settings(monkeypatch):
    monkeypatch.setenv("CORRECTION_WINDOW_DAYS", "30")
    caches.reset_all()
    yield
    caches.reset_all()


@pytest.fixture
def ports():
    ports = fake_ports()
    ports.service_requests.add(ServiceRequestRecord(SR, "req-1", code="CBC"))
    return ports


class FlakyBus:
    """Fails the first publish, as EventBridge may."""

    def __init__(self, bus) -> None:
        self.bus, self.failed = bus, False

    def publish(self, detail_type, detail) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("PutEvents failed")
        self.bus.publish(detail_type, detail)


def test_a_status_is_sent_recorded_and_published_then_its_outbox_cleared(ports):
    client = FakePartnerClient()

    assert lifecycle.set_status(client, SR, "ORDER_CONFIRMED", ports=ports) == {
        "task_business_status": "ORDER_CONFIRMED",
        "repeated": False,
    }

    stored = ports.service_requests.get(SR)
    assert client.statuses == [(SR, "ORDER_CONFIRMED", None)]
    assert stored.task_business_status is TaskBusinessStatus.ORDER_CONFIRMED
    assert stored.workflow is WorkflowState.RUNNING
    assert [entry["task_business_status"] for entry in stored.history] == ["ORDER_CONFIRMED"]
    assert stored.outbox is None
    assert ports.bus.of("service_request.status_changed") == [
        {
            "service_request_id": SR,
            "requisition_id": "req-1",
            "code": "CBC",
            "task_business_status": "ORDER_CONFIRMED",
            "previous_task_business_status": None,
            "reason": None,
        }
    ]


def test_a_retried_step_sends_nothing_again_but_publishes_what_a_failure_left(ports):
    client = FakePartnerClient()
    bus = ports.bus
    flaky = dataclasses.replace(ports, bus=FlakyBus(bus))
    with pytest.raises(RuntimeError):
        lifecycle.set_status(client, SR, "APPOINTMENT_ATTENDED", event_id="e-1", ports=flaky)
    assert ports.service_requests.get(SR).outbox is not None  # recorded, not yet published

    again = lifecycle.set_status(client, SR, "APPOINTMENT_ATTENDED", event_id="e-1", ports=flaky)

    assert again == {"task_business_status": "APPOINTMENT_ATTENDED", "repeated": True}
    assert client.statuses == [(SR, "APPOINTMENT_ATTENDED", None)]
    assert len(bus.of("service_request.status_changed")) == 1
    assert ports.service_requests.get(SR).outbox is None


def test_full_results_open_the_correction_window_and_an_issue_closes_the_test(ports):
    client = FakePartnerClient()
    lifecycle.set_status(client, SR, "FULL_RESULTS_READY", event_id="e-1", ports=ports)
    stored = ports.service_requests.get(SR)
    deadline = times.parse(stored.correction_deadline)
    assert timedelta(days=29, hours=23) < deadline - datetime.now(UTC) <= timedelta(days=30)
    assert stored.workflow is WorkflowState.RUNNING
    assert 29 * 86400 < lifecycle.correction_window(SR, ports)["remaining_seconds"] <= 30 * 86400

    ports.service_requests.add(ServiceRequestRecord("sr-2", "req-1", code="CBC"))
    lifecycle.set_status(client, "sr-2", "RESULTS_ISSUE", "sample lost", "e-2", ports)
    issue = ports.service_requests.get("sr-2")
    assert issue.workflow is WorkflowState.CLOSED and issue.correction_deadline is None
    assert issue.history[-1]["reason"] == "sample lost"
    assert lifecycle.correction_window("sr-2", ports) == {"remaining_seconds": 0}


def test_a_passed_window_has_no_seconds_left_and_close_ends_the_test(ports):
    ports.service_requests.records[SR].correction_deadline = times.iso(datetime.now(UTC) - timedelta(seconds=5))
    ports.service_requests.records[SR].task_token = "token"
    assert lifecycle.correction_window(SR, ports) == {"remaining_seconds": 0}

    lifecycle.close(SR, ports)

    stored = ports.service_requests.get(SR)
    assert stored.workflow is WorkflowState.CLOSED and stored.closed_at and stored.task_token is None


def test_the_wait_keeps_its_task_token_with_its_phase(ports):
    lifecycle.await_lab_event(SR, "correction", "token-1", ports)
    stored = ports.service_requests.get(SR)
    assert (stored.task_token, stored.token_phase, stored.workflow) == (
        "token-1",
        TokenPhase.CORRECTION,
        WorkflowState.AWAITING_CORRECTION,
    )


def test_a_report_is_posted_once_as_the_lab_wrote_it(ports):
    body = {"status": "final", "observations": [{"code": "HDL", "value_numeric": 185}]}
    ports.reports.put(SR, "rep-1", body, ReportKind.FINAL)
    client = FakePartnerClient()

    assert lifecycle.submit_diagnostic_report(client, SR, "rep-1", ports) == {"report_id": "rep-1", "repeated": False}
    assert lifecycle.submit_diagnostic_report(client, SR, "rep-1", ports) == {"report_id": "rep-1", "repeated": True}

    assert client.reports == [(SR, body)]
    [published] = ports.bus.of("service_request.report_submitted")
    assert (published["report_status"], published["observation_count"]) == ("final", 1)
    assert ports.reports.get(SR, "rep-1").outbox is None
    with pytest.raises(ServiceRequestMissing):
        lifecycle.submit_diagnostic_report(client, SR, "rep-unknown", ports)


def test_a_failure_is_recorded_published_and_capped(ports):
    lifecycle.record_failure(SR, "WhoopRequestRejected", "x" * 5000, ports)
    stored = ports.service_requests.get(SR)
    assert stored.workflow is WorkflowState.FAILED
    assert stored.failure["error"] == "WhoopRequestRejected" and len(stored.failure["cause"]) == 1000

    lifecycle.record_failure("sr-unknown", "States.Runtime", None, ports)  # nothing stored: still published
    assert [detail["requisition_id"] for detail in ports.bus.of("service_request.failed")] == ["req-1", None]
    assert "sr-unknown" not in ports.service_requests.records


def test_steps_are_found_by_action_and_an_unknown_one_is_refused(ports):
    with pytest.raises(lifecycle.UnknownAction, match="reticulate"):
        lifecycle.run_step(FakePartnerClient(), {"action": "reticulate", "service_request_id": SR})
    with pytest.raises(ServiceRequestMissing):
        lifecycle.set_status(FakePartnerClient(), "sr-unknown", "ORDER_CONFIRMED", ports=ports)
