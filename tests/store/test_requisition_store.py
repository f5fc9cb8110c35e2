"""requisition_store on a moto LabTable: its keys, the conditions that make intake safe to
repeat, and the listing's pages and page tokens."""

from __future__ import annotations

import pytest
from lab_tables import lab_table

from whoop_bridge.models.requisition import RequisitionOutcome
from whoop_bridge.store import requisition_store
from whoop_bridge.store.dynamo import InvalidPageToken, encode_page_token

RAW = {"id": "req-1", "patient": {"name": "J", "height": 1.8}, "created_at": "2026-11-30T12:00:00Z"}


@pytest.fixture
def table(monkeypatch):
    yield from lab_table(monkeypatch)


def test_a_received_requisition_is_kept_under_its_keys_and_never_replaced(table):
    assert requisition_store.put_received(RAW, "2026-12-01T00:00:00.000Z", ["sr-1"], [])
    item = table.get_item(Key={"pk": "REQ#req-1", "sk": "REQ"})["Item"]
    assert (item["kind"], item["outcome"], item["gsi1pk"], item["gsi1sk"]) == (
        "requisition",
        "received",
        "REQUISITION",
        "2026-12-01T00:00:00.000Z#req-1",
    )
    assert item["patient_json"] == '{"name": "J", "height": 1.8}' and item["published"] is False

    assert not requisition_store.put_received({**RAW, "patient": None}, "2026-12-02T00:00:00.000Z", [], [])
    assert not requisition_store.put_invalid("req-1", [{"field": "id", "problem": "x"}])
    assert not requisition_store.start_not_found_wait("req-1", "2026-12-02T00:00:00.000Z", "2026-12-02T00:15:00.000Z")
    record = requisition_store.get("req-1")
    assert record.is_received and record.patient == {"name": "J", "height": 1.8}
    assert record.service_request_ids == ["sr-1"]


def test_one_not_found_wait_at_a_time_given_up_only_by_its_own_chain(table):
    since, until = "2026-12-01T00:00:00.000Z", "2026-12-01T00:15:00.000Z"
    assert requisition_store.start_not_found_wait("req-1", since, until)
    assert not requisition_store.start_not_found_wait("req-1", "2026-12-01T00:05:00.000Z", "2026-12-01T00:20:00.000Z")
    assert not requisition_store.give_up_not_found("req-1", "2026-11-30T00:00:00.000Z")  # an older chain
    # Once its retry_until has passed, a new chain may start.
    assert requisition_store.start_not_found_wait("req-1", "2026-12-01T00:16:00.000Z", "2026-12-01T00:31:00.000Z")
    assert requisition_store.give_up_not_found("req-1", "2026-12-01T00:16:00.000Z")
    assert requisition_store.get("req-1").outcome is RequisitionOutcome.NOT_FOUND
    # A later success replaces it; an invalid record is written once.
    assert requisition_store.put_invalid("req-2", [{"field": "id", "problem": "missing"}])
    assert not requisition_store.put_invalid("req-2", [])
    assert requisition_store.put_received({**RAW, "id": "req-2"}, "2026-12-03T00:00:00.000Z", [], [])
    assert requisition_store.get("req-2").is_received


def test_published_is_marked_and_an_unknown_requisition_is_none(table):
    requisition_store.put_received(RAW, "2026-12-01T00:00:00.000Z", [], [])
    requisition_store.mark_published("req-1")
    assert requisition_store.get("req-1").published
    assert requisition_store.get("req-unknown") is None


def test_the_listing_pages_newest_first_from_since_with_tokens_bound_to_their_scope(table):
    for day in range(1, 6):
        requisition_store.put_received({**RAW, "id": f"req-{day}"}, f"2026-12-0{day}T00:00:00.000Z", [], [])
    requisition_store.put_invalid("req-bad", [])  # not listed

    first, token = requisition_store.list_received("2026-12-02T00:00:00.000Z", 2, None, "a")
    assert [r.requisition_id for r in first] == ["req-5", "req-4"]
    second, token = requisition_store.list_received("2026-12-02T00:00:00.000Z", 2, token, "a")
    assert [r.requisition_id for r in second] == ["req-3", "req-2"]
    with pytest.raises(InvalidPageToken):
        requisition_store.list_received("2026-12-02T00:00:00.000Z", 2, token, "b")  # another scope
    with pytest.raises(InvalidPageToken):
        requisition_store.list_received("2026-12-02T00:00:00.000Z", 2, "not-a-token", "a")


def test_a_token_naming_a_key_the_query_could_not_return_is_refused_before_dynamodb(table):
    scope = "requisitions a"  # the store binds its tokens to its listing and the caller's scope
    foreign = encode_page_token({"pk": "SR#x", "sk": "SR", "gsi1pk": "REQUISITION", "gsi1sk": "2026#x"}, scope)
    with pytest.raises(InvalidPageToken):
        requisition_store.list_received(None, 1, foreign, "a")
    before_since = encode_page_token(
        {"pk": "REQ#r", "sk": "REQ", "gsi1pk": "REQUISITION", "gsi1sk": "2026-01-01T00:00:00.000Z#r"}, scope
    )
    with pytest.raises(InvalidPageToken):
        requisition_store.list_received("2026-06-01T00:00:00.000Z", 1, before_since, "a")
