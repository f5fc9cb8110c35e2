"""What lab_api does: the lab's view of its orders, and the lab's events and results.

Each event is checked against the stored state before the execution is resumed, so a
forbidden transition is a 409 for the lab, never a failed execution. The task token is
claimed with a conditional write: of two concurrent events, one resumes the wait and the
other waits for the next one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from whoop_bridge import aws
from whoop_bridge.lab import documents
from whoop_bridge.lab.models import DiagnosticReport, LabStatusEvent
from whoop_bridge.lab.statuses import (
    CORRECTION_REPORT_STATUSES,
    TaskBusinessStatus,
    is_allowed,
    lab_event_statuses,
    parse,
    status_after_report,
)
from whoop_bridge.store import lab_store
from whoop_bridge.validation import query_date_time

logger = logging.getLogger(__name__)

# How long a request waits for the execution to finish the previous event and wait again.
# Most steps take well under a second; API Gateway allows 29 s in all.
BUSY_WAIT_SECONDS = 10.0
BUSY_POLL_SECONDS = 0.2
# Workflow states in which the execution is between two waits and will soon wait again.
MOVING = frozenset({"starting", "running", "processing"})
# SendTaskSuccess errors that mean the wait is over (timed out or the execution ended).
WAIT_ENDED = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


class NotFound(LookupError):
    """No such requisition or service request for this lab."""


class TransitionForbidden(Exception):
    """The rules forbid this event now; `allowed` lists what may come next."""

    def __init__(self, message: str, allowed: list[str], current: str | None) -> None:
        super().__init__(message)
        self.allowed = allowed
        self.current = current


class BadQuery(ValueError):
    """A query parameter the API cannot use (400)."""


class Busy(Exception):
    """The execution is still working on the previous event; try again shortly."""


# Views ----------------------------------------------------------------------------------


def service_request_view(item: dict[str, Any], reports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A service request as the lab sees it: status, history, workflow; never a token."""
    view = {
        "id": item["service_request_id"],
        "code": item.get("code"),
        "task_description": item.get("task_description"),
        "status": item.get("fhir_status"),
        "task_business_status": item.get("task_business_status"),
        # As WHOOP sent it at intake: one of the seven, prose such as "Specimen collected", or null.
        "whoop_task_business_status": item.get("whoop_task_business_status"),
        "workflow": item.get("workflow"),
        "next_statuses": [status.value for status in _allowed_events(item)],
        "accepts_results": _accepted_report_statuses(item),
        "history": item.get("history", []),
        "correction_deadline": item.get("correction_deadline"),
        "failure": item.get("failure"),
        # What the bridge could not read of a `held` test (nothing is sent to WHOOP for it).
        "problems": item.get("problems", []),
    }
    if reports is not None:
        view["diagnostic_reports"] = [
            {
                "report_id": report["report_id"],
                "status": report["report_status"],
                "observation_count": report["observation_count"],
                "received_at": report["received_at"],
                "submitted_at": report.get("submitted_at"),
            }
            for report in reports
        ]
    return view


def requisition_view(
    item: dict[str, Any], service_requests: list[dict[str, Any]], *, with_reports: bool
) -> dict[str, Any]:
    """A requisition with each test's status and history."""
    return {
        "id": item["requisition_id"],
        "received_at": item.get("received_at"),
        "created_at": item.get("created_at"),
        "patient": json.loads(item.get("patient_json") or "null"),
        "appointments": json.loads(item.get("appointments_json") or "[]"),
        "open": any(_is_open(sr) for sr in service_requests),
        # Parts of the order the bridge could not read (kept as WHOOP sent them).
        "problems": item.get("problems", []),
        "service_requests": [
            service_request_view(sr, lab_store.list_reports(sr["service_request_id"]) if with_reports else None)
            for sr in service_requests
        ],
    }


def get_requisition(requisition_id: str) -> dict[str, Any]:
    """One order with its tests' statuses, history, reports and `based_on` references
    (`[{type, id, document, state?}]`: a document's fetch state, never its content)."""
    item = lab_store.get_requisition(requisition_id)
    if not item or item.get("outcome") != "received":
        raise NotFound(f"requisition {requisition_id}")
    view = requisition_view(item, lab_store.get_service_requests(item["service_request_ids"]), with_reports=True)
    based_on = documents.references_by_service_request(requisition_id)
    for service_request in view["service_requests"]:
        service_request["based_on"] = based_on.get(service_request["id"], [])
    return view


def get_document(document_id: str) -> dict[str, Any]:
    """A document an order is based on: metadata, state and, once stored, a short-lived link."""
    view = documents.document_view(document_id)
    if view is None:
        raise NotFound(f"document {document_id}")
    return view


# The `status` filter's values: a task_business_status, or whether the order is open.
STATUS_FILTERS = (*(status.value for status in TaskBusinessStatus), "open", "closed")


def list_requisitions(status: str | None, since: str | None, limit: int, next_token: str | None) -> dict[str, Any]:
    """Orders newest first; `status` is a `task_business_status`, `open` or `closed`.

    The status filter applies to each page, so a page may hold fewer than `limit` orders;
    follow `next_token` until it is null. A token belongs to its listing, `since` and
    `status`: with others it is a BadQuery.
    """
    if status and status not in STATUS_FILTERS:
        raise BadQuery(f"status must be one of {', '.join(STATUS_FILTERS)}")
    since_utc = _utc(since) if since else None
    window = {"since": since_utc, "status": status}
    start_key = _decode_token(next_token, lab_store.REQUISITION_LISTING, window)
    if start_key and since_utc and start_key["gsi1sk"] < since_utc:
        raise BadQuery(INVALID_TOKEN)
    items, last_key = lab_store.list_requisitions(since_utc, limit, start_key)
    listed = []
    for item in items:
        service_requests = lab_store.get_service_requests(item["service_request_ids"])
        view = requisition_view(item, service_requests, with_reports=False)
        if _matches(view, status):
            listed.append(view)
    return {"requisitions": listed, "next_token": _encode_token(last_key, lab_store.REQUISITION_LISTING, window)}


def _utc(since: str) -> str:
    """`since` as stored times are written (UTC, milliseconds, Z), so they compare as text."""
    # API Gateway form-decodes the query: the `+` of an offset arrives as a space.
    text = query_date_time(since.strip())
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery("since must be an ISO 8601 time, e.g. 2026-11-01T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return lab_store.iso(moment)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before the year 1 in UTC
        raise BadQuery("since must be an ISO 8601 time whose UTC time is in the years 1 to 9999") from None


def _matches(view: dict[str, Any], status: str | None) -> bool:
    if not status:
        return True
    if status in ("open", "closed"):
        return view["open"] == (status == "open")
    return any(sr["task_business_status"] == status for sr in view["service_requests"])


def list_pending_reviews(limit: int, next_token: str | None) -> dict[str, Any]:
    """Clinical report reviews awaiting the lab, oldest first."""
    start_key = _decode_token(next_token, lab_store.PENDING_REVIEWS, {})
    items, last_key = lab_store.list_pending_reviews(limit, start_key)
    reviews = [
        {
            "id": item["review_id"],
            "status": item["review_status"],
            "received_at": item["received_at"],
            "details": json.loads(item["details_json"]) if item.get("details_json") else None,
        }
        for item in items
    ]
    return {"clinical_report_reviews": reviews, "next_token": _encode_token(last_key, lab_store.PENDING_REVIEWS, {})}


INVALID_TOKEN = "next_token is not one this listing issued for these query parameters; start again without it"


def _listing_digest(listing: str, window: dict[str, Any]) -> str:
    """Binds a page token to its listing and its window and filters."""
    return hashlib.sha256(json.dumps([listing, window], sort_keys=True).encode()).hexdigest()[:16]


def _encode_token(key: dict[str, Any] | None, listing: str, window: dict[str, Any]) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps({"key": key, "of": _listing_digest(listing, window)}).encode()).decode()


def _decode_token(token: str | None, listing: str, window: dict[str, Any]) -> dict[str, Any] | None:
    """The start key in `token`, checked against the listing, window and key shape, so a
    made-up or reused token is a BadQuery and never reaches DynamoDB."""
    if not token:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (
        ValueError,
        UnicodeError,
        RecursionError,
    ):  # RecursionError: a made-up token nested deeper than json can read
        raise BadQuery(INVALID_TOKEN) from None
    if not isinstance(decoded, dict) or decoded.get("of") != _listing_digest(listing, window):
        raise BadQuery(INVALID_TOKEN)
    key = decoded.get("key")
    if not lab_store.is_listing_key(listing, key):
        raise BadQuery(INVALID_TOKEN)
    return key


# Rules ----------------------------------------------------------------------------------


def _is_open(item: dict[str, Any]) -> bool:
    return item.get("workflow") not in ("closed", "failed", "skipped", "held")


def _allowed_events(item: dict[str, Any]) -> list[TaskBusinessStatus]:
    if not _is_open(item) or item.get("token_phase") == "correction":
        return []
    return lab_event_statuses(parse(item.get("task_business_status")))


def _accepted_report_statuses(item: dict[str, Any]) -> list[str]:
    if not _is_open(item):
        return []
    if item.get("token_phase") == "correction":
        return sorted(CORRECTION_REPORT_STATUSES) if _correction_open(item) else []
    current = parse(item.get("task_business_status"))
    accepted = []
    if is_allowed(current, TaskBusinessStatus.PARTIAL_RESULTS_READY):
        accepted += ["partial", "preliminary"]
    if is_allowed(current, TaskBusinessStatus.FULL_RESULTS_READY):
        accepted.append("final")
    return accepted


def _correction_open(item: dict[str, Any]) -> bool:
    deadline = item.get("correction_deadline")
    return bool(deadline) and datetime.fromisoformat(deadline.replace("Z", "+00:00")) > datetime.now(UTC)


def _forbidden(item: dict[str, Any], message: str) -> TransitionForbidden:
    return TransitionForbidden(
        message,
        [status.value for status in _allowed_events(item)],
        item.get("task_business_status"),
    )


# Events and results ---------------------------------------------------------------------


def apply_status_event(
    service_request_id: str, event: LabStatusEvent, *, deadline: float | None = None
) -> dict[str, Any]:
    """Resume one test's execution with `{status, reason?}`; 409s come as TransitionForbidden.
    `deadline` (time.monotonic) ends the wait for a busy test; BUSY_WAIT_SECONDS from now by default."""

    def check(item: dict[str, Any]) -> dict[str, Any]:
        if event.status not in _allowed_events(item):
            raise _forbidden(
                item, f"{event.status.value} is not allowed after {item.get('task_business_status') or 'a new order'}"
            )
        return {"kind": "status", "task_business_status": event.status.value, "reason": event.reason}

    return _resume(service_request_id, check, deadline=deadline)


def apply_requisition_event(requisition_id: str, event: LabStatusEvent) -> dict[str, Any]:
    """Apply `{status, reason?}` to each test of the order for which it is a step forward.

    Every test is reported: `applied`, `unchanged` (the rules forbid it for that test now:
    its status and what may follow are given) or `busy` (its previous event was still being
    sent when the shared wait ran out: send the event again). 409 only when it applies to
    none: `busy` when some test may take it shortly, else `transition_forbidden`. All tests
    share one wait of BUSY_WAIT_SECONDS, well within API Gateway's 29 s.
    """
    item = lab_store.get_requisition(requisition_id)
    if not item or item.get("outcome") != "received":
        raise NotFound(f"requisition {requisition_id}")
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    outcomes = []
    for sr in lab_store.get_service_requests(item["service_request_ids"]):
        sr_id = sr["service_request_id"]
        try:
            applied = apply_status_event(sr_id, event, deadline=deadline)
            outcomes.append({**applied, "code": sr.get("code"), "outcome": "applied"})
        except TransitionForbidden as forbidden:
            outcomes.append(
                {
                    "service_request_id": sr_id,
                    "code": sr.get("code"),
                    "outcome": "unchanged",
                    "message": str(forbidden),
                    "task_business_status": forbidden.current,
                    "allowed_next_statuses": forbidden.allowed,
                }
            )
        except Busy:
            outcomes.append({"service_request_id": sr_id, "code": sr.get("code"), "outcome": "busy"})
    if not any(outcome["outcome"] == "applied" for outcome in outcomes):
        if any(outcome["outcome"] == "busy" for outcome in outcomes):
            raise Busy(requisition_id)
        raise TransitionForbidden(f"{event.status.value} is not a step forward for any test of the order", [], None)
    return {"requisition_id": requisition_id, "service_requests": outcomes}


def submit_results(service_request_id: str, report: DiagnosticReport, as_written: dict[str, Any]) -> dict[str, Any]:
    """Keep the lab's report and resume the execution to submit it to WHOOP."""
    report_id = str(uuid.uuid4())

    def check(item: dict[str, Any]) -> dict[str, Any]:
        if report.status not in _accepted_report_statuses(item):
            if report.status in CORRECTION_REPORT_STATUSES:
                message = (
                    f"a {report.status} report is accepted only after the final report, within the correction window"
                )
            else:
                message = f"a {report.status} report is not accepted after {item.get('task_business_status') or 'a new order'}"
            raise _forbidden(item, message)
        target = status_after_report(report.status)
        report_kind = (
            "correction"
            if target is None
            else "final"
            if target is TaskBusinessStatus.FULL_RESULTS_READY
            else "partial"
        )
        return {"kind": "report", "report_id": report_id, "report_status": report.status, "report_kind": report_kind}

    def keep(payload: dict[str, Any]) -> None:
        # Durable before the execution hears of it: an accepted report is never lost.
        lab_store.put_report(service_request_id, report_id, as_written, payload["report_kind"])

    accepted = _resume(service_request_id, check, keep)
    return {**accepted, "report_id": report_id}


def _resume(
    service_request_id: str,
    check: Callable[[dict[str, Any]], dict[str, Any]],
    keep: Callable[[dict[str, Any]], None] | None = None,
    *,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Wait (until `deadline`, briefly) for the execution's task token, check the event,
    claim the token, `keep` what must be stored first, and send the event to the execution."""
    if deadline is None:
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        item = lab_store.get_service_request(service_request_id)
        if item is None:
            raise NotFound(f"service request {service_request_id}")
        token = item.get("task_token")
        if not token and item.get("workflow") in MOVING:
            if time.monotonic() >= deadline:
                raise Busy(service_request_id)
            time.sleep(BUSY_POLL_SECONDS)
            continue
        if not token:
            raise _forbidden(item, f"the test is {item.get('workflow')}: no more events are accepted")
        payload = check(item)
        payload["event_id"] = str(uuid.uuid4())
        try:
            lab_store.claim_task_token(service_request_id, token, {**payload, "received_at": lab_store.now_iso()})
        except lab_store.ServiceRequestBusy:
            continue  # another event took this wait; check again against what it left
        workflow = item.get("workflow", "awaiting_lab_event")
        if keep:
            try:
                keep(payload)
            except Exception:
                lab_store.restore_task_token(service_request_id, token, workflow)
                raise
        _send(service_request_id, token, workflow, payload)
        logger.info("lab event accepted", extra={"service_request_id": service_request_id, "kind": payload["kind"]})
        return {"service_request_id": service_request_id, "event_id": payload["event_id"], "accepted": payload["kind"]}


def _send(service_request_id: str, token: str, workflow: str, payload: dict[str, Any]) -> None:
    try:
        aws.client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(payload))
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in WAIT_ENDED:
            lab_store.set_workflow(service_request_id, "closed", closed_reason=f"wait ended ({code})")
            raise TransitionForbidden("the test's workflow has ended: no more events are accepted", [], None) from None
        lab_store.restore_task_token(service_request_id, token, workflow)
        raise
