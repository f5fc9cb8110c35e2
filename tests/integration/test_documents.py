"""Partner documents through the real handlers: a requisition whose service requests are
`based_on` documents is taken in by requisition_processor; each document is fetched once
into the KMS-encrypted bucket; a document WHOOP cannot give is recorded, retried through the
partner events queue and never holds up the order; the lab reads it through lab_api.

This module's stack retries documents without delay (DocumentRetryDelays "0,0": three
attempts in all); faults are injected for every call one attempt makes (`calls_per_attempt`).
Queue pollers are off: the test delivers each retry itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
import requests

from integration_harness import SAMPLE_REQUISITION_ID, Bridge, load_event, log_records, start_bridge
from local.emulator import SAMPLE_DOCUMENT
from local.stack import HandlerError
from whoop_bridge.config import settings

SAMPLE_DOCUMENT_ID = "7c1e4b2a-5d3f-4e6a-9b8c-0d1e2f3a4b5c"
DOCUMENT_PATH = r"/partner/document/{}$"
CONTENT_PATH = r"/partner/document/{}/content$"


@pytest.fixture(scope="module")
def bridge() -> Iterator[Bridge]:
    stack, emulator = start_bridge(parameters={"DocumentRetryDelays": "0,0"})
    try:
        yield Bridge(stack, emulator)
    finally:
        stack.stop()
        emulator.stop()


def calls_per_attempt() -> int:
    """WHOOP calls one failing attempt makes: the client's in-call retries of a 5xx, plus one
    (the local stack's functions share one process environment, so read what it holds)."""
    return settings().whoop_max_retries + 1


def order_based_on(bridge: Bridge, based_on: list[list[dict]], codes: list[str] | None = None) -> dict:
    """A requisition at the emulator whose i-th service request is based on `based_on[i]`."""
    codes = codes or ["LIPID_PANEL", "CBC"][: len(based_on)]
    return bridge.emulator.create_requisition(codes, based_on=dict(zip(codes, based_on, strict=True)))


def receive(bridge: Bridge, requisition: dict) -> dict:
    event = load_event("sqs_requisition_created.json", **{SAMPLE_REQUISITION_ID: requisition["id"]})
    return bridge.invoke("RequisitionProcessorFunction", event)


def deliver_retries(bridge: Bridge) -> tuple[list[dict], dict]:
    """Take every message off the partner events queue and give it to the processor."""
    messages = bridge.queue_messages()
    records = [
        {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
            "awsRegion": "us-east-1",
        }
        for message in messages
    ]
    try:
        answer = (
            bridge.invoke("RequisitionProcessorFunction", {"Records": records})
            if records
            else {"batchItemFailures": []}
        )
    except HandlerError as error:
        # Powertools raises when every record of a batch failed: all go back to the queue.
        assert error.error_type == "BatchProcessingError"
        answer = {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in records]}
    return [json.loads(message["Body"]) for message in messages], answer


def document_answer(bridge: Bridge, document_id: str) -> tuple[int, dict]:
    status, body, _ = bridge.lab_api(load_event("lab_api_get_document.json", **{SAMPLE_DOCUMENT_ID: document_id}))
    return status, body


def requisition_answer(bridge: Bridge, requisition_id: str) -> dict:
    status, body, _ = bridge.lab_api(
        load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: requisition_id})
    )
    assert status == 200
    return body


def test_a_document_two_tests_are_based_on_is_fetched_once_and_kept_encrypted_with_the_stacks_key(bridge):
    document = bridge.emulator.add_document()
    reference = {"type": "DocumentReference", "id": document["id"]}
    requisition = order_based_on(
        bridge, [[reference, {"type": "Patient", "id": "0d7c4a52-54d3-4c36-a4ad-1e9fb1d2a111"}], [reference]]
    )

    assert receive(bridge, requisition) == {"batchItemFailures": []}

    assert len(bridge.emulator.calls_to("GET", DOCUMENT_PATH.format(document["id"]))) == 1
    assert len(bridge.emulator.calls_to("GET", CONTENT_PATH.format(document["id"]))) == 1
    item = bridge.item(f"DOC#{document['id']}", "DOC")
    assert item["state"] == "stored" and item["attempts"] == 1
    assert item["service_request_ids"] == {sr["id"] for sr in requisition["service_requests"]}
    s3 = boto3.client("s3", region_name="us-east-1")
    stored = s3.get_object(
        Bucket=bridge.stack.output("DocumentBucket"), Key=item["object_key"], VersionId=item["object_version"]
    )
    assert stored["Body"].read() == SAMPLE_DOCUMENT
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert stored["SSEKMSKeyId"] == bridge.stack.output("BridgeKey")
    assert stored["ContentType"] == "application/pdf"
    # No bytes in the table: only what describes them.
    assert int(item["size"]) == stored["ContentLength"] and "content" not in item


def test_the_lab_reads_a_stored_document_through_a_short_lived_link(bridge):
    document = bridge.emulator.add_document(content=b"%PDF-1.4 requisition form for the lab")
    requisition = order_based_on(bridge, [[{"type": "DocumentReference", "id": document["id"]}]])
    receive(bridge, requisition)

    status, view = document_answer(bridge, document["id"])

    assert status == 200
    assert view["state"] == "stored"
    assert {key: view[key] for key in ("id", "document_type", "created_at", "updated_at")} == document
    assert view["requisition_ids"] == [requisition["id"]]
    assert view["service_request_ids"] == [requisition["service_requests"][0]["id"]]
    assert (view["content_type"], view["size"]) == ("application/pdf", len(b"%PDF-1.4 requisition form for the lab"))
    assert "X-Amz-Expires=300" in view["download_url"] and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in view["download_url"]
    assert view["download_url_expires_at"].endswith("Z")
    assert "url" not in view
    # moto answers presigned links in-process: the lab's download, byte for byte.
    assert requests.get(view["download_url"], timeout=10).content == b"%PDF-1.4 requisition form for the lab"


def test_the_order_lists_each_tests_references_with_the_documents_state_and_no_content(bridge):
    document = bridge.emulator.add_document()
    patient_reference = {"type": "Patient", "id": "0d7c4a52-54d3-4c36-a4ad-1e9fb1d2a222"}
    requisition = order_based_on(bridge, [[{"type": "DocumentReference", "id": document["id"]}, patient_reference], []])
    receive(bridge, requisition)

    view = requisition_answer(bridge, requisition["id"])

    first, second = (
        next(sr for sr in view["service_requests"] if sr["id"] == wanted["id"])
        for wanted in requisition["service_requests"]
    )
    assert first["based_on"] == [
        {"type": "DocumentReference", "id": document["id"], "document": True, "state": "stored"},
        {"type": "Patient", "id": patient_reference["id"], "document": False},
    ]
    assert second["based_on"] == []
    # Other references are recorded, never fetched.
    assert bridge.emulator.calls_to("GET", patient_reference["id"]) == []


def test_a_link_only_document_keeps_whoops_url_and_fetches_no_content(bridge):
    document = bridge.emulator.add_document(content=None, url="https://files.whoop.example/forms/a1.pdf")
    requisition = order_based_on(bridge, [[{"type": "documentreference", "id": document["id"]}]])
    receive(bridge, requisition)

    status, view = document_answer(bridge, document["id"])

    assert status == 200
    assert view["state"] == "linked" and view["url"] == "https://files.whoop.example/forms/a1.pdf"
    assert "download_url" not in view
    assert bridge.emulator.calls_to("GET", CONTENT_PATH.format(document["id"])) == []


def test_a_document_whoop_fails_never_holds_up_the_order_and_a_retry_stores_it(bridge, logs):
    document = bridge.emulator.add_document()
    requisition = order_based_on(bridge, [[{"type": "DocumentReference", "id": document["id"]}]])
    bridge.emulator.inject_fault("GET", DOCUMENT_PATH.format(document["id"]), status=503, count=calls_per_attempt())

    assert receive(bridge, requisition) == {"batchItemFailures": []}

    # The order went ahead at once: the test is confirmed and visible to the lab.
    sr_id = requisition["service_requests"][0]["id"]
    bridge.wait_for_workflow(sr_id, "awaiting_lab_event")
    assert [entry["status"] for entry in bridge.emulator.status_history(sr_id)] == ["ORDER_CONFIRMED"]
    status, view = document_answer(bridge, document["id"])
    assert (status, view["state"], view["attempts"], view["last_failure"]) == (200, "pending", 1, "http_503")
    assert "download_url" not in view and "url" not in view

    bodies, answer = deliver_retries(bridge)

    assert bodies == [{"event_type": "partner_document.fetch", "resource_id": document["id"], "attempt": 2}]
    assert answer == {"batchItemFailures": []}
    status, view = document_answer(bridge, document["id"])
    assert (view["state"], view["attempts"], view["last_failure"]) == ("stored", 2, None)
    # The failure was logged by id and reason, never with a body.
    failures = [
        record for record in log_records(logs) if record.get("message") == "document fetch failed; retry scheduled"
    ]
    assert failures and failures[0]["failure"] == "http_503" and failures[0]["document_id"] == document["id"]
    assert "injected" not in logs.getvalue()


def test_a_document_that_stays_not_found_ends_unavailable_after_every_attempt(bridge):
    document_id = "9e3f1d2c-0b4a-4c5d-8e6f-7a8b9c0d1e2f"  # WHOOP never had it
    requisition = order_based_on(bridge, [[{"type": "DocumentReference", "id": document_id}]])
    receive(bridge, requisition)

    first, answer_1 = deliver_retries(bridge)
    second, answer_2 = deliver_retries(bridge)
    third, _ = deliver_retries(bridge)

    assert [body["attempt"] for body in first + second] == [2, 3]
    assert third == []  # bounded: no attempt after the last delay
    assert answer_1 == answer_2 == {"batchItemFailures": []}  # a 404 is not worth the dead-letter queue
    status, view = document_answer(bridge, document_id)
    assert (view["state"], view["attempts"], view["last_failure"]) == ("unavailable", 3, "not_found")
    assert len(bridge.emulator.calls_to("GET", DOCUMENT_PATH.format(document_id))) == 3
    sr_id = requisition["service_requests"][0]["id"]
    assert bridge.wait_for_workflow(sr_id, "awaiting_lab_event")
    assert requisition_answer(bridge, requisition["id"])["service_requests"][0]["based_on"][0]["state"] == "unavailable"


def test_a_last_attempt_that_fails_for_a_transient_reason_goes_the_dead_letter_way(bridge):
    document = bridge.emulator.add_document()
    requisition = order_based_on(bridge, [[{"type": "DocumentReference", "id": document["id"]}]])
    bridge.emulator.inject_fault("GET", DOCUMENT_PATH.format(document["id"]), status=503, count=3 * calls_per_attempt())
    receive(bridge, requisition)
    deliver_retries(bridge)

    (last,), answer = deliver_retries(bridge)

    assert last["attempt"] == 3
    # The message fails back to the queue: after maxReceiveCount it is in the alarmed DLQ.
    assert len(answer["batchItemFailures"]) == 1
    status, view = document_answer(bridge, document["id"])
    assert (view["state"], view["last_failure"]) == ("unavailable", "http_503")
    # WHOOP recovers before the message reaches the DLQ: its redelivery stores the document.
    bridge.sqs.send_message(QueueUrl=bridge.stack.output("PartnerEventsQueue"), MessageBody=json.dumps(last))
    _, answer = deliver_retries(bridge)
    assert answer == {"batchItemFailures": []}
    assert document_answer(bridge, document["id"])[1]["state"] == "stored"


def test_fetching_a_stored_document_again_changes_nothing_and_calls_whoop_for_nothing(bridge):
    document = bridge.emulator.add_document()
    requisition = order_based_on(bridge, [[{"type": "DocumentReference", "id": document["id"]}]])
    receive(bridge, requisition)
    before = bridge.item(f"DOC#{document['id']}", "DOC")
    calls = len(bridge.emulator.calls_to("GET", "/partner/document/"))

    # A stray retry message, and a second order based on the same document.
    bridge.sqs.send_message(
        QueueUrl=bridge.stack.output("PartnerEventsQueue"),
        MessageBody=json.dumps({"event_type": "partner_document.fetch", "resource_id": document["id"], "attempt": 2}),
    )
    deliver_retries(bridge)
    other = order_based_on(bridge, [[{"type": "DocumentReference", "id": document["id"]}]])
    receive(bridge, other)

    after = bridge.item(f"DOC#{document['id']}", "DOC")
    assert len(bridge.emulator.calls_to("GET", "/partner/document/")) == calls
    assert {k: v for k, v in after.items() if k not in ("requisition_ids", "service_request_ids")} == {
        k: v for k, v in before.items() if k not in ("requisition_ids", "service_request_ids")
    }
    assert after["requisition_ids"] == {requisition["id"], other["id"]}


def test_an_unknown_document_is_a_404_for_the_lab(bridge):
    status, body = document_answer(bridge, "3f2e1d0c-9b8a-4765-a432-10fedcba9876")
    assert status == 404 and body["error"] == "not_found"


def test_the_local_stack_makes_the_document_bucket_as_the_template_says(bridge):
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = bridge.stack.output("DocumentBucket")

    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": bridge.stack.output("BridgeKey"),
    }
    assert rule["BucketKeyEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    rules = {rule["ID"]: rule for rule in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["ExpireOldVersions"]["Status"] == "Enabled"
    assert rules["ExpireDocuments"]["Status"] == "Disabled"  # DocumentRetentionDays 0: kept


def test_a_duplicated_retry_message_makes_one_attempt_and_one_next_retry(bridge):
    document = bridge.emulator.add_document()
    requisition = order_based_on(bridge, [[{"type": "DocumentReference", "id": document["id"]}]])
    bridge.emulator.inject_fault("GET", DOCUMENT_PATH.format(document["id"]), status=503, count=2 * calls_per_attempt())
    receive(bridge, requisition)
    (retry,) = bridge.queue_messages()
    for _ in range(2):  # SQS delivers at least once: the same message twice
        bridge.sqs.send_message(QueueUrl=bridge.stack.output("PartnerEventsQueue"), MessageBody=retry["Body"])

    bodies, answer = deliver_retries(bridge)
    assert [body["attempt"] for body in bodies] == [2, 2] and answer == {"batchItemFailures": []}
    next_bodies, _ = deliver_retries(bridge)

    assert [body["attempt"] for body in next_bodies] == [3]
    statuses = [call["status"] for call in bridge.emulator.calls_to("GET", DOCUMENT_PATH.format(document["id"]))]
    assert statuses == [503] * 2 * calls_per_attempt() + [200]  # attempts 1 and 2 (once), then 3
    assert document_answer(bridge, document["id"])[1]["state"] == "stored"


def test_a_document_whoop_answers_with_a_body_that_is_not_json_is_recorded_and_retried_and_the_order_message_succeeds(
    bridge,
):
    """A proxy's HTML page with a 200 in place of the PartnerDocument: the document's failure,
    not the order's (the requisition message must not go the dead-letter way for it)."""
    document = bridge.emulator.add_document()
    requisition = order_based_on(bridge, [[{"type": "DocumentReference", "id": document["id"]}]])
    bridge.emulator.inject_fault(
        "GET", DOCUMENT_PATH.format(document["id"]), status=200, body="<html>gateway</html>", count=1
    )

    assert receive(bridge, requisition) == {"batchItemFailures": []}

    status, view = document_answer(bridge, document["id"])
    assert (status, view["state"], view["attempts"], view["last_failure"]) == (200, "pending", 1, "invalid_document")
    bodies, answer = deliver_retries(bridge)
    assert bodies == [{"event_type": "partner_document.fetch", "resource_id": document["id"], "attempt": 2}]
    assert answer == {"batchItemFailures": []}
    assert document_answer(bridge, document["id"])[1]["state"] == "stored"


def test_a_document_id_no_order_could_carry_is_a_400_naming_it(bridge):
    # On AWS a key over DynamoDB's 2 KB is a ValidationException (a 500); moto does not check it.
    status, body = document_answer(bridge, "x" * 3000)

    assert status == 400, body
    assert [problem["field"] for problem in body["problems"]] == ["path.document_id"]
    assert "x" * 200 not in json.dumps(body)
