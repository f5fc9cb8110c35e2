"""The lab's API (IAM): its orders, and its progress events and results.

Bodies are validated by the Powertools event handler against the pydantic models, behind
the shared guard and error mapping (whoop_bridge.api); every POST takes `Idempotency-Key`.
The OpenAPI document (every route, answer, body and header, SigV4) is served at
/lab/openapi.json.
"""

from enum import StrEnum
from typing import Annotated, Optional

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from whoop_bridge.api import errors, timelines
from whoop_bridge.api.bodies import JSON, BusyBody, NotConfiguredBody, TransitionForbiddenBody, json_response, problem
from whoop_bridge.api.guard import lambda_handler
from whoop_bridge.api.idempotency import IdempotencyKey
from whoop_bridge.api.negotiation import accept_header
from whoop_bridge.api.openapi import ANSWERS, RETRY_AFTER_HEADER, Routes, configure, link, ok, ok_or_picture, schema_of
from whoop_bridge.lab import intake, listings, resume, status_updates, views
from whoop_bridge.lis import negotiation
from whoop_bridge.models.identifiers import MAX_RESOURCE_ID_LENGTH
from whoop_bridge.models.lab_results import DiagnosticReport, LabStatusEvent, TestDataRequest
from whoop_bridge.models.resume import ResumeRequest
from whoop_bridge.observability import get_logger
from whoop_bridge.whoop.partner import partner_client

logger = get_logger("lab_api")
app = APIGatewayRestResolver(enable_validation=True)
routes = Routes(app, "lab")
# An unknown status filter is a 400, not an empty page.
StatusFilter = StrEnum("StatusFilter", {value: value for value in listings.STATUS_FILTERS})

# Success bodies, as far as a caller relies on them (the views may grow fields).
_SERVICE_REQUEST = {
    "type": "object",
    "required": ["id", "task_business_status", "history"],
    "properties": {
        "id": {"type": "string"},
        "code": {"type": ["string", "null"]},
        "task_business_status": {"type": ["string", "null"], "description": "WHOOP's task_business_status now"},
        "next_statuses": {"type": "array", "items": {"type": "string"}},
        "accepts_results": {"type": "array", "items": {"type": "string"}},
        "history": {"type": "array", "items": {"type": "object"}},
        "based_on": {
            "type": "array",
            "description": "WHOOP's based_on references (GET /lab/requisitions/{id} only); a document's fetch state, never its content",
            "items": {
                "type": "object",
                "required": ["type", "id", "document"],
                "properties": {
                    "type": {"type": "string"},
                    "id": {"type": "string"},
                    "document": {"type": "boolean"},
                    "state": {"type": "string", "enum": ["pending", "stored", "linked", "unavailable"]},
                },
            },
        },
    },
}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_DOCUMENT = {
    "type": "object",
    "required": ["id", "state", "requisition_ids", "service_request_ids", "attempts"],
    "properties": {
        "id": {"type": "string"},
        "state": {"type": "string", "enum": ["pending", "stored", "linked", "unavailable"]},
        "document_type": _NULLABLE_TEXT,
        "created_at": _NULLABLE_TEXT,
        "updated_at": _NULLABLE_TEXT,
        "bundle_id": _NULLABLE_TEXT,
        "requisition_ids": {"type": "array", "items": {"type": "string"}},
        "service_request_ids": {"type": "array", "items": {"type": "string"}},
        "attempts": {"type": "integer", "description": "fetch attempts so far"},
        "last_failure": {
            **_NULLABLE_TEXT,
            "description": "why the last attempt failed, e.g. not_found, http_503, timeout",
        },
        "fetched_at": _NULLABLE_TEXT,
        "content_type": {"type": "string", "description": "stored only"},
        "size": {"type": "integer", "description": "bytes; stored only"},
        "sha256": {"type": "string", "description": "stored only"},
        "download_url": {
            "type": "string",
            "description": "stored only: a presigned GET of the bytes, valid 300 seconds",
        },
        "download_url_expires_at": {"type": "string", "format": "date-time"},
        "url": {"type": "string", "description": "linked only: WHOOP's link to the document"},
    },
}
_REQUISITION = {
    "type": "object",
    "required": ["id", "open", "service_requests"],
    "properties": {
        "id": {"type": "string"},
        "open": {"type": "boolean"},
        "service_requests": {"type": "array", "items": _SERVICE_REQUEST},
    },
}
_NEXT_TOKEN = {"type": ["string", "null"], "description": "pass as next_token for the next page; null on the last"}
_ACCEPTED = {
    "type": "object",
    "required": ["service_request_id", "event_id", "accepted"],
    "properties": {
        "service_request_id": {"type": "string"},
        "event_id": {"type": "string"},
        "accepted": {"type": "string", "enum": ["status", "report"]},
    },
}


# WHOOP's ids are uuids; a longer one names nothing, and DynamoDB would refuse it as a key (a 5xx).
RequisitionId = Annotated[str, Path(max_length=MAX_RESOURCE_ID_LENGTH, description="WHOOP's id of the requisition")]
ServiceRequestId = Annotated[
    str, Path(max_length=MAX_RESOURCE_ID_LENGTH, description="WHOOP's id of the service request (one test)")
]
StatusEventBody = Annotated[LabStatusEvent, Body()]
ReportBody = Annotated[DiagnosticReport, Body()]


# A lab event's 409: the workflow's rules forbid it, or the test is busy with the previous one.
_EVENT_CONFLICT = {
    409: {
        **ANSWERS[409],
        "description": "Forbidden by the workflow's rules now, or busy (Retry-After)",
        "content": {JSON: {"schema": schema_of(TransitionForbiddenBody, BusyBody)}},
    }
}


_REQUISITIONS = {
    "type": "object",
    "required": ["requisitions", "next_token"],
    "properties": {"requisitions": {"type": "array", "items": _REQUISITION}, "next_token": _NEXT_TOKEN},
}


@routes.get(
    "/lab/requisitions",
    "listRequisitions",
    "The lab's orders, newest first",
    ok(200, "A page of requisitions", _REQUISITIONS),
)
def list_requisitions(
    status: Annotated[Optional[StatusFilter], Query(description="a task_business_status, or open / closed")] = None,
    since: Annotated[
        Optional[str],
        Query(
            min_length=1,
            description="ISO 8601 time; orders received at or after it",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    next_token: Annotated[Optional[str], Query()] = None,
):
    return json_response(200, listings.list_requisitions(status.value if status else None, since, limit, next_token))


@routes.get(
    "/lab/requisitions/<requisition_id>",
    "getRequisition",
    "One order with each test's status, history and reports",
    ok(200, "The requisition", _REQUISITION),
    404,
)
def get_requisition(requisition_id: RequisitionId):
    return json_response(200, views.get_requisition(requisition_id))


@routes.get(
    "/lab/requisitions/<requisition_id>/timeline",
    "getRequisitionTimeline",
    "One order's tests on a time axis: statuses, reports, issues, failures (JSON, or an SVG picture by Accept)",
    ok_or_picture(200, "The order's timeline (Accept: image/svg+xml for the picture)", timelines.REQUISITION_TIMELINE),
    404,
    406,
)
def get_requisition_timeline(requisition_id: RequisitionId):
    return timelines.requisition_timeline(requisition_id, accept_header(app.current_event))


_REQUISITION_ACCEPTED = {
    "type": "object",
    "required": ["requisition_id", "service_requests"],
    "properties": {"requisition_id": {"type": "string"}, "service_requests": {"type": "array"}},
}


@routes.post(
    "/lab/requisitions/<requisition_id>/events",
    "recordRequisitionEvent",
    "A progress event for each test of the order it moves forward (each outcome in the answer; 409 if none)",
    ok(202, "Accepted: sent to WHOOP by each test's workflow", _REQUISITION_ACCEPTED),
    404,
    overrides=_EVENT_CONFLICT,
)
def post_requisition_event(
    requisition_id: RequisitionId, event: StatusEventBody, idempotency_key: IdempotencyKey = None
):
    return json_response(202, status_updates.apply_requisition_update(requisition_id, event))


def _test_post(path: str, operation_id: str, summary: str):
    """A POST about one test: 202 accepted, 404, and the workflow's 409."""
    accepted = ok(202, "Accepted: sent to WHOOP by the test's workflow", _ACCEPTED)
    return routes.post(path, operation_id, summary, accepted, 404, overrides=_EVENT_CONFLICT)


@_test_post(
    "/lab/service-requests/<service_request_id>/events", "recordServiceRequestEvent", "A progress event for one test"
)
def post_service_request_event(
    service_request_id: ServiceRequestId, event: StatusEventBody, idempotency_key: IdempotencyKey = None
):
    return json_response(202, status_updates.apply_status_update(service_request_id, event))


@_test_post(
    "/lab/service-requests/<service_request_id>/results", "submitResults", "A diagnostic report (results) for one test"
)
def post_results(service_request_id: ServiceRequestId, report: ReportBody, idempotency_key: IdempotencyKey = None):
    # WHOOP receives the body as the lab wrote it, not a re-serialisation of the model.
    return json_response(202, status_updates.submit_results(service_request_id, report, app.current_event.json_body))


@_test_post(
    "/lab/results",
    "submitLisResults",
    'Results as FHIR R4 or HL7 v2 ORU^R01 naming their test (README "Connect your LIS")',
)
def post_lis_results(idempotency_key: IdempotencyKey = None):
    # FHIR and HL7 v2 are translated before the routes (lis/negotiation.py); WHOOP's JSON names no test.
    text = f"results here are {negotiation.FHIR} or {negotiation.HL7}; WHOOP's JSON goes to /lab/service-requests/{{id}}/results"
    return problem(415, [{"field": "header.Content-Type", "problem": text}], "unsupported_media_type")


# Resuming what failed (lab/resume.py): the body is `{}`; a 409 names the state found.
ResumeBody = Annotated[ResumeRequest, Body(description="an empty JSON object: {}")]
_NOT_RESUMABLE_BODY = {
    "type": "object",
    "required": ["error", "message", "state"],
    "properties": {
        "error": {"type": "string", "enum": ["not_resumable"]},
        "message": {"type": "string"},
        "state": {"type": "string", "description": "the test's workflow, or the requisition's outcome"},
    },
}
_NOT_RESUMABLE = {
    409: {
        "description": "Not failed (the state it is in, also after a concurrent resume), the failed execution still running, or busy (Retry-After)",
        "headers": RETRY_AFTER_HEADER,
        "content": {JSON: {"schema": {"oneOf": [_NOT_RESUMABLE_BODY, schema_of(BusyBody)]}}},
    }
}
_RESUMED = {
    "type": "object",
    "required": ["service_request_id", "execution", "workflow", "resumes", "resending"],
    "properties": {
        "service_request_id": {"type": "string"},
        "execution": {"type": "string", "description": "the new execution's name, <id>-resume-<n>"},
        "workflow": {"type": "string", "enum": ["starting"]},
        "resumes": {"type": "integer", "description": "n: how many times the test was resumed"},
        "resending": {
            "type": "array",
            "items": {"type": "string"},
            "description": "what WHOOP has not acknowledged and will be sent: statuses, diagnostic_report",
        },
    },
}
_INTAKE_RESUMED = {
    "type": "object",
    "required": ["requisition_id", "outcome", "resumed_from", "retry_until"],
    "properties": {
        "requisition_id": {"type": "string"},
        "outcome": {"type": "string", "enum": ["awaiting_whoop"]},
        "resumed_from": {"type": "string", "enum": ["not_found", "invalid"]},
        "retry_until": {"type": "string", "format": "date-time"},
    },
}


def _resume_post(path: str, operation_id: str, summary: str, accepted: dict):
    """A POST resuming what failed: 202, 404, and the 409 naming the state found."""
    return routes.post(path, operation_id, summary, accepted, 404, overrides=_NOT_RESUMABLE)


@_resume_post(
    "/lab/service-requests/<service_request_id>/resume",
    "resumeServiceRequest",
    "A failed test continues in a new execution, sending WHOOP only what it has not acknowledged",
    ok(202, "Started: the new execution's name and what it sends again", _RESUMED),
)
def post_resume_service_request(
    service_request_id: ServiceRequestId, request: ResumeBody, idempotency_key: IdempotencyKey = None
):
    return json_response(202, resume.resume_service_request(service_request_id))


@_resume_post(
    "/lab/requisitions/<requisition_id>/resume",
    "resumeRequisition",
    "A requisition that failed intake (not_found, invalid) is fetched from WHOOP and taken in again",
    ok(202, "Queued: intake fetches it again until retry_until", _INTAKE_RESUMED),
)
def post_resume_requisition(requisition_id: RequisitionId, request: ResumeBody, idempotency_key: IdempotencyKey = None):
    return json_response(202, resume.resume_requisition(requisition_id))


@routes.get(
    "/lab/documents/<document_id>",
    "getDocument",
    "A document an order is based on: its metadata and a short-lived download link",
    ok(200, "The document", _DOCUMENT),
    404,
)
def get_document(
    document_id: Annotated[str, Path(max_length=MAX_RESOURCE_ID_LENGTH, description="the id a test's based_on names")],
):
    # A presigned link is a credential for a few minutes: never cached on the way.
    return json_response(200, views.get_document(document_id), headers={"Cache-Control": "no-store"})


_TEST_DATA_UNAVAILABLE = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string", "enum": ["test_data_unavailable"]}, "message": {"type": "string"}},
}
_WHOOP_UNAVAILABLE = {
    "type": "object",
    "required": ["error", "message", "retryable"],
    "properties": {
        "error": {"type": "string", "enum": ["whoop_unavailable"]},
        "message": {"type": "string"},
        "retryable": {"type": "boolean"},
    },
}


_TEST_DATA_MADE = {
    "type": "object",
    "required": ["requisition_id"],
    "properties": {"requisition_id": {"type": "string", "format": "uuid"}},
}
_TEST_DATA_REFUSED = {
    409: {
        "description": "WHOOP makes no test data in production; or busy (Retry-After)",
        "headers": RETRY_AFTER_HEADER,
        "content": {JSON: {"schema": {"oneOf": [_TEST_DATA_UNAVAILABLE, schema_of(BusyBody)]}}},
    },
    503: {
        "description": "WHOOP could not be reached (Retry-After), or the partner credentials are not configured",
        "content": {JSON: {"schema": {"oneOf": [_WHOOP_UNAVAILABLE, schema_of(NotConfiguredBody)]}}},
    },
}


@routes.post(
    "/lab/test-data",
    "requestTestData",
    "Sandbox only: WHOOP makes a test member and order, which the bridge takes in like any other",
    ok(202, "WHOOP made the order; the bridge is taking it in", _TEST_DATA_MADE),
    503,
    overrides=_TEST_DATA_REFUSED,
)
def post_test_data(request: Annotated[TestDataRequest, Body()], idempotency_key: IdempotencyKey = None):
    # Two tries of at most 5 s each (and the token call's): well inside API Gateway's 29 s.
    client = partner_client(timeout_seconds=5.0, max_retries=1)
    requisition_id = intake.request_test_data(client, request.appointment_type)
    return json_response(202, {"requisition_id": requisition_id})


_REVIEWS = {
    "type": "object",
    "required": ["clinical_report_reviews", "next_token"],
    "properties": {
        "clinical_report_reviews": {"type": "array", "items": {"type": "object"}},
        "next_token": _NEXT_TOKEN,
    },
}


@routes.get(
    "/lab/clinical-report-reviews",
    "listClinicalReportReviews",
    "Clinical report reviews awaiting the lab, oldest first",
    ok(200, "A page of reviews", _REVIEWS),
)
def list_clinical_report_reviews(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    next_token: Annotated[Optional[str], Query()] = None,
):
    return json_response(200, listings.list_pending_reviews(limit, next_token))


_FIRST_TEST = "$response.body#/service_requests/0/id"
LINKS = {
    ("/lab/requisitions", "get", 200): {
        "GetRequisition": link(
            "getRequisition", "the first listed order", requisition_id="$response.body#/requisitions/0/id"
        ),
    },
    ("/lab/requisitions/{requisition_id}", "get", 200): {
        "RecordRequisitionEvent": link(
            "recordRequisitionEvent", "an event for the whole order", requisition_id="$response.body#/id"
        ),
        "RecordServiceRequestEvent": link(
            "recordServiceRequestEvent", "an event for its first test", service_request_id=_FIRST_TEST
        ),
        "SubmitResults": link("submitResults", "results for its first test", service_request_id=_FIRST_TEST),
        "GetDocument": link(
            "getDocument",
            "the first reference its first test is based on",
            document_id="$response.body#/service_requests/0/based_on/0/id",
        ),
    },
    ("/lab/requisitions/{requisition_id}/events", "post", 202): {
        "GetRequisition": link(
            "getRequisition",
            "the order, with the event in each test's history",
            requisition_id="$request.path.requisition_id",
        ),
    },
}
for _operation in (
    "/lab/service-requests/{service_request_id}/events",
    "/lab/service-requests/{service_request_id}/results",
):
    LINKS[(_operation, "post", 202)] = {
        "RecordServiceRequestEvent": link(
            "recordServiceRequestEvent", "the test's next event", service_request_id="$request.path.service_request_id"
        ),
    }

TITLE = "WHOOP Bridge lab API"
DESCRIPTION = "The lab's orders from WHOOP, and its progress events and results back to WHOOP. Every route is IAM-authorized (SigV4)."
configure(app, TITLE, DESCRIPTION, "/lab/openapi.json", links=LINKS, errors=errors.for_lab(), amend=negotiation.openapi)
handler = lambda_handler(app, logger, negotiate=negotiation.negotiate)
