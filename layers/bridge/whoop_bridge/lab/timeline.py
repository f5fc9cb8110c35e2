"""One order's timeline (`GET /lab/requisitions/{id}/timeline`): each test's history as
timed entries, from what the stores keep (models/timeline.py gives the shape).

- statuses and issues: the service request's `history` (WHOOP accepted them), an issue with
  its `reason`;
- reports: the report store, at `submitted_at` (WHOOP accepted it) or, not yet submitted,
  at `received_at`;
- failures and resumes: the service request's `failure` (`{error, cause, at}`; the error
  name only) and each resume's `history` entry (`{event: "resumed", at, execution,
  resending, failure: {error, at}}`, models/resume.py), which keeps the failure it
  recovered from;
- documents: the documents its `based_on` names, once fetched or given up (one query and
  one batch read for the whole order);
- closed: when the test stopped accepting (`closed_at`).

A task token, a report's results and a failure's cause are never in it.
"""

from __future__ import annotations

from typing import Any

from whoop_bridge.lab.errors import NotFound
from whoop_bridge.lab.ports import REAL, LabPorts
from whoop_bridge.models.diagnostic_report import DiagnosticReportRecord
from whoop_bridge.models.document import DocumentRecord, DocumentState
from whoop_bridge.models.resume import RESUMED
from whoop_bridge.models.service_request import ServiceRequestRecord
from whoop_bridge.models.task_status import ISSUE_STATUSES, known
from whoop_bridge.models.timeline import EntryKind, RequisitionTimeline, TestTimeline, TimelineEntry

# A failure's `error` is a name (ours or Step Functions'); kept short in the entry.
MAX_ERROR_LENGTH = 80


def requisition_timeline(requisition_id: str, ports: LabPorts = REAL) -> RequisitionTimeline:
    """The order's timeline: received time, intake outcome, each test's entries oldest
    first. NotFound when the bridge never heard of the order."""
    record = ports.requisitions.get(requisition_id)
    if record is None:
        raise NotFound(f"requisition {requisition_id}")
    service_requests = ports.service_requests.get_many(record.service_request_ids)
    documents = _documents_by_service_request(requisition_id, ports)
    tests = [
        TestTimeline(
            service_request_id=sr.service_request_id,
            code=sr.code,
            workflow=sr.workflow.value,
            task_business_status=sr.task_business_status.value if sr.task_business_status else None,
            entries=service_request_entries(
                sr, ports.reports.list_for(sr.service_request_id), documents.get(sr.service_request_id, [])
            ),
        )
        for sr in service_requests
    ]
    return RequisitionTimeline(
        requisition_id=record.requisition_id,
        outcome=record.outcome.value,
        received_at=record.received_at,
        open=any(sr.is_open for sr in service_requests),
        tests=tests,
    )


def service_request_entries(
    record: ServiceRequestRecord, reports: list[DiagnosticReportRecord], documents: list[DocumentRecord]
) -> list[TimelineEntry]:
    """A test's entries, oldest first (stable: at equal times, in the order listed here)."""
    history = [entry for entry in record.history if entry.get("at")]
    resumes = [entry for entry in history if entry.get("event") == RESUMED]
    entries = [_status_entry(entry) for entry in history if entry.get("task_business_status")]
    entries += [_report_entry(report) for report in reports]
    failures = [resume.get("failure") or {} for resume in resumes] + [record.failure or {}]
    # One failure per time: a resumed one is kept in its resume's entry only.
    entries += list({f["at"]: _failure_entry(f) for f in failures if f.get("at")}.values())
    entries += [
        TimelineEntry(
            resume["at"],
            EntryKind.RESUME,
            "resumed",
            {"execution": resume.get("execution"), "resending": list(resume.get("resending") or [])},
        )
        for resume in resumes
    ]
    entries += [entry for document in documents if (entry := _document_entry(document))]
    if record.closed_at:
        entries.append(TimelineEntry(record.closed_at, EntryKind.CLOSED, "closed", {"reason": record.closed_reason}))
    return sorted(entries, key=lambda entry: entry.at)


def _status_entry(entry: dict[str, Any]) -> TimelineEntry:
    status = str(entry.get("task_business_status"))
    details = {"task_business_status": status, "event_id": entry.get("event_id")}
    if known(status) in ISSUE_STATUSES:
        return TimelineEntry(entry["at"], EntryKind.ISSUE, status, {**details, "reason": entry.get("reason")})
    return TimelineEntry(entry["at"], EntryKind.STATUS, status, details)


def _report_entry(report: DiagnosticReportRecord) -> TimelineEntry:
    details = {
        "report_id": report.report_id,
        "report_status": report.report_status,
        "observation_count": report.observation_count,
        "received_at": report.received_at,
        "submitted_at": report.submitted_at,
    }
    label = f"{report.report_status} report" + ("" if report.submitted_at else " (not sent yet)")
    return TimelineEntry(report.submitted_at or report.received_at, EntryKind.REPORT, label, details)


def _failure_entry(failure: dict[str, Any]) -> TimelineEntry:
    error = str(failure.get("error") or "failed")[:MAX_ERROR_LENGTH]
    return TimelineEntry(failure["at"], EntryKind.FAILURE, error, {"error": error})


def _document_entry(document: DocumentRecord) -> TimelineEntry | None:
    at = document.fetched_at if document.state.is_fetched else document.unavailable_at
    if not at or document.state is DocumentState.PENDING:
        return None
    details = {"document_id": document.document_id, "state": document.state.value, "attempts": document.attempts}
    return TimelineEntry(at, EntryKind.DOCUMENT, f"document {document.state.value}", details)


def _documents_by_service_request(requisition_id: str, ports: LabPorts) -> dict[str, list[DocumentRecord]]:
    references = [reference for reference in ports.documents.get_references(requisition_id) if reference.document]
    if not references:
        return {}
    records = ports.documents.get_many(sorted({reference.id for reference in references}))
    found: dict[str, list[DocumentRecord]] = {}
    for reference in references:
        if reference.id in records:
            found.setdefault(reference.service_request_id, []).append(records[reference.id])
    return found
