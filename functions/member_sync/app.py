"""Member data and upkeep.

- Queues (partial batch failures): WHOOP's data webhooks from the member events queue,
  once per `trace_id`; backfill and reconciliation pages, and `member.connected` (which
  starts a backfill), from the member jobs queue. Work the rate budget cannot serve now
  goes back on its queue with a delay.
- Schedules: `refresh_tokens` every 10 minutes (renew tokens, finish deferred revocations,
  publish stored member events) and `reconcile` once a day.
"""

import json

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from whoop_bridge.config import settings
from whoop_bridge.members import connections, outbox, sync
from whoop_bridge.members.tokens import TokenService
from whoop_bridge.observability import get_logger, get_metrics
from whoop_bridge.webhooks import MEMBER_EVENT_TYPES
from whoop_bridge.whoop.budget import BudgetExhausted

logger = get_logger("member_sync")
metrics = get_metrics("member_sync")
processor = BatchProcessor(event_type=EventType.SQS)
# WHOOP retries a webhook for up to two hours (the intake accepts that late); a day covers
# every redelivery. A webhook that raises (read lag, the budget) leaves no record here, so
# its deferred copy runs.
DAY = 24 * 3600
webhook_once = IdempotencyConfig(
    event_key_jmespath="trace_id", raise_on_no_idempotency_key=True, expires_after_seconds=DAY
)
job_once = IdempotencyConfig(
    event_key_jmespath="[job, client_user_id, cause, start, end, steps, next_token]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=DAY,
)
backfill_once = IdempotencyConfig(event_key_jmespath="id", raise_on_no_idempotency_key=True, expires_after_seconds=DAY)


# One persistence layer per config: a layer takes the key expression of the config it serves.
def _persistence() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=settings().idempotency_table_name)


@idempotent_function(data_keyword_argument="message", config=webhook_once, persistence_store=_persistence())
def process_webhook(message: dict) -> dict:
    return sync.handle_webhook(message)


@idempotent_function(data_keyword_argument="message", config=job_once, persistence_store=_persistence())
def process_job(message: dict) -> dict:
    return sync.run_job(message)


@idempotent_function(data_keyword_argument="message", config=backfill_once, persistence_store=_persistence())
def process_connected(message: dict) -> dict:
    return sync.start_backfill(message["detail"]["client_user_id"])


def record_handler(record) -> str:
    try:
        message = json.loads(record.body)
    except ValueError:
        message = None
    kind = _kind(message)
    if kind is None:
        # Not ours to retry: the intake and this function only enqueue the shapes above.
        metrics.add_metric(name="MemberMessageMalformed", unit=MetricUnit.Count, value=1)
        logger.error("queue message is not a member webhook or job", extra={"message_id": record.message_id})
        return "malformed"
    process, queue_url = {
        "webhook": (process_webhook, settings().member_events_queue_url),
        "job": (process_job, settings().member_jobs_queue_url),
        "connected": (process_connected, settings().member_jobs_queue_url),
    }[kind]
    try:
        result = process(message=message)
    except sync.JobDeferred as deferred:
        # The job goes back on the queue from where the budget stopped it.
        delay = sync.defer(settings().member_jobs_queue_url, deferred.rest, deferred.retry_after)
        metrics.add_metric(name="MemberWorkDeferred", unit=MetricUnit.Count, value=1)
        logger.info(
            "deferred for the rate budget", extra={"kind": kind, "reason": deferred.reason, "delay_seconds": delay}
        )
        return "deferred"
    except sync.ReadLagRetry as retry:
        # WHOOP answered 404 right after its own webhook: ask again in a minute.
        delay = sync.defer(queue_url, retry.rest, retry.retry_after)
        metrics.add_metric(name="MemberRecordNotYetReadable", unit=MetricUnit.Count, value=1)
        logger.info(
            "record not readable at WHOOP yet; asking again later",
            extra={"event_type": message.get("type"), "delay_seconds": delay},
        )
        return "read_lag"
    except BudgetExhausted as exhausted:
        delay = sync.defer(queue_url, message, exhausted.retry_after)
        metrics.add_metric(name="MemberWorkDeferred", unit=MetricUnit.Count, value=1)
        logger.info(
            "deferred for the rate budget", extra={"kind": kind, "reason": exhausted.reason, "delay_seconds": delay}
        )
        return "deferred"
    except IdempotencyAlreadyInProgressError:
        raise  # a duplicate while the first is running: it comes back and finds the result
    except Exception:
        # The message comes back (5 times, then the dead-letter queue and its alarm).
        logger.exception("member message failed", extra={"kind": kind, "message_id": record.message_id})
        raise
    _count(kind, result)
    logger.info(
        "member message processed",
        extra={"kind": kind, "outcome": result["outcome"], "event_type": message.get("type")},
    )
    return result["outcome"]


def _kind(message) -> str | None:
    if not isinstance(message, dict):
        return None
    if (
        message.get("job") == sync.SYNC_JOB
        and isinstance(message.get("client_user_id"), str)
        and isinstance(message.get("steps"), list)
    ):
        return "job"
    if message.get("detail-type") == "member.connected" and isinstance(
        (message.get("detail") or {}).get("client_user_id"), str
    ):
        return "connected"
    if (
        message.get("type") in MEMBER_EVENT_TYPES
        and isinstance(message.get("trace_id"), str)
        and isinstance(message.get("user_id"), int)
    ):
        return "webhook"
    return None


def _count(kind: str, result: dict) -> None:
    outcome = result["outcome"]
    if outcome == "unknown_member":
        metrics.add_metric(name="WebhookForUnknownMember", unit=MetricUnit.Count, value=1)
    elif outcome.startswith("skipped_"):
        metrics.add_metric(name="MemberSyncSkipped", unit=MetricUnit.Count, value=1)
    elif outcome == "not_found":
        metrics.add_metric(name="WebhookRecordNotFound", unit=MetricUnit.Count, value=1)
    if result.get("unreadable"):
        metrics.add_metric(name="RecordsUnreadable", unit=MetricUnit.Count, value=result["unreadable"])
    if result.get("changed") or result.get("repairs"):
        metrics.add_metric(
            name="RecordsChanged", unit=MetricUnit.Count, value=result.get("changed") or result.get("repairs")
        )
    if result.get("repairs"):
        metrics.add_metric(name="ReconciliationRepairs", unit=MetricUnit.Count, value=result["repairs"])


def _upkeep() -> dict:
    counts = TokenService().refresh_expiring()
    counts["revoked"] = connections.retry_pending_revocations()
    counts["events_published"] = outbox.publish_pending()
    metrics.add_metric(name="TokensRefreshed", unit=MetricUnit.Count, value=counts["refreshed"])
    metrics.add_metric(name="TokenRefreshFailed", unit=MetricUnit.Count, value=counts["failed"])
    metrics.add_metric(name="ReauthorizationRequired", unit=MetricUnit.Count, value=counts["reauthorization_required"])
    logger.info("member upkeep done", extra=counts)
    return counts


def _reconcile() -> dict:
    jobs = sync.schedule_reconciliation()
    metrics.add_metric(name="ReconciliationJobsQueued", unit=MetricUnit.Count, value=jobs)
    return {"jobs_queued": jobs}


SCHEDULES = {"refresh_tokens": _upkeep, "reconcile": _reconcile}


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    event = event or {}
    if "Records" in event:
        webhook_once.register_lambda_context(context)
        job_once.register_lambda_context(context)
        backfill_once.register_lambda_context(context)
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    action = event.get("action")
    if action not in SCHEDULES:
        raise ValueError(f"unknown member_sync action: {str(action)[:64]!r}")
    return SCHEDULES[action]()
