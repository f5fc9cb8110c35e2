"""The lab pipeline end to end, over HTTP, as WHOOP and a lab's LIS see it.

WHOOP's read lag is retried for 6 s here (RequisitionFetchRetrySeconds; 15 minutes by
default): fetches after 1, 3 and 6 s.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
import requests

from local.stack import wait_until
from tests.e2e.conftest import running_harness
from whoop_bridge.whoop.signatures import sign_partner

READ_LAG_SECONDS = 6


@pytest.fixture(scope="module")
def _module_bridge() -> Any:
    yield from running_harness(
        {
            "AcceptedTestCodes": "LIPID_PANEL,CBC,HBA1C",
            "CorrectionWindowDays": "1",
            "RequisitionFetchRetrySeconds": str(READ_LAG_SECONDS),
        }
    )


REPORT = {
    "status": "final",
    "observations": [
        {"code": "TOTAL_CHOLESTEROL", "value_numeric": 185, "unit": "mg/dL", "status": "final"},
        {"code": "BLOOD_TYPE", "value_text": "A+", "status": "final"},
    ],
}


def test_the_same_webhook_five_times_changes_nothing(bridge):
    requisition = bridge.emulator.create_requisition(["LIPID_PANEL", "CBC"])
    for _ in range(5):
        assert (
            bridge.emulator.send_partner_webhook("lab_requisition.created", requisition["id"], url=bridge.webhook_url)
            == 204
        )

    found = bridge.wait_confirmed(requisition["id"], 2)
    time.sleep(1.5)  # let every duplicate reach the processor before counting

    listed = requests.get(f"{bridge.stack.url}/lab/requisitions", timeout=10).json()["requisitions"]
    assert [item["id"] for item in listed].count(requisition["id"]) == 1
    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=bridge.stack.output("ServiceRequestStateMachine")
    )
    names = [execution["name"] for execution in executions["executions"]]
    for sr in found["service_requests"]:
        assert names.count(sr["id"]) == 1
        confirmations = [
            entry for entry in bridge.emulator.status_history(sr["id"]) if entry["status"] == "ORDER_CONFIRMED"
        ]
        assert len(confirmations) == 1
    fetches = bridge.emulator.calls_to("GET", f"/requisition/{requisition['id']}$")
    assert len(fetches) == 1


def test_a_forged_signature_is_refused_and_nothing_is_stored(bridge):
    requisition = bridge.emulator.create_requisition(["CBC"])
    body = json.dumps({"event_type": "lab_requisition.created", "resource_id": requisition["id"]})

    forged = requests.post(
        bridge.webhook_url,
        data=body,
        headers={"WHOOP-Signed": sign_partner(body.encode(), "not-the-secret")},
        timeout=10,
    )
    unsigned = requests.post(bridge.webhook_url, data=body, timeout=10)
    truncated = requests.post(bridge.webhook_url, data=body, headers={"WHOOP-Signed": "abc123"}, timeout=10)

    assert (forged.status_code, unsigned.status_code, truncated.status_code) == (401, 401, 401)
    time.sleep(1.0)
    assert bridge.lab.requisition(requisition["id"]) is None
    assert bridge.emulator.calls_to("GET", f"/requisition/{requisition['id']}$") == []
    assert "partner webhook refused: bad signature" in bridge.log.getvalue()


def test_results_reach_whoop_exactly_once_when_whoop_fails_twice(bridge):
    requisition = bridge.new_requisition(["LIPID_PANEL"])
    sr_id = bridge.wait_confirmed(requisition["id"], 1)["service_requests"][0]["id"]
    bridge.emulator.inject_fault("POST", f"/service-request/{sr_id}/results$", status=500, count=2)

    answer = bridge.post(f"/lab/service-requests/{sr_id}/results", REPORT)

    assert answer.status_code == 202
    done = bridge.wait_service_request(
        requisition["id"], sr_id, lambda sr: sr["workflow"] == "awaiting_correction", "final results"
    )
    assert done["task_business_status"] == "FULL_RESULTS_READY"
    assert bridge.emulator.reports(sr_id) == [REPORT]
    statuses = [call["status"] for call in bridge.emulator.calls_to("POST", f"/service-request/{sr_id}/results$")]
    assert statuses == [500, 500, 201]


def test_a_forbidden_transition_is_a_409_and_the_test_carries_on(bridge):
    requisition = bridge.new_requisition(["CBC"])
    sr_id = bridge.wait_confirmed(requisition["id"], 1)["service_requests"][0]["id"]
    assert bridge.post(f"/lab/service-requests/{sr_id}/events", {"status": "APPOINTMENT_ATTENDED"}).status_code == 202
    bridge.wait_service_request(
        requisition["id"],
        sr_id,
        lambda sr: sr["task_business_status"] == "APPOINTMENT_ATTENDED" and sr["workflow"] == "awaiting_lab_event",
        "attended",
    )

    again = bridge.post(f"/lab/service-requests/{sr_id}/events", {"status": "APPOINTMENT_ATTENDED"})
    backwards = bridge.post(f"/lab/service-requests/{sr_id}/events", {"status": "ORDER_CONFIRMED"})
    bare_results = bridge.post(f"/lab/service-requests/{sr_id}/events", {"status": "FULL_RESULTS_READY"})
    correction_first = bridge.post(f"/lab/service-requests/{sr_id}/results", {**REPORT, "status": "amended"})

    for answer in (again, backwards, bare_results, correction_first):
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "transition_forbidden"
    assert again.json()["allowed_next_statuses"] == ["APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"]

    assert bridge.post(f"/lab/service-requests/{sr_id}/results", REPORT).status_code == 202
    done = bridge.wait_service_request(
        requisition["id"], sr_id, lambda sr: sr["workflow"] == "awaiting_correction", "final"
    )
    assert [entry["task_business_status"] for entry in done["history"]] == [
        "ORDER_CONFIRMED",
        "APPOINTMENT_ATTENDED",
        "FULL_RESULTS_READY",
    ]
    assert [entry["status"] for entry in bridge.emulator.status_history(sr_id)] == [
        "ORDER_CONFIRMED",
        "APPOINTMENT_ATTENDED",
        "FULL_RESULTS_READY",
    ]


def test_an_issue_status_ends_the_test_and_nothing_follows(bridge):
    requisition = bridge.new_requisition(["HBA1C"])
    sr_id = bridge.wait_confirmed(requisition["id"], 1)["service_requests"][0]["id"]

    no_reason = bridge.post(f"/lab/service-requests/{sr_id}/events", {"status": "APPOINTMENT_ISSUE"})
    assert no_reason.status_code == 400
    assert (
        bridge.post(
            f"/lab/service-requests/{sr_id}/events", {"status": "APPOINTMENT_ISSUE", "reason": "Member cancelled."}
        ).status_code
        == 202
    )
    bridge.wait_service_request(requisition["id"], sr_id, lambda sr: sr["workflow"] == "closed", "closed")

    after = bridge.post(f"/lab/service-requests/{sr_id}/results", REPORT)
    assert after.status_code == 409
    assert bridge.emulator.status_history(sr_id)[-1] == {
        **bridge.emulator.status_history(sr_id)[-1],
        "status": "APPOINTMENT_ISSUE",
        "reason": "Member cancelled.",
    }
    assert bridge.emulator.reports(sr_id) == []


def test_an_order_whoop_never_returns_is_fetched_again_for_the_bound_then_recorded_not_found(bridge):
    missing = "00000000-0000-4000-8000-000000000404"
    assert bridge.emulator.send_partner_webhook("lab_requisition.created", missing, url=bridge.webhook_url) == 204
    table = boto3.resource("dynamodb").Table(bridge.stack.output("LabTable"))

    def outcome() -> str | None:
        return table.get_item(Key={"pk": f"REQ#{missing}", "sk": "REQ"}).get("Item", {}).get("outcome")

    wait_until(
        lambda: outcome() == "not_found", timeout=READ_LAG_SECONDS + 15, what="not_found after the read-lag bound"
    )

    fetches = bridge.emulator.calls_to("GET", f"/requisition/{missing}$")
    assert len(fetches) >= 3, len(fetches)
    assert fetches[-1]["time"] - fetches[0]["time"] >= READ_LAG_SECONDS - 1
    assert bridge.lab.requisition(missing) is None
    time.sleep(2.0)  # nothing more after giving up
    assert len(bridge.emulator.calls_to("GET", f"/requisition/{missing}$")) == len(fetches)
    assert [
        event["outcome"] for event in bridge.domain_events.published("requisition.unavailable", requisition_id=missing)
    ] == ["not_found"]


def test_a_404_right_after_whoops_webhook_is_read_lag_and_the_order_is_confirmed(bridge):
    requisition = bridge.emulator.create_requisition(["LIPID_PANEL", "CBC"])
    bridge.emulator.inject_fault("GET", f"requisition/{requisition['id']}", status=404, count=1)
    assert (
        bridge.emulator.send_partner_webhook("lab_requisition.created", requisition["id"], url=bridge.webhook_url)
        == 204
    )

    found = bridge.wait_confirmed(requisition["id"], 2)

    assert {sr["task_business_status"] for sr in found["service_requests"]} == {"ORDER_CONFIRMED"}
    assert [call["status"] for call in bridge.emulator.calls_to("GET", f"/requisition/{requisition['id']}$")] == [
        404,
        200,
    ]
    listed = requests.get(f"{bridge.stack.url}/lab/requisitions", timeout=10).json()["requisitions"]
    assert requisition["id"] in [item["id"] for item in listed]


def test_an_unrecognised_task_business_status_is_kept_and_every_test_confirmed(bridge):
    requisition = bridge.emulator.create_requisition(["LIPID_PANEL", "CBC", "HBA1C"])
    requisition["service_requests"][0]["task_business_status"] = "Specimen collected"
    bridge.emulator.add_requisition(requisition)
    assert (
        bridge.emulator.send_partner_webhook("lab_requisition.created", requisition["id"], url=bridge.webhook_url)
        == 204
    )

    found = bridge.wait_confirmed(requisition["id"], 3)

    by_id = {sr["id"]: sr for sr in found["service_requests"]}
    first = requisition["service_requests"][0]["id"]
    assert by_id[first]["whoop_task_business_status"] == "Specimen collected"
    for sr in requisition["service_requests"]:
        assert by_id[sr["id"]]["task_business_status"] == "ORDER_CONFIRMED"
        assert [entry["status"] for entry in bridge.emulator.status_history(sr["id"])] == ["ORDER_CONFIRMED"]
    assert bridge.emulator.calls_to("PATCH", f"/requisition/{requisition['id']}/status$") == []
    ids = [requisition["id"], *(sr["id"] for sr in requisition["service_requests"])]
    assert [v for v in bridge.emulator.contract_violations() if any(i in v["path"] for i in ids)] == []


def test_a_lab_asks_for_sandbox_test_data_and_gets_the_order_once(bridge):
    answer = bridge.post("/lab/test-data", {"appointment_type": "VIRTUAL"})

    assert answer.status_code == 202, answer.text
    requisition_id = answer.json()["requisition_id"]
    made = bridge.emulator.requisition(requisition_id)
    found = bridge.wait_confirmed(requisition_id, len(made["service_requests"]))
    assert found["appointments"][0]["type"] == "VIRTUAL"
    # WHOOP sends no webhook for it; if it did, nothing would be done twice.
    assert (
        bridge.emulator.send_partner_webhook("lab_requisition.created", requisition_id, url=bridge.webhook_url) == 204
    )
    time.sleep(1.5)
    assert len(bridge.emulator.calls_to("GET", f"/requisition/{requisition_id}$")) == 1
    for sr in made["service_requests"]:
        assert [entry["status"] for entry in bridge.emulator.status_history(sr["id"])] == ["ORDER_CONFIRMED"]


def test_no_patient_field_token_or_secret_in_any_log_line(bridge):
    requisition = bridge.new_requisition(["LIPID_PANEL"])
    sr_id = bridge.wait_confirmed(requisition["id"], 1)["service_requests"][0]["id"]
    assert bridge.post(f"/lab/service-requests/{sr_id}/results", REPORT).status_code == 202
    bridge.wait_service_request(requisition["id"], sr_id, lambda sr: sr["workflow"] == "awaiting_correction", "final")

    logs = bridge.log.getvalue()
    patient = requisition["patient"]
    forbidden = [patient[key] for key in ("first_name", "last_name", "email", "phone", "birth_date")]
    forbidden += [bridge.emulator.client_secret, bridge.emulator.webhook_secret, "TOTAL_CHOLESTEROL"]
    for value in forbidden:
        assert value not in logs, f"{value!r} found in the logs"
    for line in logs.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            assert "task_token" not in record or record["task_token"] == "[REDACTED]"


def test_the_lab_lists_its_orders_by_status_and_since(bridge):
    before = requests.get(f"{bridge.stack.url}/lab/requisitions", timeout=10).json()["requisitions"]
    started = before[0]["received_at"] if before else "2000-01-01T00:00:00Z"
    requisition = bridge.new_requisition(["HBA1C"])
    sr_id = bridge.wait_confirmed(requisition["id"], 1)["service_requests"][0]["id"]
    assert (
        bridge.post(
            f"/lab/service-requests/{sr_id}/events", {"status": "ORDER_ISSUE", "reason": "Unsupported specimen."}
        ).status_code
        == 202
    )
    bridge.wait_service_request(requisition["id"], sr_id, lambda sr: sr["workflow"] == "closed", "closed")

    def listed(**query) -> list[str]:
        answer = requests.get(f"{bridge.stack.url}/lab/requisitions", params=query, timeout=10)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["requisitions"]]

    assert requisition["id"] in listed(status="ORDER_ISSUE")
    assert requisition["id"] in listed(status="closed")
    assert requisition["id"] not in listed(status="open")
    assert requisition["id"] in listed(since=started)
    assert listed(since="2999-01-01T00:00:00+02:00") == []
    bad = requests.get(f"{bridge.stack.url}/lab/requisitions", params={"since": "last tuesday"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["problems"][0]["problem"].startswith("since must be")
    page = requests.get(f"{bridge.stack.url}/lab/requisitions", params={"limit": 1}, timeout=10).json()
    assert len(page["requisitions"]) <= 1 and page["next_token"]
    assert (
        requests.get(
            f"{bridge.stack.url}/lab/requisitions", params={"next_token": page["next_token"]}, timeout=10
        ).status_code
        == 200
    )
