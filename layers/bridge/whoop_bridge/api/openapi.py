"""The OpenAPI set-up both APIs share: answer and route declarations, the served document
(Powertools' generator with SigV4 on every route, the shared error bodies and links between
operations), and `configure`, which gives an app all of the api package.

A route is declared with `Routes` (its operation id, summary, success answer and the error
codes it may add to the common ones); a POST also takes `Idempotency-Key` (409, 413, 415, 422).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Optional

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import Server
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from whoop_bridge.api.bodies import (
    ERROR_MODELS,
    JSON,
    BusyBody,
    InternalErrorBody,
    NotAcceptableBody,
    NotConfiguredBody,
    NotFoundBody,
    ProblemBody,
    message,
    not_found,
    problem,
)
from whoop_bridge.api.errors import Answers
from whoop_bridge.api.idempotency import idempotency_middleware
from whoop_bridge.pictures.svg import SVG_MEDIA_TYPE
from whoop_bridge.validation import problems

logger = logging.getLogger(__name__)

SIGV4 = "sigv4"
Links = dict[tuple[str, str, int], dict[str, Any]]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}

# One description per answer kind, for routes' `responses=`.
ANSWERS: dict[int, OpenAPIResponse] = {
    400: {
        "description": "Invalid request: every problem named (field and problem)",
        "content": {JSON: {"schema": _ref(ProblemBody)}},
    },
    403: {
        "description": "API Gateway's own answer: no SigV4 signature, a wrong one, or a caller IAM does not allow (the function never runs)",
        "content": {
            JSON: {"schema": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}}
        },
    },
    404: {"description": "No such resource", "content": {JSON: {"schema": _ref(NotFoundBody)}}},
    406: {
        "description": "The Accept header admits none of the route's media types; `offered` lists them",
        "content": {JSON: {"schema": _ref(NotAcceptableBody)}},
    },
    409: {
        "description": "Busy: a previous request is still running; retry after Retry-After",
        "headers": RETRY_AFTER_HEADER,
        "content": {JSON: {"schema": _ref(BusyBody)}},
    },
    413: {
        "description": "The body is over the stack's limit (ApiMaxBodyBytes, 256 KiB unless set); the problem names the limit",
        "content": {JSON: {"schema": _ref(ProblemBody)}},
    },
    415: {"description": "The body is not application/json", "content": {JSON: {"schema": _ref(ProblemBody)}}},
    422: {
        "description": "The Idempotency-Key was first used with another body",
        "content": {JSON: {"schema": _ref(ProblemBody)}},
    },
    500: {
        "description": "A fault of the bridge (logged); never caused by the input",
        "content": {JSON: {"schema": _ref(InternalErrorBody)}},
    },
    503: {
        "description": "The stack is not configured; the function's log names what",
        "content": {JSON: {"schema": _ref(NotConfiguredBody)}},
    },
}
# What any route may answer besides its own success, and what a POST adds.
COMMON = (400, 403, 500)
POST = (409, 413, 415, 422)


def answers(
    success: dict[int, OpenAPIResponse], *codes: int, overrides: Optional[dict[int, OpenAPIResponse]] = None
) -> dict[int, OpenAPIResponse]:
    """A route's `responses=`: its own success answers, the common ones, `codes` from
    ANSWERS, then `overrides` (e.g. a 409 with more than one body)."""
    listed: dict[int, OpenAPIResponse] = {code: ANSWERS[code] for code in sorted({*COMMON, *codes})}
    return {**success, **listed, **(overrides or {})}


def schema_of(*models: type[BaseModel]) -> dict[str, Any]:
    """A response content schema: one of these error models."""
    return _ref(models[0]) if len(models) == 1 else {"oneOf": [_ref(model) for model in models]}


def ok(status: int, description: str, schema: dict[str, Any]) -> dict[int, OpenAPIResponse]:
    """A route's success answer: `status` with a JSON body of `schema`."""
    return {status: {"description": description, "content": {JSON: {"schema": schema}}}}


def ok_or_picture(status: int, description: str, schema: dict[str, Any]) -> dict[int, OpenAPIResponse]:
    """A success answer by the request's Accept (api/negotiation.py): a JSON body of
    `schema`, or an SVG picture of it (`image/svg+xml`, text)."""
    svg = {"schema": {"type": "string", "description": "an SVG 1.1 document"}}
    return {status: {"description": description, "content": {JSON: {"schema": schema}, SVG_MEDIA_TYPE: svg}}}


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to `operation_id`, its parameters taken from the request or answer
    (runtime expressions such as `$response.body#/id`)."""
    return {"operationId": operation_id, "description": description, "parameters": parameters}


class Routes:
    """One API's route declarations on `app`, every operation tagged `tag`.

    Each method is the app's decorator with the operation's OpenAPI declaration: `success`
    (from `ok`), then the error codes it adds to COMMON, and `overrides` for an answer with
    more than one body. `post` adds what every POST may answer (POST)."""

    def __init__(self, app: APIGatewayRestResolver, tag: str) -> None:
        self.app = app
        self.tags = [tag]

    def get(self, path: str, operation_id: str, summary: str, success: dict, *codes: int) -> Callable:
        return self.app.get(path, **self._declared(operation_id, summary, answers(success, *codes)))

    def delete(self, path: str, operation_id: str, summary: str, success: dict, *codes: int) -> Callable:
        return self.app.delete(path, **self._declared(operation_id, summary, answers(success, *codes)))

    def post(
        self, path: str, operation_id: str, summary: str, success: dict, *codes: int, overrides: Optional[dict] = None
    ) -> Callable:
        responses = answers(success, *codes, *POST, overrides=overrides)
        return self.app.post(path, **self._declared(operation_id, summary, responses))

    def _declared(self, operation_id: str, summary: str, responses: dict) -> dict[str, Any]:
        return {"operation_id": operation_id, "summary": summary, "tags": self.tags, "responses": responses}


SECURITY_SCHEMES = {
    SIGV4: {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "AWS Signature Version 4 (API Gateway's AWS_IAM authorization): sign each request with IAM credentials allowed to call execute-api:Invoke",
        "x-amazon-apigateway-authtype": "awsSigv4",
    }
}


def _server_url(event: Any) -> str:
    """Where the routes are, as this request reached them: under the stage on the
    execute-api address (`/v1`), at the root on a custom domain."""
    context = event.raw_event.get("requestContext") or {}
    stage, path = context.get("stage") or "", context.get("path") or ""
    return f"/{stage}" if stage and path.startswith(f"/{stage}/") else "/"


def openapi_document(
    app: APIGatewayRestResolver,
    server_url: str = "/",
    links: Optional[Links] = None,
    amend: Optional[Callable[[dict[str, Any]], None]] = None,
) -> dict[str, Any]:
    """The app's OpenAPI document (Powertools' generator, configured by `configure`), with
    the shared error bodies, without Powertools' 422 where a route never gives it, with
    `links` ((path, method, status) -> OpenAPI links) between operations, then `amend`ed
    (e.g. the lab API's FHIR and HL7 media types, lis/openapi.py)."""
    document = json.loads(app.get_openapi_json_schema(servers=[Server(url=server_url)]))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in ERROR_MODELS:
        schemas.setdefault(model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}"))
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.get("responses", {})
            validation = responses.get("422", {}).get("content", {}).get(JSON, {}).get("schema", {})
            if validation.get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
            for status, response in responses.items():
                for (link_path, link_method, link_status), listed in (links or {}).items():
                    if (link_path, link_method, str(link_status)) == (path, method, status):
                        response["links"] = listed
    if amend is not None:
        amend(document)
    text = json.dumps(document)
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            schemas.pop(unused, None)
    return document


def configure(
    app: APIGatewayRestResolver,
    title: str,
    description: str,
    schema_path: str,
    *,
    links: Links,
    errors: Answers,
    amend: Optional[Callable[[dict[str, Any]], None]] = None,
) -> None:
    """Give `app` the idempotency middleware, the answers for `errors` (api/errors.py) and for
    invalid requests, unknown routes and faults, the OpenAPI set-up (SigV4 on every route)
    and its document at `schema_path`."""
    app.configure_openapi(
        title=title,
        version="1.0.0",
        description=description,
        security_schemes=SECURITY_SCHEMES,  # type: ignore[arg-type]
        security=[{SIGV4: []}],
    )
    app.use(middlewares=[idempotency_middleware])
    for error_type, answer in errors.items():
        app.exception_handler(error_type)(answer)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        return problem(400, problems(error))

    @app.not_found
    def _no_route(_error: Exception) -> Response:
        return not_found("no such resource")

    @app.exception_handler(Exception)
    def _fault(error: Exception) -> Response:
        # The type only: a message may hold a value from the request.
        logger.error("unhandled error", extra={"error_type": type(error).__name__})
        return message(500, "internal_error", "the bridge failed to answer; the function's log names the error type")

    documents: dict[str, str] = {}

    @app.get(schema_path, include_in_schema=False)
    def _openapi():  # no return annotation: Powertools would model it
        server = _server_url(app.current_event)
        if server not in documents:
            documents[server] = json.dumps(openapi_document(app, server, links, amend))
        return Response(status_code=200, content_type=JSON, body=documents[server])
