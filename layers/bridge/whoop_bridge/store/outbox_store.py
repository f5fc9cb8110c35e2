"""The member outbox in MemberTable: bus messages stored with the change they announce
(their item is `OutboxMessage.item()`), listed by `stored_at` on gsi1 until published,
then forgotten (docs/data-model.md#outbox-message)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Key

from whoop_bridge.models.outbox_message import OUTBOX, OutboxMessage, outbox_key
from whoop_bridge.store import dynamo

INDEX = "gsi1"


def _table() -> Any:
    return dynamo.table("member_table_name")


def keep(messages: list[OutboxMessage]) -> None:
    """Store messages on their own (a change usually stores them in its own transaction)."""
    if messages:
        name = _table().name
        puts = [{"Put": {"TableName": name, "Item": message.item()}} for message in messages]
        dynamo.client().transact_write_items(TransactItems=puts)


def pending(stored_before: str) -> Iterator[OutboxMessage]:
    """Messages stored before the given time (UTC ISO 8601) and not yet published, oldest first."""
    condition = Key("gsi1pk").eq(OUTBOX) & Key("gsi1sk").lt(stored_before)
    for item in dynamo.query_all(_table(), IndexName=INDEX, KeyConditionExpression=condition):
        yield OutboxMessage.from_item(item)


def forget(message_id: str) -> None:
    _table().delete_item(Key=outbox_key(message_id))


def forget_many(message_ids: list[str]) -> None:
    """Published: these messages leave the outbox (batched, 25 to a request)."""
    if len(message_ids) == 1:
        forget(message_ids[0])
        return
    with _table().batch_writer() as batch:
        for message_id in message_ids:
            batch.delete_item(Key=outbox_key(message_id))
