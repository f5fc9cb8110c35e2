"""Member bus messages (`member.connected`, ...) are stored in the same DynamoDB transaction
as the change they announce, then published and forgotten. A publish that fails leaves the
message stored; the scheduled job publishes it later. At least once, never lost.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.times import iso

logger = logging.getLogger(__name__)

# Messages younger than this are left to the call that stored them.
GRACE_SECONDS = 60


def publish_stored(stored: list[OutboxMessage], ports: MemberPorts = PORTS) -> None:
    """Publish messages just committed; one that fails waits for `publish_pending`."""
    if not stored:
        return
    try:
        taken = ports.bus.publish_many([(message.detail_type, message.detail) for message in stored])
    except Exception:  # noqa: BLE001 - they stay in the outbox and are published later
        taken = [False] * len(stored)
    if not all(taken):
        logger.warning(
            "member events left in the outbox for the scheduled publish", extra={"events": taken.count(False)}
        )
    ports.outbox.forget_many([message.id for message, ok in zip(stored, taken, strict=True) if ok])


def publish_pending(ports: MemberPorts = PORTS) -> int:
    """Publish every message an earlier call left stored; how many went out."""
    cutoff = iso(datetime.now(UTC) - timedelta(seconds=GRACE_SECONDS))
    published = 0
    for message in ports.outbox.pending(cutoff):
        ports.bus.publish(message.detail_type, message.detail)
        ports.outbox.forget(message.id)
        published += 1
    return published
