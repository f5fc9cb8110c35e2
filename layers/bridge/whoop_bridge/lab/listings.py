"""The lab API's listings: its orders newest first, and the clinical report reviews awaiting
it. Pages follow `next_token`, bound to the listing and its query parameters (the stores
issue and check them with store/dynamo.py's codec)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from whoop_bridge import times
from whoop_bridge.lab.errors import BadQuery
from whoop_bridge.lab.ports import REAL, LabPorts
from whoop_bridge.lab.views import requisition_view
from whoop_bridge.models.listing import InvalidPageToken
from whoop_bridge.models.task_status import TaskBusinessStatus
from whoop_bridge.validation import query_date_time

# The `status` filter's values: a task_business_status, or whether the order is open.
STATUS_FILTERS = (*(status.value for status in TaskBusinessStatus), "open", "closed")
INVALID_TOKEN = "next_token is not one this listing issued for these query parameters; start again without it"


def list_requisitions(
    status: str | None, since: str | None, limit: int, next_token: str | None, ports: LabPorts = REAL
) -> dict[str, Any]:
    """Orders newest first, `{requisitions: [view], next_token}`; `status` is a
    `task_business_status`, `open` or `closed`; `since` an ISO 8601 time.

    The status filter applies to each page, so a page may hold fewer than `limit` orders;
    follow `next_token` until it is null. A token belongs to its listing, `since` and
    `status`: with others it is a BadQuery.
    """
    if status and status not in STATUS_FILTERS:
        raise BadQuery(f"status must be one of {', '.join(STATUS_FILTERS)}")
    since_utc = _utc(since) if since else None
    scope = json.dumps({"since": since_utc, "status": status}, sort_keys=True)
    try:
        records, token = ports.requisitions.list_received(since_utc, limit, next_token, scope)
    except InvalidPageToken:
        raise BadQuery(INVALID_TOKEN) from None
    listed = []
    for record in records:
        service_requests = ports.service_requests.get_many(record.service_request_ids)
        view = requisition_view(record, service_requests, with_reports=False, ports=ports)
        if _matches(view, status):
            listed.append(view)
    return {"requisitions": listed, "next_token": token}


def _utc(since: str) -> str:
    """`since` as stored times are written (UTC, milliseconds, Z), so they compare as text;
    a time without an offset is UTC."""
    # API Gateway form-decodes the query: the `+` of an offset arrives as a space.
    text = query_date_time(since.strip())
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery("since must be an ISO 8601 time, e.g. 2026-11-01T00:00:00Z") from None
    try:
        return times.iso(moment)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before the year 1 in UTC
        raise BadQuery("since must be an ISO 8601 time whose UTC time is in the years 1 to 9999") from None


def _matches(view: dict[str, Any], status: str | None) -> bool:
    if not status:
        return True
    if status in ("open", "closed"):
        return view["open"] == (status == "open")
    return any(sr["task_business_status"] == status for sr in view["service_requests"])


def list_pending_reviews(limit: int, next_token: str | None, ports: LabPorts = REAL) -> dict[str, Any]:
    """Clinical report reviews awaiting the lab, oldest first: `{clinical_report_reviews:
    [{id, status, received_at, details}], next_token}`."""
    try:
        records, token = ports.reviews.list_pending(limit, next_token)
    except InvalidPageToken:
        raise BadQuery(INVALID_TOKEN) from None
    return {"clinical_report_reviews": [record.view() for record in records], "next_token": token}
