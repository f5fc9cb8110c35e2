"""Partner events from the queue: lab orders and clinical report reviews, and the bridge's
own retries of document fetches (`partner_document.fetch`).

Batches report partial failures (only failed messages come back); each event is processed
once per (event_type, resource_id) through Powertools idempotency. Outcomes that a later
event may change (a 404 being retried or given up on, an order that could not be read) are
raised through the idempotency layer, so it keeps no record of them: the delayed retry and
a later redelivery are processed, while a duplicate of a received order changes nothing.
"""

import json

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function

from whoop_bridge.config import settings
from whoop_bridge.lab.intake import Unsettled, handle_partner_event
from whoop_bridge.observability import get_logger, get_metrics, raising_safely
from whoop_bridge.whoop.partner import partner_client

logger = get_logger("requisition_processor")
metrics = get_metrics("requisition_processor")
processor = BatchProcessor(event_type=EventType.SQS)
idempotency = IdempotencyConfig(
    # A delayed retry (a requisition's 404, a document's failed fetch) has the same key: the
    # attempt before it raised Unsettled, so nothing was remembered.
    event_key_jmespath="[event_type, resource_id]",
    raise_on_no_idempotency_key=True,
    # WHOOP retries a webhook with backoff for about a day; keep the key well beyond that.
    expires_after_seconds=7 * 24 * 3600,
)
persistence = DynamoDBPersistenceLayer(table_name=settings().idempotency_table_name)
client = partner_client()


@idempotent_function(data_keyword_argument="event", config=idempotency, persistence_store=persistence)
def process_event(event: dict) -> str:
    return handle_partner_event(event, client)


def record_handler(record) -> str:
    try:
        event = json.loads(record.body)
    except ValueError:
        event = None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("event_type"), str)
        or not isinstance(event.get("resource_id"), str)
    ):
        # Not ours to retry: the intake only enqueues {event_type, resource_id}, so this is a stray message.
        metrics.add_metric(name="PartnerEventMalformed", unit=MetricUnit.Count, value=1)
        logger.error("queue message is not a partner event", extra={"message_id": record.message_id})
        return "malformed"
    try:
        outcome = process_event(event=event)
    except Unsettled as unsettled:
        outcome = unsettled.outcome
    logger.info("partner event processed", extra={"event_type": event.get("event_type"), "outcome": outcome})
    return outcome


@raising_safely
@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
