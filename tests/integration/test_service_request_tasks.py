"""service_request_tasks: the state machine's steps, through the real handler, with the
payloads the ASL passes (events/sfn_*.json).

Each order here is stored as intake stores it but has no execution, so only the test
drives its steps; each step must be safe to run twice (Step Functions retries).
"""

from __future__ import annotations

import json
from unittest import mock

import pytest

from integration_harness import ROOT, SAMPLE_REPORT_ID, SAMPLE_REQUISITION_ID, SAMPLE_SERVICE_REQUEST_ID, load_event
from local.stack import HandlerError


@pytest.fixture
def order(bridge) -> dict:
    return bridge.store_order(["LIPID_PANEL"])


@pytest.fixture
def service_request_id(order) -> str:
    return order["service_requests"][0]["id"]


def step(name: str, service_request_id: str) -> dict:
    return load_event(name, **{SAMPLE_SERVICE_REQUEST_ID: service_request_id})


def status_patches(bridge, service_request_id: str) -> list[dict]:
    return bridge.emulator.calls_to("PATCH", f"/service-request/{service_request_id}/status$")


def lab_view(bridge, requisition_id: str) -> tuple[dict, str]:
    status, body, text = bridge.lab_api(
        load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: requisition_id})
    )
    assert status == 200
    return body, text


def test_set_status_sends_order_confirmed_once_and_keeps_it_in_the_history(bridge, order, service_request_id):
    event = step("sfn_set_status_order_confirmed.json", service_request_id)

    assert bridge.tasks(event) == {"task_business_status": "ORDER_CONFIRMED", "repeated": False}

    assert [entry["status"] for entry in bridge.emulator.status_history(service_request_id)] == ["ORDER_CONFIRMED"]
    stored = bridge.service_request_item(service_request_id)
    assert stored["task_business_status"] == "ORDER_CONFIRMED"
    assert [(entry["task_business_status"], entry["event_id"]) for entry in stored["history"]] == [
        ("ORDER_CONFIRMED", "ORDER_CONFIRMED")
    ]
    assert stored["history"][0]["at"]
    view, _ = lab_view(bridge, order["id"])
    assert [entry["task_business_status"] for entry in view["service_requests"][0]["history"]] == ["ORDER_CONFIRMED"]
    assert len(bridge.published("service_request.status_changed", service_request_id=service_request_id)) == 1

    # Step Functions retries the step (same event): WHOOP hears nothing more.
    assert bridge.tasks(event) == {"task_business_status": "ORDER_CONFIRMED", "repeated": True}
    assert len(status_patches(bridge, service_request_id)) == 1
    assert len(bridge.service_request_item(service_request_id)["history"]) == 1
    assert len(bridge.published("service_request.status_changed", service_request_id=service_request_id)) == 1


def test_set_status_that_whoop_cannot_take_now_fails_as_retryable_and_records_nothing(bridge, service_request_id):
    bridge.emulator.inject_fault("PATCH", f"/service-request/{service_request_id}/status$", status=503, count=10)
    event = step("sfn_set_status_order_confirmed.json", service_request_id)

    with pytest.raises(HandlerError) as raised:
        bridge.tasks(event)

    # The ASL's ConfirmOrder retries exactly this error name, with backoff.
    assert raised.value.error_type == "WhoopTransientError"
    (retry,) = json.loads((ROOT / "statemachines" / "service_request.asl.json").read_text())["States"]["ConfirmOrder"][
        "Retry"
    ]
    assert raised.value.error_type in retry["ErrorEquals"]
    assert bridge.service_request_item(service_request_id)["history"] == []
    bridge.emulator.clear_faults()
    assert bridge.tasks(event)["repeated"] is False
    assert [entry["status"] for entry in bridge.emulator.status_history(service_request_id)] == ["ORDER_CONFIRMED"]


def test_status_event_refused_by_eventbridge_is_published_when_the_step_is_retried(bridge, service_request_id):
    from whoop_bridge import aws

    events_client = aws.client("events")
    refused = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}
    event = step("sfn_set_status_order_confirmed.json", service_request_id)
    with mock.patch.object(events_client, "put_events", return_value=refused):
        with pytest.raises(HandlerError) as raised:
            bridge.tasks(event)
    assert raised.value.error_type == "PublishFailed"

    bridge.tasks(event)  # the retry

    assert len(bridge.published("service_request.status_changed", service_request_id=service_request_id)) == 1


def test_one_refused_domain_event_does_not_fail_the_test_for_good(bridge):
    from whoop_bridge import aws

    events_client = aws.client("events")
    put_events = events_client.put_events
    refusals: list[str] = []

    def refuse_first_status_change(**request):
        detail_type = request["Entries"][0]["DetailType"]
        if detail_type == "service_request.status_changed" and not refusals:
            refusals.append(detail_type)
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}
        return put_events(**request)

    requisition = bridge.emulator.create_requisition(["LIPID_PANEL"])
    service_request_id = requisition["service_requests"][0]["id"]
    with mock.patch.object(events_client, "put_events", side_effect=refuse_first_status_change):
        event = load_event("sqs_requisition_created.json", **{SAMPLE_REQUISITION_ID: requisition["id"]})
        assert bridge.invoke("RequisitionProcessorFunction", event) == {"batchItemFailures": []}
        settled = bridge.wait_for_workflow(service_request_id, "awaiting_lab_event", "failed")

    assert refusals
    assert [entry["status"] for entry in bridge.emulator.status_history(service_request_id)] == ["ORDER_CONFIRMED"]
    assert settled["workflow"] == "awaiting_lab_event", settled.get("failure")


def test_await_lab_event_keeps_the_token_where_lab_api_finds_it_but_never_shows_it(bridge, order, service_request_id):
    bridge.tasks(step("sfn_set_status_order_confirmed.json", service_request_id))
    event = step("sfn_await_lab_event.json", service_request_id)

    assert bridge.tasks(event) is None

    stored = bridge.service_request_item(service_request_id)
    assert stored["task_token"] == event["task_token"]
    assert stored["workflow"] == "awaiting_lab_event"
    assert stored["token_phase"] == "lab_event"
    view, text = lab_view(bridge, order["id"])
    assert event["task_token"] not in text
    assert "task_token" not in text
    service_request = view["service_requests"][0]
    assert service_request["workflow"] == "awaiting_lab_event"
    assert "APPOINTMENT_ATTENDED" in service_request["next_statuses"]
    assert service_request["accepts_results"] == ["partial", "preliminary", "final"]


def test_submit_diagnostic_report_posts_the_stored_report_once(bridge, order, service_request_id):
    from whoop_bridge.models.diagnostic_report import ReportKind
    from whoop_bridge.store import report_store

    report = json.loads(load_event("lab_api_results_final.json")["body"])
    report_store.put(service_request_id, SAMPLE_REPORT_ID, report, ReportKind.FINAL)
    event = step("sfn_submit_diagnostic_report.json", service_request_id)

    assert bridge.tasks(event) == {"report_id": SAMPLE_REPORT_ID, "repeated": False}

    received = bridge.emulator.reports(service_request_id)
    assert len(received) == 1
    # As the lab wrote it: 185 stays an integer, nothing added or dropped.
    assert json.dumps(received[0], sort_keys=True) == json.dumps(report, sort_keys=True)
    view, _ = lab_view(bridge, order["id"])
    (listed,) = view["service_requests"][0]["diagnostic_reports"]
    assert listed["report_id"] == SAMPLE_REPORT_ID
    assert listed["status"] == "final"
    assert listed["observation_count"] == 2
    assert listed["submitted_at"]

    assert bridge.tasks(event) == {"report_id": SAMPLE_REPORT_ID, "repeated": True}
    assert len(bridge.emulator.reports(service_request_id)) == 1
    assert len(bridge.emulator.calls_to("POST", f"/service-request/{service_request_id}/results$")) == 1
    assert len(bridge.published("service_request.report_submitted", service_request_id=service_request_id)) == 1


def test_correction_window_is_closed_before_final_results_and_open_after(bridge, service_request_id):
    event = step("sfn_correction_window.json", service_request_id)

    assert bridge.tasks(event) == {"remaining_seconds": 0}

    bridge.tasks(step("sfn_set_status_order_confirmed.json", service_request_id))
    final = {
        **step("sfn_set_status_order_confirmed.json", service_request_id),
        "task_business_status": "FULL_RESULTS_READY",
    }
    final["event_id"] = "5a0c3e81-7d2b-4f96-b1e4-8c6a9d2f0e37"
    bridge.tasks(final)
    remaining = bridge.tasks(event)["remaining_seconds"]
    # CorrectionWindowDays defaults to 30.
    assert 30 * 86400 - 60 <= remaining <= 30 * 86400
    assert bridge.service_request_item(service_request_id)["correction_deadline"]


def test_record_failure_keeps_why_the_test_stopped(bridge, order, service_request_id):
    event = step("sfn_record_failure.json", service_request_id)

    assert bridge.tasks(event) is None

    stored = bridge.service_request_item(service_request_id)
    assert stored["workflow"] == "failed"
    assert stored["failure"]["error"] == "WhoopRequestRejected"
    assert stored["failure"]["cause"] == event["cause"]
    assert stored["failure"]["at"]
    view, _ = lab_view(bridge, order["id"])
    service_request = view["service_requests"][0]
    assert service_request["failure"]["error"] == "WhoopRequestRejected"
    assert service_request["next_statuses"] == []
    assert service_request["accepts_results"] == []
    assert view["open"] is False
    assert (
        bridge.published("service_request.failed", service_request_id=service_request_id)[0]["error"]
        == "WhoopRequestRejected"
    )


def test_unknown_action_raises_unknown_action(bridge, service_request_id):
    module, context = bridge.handler("ServiceRequestTasksFunction")
    event = {**step("sfn_correction_window.json", service_request_id), "action": "reticulate_splines"}

    with pytest.raises(module.UnknownAction, match="reticulate_splines"):
        module.handler(event, context)
    with pytest.raises(HandlerError) as raised:
        bridge.tasks(event)
    assert raised.value.error_type == "UnknownAction"
    assert bridge.emulator.calls_to("*", f"/service-request/{service_request_id}") == []
