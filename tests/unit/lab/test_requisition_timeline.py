"""One order's timeline (lab/timeline.py) from in-memory stores: each test's statuses,
issues, reports, failures, documents and closing as timed entries, oldest first."""

from __future__ import annotations

import pytest
from fakes.lab import fake_ports

from whoop_bridge.lab.errors import NotFound
from whoop_bridge.lab.timeline import requisition_timeline
from whoop_bridge.models import resume as resume_rules
from whoop_bridge.models.diagnostic_report import ReportKind
from whoop_bridge.models.document import BasedOn, DocumentState
from whoop_bridge.models.requisition import RequisitionOutcome
from whoop_bridge.models.service_request import ServiceRequestRecord, WorkflowState
from whoop_bridge.models.task_status import TaskBusinessStatus

RECEIVED = "2026-12-01T04:00:00.000Z"


def _history(*entries: tuple[str, str]) -> list[dict[str, str]]:
    return [{"task_business_status": status, "at": at, "event_id": f"ev-{i}"} for i, (status, at) in enumerate(entries)]


@pytest.fixture
def ports():
    ports = fake_ports()
    ports.requisitions.put_received({"id": "req-1", "patient": {"name": "made up"}}, RECEIVED, ["sr-a", "sr-b"], [])
    ports.service_requests.add(
        ServiceRequestRecord(
            "sr-a",
            "req-1",
            code="CBC",
            workflow=WorkflowState.AWAITING_CORRECTION,
            task_business_status=TaskBusinessStatus.FULL_RESULTS_READY,
            history=_history(
                ("ORDER_CONFIRMED", "2026-12-01T04:00:01.000Z"),
                ("APPOINTMENT_ATTENDED", "2026-12-01T04:00:05.000Z"),
                ("FULL_RESULTS_READY", "2026-12-01T04:00:09.000Z"),
            ),
        )
    )
    issue = _history(("ORDER_CONFIRMED", "2026-12-01T04:00:01.500Z"), ("RESULTS_ISSUE", "2026-12-01T04:00:07.000Z"))
    issue[1]["reason"] = "Sample haemolysed"
    ports.service_requests.add(
        ServiceRequestRecord(
            "sr-b",
            "req-1",
            code="HBA1C",
            workflow=WorkflowState.CLOSED,
            task_business_status=TaskBusinessStatus.RESULTS_ISSUE,
            history=issue,
            closed_at="2026-12-01T04:00:08.000Z",
        )
    )
    return ports


def _kinds(test):
    return [(entry.kind.value, entry.label) for entry in test.entries]


def test_each_test_has_its_statuses_and_issue_oldest_first_with_the_order_received_and_open(ports):
    timeline = requisition_timeline("req-1", ports)

    assert (timeline.requisition_id, timeline.outcome, timeline.received_at) == ("req-1", "received", RECEIVED)
    assert timeline.open is True  # CBC still takes corrections
    cbc, hba1c = timeline.tests
    assert (cbc.code, cbc.workflow, cbc.task_business_status) == ("CBC", "awaiting_correction", "FULL_RESULTS_READY")
    assert _kinds(cbc) == [
        ("status", "ORDER_CONFIRMED"),
        ("status", "APPOINTMENT_ATTENDED"),
        ("status", "FULL_RESULTS_READY"),
    ]
    assert _kinds(hba1c) == [("status", "ORDER_CONFIRMED"), ("issue", "RESULTS_ISSUE"), ("closed", "closed")]
    assert hba1c.entries[1].details["reason"] == "Sample haemolysed"


def test_reports_are_placed_at_their_submission_and_unsent_ones_at_their_receipt(ports):
    body = {"status": "final", "observations": [{"code": "WBC", "value_numeric": 6.1}]}
    sent = ports.reports.put("sr-a", "rep-1", body, ReportKind.FINAL)
    ports.reports.records[0].received_at = "2026-12-01T04:00:08.000Z"
    ports.reports.mark_submitted(sent, {})
    ports.reports.records[0].submitted_at = "2026-12-01T04:00:08.500Z"
    ports.reports.put("sr-a", "rep-2", {"status": "amended", "observations": []}, ReportKind.CORRECTION)
    ports.reports.records[1].received_at = "2026-12-01T04:00:20.000Z"

    cbc = requisition_timeline("req-1", ports).tests[0]

    reports = [entry for entry in cbc.entries if entry.kind.value == "report"]
    assert [(r.at, r.label) for r in reports] == [
        ("2026-12-01T04:00:08.500Z", "final report"),
        ("2026-12-01T04:00:20.000Z", "amended report (not sent yet)"),
    ]
    assert reports[0].details["observation_count"] == 1
    # Before FULL_RESULTS_READY (04:00:09), after ATTENDED: the entries are in time order.
    assert [entry.label for entry in cbc.entries][2:4] == ["final report", "FULL_RESULTS_READY"]
    # Never the results themselves.
    assert "6.1" not in str(requisition_timeline("req-1", ports).as_dict())


def test_a_failure_shows_its_error_name_and_a_resume_keeps_the_failure_it_recovered_from(ports):
    ports.service_requests.record_failure(
        "sr-a", {"error": "WhoopTransientError", "cause": "a long cause", "at": "2026-12-01T04:01:00.000Z"}
    )
    record = ports.service_requests.get("sr-a")
    entry = resume_rules.history_entry(record, "sr-a-resume-1", "2026-12-01T04:02:00.000Z", ["FULL_RESULTS_READY"])
    assert ports.service_requests.claim_resume("sr-a", 1, entry)  # the failure is forgotten on the record
    ports.service_requests.record_failure(
        "sr-a", {"error": "States.Timeout", "cause": "another cause", "at": "2026-12-01T04:03:00.000Z"}
    )

    timeline = requisition_timeline("req-1", ports)

    entries = timeline.tests[0].entries
    assert [(e.kind.value, e.label) for e in entries[-3:]] == [
        ("failure", "WhoopTransientError"),
        ("resume", "resumed"),
        ("failure", "States.Timeout"),
    ]
    assert entries[-2].details == {"execution": "sr-a-resume-1", "resending": ["FULL_RESULTS_READY"]}
    assert entries[-1].details == {"error": "States.Timeout"}
    # The resume's history entry is not a status; no cause is shown.
    assert [e.label for e in entries if e.kind.value == "status"][-1] == "FULL_RESULTS_READY"
    assert "cause" not in str(timeline.as_dict())


def test_fetched_and_given_up_documents_are_entries_and_pending_ones_are_not(ports):
    for document_id in ("doc-1", "doc-2", "doc-3"):
        ports.documents.register(document_id, "DocumentReference", "req-1", ["sr-a"])
    ports.documents.put_references(
        "req-1", [BasedOn("sr-a", "DocumentReference", d, True) for d in ("doc-1", "doc-2", "doc-3")]
    )
    ports.documents.mark_stored("doc-1", {}, {})
    ports.documents.mark_unavailable("doc-2", "not_found")

    entries = requisition_timeline("req-1", ports).tests[0].entries

    documents = [(e.details["document_id"], e.details["state"]) for e in entries if e.kind.value == "document"]
    assert sorted(documents) == [("doc-1", DocumentState.STORED.value), ("doc-2", DocumentState.UNAVAILABLE.value)]


def test_the_json_shape_holds_the_span_and_flattened_entries(ports):
    shown = requisition_timeline("req-1", ports).as_dict()

    assert set(shown) == {"requisition_id", "received_at", "outcome", "open", "start", "end", "service_requests"}
    assert (shown["start"], shown["end"]) == (RECEIVED, "2026-12-01T04:00:09.000Z")
    assert shown["service_requests"][0]["entries"][0] == {
        "at": "2026-12-01T04:00:01.000Z",
        "kind": "status",
        "label": "ORDER_CONFIRMED",
        "task_business_status": "ORDER_CONFIRMED",
        "event_id": "ev-0",
    }
    assert "patient" not in str(shown)


def test_an_unknown_order_is_not_found_and_one_not_received_yet_has_no_tests(ports):
    with pytest.raises(NotFound):
        requisition_timeline("req-unknown", ports)
    ports.requisitions.start_not_found_wait("req-2", "2026-12-01T05:00:00.000Z", "2026-12-01T05:10:00.000Z")

    waiting = requisition_timeline("req-2", ports)

    assert (waiting.outcome, waiting.tests, waiting.open) == (RequisitionOutcome.AWAITING_WHOOP.value, [], False)
