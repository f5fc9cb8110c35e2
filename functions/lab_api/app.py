"""The lab's API (IAM): its orders, and its progress events and results.

Bodies are validated by the Powertools event handler against the pydantic models; the
OpenAPI schema is served at /lab/openapi.json.
"""

from typing import Annotated, Optional

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths

from whoop_bridge.lab import lab_events
from whoop_bridge.lab.models import DiagnosticReport, LabStatusEvent
from whoop_bridge.observability import get_logger
from whoop_bridge.validation import problems

logger = get_logger("lab_api")
app = APIGatewayRestResolver(enable_validation=True)


def _json(status: int, body: dict, headers: Optional[dict] = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


@app.exception_handler(RequestValidationError)
def _invalid(error: RequestValidationError) -> Response:
    return _json(400, {"error": "invalid_request", "problems": problems(error)})


@app.exception_handler(lab_events.NotFound)
def _not_found(error: lab_events.NotFound) -> Response:
    return _json(404, {"error": "not_found", "message": f"no {error}"})


@app.exception_handler(lab_events.TransitionForbidden)
def _forbidden(error: lab_events.TransitionForbidden) -> Response:
    return _json(
        409,
        {
            "error": "transition_forbidden",
            "message": str(error),
            "task_business_status": error.current,
            "allowed_next_statuses": error.allowed,
        },
    )


@app.exception_handler(lab_events.Busy)
def _busy(error: lab_events.Busy) -> Response:
    return _json(
        409,
        {"error": "busy", "message": "the previous event for this test is still being sent to WHOOP; retry", "retryable": True},
        headers={"Retry-After": "2"},
    )


@app.exception_handler(lab_events.BadQuery)
def _bad_query(error: lab_events.BadQuery) -> Response:
    return _json(400, {"error": "invalid_request", "problems": [{"field": "query", "problem": str(error)}]})


@app.get("/lab/requisitions")
def list_requisitions(
    status: Annotated[Optional[str], Query(description="a task_business_status, or open / closed")] = None,
    since: Annotated[Optional[str], Query(description="ISO 8601 time; orders received at or after it")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    next_token: Annotated[Optional[str], Query()] = None,
):
    return _json(200, lab_events.list_requisitions(status, since, limit, next_token))


@app.get("/lab/requisitions/<requisition_id>")
def get_requisition(requisition_id: str):
    return _json(200, lab_events.get_requisition(requisition_id))


@app.post("/lab/requisitions/<requisition_id>/events")
def post_requisition_event(requisition_id: str, event: Annotated[LabStatusEvent, Body()]):
    return _json(202, lab_events.apply_requisition_event(requisition_id, event))


@app.post("/lab/service-requests/<service_request_id>/events")
def post_service_request_event(service_request_id: str, event: Annotated[LabStatusEvent, Body()]):
    return _json(202, lab_events.apply_status_event(service_request_id, event))


@app.post("/lab/service-requests/<service_request_id>/results")
def post_results(service_request_id: str, report: Annotated[DiagnosticReport, Body()]):
    # WHOOP receives the body as the lab wrote it, not a re-serialisation of the model.
    return _json(202, lab_events.submit_results(service_request_id, report, app.current_event.json_body))


@app.get("/lab/documents/<document_id>")
def get_document(document_id: str):
    # A presigned link is a credential for a few minutes: never cached on the way.
    return _json(200, lab_events.get_document(document_id), headers={"Cache-Control": "no-store"})


@app.get("/lab/clinical-report-reviews")
def list_clinical_report_reviews(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    next_token: Annotated[Optional[str], Query()] = None,
):
    return _json(200, lab_events.list_pending_reviews(limit, next_token))


@app.get("/lab/openapi.json", include_in_schema=False)
def openapi():
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=app.get_openapi_json_schema(title="WHOOP Bridge lab API", version="1.0.0"),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event, context):
    return app.resolve(event, context)
