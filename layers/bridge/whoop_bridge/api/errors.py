"""The one mapping from what the layer raises to the APIs' answers (bodies in api/bodies.py).

Every answer an API gives for a domain error is written here once; `for_lab()` and
`for_members()` list which errors each API's routes can raise. Errors that no mapping names
are a 500 `internal_error` (`openapi.configure`). No answer echoes an input value, and a
log line names the error's type, never a token or a body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aws_lambda_powertools.event_handler import Response

from whoop_bridge.api.bodies import WHOOP_RETRY_AFTER_SECONDS, busy, message, not_found, problem
from whoop_bridge.config import ConfigurationError
from whoop_bridge.observability import error_summary
from whoop_bridge.secrets import SecretNotConfigured
from whoop_bridge.whoop.http import WhoopTransientError, WhoopUnauthorized

logger = logging.getLogger(__name__)

Answer = Callable[[Exception], Response]
Answers = dict[type[Exception], Answer]


def query_problem(field: str) -> Answer:
    """400 invalid_request naming `field` (e.g. `query.next_token`), the error's text as the problem."""
    return lambda error: problem(400, [{"field": field, "problem": str(error)}])


def not_configured(text: str, log: str) -> Answer:
    """503 not_configured saying `text`: fail closed, and tell the operator in the log (`log`,
    with the error's type and text, which name a setting or a secret's field, never a value)."""

    def answer(error: Exception) -> Response:
        logger.error(log, extra={"error_type": type(error).__name__, "detail": error_summary(error)})
        return message(503, "not_configured", text)

    return answer


def whoop_unavailable(error: Exception) -> Response:
    """503 whoop_unavailable with `Retry-After`: WHOOP could not be reached, or the rate budget is spent."""
    return message(
        503,
        "whoop_unavailable",
        "WHOOP could not be reached; retry",
        {"Retry-After": str(WHOOP_RETRY_AFTER_SECONDS)},
        retryable=True,
    )


def for_lab() -> Answers:
    """The lab API's errors: unknown orders, the workflow's rules, a busy test, a bad query,
    WHOOP's test data, WHOOP unreachable, and the partner credentials."""
    from whoop_bridge.lab import errors as lab  # the lab API's function loads the lab anyway

    def transition_forbidden(error: lab.TransitionForbidden) -> Response:
        return message(
            409,
            "transition_forbidden",
            str(error),
            task_business_status=error.current,
            allowed_next_statuses=error.allowed,
        )

    partner_not_configured = not_configured(
        "the WHOOP partner credentials are not configured or WHOOP refused them",
        "lab API refused: the partner credentials are not configured or refused",
    )
    return {
        lab.NotFound: lambda error: not_found(f"no {error}"),
        lab.TransitionForbidden: transition_forbidden,  # type: ignore[dict-item]
        lab.Busy: lambda _: busy("the previous event for this test is still being sent to WHOOP; retry"),
        lab.BadQuery: query_problem("query"),
        lab.TestDataUnavailable: lambda error: message(409, "test_data_unavailable", str(error)),
        lab.NotResumable: lambda error: message(409, "not_resumable", str(error), state=error.state),  # type: ignore[attr-defined]
        lab.ReportUncertain: lambda error: message(
            409,
            "report_uncertain",
            str(error),
            report_id=error.report_id,  # type: ignore[attr-defined]
            submission_started_at=error.submission_started_at,  # type: ignore[attr-defined]
        ),
        WhoopTransientError: whoop_unavailable,
        SecretNotConfigured: partner_not_configured,
        ConfigurationError: partner_not_configured,
        WhoopUnauthorized: partner_not_configured,
    }


def for_members() -> Answers:
    """The member API's errors: a return URL not allowed, a bad page token or window, and
    the member app's credentials or a stack setting not configured."""
    from whoop_bridge.members import connections
    from whoop_bridge.models.listing import InvalidPageToken
    from whoop_bridge.models.member_record import InvalidWindow

    def return_url(_: Exception) -> Response:
        text = "not one of the stack's AllowedReturnUrls (https, same host and path; only the query may differ)"
        return problem(400, [{"field": "return_url", "problem": text}])

    return {
        connections.ReturnUrlNotAllowed: return_url,
        InvalidPageToken: query_problem("query.next_token"),
        InvalidWindow: query_problem("query.end"),
        SecretNotConfigured: not_configured(
            "the WHOOP member app credentials are not configured", "member API refused: the bridge is not configured"
        ),
        ConfigurationError: not_configured(
            "a stack setting is invalid; the function's log names it", "member API refused: a stack setting is invalid"
        ),
    }
