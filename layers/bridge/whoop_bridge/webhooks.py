"""Webhook intake: verify WHOOP's signature on the raw body, enqueue, answer at once.

WHOOP counts an answer slower than one second as a failure, so this module and what it
imports stay light: no pydantic, no event handler, no Tracer.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from whoop_bridge import aws, emf
from whoop_bridge.config import settings
from whoop_bridge.models.identifiers import MAX_RESOURCE_ID_LENGTH
from whoop_bridge.observability import error_summary
from whoop_bridge.secrets import SecretNotConfigured, read_secret
from whoop_bridge.whoop.signatures import verify_member, verify_partner

logger = logging.getLogger(__name__)

# The partner webhook's event types (docs/whoop.md#partner-webhooks).
REQUISITION_CREATED = "lab_requisition.created"
REVIEW_REQUESTED = "clinical_report_review.requested"
PARTNER_EVENT_TYPES = frozenset({REQUISITION_CREATED, REVIEW_REQUESTED})

# The data webhook's event types, only these six (docs/whoop.md#data-webhooks).
MEMBER_EVENT_TYPES = frozenset(
    {"recovery.updated", "recovery.deleted", "sleep.updated", "sleep.deleted", "workout.updated", "workout.deleted"}
)
# WHOOP signs a millisecond timestamp and retries a failed delivery 5 times over about an
# hour, perhaps with the signature it first made (docs/whoop.md#webhook-retries). A genuine
# webhook is accepted for twice that (member_sync dedupes on trace_id, so a replay changes
# nothing); one older, or further than the clock skew ahead of now, is refused.
WHOOP_RETRY_SCHEDULE_SECONDS = 2 * 3600
SIGNATURE_WINDOW_SECONDS = 300  # clock skew either way; older than this is logged as late
MAX_SIGNATURE_AGE_SECONDS = WHOOP_RETRY_SCHEDULE_SECONDS + SIGNATURE_WINDOW_SECONDS
# v2 webhooks name records by UUID (v1 used integers, which the v2 endpoints cannot fetch).
RECORD_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_TRACE_ID_LENGTH = 128
# Counted once per webhook refused for a bad signature; template.yaml alarms on it.
SIGNATURE_REFUSED_METRIC = "WebhookSignatureRefused"


@dataclass(frozen=True)
class Answer:
    status: int
    problem: str | None = None


def header(headers: dict[str, Any] | None, name: str) -> str | None:
    """A request header by name, whatever its case (API Gateway keeps the sender's)."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None


def raw_body(event: dict[str, Any]) -> bytes:
    """The request body exactly as WHOOP sent it: signatures cover these bytes."""
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


def _counted(webhook: str) -> Callable[[Callable[[dict[str, Any]], Answer]], Callable[[dict[str, Any]], Answer]]:
    """Count each answer of the `webhook` (partner|member) intake as `Webhooks`, dimensions
    `webhook` and `outcome`: `accepted` (2xx), `refused` (4xx) or `unavailable` (5xx)."""

    def counting(accept: Callable[[dict[str, Any]], Answer]) -> Callable[[dict[str, Any]], Answer]:
        @functools.wraps(accept)
        def run(event: dict[str, Any]) -> Answer:
            status = 500  # an error escaping `accept` is answered 503 by the handler
            try:
                answer = accept(event)
                status = answer.status
                return answer
            finally:
                outcome = "accepted" if status < 400 else "refused" if status < 500 else "unavailable"
                emf.put("Webhooks", {"webhook": webhook, "outcome": outcome})

        return run

    return counting


@_counted("partner")
def accept_partner_webhook(event: dict[str, Any]) -> Answer:
    """`POST /webhooks/partner`: 204 enqueued (or ignored), 401 bad signature, 400 bad body,
    503 when the bridge is not configured (WHOOP retries; nothing is lost)."""
    body = raw_body(event)
    signature = header(event.get("headers"), "WHOOP-Signed")
    if not signature:
        return Answer(401, "missing signature")
    config = settings()
    try:
        # Its own secret (PartnerWebhookSecret): the intake never reads the partner's client credentials.
        webhook_secret = read_secret(config.partner_webhook_secret_arn, ("webhook_secret",))["webhook_secret"]
    except SecretNotConfigured as error:
        # Fail closed: without the secret no webhook can be trusted.
        logger.error(
            "partner webhook refused: the webhook secret is not configured", extra={"detail": error_summary(error)}
        )
        return Answer(503, "not configured")
    if not verify_partner(body, signature, webhook_secret):
        return _signature_refused("partner")

    message = _json_object(body, "{event_type, resource_id}")
    if isinstance(message, Answer):
        return message
    event_type, resource_id = message.get("event_type"), message.get("resource_id")
    if not isinstance(event_type, str) or not _text(resource_id, MAX_RESOURCE_ID_LENGTH):
        return Answer(400, "body must be {event_type, resource_id}")
    if event_type not in PARTNER_EVENT_TYPES:
        logger.warning("partner webhook ignored: unknown event type", extra={"event_type": event_type[:64]})
        return Answer(204)

    _enqueue("partner_events_queue_url", {"event_type": event_type, "resource_id": resource_id})
    logger.info("partner webhook enqueued", extra={"event_type": event_type, "resource_id": resource_id})
    return Answer(204)


@_counted("member")
def accept_member_webhook(event: dict[str, Any]) -> Answer:
    """`POST /webhooks/whoop`: 204 enqueued, 401 bad signature or one signed outside
    WHOOP's retry schedule, 400 bad body, 503 when the member app's secret is not
    configured (WHOOP retries; nothing is lost)."""
    body = raw_body(event)
    headers = event.get("headers")
    signature = header(headers, "X-WHOOP-Signature")
    timestamp = header(headers, "X-WHOOP-Signature-Timestamp")
    if not signature or not timestamp:
        return Answer(401, "missing signature")
    if not timestamp.isdigit() or len(timestamp) > 16:
        return _signature_refused("member", "the signature timestamp is malformed")
    config = settings()
    try:
        client_secret = read_secret(config.member_secret_arn, ("client_secret",))["client_secret"]
    except SecretNotConfigured as error:
        logger.error(
            "data webhook refused: the member app's client secret is not configured",
            extra={"detail": error_summary(error)},
        )
        return Answer(503, "not configured")
    if not verify_member(timestamp, body, signature, client_secret):
        return _signature_refused("member")
    # Genuine: now its age. A late one is WHOOP retrying; too old or from the future is not.
    age = time.time() - int(timestamp) / 1000
    if age > MAX_SIGNATURE_AGE_SECONDS or age < -SIGNATURE_WINDOW_SECONDS:
        logger.warning(
            "data webhook refused: genuine, but signed outside WHOOP's retry schedule",
            extra={"age_seconds": round(age)},
        )
        return Answer(401, "stale signature")
    if age > SIGNATURE_WINDOW_SECONDS:
        logger.info("data webhook is late (WHOOP retrying): accepted", extra={"age_seconds": round(age)})

    message = _json_object(body, "{user_id, id, type, trace_id}")
    if isinstance(message, Answer):
        return message
    user_id, record_id, event_type, trace_id = (message.get(key) for key in ("user_id", "id", "type", "trace_id"))
    if not (
        type(user_id) is int and user_id > 0 and isinstance(event_type, str) and _text(trace_id, MAX_TRACE_ID_LENGTH)
    ):
        return Answer(400, "body must be {user_id, id, type, trace_id}")
    if event_type not in MEMBER_EVENT_TYPES:
        logger.warning("data webhook ignored: unknown event type", extra={"event_type": event_type[:64]})
        return Answer(204)
    if not isinstance(record_id, str) or not RECORD_UUID.match(record_id):
        # A v1 webhook (integer id): the app's webhook model version must be v2.
        logger.error(
            "data webhook refused: id is not a v2 UUID; set the app's webhook model version to v2",
            extra={"event_type": event_type},
        )
        return Answer(400, "id must be a UUID (v2 webhooks)")

    _enqueue(
        "member_events_queue_url",
        {"user_id": user_id, "id": record_id.lower(), "type": event_type, "trace_id": trace_id},
    )
    logger.info("data webhook enqueued", extra={"event_type": event_type, "trace_id": trace_id})
    return Answer(204)


def _signature_refused(webhook: str, why: str = "bad signature") -> Answer:
    """The 401 for a webhook whose signature does not verify, counted as the metric
    `WebhookSignatureRefused` (dimensions service=webhook_intake, webhook=partner|member).

    A wrong or rotated secret refuses every webhook this way, and a 401 is neither a Lambda
    error nor a 5xx: only this metric (and its alarm) shows it. The metric is written at
    once as one EMF line, since the intake has no `log_metrics` decorator.
    """
    logger.warning("%s webhook refused: %s", "partner" if webhook == "partner" else "data", why)
    with single_metric(
        name=SIGNATURE_REFUSED_METRIC,
        unit=MetricUnit.Count,
        value=1,
        # The stack sets the namespace; without it Powertools would raise and turn the 401 into a 503.
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "WhoopBridge",
        default_dimensions={"service": "webhook_intake", "webhook": webhook},
    ):
        pass
    return Answer(401, "bad signature")


def _json_object(body: bytes, shape: str) -> dict[str, Any] | Answer:
    """The body as a JSON object, or the 400 answer: not JSON, or not the object `shape` names."""
    try:
        message = json.loads(body)
    except ValueError:
        return Answer(400, "body is not JSON")
    return message if isinstance(message, dict) else Answer(400, f"body must be {shape}")


def _text(value: Any, most: int) -> bool:
    """Whether `value` is text of 1 to `most` characters."""
    return isinstance(value, str) and 0 < len(value) <= most


def _enqueue(queue_setting: str, message: dict[str, Any]) -> None:
    """Send `message` as JSON to the SQS queue whose URL is the setting `queue_setting`."""
    config = settings()
    config.require(queue_setting)
    aws.client("sqs").send_message(QueueUrl=getattr(config, queue_setting), MessageBody=json.dumps(message))
