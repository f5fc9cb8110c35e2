"""The stack's EventBridge bus: what happened, published for the integrator (`requisition.received`,
`service_request.status_changed`, `member.record.updated`, ...). Lab events carry ids,
codes and statuses, never patient fields or results, but `requisition.received` with the
operator's OrderPushFormat (lab/order_push.py: the order itself, for a lab that prefers
push); `member.record.updated` carries the member's WHOOP record itself, because handing it
on is its purpose (the bus stays in the integrator's account). Logs never carry any of it.
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


# EventBridge takes at most ten entries a call, each of at most 256 KB.
MAX_ENTRIES = 10
MAX_ENTRY_BYTES = 256 * 1024


def _detail_text(detail: dict[str, Any]) -> str:
    return json.dumps({"version": DETAIL_VERSION, **detail}, default=str)


def entry_bytes(detail_type: str, detail: dict[str, Any]) -> int:
    """The size EventBridge counts against MAX_ENTRY_BYTES: Source, DetailType and Detail in
    UTF-8 (the bridge sets no Time or Resources)."""
    return sum(len(part.encode("utf-8")) for part in (SOURCE, detail_type, _detail_text(detail)))


def publish(detail_type: str, detail: dict[str, Any]) -> None:
    """Put one event on the bus, or raise so the caller retries."""
    (published,) = publish_many([(detail_type, detail)])
    if not published:
        raise PublishFailed(f"{detail_type} was not published")


def publish_many(events: list[tuple[str, dict[str, Any]]]) -> list[bool]:
    """Put events on the bus, ten to a call; for each, whether EventBridge took it."""
    bus = settings().event_bus_name
    if not bus:
        raise PublishFailed("EVENT_BUS_NAME is not configured")
    taken: list[bool] = []
    for start in range(0, len(events), MAX_ENTRIES):
        chunk = events[start : start + MAX_ENTRIES]
        entries = [
            {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": _detail_text(detail),
                "EventBusName": bus,
            }
            for detail_type, detail in chunk
        ]
        result = aws.client("events").put_events(Entries=entries)
        for (detail_type, _), answer in zip(chunk, result["Entries"], strict=True):
            ok = "EventId" in answer and not answer.get("ErrorCode")
            taken.append(ok)
            if ok:
                logger.info("event published", extra={"detail_type": detail_type})
            else:
                logger.warning(
                    "event not published",
                    extra={"detail_type": detail_type, "error_code": answer.get("ErrorCode", "unknown")},
                )
    return taken
