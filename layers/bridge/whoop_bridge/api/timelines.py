"""The two timeline routes' answers and their documented JSON shapes:
`GET /lab/requisitions/{id}/timeline` (lab/timeline.py) and
`GET /connections/{client_user_id}/timeline` (members/timeline.py), each as JSON or as
an SVG picture (whoop_bridge/pictures) by the request's Accept (api/negotiation.py).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from whoop_bridge.api.negotiation import json_or_svg

_TIME = {"type": ["string", "null"], "description": "UTC ISO 8601 (`Z`)"}
_ENTRY = {
    "type": "object",
    "required": ["at", "kind", "label"],
    "description": (
        "One timed entry. By kind: status and issue: task_business_status, event_id (issue: reason); "
        "report: report_id, report_status, observation_count, received_at, submitted_at (null until WHOOP "
        "accepted it; `at` is submitted_at, else received_at); failure: error; resume: what the resume recorded; "
        "document: document_id, state, attempts; closed: reason"
    ),
    "properties": {
        "at": {"type": "string", "description": "UTC ISO 8601 (`Z`)"},
        "kind": {"type": "string", "enum": ["status", "issue", "report", "failure", "resume", "document", "closed"]},
        "label": {"type": "string", "description": "what the picture writes at the mark"},
    },
}
REQUISITION_TIMELINE = {
    "type": "object",
    "required": ["requisition_id", "outcome", "received_at", "open", "start", "end", "service_requests"],
    "properties": {
        "requisition_id": {"type": "string"},
        "received_at": _TIME,
        "outcome": {"type": "string", "description": "what intake made of the order: received, awaiting_whoop, ..."},
        "open": {"type": "boolean", "description": "whether any test still accepts events"},
        "start": {**_TIME, "description": "the first time on the timeline"},
        "end": {**_TIME, "description": "the last time on the timeline"},
        "service_requests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["service_request_id", "code", "workflow", "task_business_status", "entries"],
                "properties": {
                    "service_request_id": {"type": "string"},
                    "code": {"type": ["string", "null"]},
                    "workflow": {"type": "string"},
                    "task_business_status": {"type": ["string", "null"]},
                    "entries": {"type": "array", "items": _ENTRY, "description": "oldest first"},
                },
            },
        },
    },
}
_STEP = {
    "type": "object",
    "required": ["step", "state", "pages", "records", "started_at", "ended_at", "updated_at"],
    "properties": {
        "step": {"type": "string", "description": "a record type, or profile"},
        "state": {"type": "string", "description": "queued, running, done or a skipped_* outcome"},
        "pages": {"type": "integer"},
        "records": {"type": "integer", "description": "records read from WHOOP and stored"},
        "started_at": _TIME,
        "ended_at": {**_TIME, "description": "null while queued or running"},
        "updated_at": _TIME,
    },
}
MEMBER_TIMELINE = {
    "type": "object",
    "required": ["client_user_id", "status", "start", "end", "jobs"],
    "properties": {
        "client_user_id": {"type": "string"},
        "status": {"type": "string", "description": "the connection's status"},
        "start": _TIME,
        "end": _TIME,
        "jobs": {
            "type": "array",
            "description": "the backfill, then the last reconciliation; a job never run is left out",
            "items": {
                "type": "object",
                "required": ["cause", "state", "started_at", "ended_at", "pages", "records", "steps"],
                "properties": {
                    "cause": {"type": "string", "enum": ["backfill", "reconciliation"]},
                    "state": {"type": "string", "enum": ["running", "done", "finished_with_skips"]},
                    "started_at": _TIME,
                    "ended_at": _TIME,
                    "pages": {"type": "integer"},
                    "records": {"type": "integer"},
                    "steps": {"type": "array", "items": _STEP},
                },
            },
        },
    },
}


def requisition_timeline(requisition_id: str, accept: str | None) -> Response:
    """The order's timeline as JSON or SVG; the lab's NotFound for an unknown order."""
    from whoop_bridge.lab import timeline  # the lab API's function only
    from whoop_bridge.pictures.order import order_picture

    return json_or_svg(accept, lambda: timeline.requisition_timeline(requisition_id), order_picture)


def member_timeline(client_user_id: str, accept: str | None) -> Response:
    """The member's sync jobs as JSON or SVG; members.views.NoConnection for a member never connected."""
    from whoop_bridge.members import timeline  # the member API's function only
    from whoop_bridge.pictures.member import member_picture

    return json_or_svg(accept, lambda: timeline.member_timeline(client_user_id), member_picture)
