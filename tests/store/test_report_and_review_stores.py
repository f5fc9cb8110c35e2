"""report_store and review_store on a moto LabTable: keys, the report kept as written,
the review stored once, and the pending reviews' pages."""

from __future__ import annotations

import json

import pytest
from lab_tables import lab_table

from whoop_bridge.models.diagnostic_report import ReportKind
from whoop_bridge.store import report_store, review_store
from whoop_bridge.store.dynamo import InvalidPageToken

BODY = {"status": "final", "observations": [{"code": "HDL", "value_numeric": 185}, {"code": "X", "value_text": "A+"}]}


@pytest.fixture
def table(monkeypatch):
    yield from lab_table(monkeypatch)


def test_a_report_is_kept_as_written_under_its_service_request(table):
    record = report_store.put("sr-1", "rep-1", BODY, ReportKind.FINAL)
    item = table.get_item(Key={"pk": "SR#sr-1", "sk": f"REPORT#{record.received_at}#rep-1"})["Item"]
    assert (item["kind"], item["report_kind"], item["observation_count"]) == ("diagnostic_report", "final", 2)
    assert item["report_json"] == json.dumps(BODY, separators=(",", ":"))

    report_store.put("sr-1", "rep-2", {"status": "cancelled"}, ReportKind.CORRECTION)
    assert [r.report_id for r in report_store.list_for("sr-1")] == ["rep-1", "rep-2"]
    assert report_store.get("sr-1", "rep-1").body == BODY
    assert report_store.get("sr-1", "rep-9") is None and report_store.list_for("sr-2") == []


def test_a_submitted_report_keeps_its_outbox_until_cleared(table):
    record = report_store.put("sr-1", "rep-1", BODY, ReportKind.FINAL)
    report_store.mark_submitted(record, {"detail_type": "service_request.report_submitted", "detail": {}})
    submitted = report_store.get("sr-1", "rep-1")
    assert submitted.submitted_at and submitted.outbox["detail_type"] == "service_request.report_submitted"
    report_store.clear_outbox(submitted)
    assert report_store.get("sr-1", "rep-1").outbox is None
    assert len(report_store.list_for("sr-1")) == 1


def test_a_started_submission_without_an_answer_is_uncertain_until_answered(table):
    record = report_store.put("sr-1", "rep-1", BODY, ReportKind.FINAL)
    assert not report_store.get("sr-1", "rep-1").uncertain  # never started: not uncertain

    started = report_store.start_submission(record)
    stored = report_store.get("sr-1", "rep-1")
    assert started and stored.submission_started_at == started and stored.uncertain

    report_store.record_refusal(stored, 503)  # WHOOP answered no
    refused = report_store.get("sr-1", "rep-1")
    assert refused.submission_answer == 503 and not refused.uncertain

    assert report_store.start_submission(refused)  # a new attempt forgets the old answer
    assert report_store.get("sr-1", "rep-1").uncertain

    report_store.mark_submitted(refused, {"detail_type": "x", "detail": {}})
    assert not report_store.get("sr-1", "rep-1").uncertain
    assert report_store.start_submission(refused) is None  # accepted: no new attempt is noted
    report_store.record_refusal(refused, 400)  # nor a refusal over an acceptance
    assert report_store.get("sr-1", "rep-1").submission_answer is None


def test_a_review_is_stored_once_and_marked_published(table):
    assert review_store.put_if_new("rev-1", {"reason": "flagged"})
    assert not review_store.put_if_new("rev-1", None)
    item = table.get_item(Key={"pk": "REVIEW#rev-1", "sk": "REVIEW"})["Item"]
    assert (item["gsi1pk"], item["review_status"], item["details_json"]) == (
        "REVIEW#pending",
        "pending",
        '{"reason": "flagged"}',
    )
    review_store.mark_published("rev-1")
    review = review_store.get("rev-1")
    assert review.published and review.details == {"reason": "flagged"}
    assert review_store.get("rev-unknown") is None


def test_pending_reviews_page_oldest_first_with_their_own_tokens(table):
    for n in range(3):
        review_store.put_if_new(f"rev-{n}", None)
    first, token = review_store.list_pending(2, None)
    second, last = review_store.list_pending(2, token)
    assert [r.review_id for r in first + second] == ["rev-0", "rev-1", "rev-2"] and last is None
    assert first[0].view() == {"id": "rev-0", "status": "pending", "received_at": first[0].received_at, "details": None}
    with pytest.raises(InvalidPageToken):
        review_store.list_pending(2, "bm90IGEgdG9rZW4")
