"""The front of the lab and member APIs, shared: one problem body, one guard for whatever
API Gateway delivers, `Idempotency-Key` on every POST, one OpenAPI set-up.

A handler calls `configure(app, ...)` once and answers with `api.resolve(app, event,
context)`. Answers (all `application/json`):

- 400 `{"error": "invalid_request", "problems": [{"field", "problem"}]}`: every problem of
  the request at once (body, query, path, headers); input values are never echoed.
- 415 `{"error": "unsupported_media_type", "problems": [...]}`: a body that is not
  `application/json` (UTF-8).
- 404 `{"error": "not_found", "message"}`; 503 `{"error": "not_configured", "message"}`.
- 409 `{"error": "busy", "message", "retryable": true}` with `Retry-After` (seconds).
- 422 `{"error": "idempotency_key_reused", "problems": [...]}`: the `Idempotency-Key` was
  first used with another body.
- 500 `{"error": "internal_error", "message"}`: a fault of the bridge, never of the input.

`Idempotency-Key` (optional, 1-255 printable ASCII characters) follows the IETF draft
"The Idempotency-Key HTTP Header Field": Powertools idempotency on the IdempotencyTable,
keyed on the key, method, route, path parameters and the caller's IAM identity, for 24 h.
A repeat answers the first answer (status, body, headers, plus `Idempotent-Replayed: true`)
without running the route again; a repeat while the first is running gets 409 busy.
Answers that changed something (2xx) or that the request alone decides (400, 422) are
kept; others (404, 409, 5xx) depend on state that may change, so a retry runs again.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any, Literal, Optional

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import Server
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel, Field

from whoop_bridge import caches
from whoop_bridge.config import settings
from whoop_bridge.validation import problems

logger = logging.getLogger(__name__)

JSON = content_types.APPLICATION_JSON
IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_SECONDS = 24 * 3600
RETRY_AFTER_SECONDS = 2
# I-JSON (RFC 7493): numbers an IEEE double holds exactly as integers, no deeper nesting
# than any real request needs.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SIGV4 = "sigv4"

# `Idempotency-Key` as a header parameter of every POST route (declared, and checked, by
# the event handler; the idempotency middleware reads it).
IdempotencyKey = Annotated[
    Optional[str],
    Header(
        alias=IDEMPOTENCY_KEY,
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="A key of the caller's choosing (e.g. a UUID), 1-255 printable ASCII characters: a repeat of this POST "
        "with the same key and body within 24 h answers the first answer and changes nothing; the same key with another body is a 422.",
    ),
]


# The answers' bodies --------------------------------------------------------------------


class Problem(BaseModel):
    field: str = Field(description="where: body.<path>, query.<name>, path.<name>, header.<name>, or body")
    problem: str = Field(description="what is wrong, without the value")


class ProblemBody(BaseModel):
    """400, 415, 422: every problem of the request."""

    error: Literal["invalid_request", "unsupported_media_type", "idempotency_key_reused"]
    problems: list[Problem] = Field(min_length=1)


class NotFoundBody(BaseModel):
    error: Literal["not_found"]
    message: str


class BusyBody(BaseModel):
    """409: a previous request for the same thing is still running; retry after `Retry-After` seconds."""

    error: Literal["busy"]
    message: str
    retryable: Literal[True]


class TransitionForbiddenBody(BaseModel):
    """409: the lab workflow's rules forbid this event now."""

    error: Literal["transition_forbidden"]
    message: str
    task_business_status: Optional[str] = Field(description="the test's status now (null before the first)")
    allowed_next_statuses: list[str]


class NotConfiguredBody(BaseModel):
    """503: the stack is not configured (a secret or setting); the function's log names it."""

    error: Literal["not_configured"]
    message: str


class InternalErrorBody(BaseModel):
    error: Literal["internal_error"]
    message: str


ERROR_MODELS: tuple[type[BaseModel], ...] = (
    Problem,
    ProblemBody,
    NotFoundBody,
    BusyBody,
    TransitionForbiddenBody,
    NotConfiguredBody,
    InternalErrorBody,
)


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
    409: {
        "description": "Busy: a previous request is still running; retry after Retry-After",
        "headers": RETRY_AFTER_HEADER,
        "content": {JSON: {"schema": _ref(BusyBody)}},
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
POST = (409, 415, 422)


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


def json_response(status: int, body: Any, headers: Optional[dict[str, str]] = None) -> Response:
    """A JSON answer; `Cache-Control: no-store` on every answer (they may hold health data)."""
    return Response(
        status_code=status, content_type=JSON, body=body, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def problem(status: int, listed: list[dict[str, str]], error: str = "invalid_request") -> Response:
    return json_response(status, {"error": error, "problems": listed})


def message(status: int, error: str, text: str, headers: Optional[dict[str, str]] = None, **extra: Any) -> Response:
    return json_response(status, {"error": error, "message": text, **extra}, headers)


def not_found(text: str) -> Response:
    return message(404, "not_found", text)


def busy(text: str) -> Response:
    return message(409, "busy", text, {"Retry-After": str(RETRY_AFTER_SECONDS)}, retryable=True)


# The guard: what API Gateway hands over, checked before the event handler sees it ----------


class _Refused(Exception):
    def __init__(self, status: int, field: str, text: str, error: str = "invalid_request") -> None:
        super().__init__(text)
        self.status, self.field, self.text, self.error = status, field, text, error


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Refused(400, "body", "a member name appears twice in one object")
        found[key] = value
    return found


def _check_values(value: Any, path: tuple[str, ...] = ()) -> None:
    """I-JSON (RFC 7493): exact integers, finite numbers, valid Unicode, bounded depth.
    A problem names its place as the event handler's validation does (`observations.0.code`)."""
    field = ".".join(path) or "body"
    if len(path) > MAX_DEPTH:
        raise _Refused(400, "body", f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, field)
            _check_values(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, (*path, str(index)))
    elif isinstance(value, str):
        _check_text(value, field)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        raise _Refused(400, field, f"an integer beyond ±{MAX_SAFE_INTEGER} (I-JSON, RFC 7493)")
    elif isinstance(value, float) and not math.isfinite(value):
        raise _Refused(400, field, "must be a finite number (NaN and Infinity are not JSON; 1e999 is beyond a double)")


def _check_text(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Refused(400, field, "a string holds an unpaired surrogate (\\ud800-\\udfff)") from None


def _media_type(event: dict[str, Any]) -> Optional[str]:
    headers = event.get("headers") or {}
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value
    return None


def _guard(event: dict[str, Any]) -> None:
    """Refuse (400, 415) what no route can read, and hand the event handler a body it can:
    UTF-8 text of one JSON object. Rewrites `event` in place (a base64 body decoded)."""
    queries = event.get("multiValueQueryStringParameters") or {}
    repeated = sorted(name for name, values in queries.items() if values and len(values) > 1)
    if repeated:
        raise _Refused(400, f"query.{repeated[0]}", "given more than once")
    if (event.get("httpMethod") or "").upper() not in BODY_METHODS:
        return
    raw = event.get("body")
    content_type = _media_type(event)
    if content_type is not None:
        media, _, parameters = content_type.partition(";")
        charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", parameters, re.IGNORECASE)
        if media.strip().lower() != JSON or (charset and charset.group(1).lower() not in ("utf-8", "utf8")):
            raise _Refused(415, "header.Content-Type", "must be application/json (UTF-8)", "unsupported_media_type")
    if raw is None or raw == "":
        raise _Refused(400, "body", "a JSON object is required")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _Refused(400, "body", "not UTF-8 text") from None
        event["body"], event["isBase64Encoded"] = raw, False
    try:
        # NaN and Infinity parse as floats here and are refused, with their place, below.
        parsed = json.loads(raw, object_pairs_hook=_no_duplicates)
    except _Refused:
        raise
    except RecursionError:
        raise _Refused(400, "body", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # JSONDecodeError, and an integer of over 4300 digits
        raise _Refused(400, "body", "not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _Refused(400, "body", "must be a JSON object")
    _check_values(parsed)


def _proxy_answer(response: Response) -> dict[str, Any]:
    headers = {
        "Content-Type": response.content_type or JSON,
        **{k: v for k, v in response.headers.items() if isinstance(v, str)},
    }
    return {
        "statusCode": response.status_code,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "body": json.dumps(response.body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def resolve(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`app.resolve`, behind the guard: input no route can read is a 400/415 problem."""
    try:
        _guard(event)
    except _Refused as refused:
        return _proxy_answer(
            problem(refused.status, [{"field": refused.field, "problem": refused.text}], refused.error)
        )
    return app.resolve(event, context)


# Idempotency-Key ---------------------------------------------------------------------------

# Kept: answers that changed something, and answers the request alone decides.
KEPT_STATUSES = frozenset({400, 422})


class _NotKept(Exception):
    """Carries an answer out of the idempotent call so that Powertools forgets the key."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


_config = IdempotencyConfig(
    event_key_jmespath="[key, method, route, path, caller]",
    payload_validation_jmespath="payload",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_SECONDS,
)


@lru_cache(maxsize=1)
def _persistence() -> DynamoDBPersistenceLayer:
    settings().require("idempotency_table_name")
    return DynamoDBPersistenceLayer(table_name=settings().idempotency_table_name)


@caches.register
def reset() -> None:
    """Forget the persistence layer (its client belongs to the previous AWS session)."""
    _persistence.cache_clear()


def _caller(event: Any) -> str:
    """The caller's IAM identity as API Gateway saw it (its SigV4 signature); empty locally."""
    identity = (event.raw_event.get("requestContext") or {}).get("identity") or {}
    return str(identity.get("userArn") or identity.get("caller") or "")


def _stored(response: Response) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": response.body if response.body != "" else None,
    }


def _replayed(stored: dict[str, Any]) -> Response:
    headers = {name: value for name, value in (stored.get("headers") or {}).items() if name.lower() != "content-type"}
    body = stored.get("body")
    if body is None:
        return Response(status_code=stored["status"], body="", headers={**headers, "Idempotent-Replayed": "true"})
    return Response(
        status_code=stored["status"], content_type=JSON, body=body, headers={**headers, "Idempotent-Replayed": "true"}
    )


def idempotency_middleware(app: APIGatewayRestResolver, next_middleware: Callable[..., Response]) -> Response:
    """A POST with `Idempotency-Key` runs at most once per key (24 h); see the module doc."""
    event = app.current_event
    key = event.get_header_value(IDEMPOTENCY_KEY, case_sensitive=False)
    if event.http_method.upper() != "POST" or not key:
        return next_middleware(app)
    request = {
        "key": key,
        "method": event.http_method.upper(),
        "route": event.resource,
        "path": event.path_parameters or {},
        "caller": _caller(event),
        "payload": event.json_body,
    }

    first: list[Response] = []

    def run(request: dict[str, Any]) -> dict[str, Any]:
        response = next_middleware(app)
        if response.status_code >= 300 and response.status_code not in KEPT_STATUSES:
            raise _NotKept(response)
        first.append(response)
        return _stored(response)

    if app.lambda_context is not None:
        _config.register_lambda_context(app.lambda_context)
    once = idempotent_function(data_keyword_argument="request", config=_config, persistence_store=_persistence())(run)
    try:
        answer = once(request=request)
    except _NotKept as not_kept:
        return not_kept.response
    except IdempotencyAlreadyInProgressError:
        return busy("a request with this Idempotency-Key is still being processed; retry")
    except IdempotencyValidationError:
        return problem(
            422,
            [
                {
                    "field": f"header.{IDEMPOTENCY_KEY}",
                    "problem": "already used with another body for this route; use a new key for a new request",
                }
            ],
            "idempotency_key_reused",
        )
    return first[0] if first else _replayed(answer)


# OpenAPI -----------------------------------------------------------------------------------

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
    links: Optional[dict[tuple[str, str, int], dict[str, Any]]] = None,
) -> dict[str, Any]:
    """The app's OpenAPI document (Powertools' generator, configured by `configure`), with
    the shared error bodies, without Powertools' 422 where a route never gives it, and with
    `links` ((path, method, status) -> OpenAPI links) between operations."""
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
    text = json.dumps(document)
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            schemas.pop(unused, None)
    return document


def configure(
    app: APIGatewayRestResolver,
    *,
    title: str,
    description: str,
    schema_path: str,
    links: Optional[dict[tuple[str, str, int], dict[str, Any]]] = None,
) -> None:
    """Give `app` the shared error mapping, the idempotency middleware, the OpenAPI set-up
    (SigV4 on every route) and its `schema_path` route."""
    app.configure_openapi(
        title=title,
        version="1.0.0",
        description=description,
        security_schemes=SECURITY_SCHEMES,  # type: ignore[arg-type]
        security=[{SIGV4: []}],
    )
    app.use(middlewares=[idempotency_middleware])

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
            documents[server] = json.dumps(openapi_document(app, server, links))
        return Response(status_code=200, content_type=JSON, body=documents[server])
