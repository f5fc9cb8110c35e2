"""Member events (`member.connected`, ...) are stored in the same DynamoDB transaction as
the change they announce, then published and forgotten. A publish that fails leaves the
event stored; the scheduled job publishes it later. At least once, never lost.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from whoop_bridge import bus
from whoop_bridge.store import member_store

logger = logging.getLogger(__name__)

# Events younger than this are left to the call that stored them.
GRACE_SECONDS = 60


def publish_stored(stored: list[dict[str, Any]]) -> None:
    """Publish events just committed; one that fails waits for `publish_pending`."""
    if not stored:
        return
    try:
        taken = bus.publish_many([(event["detail_type"], event["detail"]) for event in stored])
    except Exception:  # noqa: BLE001 - they stay in the outbox and are published later
        taken = [False] * len(stored)
    if not all(taken):
        logger.warning(
            "member events left in the outbox for the scheduled publish", extra={"events": taken.count(False)}
        )
    member_store.forget_events([event["id"] for event, ok in zip(stored, taken, strict=True) if ok])


def publish_pending() -> int:
    """Publish every event an earlier call left stored; how many went out."""
    cutoff = (
        (datetime.now(UTC) - timedelta(seconds=GRACE_SECONDS)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    published = 0
    for event in member_store.pending_events(cutoff):
        bus.publish(event["detail_type"], event["detail"])
        member_store.forget_event(event["id"])
        published += 1
    return published
