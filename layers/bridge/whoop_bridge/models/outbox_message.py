"""A bus message kept in the member outbox: stored in the same DynamoDB transaction as the
change it announces, published to EventBridge afterwards, then forgotten (at least once,
never lost; see `members/outbox.py`)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from whoop_bridge.times import now_iso


class MemberMessage(StrEnum):
    """The detail types of the member bus messages."""

    CONNECTED = "member.connected"
    CONNECTION_MOVED = "member.connection_moved"
    CONNECTION_FAILED = "member.connection_failed"
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

    # Its stored form: one item of MemberTable's outbox, listed by `stored_at` on gsi1 until
    # published (docs/data-model.md#outbox-message). Kept with the message so that every store that writes
    # a change with its messages writes them the same way.
    def item(self) -> dict[str, Any]:
        return {
            **outbox_key(self.id),
            "gsi1pk": OUTBOX,
            "gsi1sk": f"{self.stored_at}#{self.id}",
            "detail_type": str(self.detail_type),
            "detail_json": json.dumps(self.detail, default=str),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> OutboxMessage:
        stored_at, message_id = item["gsi1sk"].rsplit("#", 1)
        return cls(item["detail_type"], json.loads(item["detail_json"]), message_id, stored_at)


OUTBOX = "OUTBOX"


def outbox_key(message_id: str) -> dict[str, str]:
    """The outbox item's key in MemberTable."""
    return {"pk": f"OUTBOX#{message_id}", "sk": OUTBOX}
