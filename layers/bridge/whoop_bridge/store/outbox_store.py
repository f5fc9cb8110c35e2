"""The member outbox in MemberTable: bus messages stored with the change they announce
(see `member_table.outbox_puts`), listed by `stored_at` until published, then forgotten."""

from __future__ import annotations

import json
from collections.abc import Iterator

from boto3.dynamodb.conditions import Key

from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.store import dynamo
from whoop_bridge.store.member_table import OUTBOX, outbox_key, outbox_puts, query_index, table


def keep(messages: list[OutboxMessage]) -> None:
    """Store messages on their own (a change usually stores them in its own transaction)."""
    if messages:
        dynamo.client().transact_write_items(TransactItems=outbox_puts(messages))


def pending(stored_before: str) -> Iterator[OutboxMessage]:
    """Messages stored before the given time (UTC ISO 8601) and not yet published, oldest first."""
    for item in query_index(OUTBOX, Key("gsi1sk").lt(stored_before)):
        message_id = item["pk"].removeprefix("OUTBOX#")
        yield OutboxMessage(
            item["detail_type"], json.loads(item["detail_json"]), message_id, item["gsi1sk"].rsplit("#", 1)[0]
        )


def forget(message_id: str) -> None:
    table().delete_item(Key=outbox_key(message_id))


def forget_many(message_ids: list[str]) -> None:
    """Published: these messages leave the outbox (batched, 25 to a request)."""
    if len(message_ids) == 1:
        forget(message_ids[0])
        return
    with table().batch_writer() as batch:
        for message_id in message_ids:
            batch.delete_item(Key=outbox_key(message_id))
