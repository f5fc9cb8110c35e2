"""`Idempotency-Key` on every POST of both APIs.

It follows the IETF draft "The Idempotency-Key HTTP Header Field" (1-255 printable ASCII
characters, optional): Powertools idempotency on the IdempotencyTable, keyed on the key,
method, route, path parameters and the caller's IAM identity, for 24 h. A repeat answers
the first answer (status, body, headers, plus `Idempotent-Replayed: true`) without running
the route again; a repeat while the first is running gets 409 busy; the same key with
another body gets 422 `idempotency_key_reused`. Answers that changed something (2xx) or
that the request alone decides (400, 422) are kept; others (404, 409, 5xx) depend on state
that may change, so a retry runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any, Optional

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from whoop_bridge import caches
from whoop_bridge.api.bodies import JSON, busy, problem
from whoop_bridge.config import settings

IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_SECONDS = 24 * 3600
# Powertools keys its records on the idempotent function's module and name: the name the
# function had before the api package was split, so that keys stored then still match.
RECORD_FUNCTION = ("whoop_bridge.api", "idempotency_middleware.<locals>.run")

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


# Kept: answers that changed something, and answers the request alone decides.
KEPT_STATUSES = frozenset({400, 422})


class _NotKept(Exception):
    """Carries an answer out of the idempotent call so that Powertools forgets the key."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


CONFIG = IdempotencyConfig(
    event_key_jmespath="[key, method, route, path, caller]",
    payload_validation_jmespath="payload",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_SECONDS,
)


@lru_cache(maxsize=1)
def persistence() -> DynamoDBPersistenceLayer:
    """The IdempotencyTable as Powertools keeps its records (one per warm container)."""
    settings().require("idempotency_table_name")
    return DynamoDBPersistenceLayer(table_name=settings().idempotency_table_name)


@caches.register
def reset() -> None:
    """Forget the persistence layer (its client belongs to the previous AWS session)."""
    persistence.cache_clear()


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

    run.__module__, run.__qualname__ = RECORD_FUNCTION
    if app.lambda_context is not None:
        CONFIG.register_lambda_context(app.lambda_context)
    once = idempotent_function(data_keyword_argument="request", config=CONFIG, persistence_store=persistence())(run)
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
