"""requisition_processor: partner events from the queue through its real handler.

The stack accepts LIPID_PANEL and CBC (AcceptedTestCodes); every order here also holds
HBA1C, which the lab does not offer, so its execution reports ORDER_ISSUE to WHOOP.
"""

from __future__ import annotations

import copy
import json
import uuid

from integration_harness import SAMPLE_REQUISITION_ID, SAMPLE_REVIEW_ID, load_event
from local.stack import wait_until

CODES = ["LIPID_PANEL", "CBC", "HBA1C"]


def requisition_event(requisition_id: str) -> dict:
    return load_event("sqs_requisition_created.json", **{SAMPLE_REQUISITION_ID: requisition_id})


def process(bridge, event: dict) -> dict:
    return bridge.invoke("RequisitionProcessorFunction", event)


def statuses_at_whoop(bridge, requisition: dict) -> dict[str, list[str]]:
    return {
        sr["code"]: [entry["status"] for entry in bridge.emulator.status_history(sr["id"])]
        for sr in requisition["service_requests"]
    }


def settled(bridge, requisition: dict) -> dict[str, list[str]]:
    """WHOOP's status history per code, once every execution has sent its first status."""
    return wait_until(
        lambda: (history := statuses_at_whoop(bridge, requisition)) and all(history.values()) and history,
        20,
        what="every service request to reach WHOOP",
    )


def listed_requisition_ids(bridge) -> list[str]:
    status, body, _ = bridge.lab_api(load_event("lab_api_list_requisitions.json"))
    assert status == 200
    ids: list[str] = []
    while True:
        ids += [requisition["id"] for requisition in body["requisitions"]]
        if not body["next_token"]:
            return ids
        event = load_event("lab_api_list_requisitions.json")
        event["queryStringParameters"]["next_token"] = body["next_token"]
        status, body, _ = bridge.lab_api(event)
        assert status == 200


def test_new_order_is_stored_and_each_test_gets_its_execution(bridge):
    requisition = bridge.emulator.create_requisition(CODES)
    ids = {sr["code"]: sr["id"] for sr in requisition["service_requests"]}

    answer = process(bridge, requisition_event(requisition["id"]))

    assert answer == {"batchItemFailures": []}
    stored = bridge.requisition_item(requisition["id"])
    assert stored["outcome"] == "received"
    assert stored["service_request_ids"] == [sr["id"] for sr in requisition["service_requests"]]
    decisions = {code: bridge.service_request_item(sr_id)["decision"] for code, sr_id in ids.items()}
    assert decisions == {"LIPID_PANEL": "confirm", "CBC": "confirm", "HBA1C": "reject"}
    names = sorted(execution["name"] for execution in bridge.executions() if execution["name"] in ids.values())
    assert names == sorted(ids.values())

    history = settled(bridge, requisition)
    assert history == {"LIPID_PANEL": ["ORDER_CONFIRMED"], "CBC": ["ORDER_CONFIRMED"], "HBA1C": ["ORDER_ISSUE"]}
    issue = bridge.emulator.status_history(ids["HBA1C"])[0]
    assert "HBA1C" in issue["reason"]
    rejected = bridge.wait_for_workflow(ids["HBA1C"], "closed")
    assert rejected["task_business_status"] == "ORDER_ISSUE"
    assert [entry["task_business_status"] for entry in rejected["history"]] == ["ORDER_ISSUE"]
    assert len(bridge.published("requisition.received", requisition_id=requisition["id"])) == 1


def test_the_same_event_again_changes_nothing(bridge):
    requisition = bridge.emulator.create_requisition(CODES)
    event = requisition_event(requisition["id"])
    assert process(bridge, event) == {"batchItemFailures": []}
    first = settled(bridge, requisition)
    executions = len(bridge.executions())

    redelivered = copy.deepcopy(event)
    redelivered["Records"][0]["messageId"] = str(uuid.uuid4())
    redelivered["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    assert process(bridge, redelivered) == {"batchItemFailures": []}

    assert listed_requisition_ids(bridge).count(requisition["id"]) == 1
    assert len(bridge.executions()) == executions
    assert statuses_at_whoop(bridge, requisition) == first
    assert len(bridge.emulator.calls_to("GET", f"/requisition/{requisition['id']}$")) == 1
    assert len(bridge.published("requisition.received", requisition_id=requisition["id"])) == 1


def test_requisition_whoop_does_not_know_is_recorded_not_found_and_not_retried(bridge):
    requisition_id = str(uuid.uuid4())

    answer = process(bridge, requisition_event(requisition_id))

    assert answer == {"batchItemFailures": []}
    assert bridge.requisition_item(requisition_id)["outcome"] == "not_found"
    status, body, _ = bridge.lab_api(
        load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: requisition_id})
    )
    assert status == 404
    assert body["error"] == "not_found"
    assert bridge.published("requisition.unavailable", requisition_id=requisition_id)[0]["outcome"] == "not_found"


def test_message_that_is_not_json_is_dropped_not_retried(bridge):
    event = requisition_event(str(uuid.uuid4()))
    event["Records"][0]["body"] = "lab_requisition.created 0f8b6c2e"

    assert process(bridge, event) == {"batchItemFailures": []}


def test_json_message_without_the_event_fields_is_dropped_as_malformed(bridge):
    event = requisition_event(str(uuid.uuid4()))
    event["Records"][0]["body"] = json.dumps({"detail": "not a partner event"})
    good = requisition_event(str(uuid.uuid4()))["Records"][0]
    event["Records"].append({**good, "messageId": str(uuid.uuid4())})

    assert process(bridge, event) == {"batchItemFailures": []}


def test_whoop_server_error_returns_only_that_record_for_retry_and_loses_nothing(bridge):
    failing = bridge.emulator.create_requisition(CODES)
    fine_id = str(uuid.uuid4())  # unknown to WHOOP: processed (not_found) in the same batch
    bridge.emulator.inject_fault("GET", f"/requisition/{failing['id']}$", status=500, count=10)
    event = requisition_event(failing["id"])
    event["Records"].append({**requisition_event(fine_id)["Records"][0], "messageId": str(uuid.uuid4())})
    failing_message_id = event["Records"][0]["messageId"]

    answer = process(bridge, event)

    assert answer == {"batchItemFailures": [{"itemIdentifier": failing_message_id}]}
    assert bridge.requisition_item(failing["id"]) is None
    assert bridge.requisition_item(fine_id)["outcome"] == "not_found"
    # The client retried the transient 500 before giving the message back to the queue.
    assert len(bridge.emulator.calls_to("GET", f"/requisition/{failing['id']}$")) > 1

    bridge.emulator.clear_faults()
    assert process(bridge, requisition_event(failing["id"])) == {"batchItemFailures": []}
    assert bridge.requisition_item(failing["id"])["outcome"] == "received"


def test_clinical_report_review_is_listed_as_pending_for_the_lab(bridge):
    review_id = str(uuid.uuid4())
    event = load_event("sqs_clinical_report_review_requested.json", **{SAMPLE_REVIEW_ID: review_id})

    assert process(bridge, event) == {"batchItemFailures": []}

    status, body, _ = bridge.lab_api(load_event("lab_api_clinical_report_reviews.json"))
    assert status == 200
    reviews = {review["id"]: review for review in body["clinical_report_reviews"]}
    assert reviews[review_id]["status"] == "pending"
    assert reviews[review_id]["details"] is None  # ClinicalReportReviewPath is off by default
    assert len(bridge.published("clinical_report_review.requested", review_id=review_id)) == 1

    # WHOOP retries the webhook: still one review.
    assert process(bridge, event) == {"batchItemFailures": []}
    status, body, _ = bridge.lab_api(load_event("lab_api_clinical_report_reviews.json"))
    assert [review["id"] for review in body["clinical_report_reviews"]].count(review_id) == 1
