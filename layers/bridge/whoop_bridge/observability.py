"""Structured logs that never carry health data or credentials, and the metrics.

Handlers call `get_logger(service)` once; the layer's modules log through the standard
`logging.getLogger(__name__)` and inherit the same JSON format and redaction. What may be
logged is an allow-list (`LOGGABLE_KEYS`): any other key's value becomes `REDACTED`, and an
error from outside the bridge is logged by its type and a safe summary, never its text
(docs/architecture.md#logs).
"""

from __future__ import annotations

import functools
import logging
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

REDACTED = "[REDACTED]"

# A step that sends no metric is normal (e.g. storing a task token); Powertools warns anyway.
warnings.filterwarnings("ignore", message="No application metrics to publish")

# The SDK's and HTTP libraries' own loggers write full requests and answers at DEBUG
# (secrets, token pairs, patient data) to the root logger, whose handler (Lambda's) the
# redaction never sees: they stay at WARNING or above whatever the bridge's level.
SDK_LOGGERS = ("boto3", "botocore", "s3transfer", "urllib3", "requests")
SDK_LOG_LEVEL = logging.WARNING

# The fields Powertools puts on every record (the exception fields are made safe below).
RECORD_KEYS = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "sampling_rate",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "correlation_id",
        "xray_trace_id",
        "exception",
        "exception_name",
        "stack_trace",
    }
)
# The only other keys whose values are logged as given: the bridge's own ids, WHOOP's
# pseudonymous ids, names of kinds, statuses and outcomes, counts and durations, field
# names. Never a patient field, result, reason, score, token, code, state, secret or body.
LOGGABLE_KEYS = frozenset(
    {
        # ids
        "requisition_id",
        "service_request_id",
        "document_id",
        "report_id",
        "resource_id",
        "client_user_id",
        "from_client_user_id",
        "to_client_user_id",
        "user_id",
        "record_id",
        "trace_id",
        "message_id",
        "request_id",
        # kinds, statuses, outcomes
        "action",
        "route",
        "kind",
        "detail_type",
        "event_type",
        "record_type",
        "test_code",
        "task_business_status",
        "outcome",
        "status_code",
        "status_reason",
        "budget_reason",
        "failure",
        "error",
        "error_code",
        "error_type",
        "detail",
        # counts and durations
        "attempt",
        "days",
        "jobs",
        "events",
        "delay_seconds",
        "age_seconds",
        "hold_seconds",
        "expires_in",
        "token_version",
        "revoke_pending",
        "refreshed",
        "reauthorization_required",
        "failed",
        "revoked",
        "events_published",
        # field names (never their values)
        "fields",
        "problem_fields",
    }
)


def error_summary(error: BaseException) -> str:
    """What a log may say about `error`: `Type: text` for the bridge's own errors (their
    texts name settings, fields and states, never values); for any other, only its type and
    what is safe to know: a botocore `ClientError`'s code, an HTTP error's status, a pydantic
    `ValidationError`'s field locations. Their texts may quote a request or answer body
    (a secret, a token pair, a patient), so they are never logged."""
    kind = type(error)
    name = kind.__name__
    if kind.__module__.split(".")[0] == "whoop_bridge":
        return f"{name}: {error}"
    response = getattr(error, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        code = response.get("Error", {}).get("Code")
        return f"{name} ({code})" if isinstance(code, str) else name
    status = getattr(response, "status_code", None)
    if isinstance(status, int):  # requests' HTTPError
        return f"{name} (HTTP {status})"
    errors = getattr(error, "errors", None)
    if callable(errors) and kind.__module__.startswith("pydantic"):
        try:
            places = [".".join(str(part) for part in item.get("loc", ())) for item in errors()]
        except Exception:  # noqa: BLE001 - a summary never fails the log line
            return name
        return f"{name} at {', '.join(places)}" if places else name
    return name


def _error_chain(error: BaseException) -> list[BaseException]:
    """`error` and the errors it was raised from or during, innermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain[::-1]


def safe_traceback(error: BaseException) -> str:
    """A traceback of `error` (with its chain) whose frames are kept and whose texts are
    `error_summary`s."""
    parts = []
    for item in _error_chain(error):
        frames = "".join(traceback.format_list(traceback.extract_tb(item.__traceback__)))
        parts.append(f"Traceback (most recent call last):\n{frames}{error_summary(item)}")
    return "\n\nThe above exception led to the following:\n\n".join(parts)


def redact(value: Any) -> Any:
    """A copy of a log record (or a dict message) keeping only `LOGGABLE_KEYS` as given:
    any other key's value is `REDACTED`, however deep; errors become `error_summary`s."""
    if isinstance(value, dict):
        return {key: _redact_item(key, item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if isinstance(value, BaseException):
        return error_summary(value)
    return value


def _redact_item(key: Any, item: Any) -> Any:
    if not isinstance(key, str) or key.lower() not in LOGGABLE_KEYS:
        return REDACTED
    return redact(item)


def redact_record(log: dict[str, Any]) -> dict[str, Any]:
    """`redact` for a whole Powertools record: its own fields kept (a dict message and the
    stack trace made safe), every extra key through the allow-list."""
    safe = {}
    for key, item in log.items():
        if key == "message":
            safe[key] = redact(item) if isinstance(item, (dict, list, tuple)) else item
        elif key == "stack_trace" and isinstance(item, dict):
            safe[key] = {**item, "value": redact(item.get("value"))}
        elif key in RECORD_KEYS:
            safe[key] = redact(item) if isinstance(item, BaseException) else item
        else:
            safe[key] = _redact_item(key, item)
    return safe


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter with `redact_record` applied to every record, and
    tracebacks whose error texts are `error_summary`s."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        error = ei[1] if isinstance(ei, tuple) else None
        return safe_traceback(error) if isinstance(error, BaseException) else ""

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        return super().serialize(redact_record(log))


def cap_sdk_loggers(level: int | str = logging.NOTSET) -> None:
    """Keep the SDK's and HTTP libraries' loggers at `SDK_LOG_LEVEL`, or at `level` if higher."""
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    cap = max(SDK_LOG_LEVEL, numeric if isinstance(numeric, int) else SDK_LOG_LEVEL)
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(cap)


cap_sdk_loggers()


def get_logger(service: str) -> Logger:
    """The handler's Logger; the `whoop_bridge` package logs through the same handler.
    The SDK's loggers stay capped (`cap_sdk_loggers`) whatever level the Logger takes."""
    logger = Logger(service=service, logger_formatter=RedactingFormatter())
    package_logger = logging.getLogger("whoop_bridge")
    package_logger.handlers = list(logger.handlers)
    package_logger.setLevel(logger.log_level)
    package_logger.propagate = False
    cap_sdk_loggers(logger.log_level)
    return logger


def get_metrics(service: str) -> Metrics:
    """Powertools Metrics; every instance shares one metric set per invocation."""
    return Metrics(service=service)


def raising_safely(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """For a handler whose errors reach the Lambda runtime (a Step Functions task, a queue
    batch, a schedule): the runtime writes an escaping error's text to the function's log
    and Step Functions keeps it as the execution's `cause`, past the redacting formatter.
    An error from outside the bridge is raised again as an error of the same type name (the
    state machine's Retry and Catch match names) whose text is `error_summary`'s; the
    bridge's own errors pass unchanged."""

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        except Exception as error:
            if type(error).__module__.split(".")[0] == "whoop_bridge":
                raise
            raise _named_like(error)(error_summary(error)) from None

    return run


def _named_like(error: BaseException) -> type[Exception]:
    return type(type(error).__name__, (RuntimeError,), {"__module__": __name__})
