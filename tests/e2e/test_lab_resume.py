"""Recovering without leaving the API, end to end over HTTP: WHOOP is down past every retry
of a step, the test's execution fails, WHOOP heals, the operator POSTs resume, and the test
reaches its next status at WHOOP exactly once and goes on to its results (the report sent
once). Also a requisition that failed intake, resumed. Step Functions' retry waits run 500
times faster here (the attempts are as many), and the WHOOP client's backoff is 10 ms.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests

from local.stack import wait_until
from tests.e2e.conftest import running_harness

REPORT = {
    "status": "final",
    "observations": [{"code": "TOTAL_CHOLESTEROL", "value_numeric": 185, "unit": "mg/dL", "status": "final"}],
}
# Every attempt of a step fails while this is pending (9 attempts, 4 calls each).
OUTAGE_CALLS = 1000
FETCH_RETRY_SECONDS = 3


@pytest.fixture(scope="module")
def _module_bridge() -> Any:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WHOOP_BACKOFF_SECONDS", "0.01")
        yield from running_harness(
            {
                "AcceptedTestCodes": "LIPID_PANEL,CBC,HBA1C",
                "CorrectionWindowDays": "1",
                "RequisitionFetchRetrySeconds": str(FETCH_RETRY_SECONDS),
            },
            retry_wait_scale=0.002,
        )


def _service_request(bridge, requisition_id: str, sr_id: str) -> dict[str, Any]:
    found = bridge.lab.requisition(requisition_id) or {}
    return next(sr for sr in found.get("service_requests", []) if sr["id"] == sr_id)


def _wait(bridge, requisition_id: str, sr_id: str, predicate: Any, what: str, timeout: float = 90) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        sr = _service_request(bridge, requisition_id, sr_id)
        return sr if predicate(sr) else None

    return wait_until(found, timeout=timeout, what=what)


def _status_calls(bridge, sr_id: str) -> list[dict[str, Any]]:
    return bridge.emulator.calls_to("PATCH", f"/service-request/{sr_id}/status$")


def _execution_names(bridge) -> list[str]:
    client = boto3.client("stepfunctions")
    arn = bridge.stack.output("ServiceRequestStateMachine")
    return [execution["name"] for execution in client.list_executions(stateMachineArn=arn)["executions"]]


def _resume(bridge, path: str) -> requests.Response:
    return bridge.post(f"{path}/resume", {})


def test_a_test_failed_by_a_whoop_outage_resumes_and_reaches_its_next_status_exactly_once(bridge):
    requisition = bridge.new_requisition(["CBC"])
    sr_id = bridge.wait_confirmed(requisition["id"], 1)["service_requests"][0]["id"]
    bridge.emulator.inject_fault("PATCH", f"/service-request/{sr_id}/status$", status=503, count=OUTAGE_CALLS)

    assert bridge.post(f"/lab/service-requests/{sr_id}/events", {"status": "APPOINTMENT_ATTENDED"}).status_code == 202
    failed = _wait(bridge, requisition["id"], sr_id, lambda sr: sr["workflow"] == "failed", "failed past every retry")

    assert failed["failure"]["error"] == "WhoopTransientError"
    refused = [call["status"] for call in _status_calls(bridge, sr_id)][1:]
    assert len(refused) >= 9 and set(refused) == {503}, refused  # every attempt of the state machine
    late = bridge.post(f"/lab/service-requests/{sr_id}/events", {"status": "APPOINTMENT_ATTENDED"})
    assert late.status_code == 409 and "failed" in late.json()["message"]

    bridge.emulator.clear_faults()  # WHOOP is back
    before = len(_status_calls(bridge, sr_id))
    answer = _resume(bridge, f"/lab/service-requests/{sr_id}")

    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "service_request_id": sr_id,
        "execution": f"{sr_id}-resume-1",
        "workflow": "starting",
        "resumes": 1,
        "resending": ["APPOINTMENT_ATTENDED"],
    }
    again = _resume(bridge, f"/lab/service-requests/{sr_id}")  # while the first runs
    assert again.status_code == 409 and again.json()["error"] == "not_resumable", again.text
    attended = _wait(
        bridge,
        requisition["id"],
        sr_id,
        lambda sr: sr["task_business_status"] == "APPOINTMENT_ATTENDED" and sr["workflow"] == "awaiting_lab_event",
        "attended after the resume",
    )
    time.sleep(1.0)  # a second send would have arrived by now

    assert [call["status"] for call in _status_calls(bridge, sr_id)[before:]] == [200]
    assert [entry["status"] for entry in bridge.emulator.status_history(sr_id)] == [
        "ORDER_CONFIRMED",
        "APPOINTMENT_ATTENDED",
    ]
    assert attended["failure"] is None
    [resumed] = [entry for entry in attended["history"] if entry.get("event") == "resumed"]
    assert resumed["execution"] == f"{sr_id}-resume-1" and resumed["failure"]["error"] == "WhoopTransientError"
    names = _execution_names(bridge)
    assert names.count(sr_id) == 1 and names.count(f"{sr_id}-resume-1") == 1
    assert not any(name.startswith(f"{sr_id}-resume-2") for name in names)

    # The order's timeline shows the failure and the resume, as JSON and in the picture.
    timeline_url = f"{bridge.stack.url}/lab/requisitions/{requisition['id']}/timeline"
    (test,) = requests.get(timeline_url, timeout=30).json()["service_requests"]
    assert [(entry["kind"], entry["label"]) for entry in test["entries"]] == [
        ("status", "ORDER_CONFIRMED"),
        ("failure", "WhoopTransientError"),
        ("resume", "resumed"),
        ("status", "APPOINTMENT_ATTENDED"),
    ]
    picture = requests.get(timeline_url, headers={"Accept": "image/svg+xml"}, timeout=30).text
    assert picture.index('class="entry failure"') < picture.index('class="entry resume"')
    assert ">WhoopTransientError<" in picture and ">resumed<" in picture

    # The lab goes on to its results through the new execution.
    assert bridge.post(f"/lab/service-requests/{sr_id}/results", REPORT).status_code == 202
    done = _wait(bridge, requisition["id"], sr_id, lambda sr: sr["workflow"] == "awaiting_correction", "final")
    assert done["task_business_status"] == "FULL_RESULTS_READY"
    assert bridge.emulator.reports(sr_id) == [REPORT]
    assert len(bridge.emulator.calls_to("POST", f"/service-request/{sr_id}/results$")) == 1
    assert bridge.domain_events.published("service_request.failed", service_request_id=sr_id)


def test_a_report_whoop_took_is_never_sent_again_and_of_two_concurrent_resumes_one_starts(bridge):
    requisition = bridge.new_requisition(["LIPID_PANEL"])
    sr_id = bridge.wait_confirmed(requisition["id"], 1)["service_requests"][0]["id"]
    # WHOOP takes the report, then is down for the status that follows it.
    bridge.emulator.inject_fault("PATCH", f"/service-request/{sr_id}/status$", status=503, count=OUTAGE_CALLS)

    assert bridge.post(f"/lab/service-requests/{sr_id}/results", REPORT).status_code == 202
    _wait(bridge, requisition["id"], sr_id, lambda sr: sr["workflow"] == "failed", "failed past every retry")
    assert bridge.emulator.reports(sr_id) == [REPORT]

    bridge.emulator.clear_faults()
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: _resume(bridge, f"/lab/service-requests/{sr_id}"), range(2)))

    assert sorted(answer.status_code for answer in answers) == [202, 409], [a.text for a in answers]
    accepted = next(answer for answer in answers if answer.status_code == 202).json()
    assert accepted["resending"] == ["FULL_RESULTS_READY"]
    refused = next(answer for answer in answers if answer.status_code == 409).json()
    assert refused["error"] == "not_resumable" and refused["state"] != "failed"
    done = _wait(bridge, requisition["id"], sr_id, lambda sr: sr["workflow"] == "awaiting_correction", "final")
    time.sleep(1.0)

    assert done["task_business_status"] == "FULL_RESULTS_READY"
    assert bridge.emulator.reports(sr_id) == [REPORT]
    assert len(bridge.emulator.calls_to("POST", f"/service-request/{sr_id}/results$")) == 1
    assert [entry["status"] for entry in bridge.emulator.status_history(sr_id)] == [
        "ORDER_CONFIRMED",
        "FULL_RESULTS_READY",
    ]
    names = _execution_names(bridge)
    assert [name for name in names if name.startswith(f"{sr_id}-resume-")] == [f"{sr_id}-resume-1"]


def test_resuming_a_test_that_did_not_fail_is_a_409_naming_its_state_and_an_unknown_one_a_404(bridge):
    requisition = bridge.new_requisition(["HBA1C"])
    sr_id = bridge.wait_confirmed(requisition["id"], 1)["service_requests"][0]["id"]

    answer = _resume(bridge, f"/lab/service-requests/{sr_id}")
    unknown = _resume(bridge, "/lab/service-requests/00000000-0000-4000-8000-00000000dead")
    with_options = bridge.post(f"/lab/service-requests/{sr_id}/resume", {"force": True})

    assert answer.status_code == 409
    assert answer.json()["state"] == "awaiting_lab_event" and "awaiting_lab_event" in answer.json()["message"]
    assert unknown.status_code == 404
    assert with_options.status_code == 400
    assert f"{sr_id}-resume-1" not in _execution_names(bridge)
    assert [entry["status"] for entry in bridge.emulator.status_history(sr_id)] == ["ORDER_CONFIRMED"]


def test_a_requisition_that_failed_intake_is_resumed_once_and_its_tests_confirmed_once(bridge):
    requisition = bridge.emulator.create_requisition(["LIPID_PANEL", "CBC"])
    requisition_id = requisition["id"]
    bridge.emulator.inject_fault("GET", f"/requisition/{requisition_id}$", status=404, count=OUTAGE_CALLS)
    assert (
        bridge.emulator.send_partner_webhook("lab_requisition.created", requisition_id, url=bridge.webhook_url) == 204
    )
    table = boto3.resource("dynamodb").Table(bridge.stack.output("LabTable"))

    def outcome() -> str | None:
        return table.get_item(Key={"pk": f"REQ#{requisition_id}", "sk": "REQ"}).get("Item", {}).get("outcome")

    wait_until(lambda: outcome() == "not_found", timeout=FETCH_RETRY_SECONDS + 20, what="not_found")
    bridge.emulator.clear_faults()

    answer = _resume(bridge, f"/lab/requisitions/{requisition_id}")
    again = _resume(bridge, f"/lab/requisitions/{requisition_id}")

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["requisition_id"], body["outcome"], body["resumed_from"]) == (
        requisition_id,
        "awaiting_whoop",
        "not_found",
    )
    assert again.status_code == 409 and again.json()["state"] in ("awaiting_whoop", "received")
    found = bridge.wait_confirmed(requisition_id, 2)
    time.sleep(1.0)
    assert {sr["task_business_status"] for sr in found["service_requests"]} == {"ORDER_CONFIRMED"}
    for sr in requisition["service_requests"]:
        assert [entry["status"] for entry in bridge.emulator.status_history(sr["id"])] == ["ORDER_CONFIRMED"]
    received = _resume(bridge, f"/lab/requisitions/{requisition_id}")
    assert received.status_code == 409 and received.json()["state"] == "received"
    assert _resume(bridge, "/lab/requisitions/00000000-0000-4000-8000-00000000beef").status_code == 404


def test_the_served_openapi_document_lists_both_resume_routes(bridge):
    document = requests.get(f"{bridge.stack.url}/lab/openapi.json", timeout=10).json()

    for path, operation_id in (
        ("/lab/service-requests/{service_request_id}/resume", "resumeServiceRequest"),
        ("/lab/requisitions/{requisition_id}/resume", "resumeRequisition"),
    ):
        operation = document["paths"][path]["post"]
        assert operation["operationId"] == operation_id
        assert {"202", "404", "409"} <= set(operation["responses"])
        assert "security" not in operation  # the document's SigV4 applies
    assert document["security"] == [{"sigv4": []}]
