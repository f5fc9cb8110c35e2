"""Documents WHOOP attaches to an order, end to end over HTTP: WHOOP's order has a service
request based on a document; the lab sees the order confirmed, reads the document's metadata
from `GET /lab/documents/{id}` and downloads its bytes through the presigned link.

This module runs its own stack with document retries one second apart, so a retry is seen
within the test. The link is fetched in this process: moto answers presigned S3 links
in-process (it intercepts `requests`), so the download is a real GET of the link the lab got.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from local.stack import wait_until
from tests.e2e.conftest import Harness, running_harness
from whoop_bridge.config import settings

ORDER_FORM = b"%PDF-1.4\n% lab order form: fasting lipid panel\n%%EOF\n"


@pytest.fixture(scope="module")
def harness() -> Any:
    yield from running_harness({"AcceptedTestCodes": "LIPID_PANEL,CBC,HBA1C", "DocumentRetryDelays": "1,1,1"})


def order_based_on(harness: Harness, document_id: str) -> dict[str, Any]:
    """WHOOP's order of two tests, the first based on the document; its webhook is sent."""
    requisition = harness.emulator.create_requisition(
        ["LIPID_PANEL", "CBC"], based_on={"LIPID_PANEL": [{"type": "DocumentReference", "id": document_id}]}
    )
    assert (
        harness.emulator.send_partner_webhook("lab_requisition.created", requisition["id"], url=harness.webhook_url)
        == 204
    )
    return requisition


def lab_document(harness: Harness, document_id: str) -> requests.Response:
    return requests.get(f"{harness.stack.url}/lab/documents/{document_id}", timeout=30)


def test_the_lab_sees_the_order_confirmed_and_downloads_the_document_it_is_based_on(harness):
    document = harness.emulator.add_document(content=ORDER_FORM)
    requisition = order_based_on(harness, document["id"])

    order = harness.wait_confirmed(requisition["id"], 2)
    stored = wait_until(
        lambda: (answer := lab_document(harness, document["id"]).json()).get("state") == "stored" and answer,
        30,
        what="document stored",
    )

    assert all(sr["task_business_status"] == "ORDER_CONFIRMED" for sr in order["service_requests"])
    assert stored["document_type"] == "LAB_ORDER_FORM"
    assert stored["requisition_ids"] == [requisition["id"]]
    assert (stored["content_type"], stored["size"]) == ("application/pdf", len(ORDER_FORM))
    download = requests.get(stored["download_url"], timeout=30)
    assert download.status_code == 200 and download.content == ORDER_FORM
    first = next(
        sr
        for sr in harness.lab.requisition(requisition["id"])["service_requests"]
        if sr["id"] == requisition["service_requests"][0]["id"]
    )
    assert first["based_on"] == [
        {"type": "DocumentReference", "id": document["id"], "document": True, "state": "stored"}
    ]
    assert len(harness.emulator.calls_to("GET", f"/partner/document/{document['id']}/content$")) == 1


def test_a_document_whoop_first_fails_is_stored_by_a_later_retry_while_the_order_was_confirmed_at_once(harness):
    document = harness.emulator.add_document(content=ORDER_FORM)
    # As many 503s as the first attempt makes calls (the client's in-call retries included).
    per_attempt = settings().whoop_max_retries + 1
    harness.emulator.inject_fault("GET", f"/partner/document/{document['id']}$", status=503, count=per_attempt)
    requisition = order_based_on(harness, document["id"])

    harness.wait_confirmed(requisition["id"], 2)
    stored = wait_until(
        lambda: (answer := lab_document(harness, document["id"]).json()).get("state") == "stored" and answer,
        30,
        what="document stored by a retry",
    )

    assert stored["attempts"] == 2
    assert requests.get(stored["download_url"], timeout=30).content == ORDER_FORM
    fetches = harness.emulator.calls_to("GET", f"/partner/document/{document['id']}$")
    assert [call["status"] for call in fetches] == [503] * per_attempt + [200]
    # WHOOP had every ORDER_CONFIRMED before the retry that stored the document began.
    confirmations = [
        call
        for sr in requisition["service_requests"]
        for call in harness.emulator.calls_to("PATCH", f"/service-request/{sr['id']}/status$")
        if call["body"]["task_business_status"] == "ORDER_CONFIRMED" and call["status"] == 200
    ]
    assert len(confirmations) == 2 and max(call["seq"] for call in confirmations) < fetches[-1]["seq"]


def test_an_unknown_document_is_a_404(harness):
    answer = lab_document(harness, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
