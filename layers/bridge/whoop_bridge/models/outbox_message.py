"""A bus message kept in the member outbox: stored in the same DynamoDB transaction as the
change it announces, published to EventBridge afterwards, then forgotten (at least once,
never lost; see `members/outbox.py`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from whoop_bridge.times import now_iso


class MemberMessage(StrEnum):
    """The detail types of the member bus messages."""

    CONNECTED = "member.connected"
    CONNECTION_MOVED = "member.connection_moved"
    DISCONNECTED = "member.disconnected"
    REAUTHORIZATION_REQUIRED = "member.reauthorization_required"
    RECORD_UPDATED = "member.record.updated"
    RECORD_DELETED = "member.record.deleted"


@dataclass
class OutboxMessage:
    """`detail_type` and `detail` as EventBridge gets them; `id` (hex) keys it in the
    outbox, `stored_at` (UTC ISO 8601) orders it there."""

    detail_type: str
    detail: dict[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    stored_at: str = field(default_factory=now_iso)
