"""Partner documents against in-memory ports: each fetch outcome, the retries and their
end, a duplicate message, and the lab's view of a document."""

from __future__ import annotations

import pytest
from fakes.lab import FakePartnerClient, fake_ports

from whoop_bridge import caches
from whoop_bridge.lab import documents
from whoop_bridge.lab.documents import DocumentFetchFailed, fetch, handle_fetch_message, receive_references
from whoop_bridge.models.document import DocumentState
from whoop_bridge.whoop.http import WhoopNotFound, WhoopTransientError

PDF = b"%PDF-1.7 order form"
DOC = {"id": "doc-1", "document_type": "order_form", "created_at": "2026-11-30T12:00:00Z"}


@pytest.fixture(autouse=True)
def retry_delays(monkeypatch):
    monkeypatch.setenv("DOCUMENT_RETRY_DELAYS", "60,300")
    caches.reset_all()
    yield
    caches.reset_all()


@pytest.fixture
def ports():
    ports = fake_ports()
    ports.documents.register("doc-1", "DocumentReference", "req-1", ["sr-1"])
    return ports


def requisition(*based_on: dict) -> dict:
    return {"id": "req-1", "service_requests": [{"id": "sr-1", "code": "CBC", "based_on": list(based_on)}]}


def test_a_document_with_content_is_stored_and_one_with_a_url_linked(ports):
    client = FakePartnerClient()
    client.documents["doc-1"] = DOC
    client.contents["doc-1"] = PDF
    client.documents["doc-2"] = {**DOC, "id": "doc-2", "url": "https://whoop.example/doc-2"}
    ports.documents.register("doc-2", "DocumentReference", "req-1", ["sr-1"])

    assert fetch("doc-1", 1, client, ports) == "stored"
    assert fetch("doc-2", 1, client, ports) == "linked"

    stored = ports.documents.get("doc-1")
    assert (stored.state, stored.content_type, stored.document_type) == ("stored", "application/pdf", "order_form")
    assert ports.documents.contents == {"doc-1": PDF}
    assert ports.documents.get("doc-2").url == "https://whoop.example/doc-2"
    assert ("get_document_content", "doc-2") not in client.calls
    assert fetch("doc-1", 2, client, ports) == "nothing_to_do"  # final: never fetched again


def test_a_failed_attempt_schedules_the_next_and_the_last_makes_it_unavailable(ports):
    client = FakePartnerClient()
    client.documents["doc-1"] = WhoopNotFound("GET document", 404)

    assert fetch("doc-1", 1, client, ports) == "retry_scheduled"
    assert ports.queue.messages == [
        {"event_type": "partner_document.fetch", "resource_id": "doc-1", "delay_seconds": 60, "attempt": 2}
    ]
    pending = ports.documents.get("doc-1")
    assert (pending.state, pending.last_failure, pending.attempts) == ("pending", "not_found", 1)
    assert pending.next_attempt_at
    # The same message again (a duplicate delivery): the attempt ran already.
    assert fetch("doc-1", 1, client, ports) == "nothing_to_do"

    assert handle_fetch_message({"resource_id": "doc-1", "attempt": 2}, client, ports) == "retry_scheduled"
    assert handle_fetch_message({"resource_id": "doc-1", "attempt": 3}, client, ports) == "unavailable"
    assert ports.documents.get("doc-1").state is DocumentState.UNAVAILABLE
    assert len(ports.queue.messages) == 2


def test_a_last_transient_failure_also_goes_to_the_dead_letter_queue(ports):
    client = FakePartnerClient()
    client.documents["doc-1"] = WhoopTransientError("GET document", 503)
    for attempt in (1, 2):
        assert fetch("doc-1", attempt, client, ports) == "retry_scheduled"

    with pytest.raises(DocumentFetchFailed, match="3 times"):
        fetch("doc-1", 3, client, ports)

    document = ports.documents.get("doc-1")
    assert (document.state, document.last_failure) == ("unavailable", "http_503")


def test_an_answer_that_is_no_partner_document_is_retried(ports):
    client = FakePartnerClient()
    client.documents["doc-1"] = {"id": "doc-1"}  # no document_type
    assert fetch("doc-1", 1, client, ports) == "retry_scheduled"
    assert ports.documents.get("doc-1").last_failure == "invalid_document"


@pytest.mark.parametrize(
    "message",
    [{"resource_id": "doc-1"}, {"resource_id": "doc-1", "attempt": True}, {"resource_id": "doc-9", "attempt": 2}],
)
def test_a_fetch_message_without_an_attempt_or_a_registered_document_is_malformed(ports, message):
    assert handle_fetch_message(message, FakePartnerClient(), ports) == "malformed"


def test_references_are_recorded_and_each_document_fetched_once():
    ports = fake_ports()
    client = FakePartnerClient()
    client.documents["doc-1"] = DOC
    client.contents["doc-1"] = PDF
    order = requisition({"type": "DocumentReference", "id": "doc-1"}, {"type": "Observation", "id": "obs-1"})

    assert receive_references(order, client, ports) == {"doc-1": "stored"}
    assert receive_references(order, client, ports) == {"doc-1": "already_known"}

    assert [call for call in client.calls if call[0] == "get_document"] == [("get_document", "doc-1")]
    assert documents.references_by_service_request("req-1", ports) == {
        "sr-1": [
            {"type": "DocumentReference", "id": "doc-1", "document": True, "state": "stored"},
            {"type": "Observation", "id": "obs-1", "document": False},
        ]
    }


def test_the_lab_sees_a_stored_document_with_a_short_lived_link_and_never_its_bytes(ports):
    client = FakePartnerClient()
    client.documents["doc-1"] = DOC
    client.contents["doc-1"] = PDF
    fetch("doc-1", 1, client, ports)

    view = documents.document_view("doc-1", ports)

    assert view["state"] == "stored" and view["size"] == len(PDF)
    assert view["download_url"].endswith("expires=300")
    assert view["requisition_ids"] == ["req-1"] and view["service_request_ids"] == ["sr-1"]
    assert "url" not in view and PDF.decode() not in str(view)
    assert documents.document_view("doc-unknown", ports) is None
