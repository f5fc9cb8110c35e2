"""Member data and upkeep.

- Queues (partial batch failures): WHOOP's data webhooks from the member events queue,
  once per `trace_id`; backfill and reconciliation pages, and `member.connected` (which
  starts a backfill), from the member jobs queue. Work the rate budget cannot serve now
  goes back on its queue with a delay.
- Schedules: `refresh_tokens` every 10 minutes (renew tokens, finish deferred revocations,
  publish stored member events) and `reconcile` once a day.
"""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function

from whoop_bridge.config import settings
from whoop_bridge.members import jobs
from whoop_bridge.members.job_sync import run_job, start_backfill
from whoop_bridge.members.webhook_sync import handle_webhook
from whoop_bridge.models.sync_job import IDEMPOTENCY_KEY
from whoop_bridge.observability import get_logger, get_metrics, raising_safely

logger = get_logger("member_sync")
metrics = get_metrics("member_sync")
processor = BatchProcessor(event_type=EventType.SQS)
# WHOOP retries a webhook over about an hour (the intake accepts two); a day covers every
# redelivery. A webhook that raises (read lag, the budget) leaves no record here, so
# its deferred copy runs.
DAY = 24 * 3600
webhook_once = IdempotencyConfig(
    event_key_jmespath="trace_id", raise_on_no_idempotency_key=True, expires_after_seconds=DAY
)
job_once = IdempotencyConfig(
    event_key_jmespath=IDEMPOTENCY_KEY, raise_on_no_idempotency_key=True, expires_after_seconds=DAY
)
backfill_once = IdempotencyConfig(event_key_jmespath="id", raise_on_no_idempotency_key=True, expires_after_seconds=DAY)


# One persistence layer per config: a layer takes the key expression of the config it serves.
def _persistence() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=settings().idempotency_table_name)


@idempotent_function(data_keyword_argument="message", config=webhook_once, persistence_store=_persistence())
def process_webhook(message: dict) -> dict:
    return handle_webhook(message)


@idempotent_function(data_keyword_argument="message", config=job_once, persistence_store=_persistence())
def process_job(message: dict) -> dict:
    return run_job(message)


@idempotent_function(data_keyword_argument="message", config=backfill_once, persistence_store=_persistence())
def process_connected(message: dict) -> dict:
    return start_backfill(message["detail"]["client_user_id"])


RUNNERS = {
    jobs.WEBHOOK: lambda message: process_webhook(message=message),
    jobs.JOB: lambda message: process_job(message=message),
    jobs.CONNECTED: lambda message: process_connected(message=message),
}


def _count(counted: list[jobs.Count]) -> None:
    for count in counted:
        metrics.add_metric(name=count.name, unit=MetricUnit.Count, value=count.value)


def record_handler(record) -> str:
    handled = jobs.handle_message(record.body, record.message_id, RUNNERS)
    _count(handled.metrics)
    return handled.outcome


@raising_safely
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
    result, counted = jobs.run_schedule(event.get("action"))
    _count(counted)
    return result
