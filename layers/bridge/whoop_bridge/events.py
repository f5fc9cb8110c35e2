"""Domain events on the stack's EventBridge bus (`requisition.received`,
`service_request.status_changed`, ...). Details carry ids, codes and statuses, never
patient fields or results.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from whoop_bridge import aws
from whoop_bridge.config import settings

logger = logging.getLogger(__name__)

SOURCE = "whoop-bridge"
DETAIL_VERSION = "1"


class PublishFailed(RuntimeError):
    """EventBridge refused the event; the caller's retry will publish it again."""


def publish(detail_type: str, detail: dict[str, Any]) -> None:
    """Put one event on the bus, or raise so the caller retries."""
    bus = settings().event_bus_name
    if not bus:
        raise PublishFailed("EVENT_BUS_NAME is not configured")
    entry = {
        "Source": SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps({"version": DETAIL_VERSION, **detail}, default=str),
        "EventBusName": bus,
    }
    result = aws.client("events").put_events(Entries=[entry])
    if result.get("FailedEntryCount"):
        code = result["Entries"][0].get("ErrorCode", "unknown")
        raise PublishFailed(f"{detail_type} was not published: {code}")
    logger.info("event published", extra={"detail_type": detail_type})
