"""requisition_processor: partner events from the queue through its real handler.

The stack accepts LIPID_PANEL and CBC (AcceptedTestCodes); every order here also holds
HBA1C, which the lab does not offer, so its execution reports ORDER_ISSUE to WHOOP.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

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
        event["queryStringParameters"] = {"next_token": body["next_token"]}
        event["multiValueQueryStringParameters"] = {"next_token": [body["next_token"]]}
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


def retry_event(body: dict) -> dict:
    """The SQS event of a message the processor put back on its queue."""
    event = requisition_event(body["resource_id"])
    event["Records"][0]["body"] = json.dumps(body)
    event["Records"][0]["messageId"] = str(uuid.uuid4())
    return event


def delayed_for(bridge, requisition_id: str) -> list[tuple[dict, float]]:
    return [(body, seconds) for body, seconds in bridge.delayed_messages() if body["resource_id"] == requisition_id]


def get_requisition_status(bridge, requisition_id: str) -> int:
    status, _, _ = bridge.lab_api(load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: requisition_id}))
    return status


def test_a_404_is_fetched_again_later_and_the_order_is_not_declared_missing_yet(bridge):
    requisition_id = str(uuid.uuid4())

    assert process(bridge, requisition_event(requisition_id)) == {"batchItemFailures": []}

    stored = bridge.requisition_item(requisition_id)
    assert stored["outcome"] == "awaiting_whoop"
    ((body, seconds),) = delayed_for(bridge, requisition_id)
    assert body == {
        "event_type": "lab_requisition.created",
        "resource_id": requisition_id,
        "not_found_since": stored["not_found_since"],
        "not_found_attempt": 1,
    }
    assert 25 < seconds <= 30  # the first of the doubling delays for the default 15 minutes
    assert get_requisition_status(bridge, requisition_id) == 404
    assert bridge.published("requisition.unavailable", requisition_id=requisition_id) == []

    # WHOOP's webhook again meanwhile: it joins the running wait, no second chain of retries.
    assert process(bridge, requisition_event(requisition_id)) == {"batchItemFailures": []}
    assert len(delayed_for(bridge, requisition_id)) == 1


def test_the_delayed_retry_is_not_taken_for_a_duplicate_and_its_success_shows_the_order(bridge):
    requisition = bridge.emulator.create_requisition(CODES)
    bridge.emulator.inject_fault("GET", f"/requisition/{requisition['id']}$", status=404, count=1)
    assert process(bridge, requisition_event(requisition["id"])) == {"batchItemFailures": []}
    ((body, _),) = delayed_for(bridge, requisition["id"])

    assert process(bridge, retry_event(body)) == {"batchItemFailures": []}

    assert bridge.requisition_item(requisition["id"])["outcome"] == "received"
    assert settled(bridge, requisition) == {
        "LIPID_PANEL": ["ORDER_CONFIRMED"],
        "CBC": ["ORDER_CONFIRMED"],
        "HBA1C": ["ORDER_ISSUE"],
    }
    assert get_requisition_status(bridge, requisition["id"]) == 200
    assert requisition["id"] in listed_requisition_ids(bridge)
    assert len(bridge.published("requisition.received", requisition_id=requisition["id"])) == 1
    # Now a real duplicate (the retry again, or WHOOP's webhook again) changes nothing.
    assert process(bridge, retry_event(body)) == {"batchItemFailures": []}
    assert process(bridge, requisition_event(requisition["id"])) == {"batchItemFailures": []}
    assert len(bridge.emulator.calls_to("GET", f"/requisition/{requisition['id']}$")) == 2
    assert len(delayed_for(bridge, requisition["id"])) == 1  # only the one delivered above by hand


def test_after_the_bound_the_order_is_declared_not_found_once_and_a_later_success_still_shows_it(bridge, capsys):
    requisition_id = str(uuid.uuid4())
    assert process(bridge, requisition_event(requisition_id)) == {"batchItemFailures": []}
    ((body, _),) = delayed_for(bridge, requisition_id)
    # Sixteen minutes later (past the default 15): the wait began that long ago.
    began = (datetime.now(UTC) - timedelta(minutes=16)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    bridge.lab_table.update_item(
        Key={"pk": f"REQ#{requisition_id}", "sk": "REQ"},
        UpdateExpression="SET not_found_since = :began",
        ExpressionAttributeValues={":began": began},
    )
    capsys.readouterr()

    assert process(bridge, retry_event({**body, "not_found_since": began, "not_found_attempt": 5})) == {
        "batchItemFailures": []
    }

    assert bridge.requisition_item(requisition_id)["outcome"] == "not_found"
    assert delayed_for(bridge, requisition_id) == [(body, pytest.approx(30, abs=30))]  # only the first, still pending
    assert [
        event["outcome"] for event in bridge.published("requisition.unavailable", requisition_id=requisition_id)
    ] == ["not_found"]
    assert '"RequisitionNotFound"' in capsys.readouterr().out  # the metric the alarm watches
    assert get_requisition_status(bridge, requisition_id) == 404
    # The older retry that is still pending comes: it belongs to the finished wait.
    assert process(bridge, retry_event(body)) == {"batchItemFailures": []}
    assert len(bridge.published("requisition.unavailable", requisition_id=requisition_id)) == 1

    # WHOOP has it after all and sends its webhook again: the order is taken in full.
    late = bridge.emulator.create_requisition(["CBC"])
    bridge.emulator.add_requisition({**late, "id": requisition_id})
    assert process(bridge, requisition_event(requisition_id)) == {"batchItemFailures": []}
    assert bridge.requisition_item(requisition_id)["outcome"] == "received"
    assert get_requisition_status(bridge, requisition_id) == 200
    assert len(bridge.published("requisition.received", requisition_id=requisition_id)) == 1


def test_an_unrecognised_task_business_status_is_kept_and_every_test_confirmed(bridge):
    requisition = bridge.emulator.create_requisition(CODES)
    requisition["service_requests"][0]["task_business_status"] = "Specimen collected"
    requisition["service_requests"][1]["status"] = None  # a null where WHOOP documents a value
    requisition["service_requests"][1]["code"] = "LIPID_PANEL"
    requisition["service_requests"][0]["sample_tube"] = "lavender"  # a field WHOOP may add
    bridge.emulator.add_requisition(requisition)

    assert process(bridge, requisition_event(requisition["id"])) == {"batchItemFailures": []}

    first, second, third = (sr["id"] for sr in requisition["service_requests"])
    bridge.wait_for_workflow(first, "awaiting_lab_event")
    assert bridge.emulator.status_history(first)[0]["status"] == "ORDER_CONFIRMED"
    assert bridge.emulator.status_history(second) == []  # FHIR status null: no work, nothing sent
    assert bridge.emulator.calls_to("PATCH", f"/requisition/{requisition['id']}/status$") == []
    status, view, _ = bridge.lab_api(
        load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: requisition["id"]})
    )
    assert status == 200
    by_id = {sr["id"]: sr for sr in view["service_requests"]}
    assert (by_id[first]["whoop_task_business_status"], by_id[first]["task_business_status"]) == (
        "Specimen collected",
        "ORDER_CONFIRMED",
    )
    assert (by_id[second]["status"], by_id[second]["workflow"]) == (None, "skipped")
    assert view["problems"] == []
    wait_until(lambda: bridge.emulator.status_history(third), 20, what="HBA1C's status")
    assert [entry["status"] for entry in bridge.emulator.status_history(third)] == ["ORDER_ISSUE"]


def test_an_order_the_bridge_cannot_read_is_recorded_alarmed_and_nothing_is_sent_to_whoop(bridge, capsys):
    requisition = bridge.emulator.create_requisition(["CBC"])
    bridge.emulator.add_requisition({**requisition, "service_requests": "CBC"})
    capsys.readouterr()

    assert process(bridge, requisition_event(requisition["id"])) == {"batchItemFailures": []}

    stored = bridge.requisition_item(requisition["id"])
    assert (stored["outcome"], [p["field"] for p in stored["problems"]]) == ("invalid", ["service_requests"])
    assert '"RequisitionInvalid"' in capsys.readouterr().out
    assert [
        event["outcome"] for event in bridge.published("requisition.unavailable", requisition_id=requisition["id"])
    ] == ["invalid"]
    assert [
        call for call in bridge.emulator.calls if call["method"] == "PATCH" and requisition["id"] in call["path"]
    ] == []
    # Once WHOOP serves a readable order, WHOOP's next webhook takes it in.
    bridge.emulator.add_requisition(requisition)
    assert process(bridge, requisition_event(requisition["id"])) == {"batchItemFailures": []}
    assert bridge.requisition_item(requisition["id"])["outcome"] == "received"


def test_a_test_without_a_code_is_held_and_shown_while_the_others_go_ahead(bridge):
    requisition = bridge.emulator.create_requisition(["CBC", "LIPID_PANEL"])
    requisition["service_requests"][1]["code"] = None
    bridge.emulator.add_requisition(requisition)

    assert process(bridge, requisition_event(requisition["id"])) == {"batchItemFailures": []}

    good, held = (sr["id"] for sr in requisition["service_requests"])
    bridge.wait_for_workflow(good, "awaiting_lab_event")
    status, view, _ = bridge.lab_api(
        load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: requisition["id"]})
    )
    assert status == 200
    by_id = {sr["id"]: sr for sr in view["service_requests"]}
    assert by_id[held]["workflow"] == "held"
    assert by_id[held]["next_statuses"] == [] and by_id[held]["accepts_results"] == []
    assert [p["field"] for p in by_id[held]["problems"]] == ["service_requests.1.code"]
    assert [p["field"] for p in view["problems"]] == ["service_requests.1.code"]
    assert bridge.emulator.status_history(held) == []
    assert held not in [execution["name"] for execution in bridge.executions()]


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
    fine_id = str(uuid.uuid4())  # unknown to WHOOP: processed (fetched again later) in the same batch
    bridge.emulator.inject_fault("GET", f"/requisition/{failing['id']}$", status=500, count=10)
    event = requisition_event(failing["id"])
    event["Records"].append({**requisition_event(fine_id)["Records"][0], "messageId": str(uuid.uuid4())})
    failing_message_id = event["Records"][0]["messageId"]

    answer = process(bridge, event)

    assert answer == {"batchItemFailures": [{"itemIdentifier": failing_message_id}]}
    assert bridge.requisition_item(failing["id"]) is None
    assert bridge.requisition_item(fine_id)["outcome"] == "awaiting_whoop"
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


def test_a_test_whoop_already_holds_goes_on_from_there_and_nothing_goes_back(bridge):
    requisition = bridge.emulator.create_requisition(["CBC", "LIPID_PANEL"])
    requisition["service_requests"][0]["task_business_status"] = "APPOINTMENT_ATTENDED"
    requisition["service_requests"][1]["task_business_status"] = "FULL_RESULTS_READY"
    bridge.emulator.add_requisition(requisition)

    assert process(bridge, requisition_event(requisition["id"])) == {"batchItemFailures": []}

    attended, final = (sr["id"] for sr in requisition["service_requests"])
    waiting = bridge.wait_for_workflow(attended, "awaiting_lab_event")
    assert waiting["task_business_status"] == "APPOINTMENT_ATTENDED"
    status, view, _ = bridge.lab_api(
        load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: requisition["id"]})
    )
    by_id = {sr["id"]: sr for sr in view["service_requests"]}
    assert by_id[attended]["next_statuses"] == ["APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"]
    assert by_id[attended]["accepts_results"] == ["partial", "preliminary", "final"]
    assert (by_id[final]["workflow"], by_id[final]["task_business_status"]) == ("skipped", "FULL_RESULTS_READY")
    assert bridge.emulator.status_history(attended) == [] and bridge.emulator.status_history(final) == []
    assert final not in [execution["name"] for execution in bridge.executions()]
