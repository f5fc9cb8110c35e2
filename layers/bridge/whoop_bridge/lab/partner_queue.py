"""The partner events queue, as the lab side writes to it.

The webhook intake puts WHOOP's `{event_type, resource_id}` there; the bridge itself puts the
same shape there for work it takes up again later (a requisition WHOOP did not show yet, a
document fetch to retry, the sandbox's test data), so `requisition_processor` handles one
shape whoever wrote it.
"""

from __future__ import annotations

import json
from typing import Any

from whoop_bridge import aws
from whoop_bridge.config import settings


def enqueue(event_type: str, resource_id: str, *, delay_seconds: int = 0, **extra: Any) -> None:
    """Put `{event_type, resource_id, **extra}` on the partner events queue, delivered after
    `delay_seconds` (0 to 900, SQS's limit). Raises the SQS client's error when refused."""
    config = settings()
    config.require("partner_events_queue_url")
    aws.client("sqs").send_message(
        QueueUrl=config.partner_events_queue_url,
        MessageBody=json.dumps({"event_type": event_type, "resource_id": resource_id, **extra}),
        DelaySeconds=delay_seconds,
    )
