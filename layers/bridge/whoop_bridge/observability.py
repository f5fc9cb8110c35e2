"""Structured logs that never carry health data or credentials, and the metrics.

Handlers call `get_logger(service)` once; the layer's modules log through the standard
`logging.getLogger(__name__)` and inherit the same JSON format and redaction.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

REDACTED = "[REDACTED]"

# A step that sends no metric is normal (e.g. storing a task token); Powertools warns anyway.
warnings.filterwarnings("ignore", message="No application metrics to publish")

# Keys whose values are patient fields, tokens, secrets or raw bodies. Matched on the
# lower-cased key anywhere in a log record, however deep.
SENSITIVE_KEYS = frozenset(
    {
        "patient",
        "first_name",
        "last_name",
        "birth_date",
        "gender",
        "email",
        "phone",
        "collection_address",
        "address",
        "observations",
        "reason",
        "value_numeric",
        "value_text",
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "task_token",
        "authorization",
        "client_secret",
        "webhook_secret",
        "secret",
        "password",
        "code",
        "body",
        "raw_body",
        "whoop-signed",
        "x-whoop-signature",
        "cookie",
    }
)
# Lab test codes are not health data on their own, and operators need them in logs.
ALLOWED_KEYS = frozenset({"test_code", "status_code", "error_code"})


def redact(value: Any) -> Any:
    """A copy of `value` with every sensitive key's value replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and key.lower() in SENSITIVE_KEYS and key.lower() not in ALLOWED_KEYS
            else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    return value


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter with `redact` applied to every record."""

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        return super().serialize(redact(log))


def get_logger(service: str) -> Logger:
    """The handler's Logger; the `whoop_bridge` package logs through the same handler."""
    logger = Logger(service=service, logger_formatter=RedactingFormatter())
    package_logger = logging.getLogger("whoop_bridge")
    package_logger.handlers = list(logger.handlers)
    package_logger.setLevel(logger.log_level)
    package_logger.propagate = False
    return logger


def get_metrics(service: str) -> Metrics:
    """Powertools Metrics; every instance shares one metric set per invocation."""
    return Metrics(service=service)
