"""The answers' JSON bodies: their pydantic models (for the OpenAPI document) and the
functions that build them. Every answer is `application/json` with `Cache-Control:
no-store` (answers may hold health data); no body ever echoes an input value."""

from __future__ import annotations

from typing import Any, Literal, Optional

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel, Field

JSON = content_types.APPLICATION_JSON
# What a 409 busy (and a 503 whoop_unavailable) tells the caller to wait, in seconds.
RETRY_AFTER_SECONDS = 2
WHOOP_RETRY_AFTER_SECONDS = 30


class Problem(BaseModel):
    field: str = Field(description="where: body.<path>, query.<name>, path.<name>, header.<name>, or body")
    problem: str = Field(description="what is wrong, without the value")


class ProblemBody(BaseModel):
    """400, 413, 415, 422: every problem of the request."""

    error: Literal["invalid_request", "payload_too_large", "unsupported_media_type", "idempotency_key_reused"]
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


class NotAcceptableBody(BaseModel):
    """406: the Accept header admits none of the route's media types (`offered`)."""

    error: Literal["not_acceptable"]
    message: str
    offered: list[str]


class InternalErrorBody(BaseModel):
    error: Literal["internal_error"]
    message: str


# The bodies every API document lists under components/schemas.
ERROR_MODELS: tuple[type[BaseModel], ...] = (
    Problem,
    ProblemBody,
    NotFoundBody,
    BusyBody,
    TransitionForbiddenBody,
    NotConfiguredBody,
    NotAcceptableBody,
    InternalErrorBody,
)


def json_response(status: int, body: Any, headers: Optional[dict[str, str]] = None) -> Response:
    """A JSON answer; `Cache-Control: no-store` on every answer (they may hold health data)."""
    return Response(
        status_code=status, content_type=JSON, body=body, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def problem(status: int, listed: list[dict[str, str]], error: str = "invalid_request") -> Response:
    """A ProblemBody answer: `listed` is `[{"field", "problem"}]`."""
    return json_response(status, {"error": error, "problems": listed})


def message(status: int, error: str, text: str, headers: Optional[dict[str, str]] = None, **extra: Any) -> Response:
    """`{"error", "message", **extra}`."""
    return json_response(status, {"error": error, "message": text, **extra}, headers)


def not_found(text: str) -> Response:
    return message(404, "not_found", text)


def busy(text: str) -> Response:
    return message(409, "busy", text, {"Retry-After": str(RETRY_AFTER_SECONDS)}, retryable=True)
