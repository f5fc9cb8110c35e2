"""document_store on moto: registering adds to sets, an attempt counted once, a stored or
linked document never rewritten, references kept per requisition, bytes in the bucket."""

from __future__ import annotations

import boto3
import pytest
from lab_tables import lab_table

from whoop_bridge.models.document import BasedOn, DocumentState
from whoop_bridge.store import document_store as store


@pytest.fixture
def table(monkeypatch):
    for table in lab_table(monkeypatch):
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="documents")
        s3.put_bucket_versioning(Bucket="documents", VersioningConfiguration={"Status": "Enabled"})
        yield table


def test_registering_adds_each_reference_and_keeps_the_state(table):
    first = store.register("doc-1", "DocumentReference", "req-1", ["sr-1"])
    again = store.register("doc-1", "PartnerDocument", "req-2", ["sr-2", "sr-3"])
    assert (first.state, first.attempts, first.due_now) == (DocumentState.PENDING, 0, True)
    assert again.requisition_ids == {"req-1", "req-2"} and again.service_request_ids == {"sr-1", "sr-2", "sr-3"}
    assert again.reference_types == {"DocumentReference", "PartnerDocument"}
    assert table.get_item(Key={"pk": "DOC#doc-1", "sk": "DOC"})["Item"]["kind"] == "partner_document"


def test_an_attempt_runs_once_and_a_fetched_document_is_final(table):
    store.register("doc-1", "DocumentReference", "req-1", ["sr-1"])
    assert store.start_attempt("doc-1", 1) == 1
    assert store.mark_failed("doc-1", "http_503", "2026-12-01T00:01:00.000Z")
    assert store.start_attempt("doc-1", 1) is None  # its retry is scheduled: a duplicate
    assert store.start_attempt("doc-1", 2) == 2
    assert store.mark_linked("doc-1", {"url": "https://whoop.example/d", "document_type": "form"})
    linked = store.get("doc-1")
    assert (linked.state, linked.last_failure, linked.next_attempt_at) == (DocumentState.LINKED, None, None)
    assert store.start_attempt("doc-1", 3) is None
    assert not store.mark_failed("doc-1", "timeout", "later")
    assert not store.mark_unavailable("doc-1", "timeout")
    assert store.start_attempt("doc-unknown", 1) is None
    assert store.get("doc-unknown") is None


def test_unavailable_is_written_once_and_keeps_the_newest_reason(table):
    store.register("doc-1", "DocumentReference", "req-1", ["sr-1"])
    assert store.mark_unavailable("doc-1", "not_found")
    assert not store.mark_unavailable("doc-1", "http_503")
    document = store.get("doc-1")
    assert (document.state, document.last_failure) == (DocumentState.UNAVAILABLE, "http_503")


def test_bytes_go_to_the_bucket_and_the_item_names_their_version(table):
    store.register("doc-1", "DocumentReference", "req-1", ["sr-1"])
    stored_object = store.put_content("doc-1", b"%PDF-1.7", "application/pdf")
    assert stored_object["object_key"] == "documents/doc-1" and stored_object["size"] == 8
    assert store.mark_stored("doc-1", {"document_type": "form"}, stored_object)
    document = store.get_many(["doc-1", "doc-9"])["doc-1"]
    assert (document.state, document.object_version) == (DocumentState.STORED, stored_object["object_version"])
    body = boto3.client("s3", region_name="us-east-1").get_object(
        Bucket="documents", Key="documents/doc-1", VersionId=document.object_version
    )["Body"]
    assert body.read() == b"%PDF-1.7"
    assert "documents/doc-1" in store.download_link(document.object_key, document.object_version, 300)


def test_references_are_kept_per_requisition(table):
    references = [BasedOn("sr-1", "DocumentReference", "doc-1", True), BasedOn("sr-1", "Observation", "o-1", False)]
    store.put_references("req-1", references)
    store.put_references("req-1", references)
    assert store.get_references("req-1") == references
    assert store.get_references("req-2") == []
