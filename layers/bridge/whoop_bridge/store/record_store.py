"""MemberTable: a member's WHOOP records (cycle, sleep, recovery, workout; see
`models/member_record.py`), kept newest-`updated_at`-wins, each change written in one
transaction with the outbox message that announces it (`members/outbox.py` publishes it).

| item | pk | sk | gsi1pk / gsi1sk |
|---|---|---|---|
| member record | `MEMBER#<client_user_id>` | `<TYPE>#<record_id>` | `RECORDS#<client_user_id>#<record_type>` / `<record_time>#<record_id>` |

TYPE is CYCLE, SLEEP, RECOVERY or WORKOUT; a recovery's record_id is its sleep's id, and
its record time is its sleep's `start` (`sleep_start`), as WHOOP windows recoveries.
Attributes: `record_type`, `record_id`, `user_id`, `updated_at`, `score_state`,
`record_version`, `sleep_start` (a recovery's), `record_json` (the normalised record as
JSON text, so its floats never pass through DynamoDB's Decimals) and `stored_at`. The records sit under the member's partition, so
`member_item_store.delete_member_data` (DeleteDataOnDisconnect) deletes them with the rest
of the member's data.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from whoop_bridge.models import member_record as records
from whoop_bridge.models.listing import InvalidPageToken
from whoop_bridge.models.member_record import InvalidWindow, RecordQuery, window
from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.store import dynamo

__all__ = ["InvalidPageToken", "InvalidWindow", "delete", "get", "ids_between", "page", "upsert"]

INDEX = "gsi1"
# Page-token keys: the table's and the index's (LastEvaluatedKey of a gsi1 query).
_TOKEN_KEYS = frozenset({"pk", "sk", "gsi1pk", "gsi1sk"})


def _table() -> Any:
    return dynamo.table("member_table_name")


def _with_message(change: dict[str, Any], message: OutboxMessage) -> bool:
    """Write a change and the message that announces it in one transaction; False only when
    the change's condition did not hold (dynamo.applied raises a cancellation for any other
    reason, so the caller retries instead of losing the record)."""
    items = [change, {"Put": {"TableName": _table().name, "Item": message.item()}}]
    return dynamo.applied(dynamo.client().transact_write_items, TransactItems=items)


def record_key(client_user_id: str, record_type: str, record_id: str) -> dict[str, str]:
    """The table key of one record."""
    return {"pk": f"MEMBER#{client_user_id}", "sk": f"{records.key_prefix(record_type)}#{record_id}"}


def listing_key(client_user_id: str, record_type: str) -> str:
    """The gsi1 partition holding one member's records of one type, by time."""
    return f"RECORDS#{client_user_id}#{record_type}"


# Writes --------------------------------------------------------------------------------------


def upsert(
    client_user_id: str,
    user_id: int,
    record_type: str,
    record: dict[str, Any],
    cause: str,
    *,
    sleep_start: str | None = None,
) -> list[OutboxMessage]:
    """Store a record unless the stored one is as new or newer (by `updated_at`; at the same
    `updated_at` a scored or unscorable record still replaces a pending one). A recovery is
    windowed by `sleep_start` (its sleep's start) when given, else by its `created_at`.
    Returns the stored `member.record.updated` message for `outbox.publish_stored`, or []
    when nothing changed. Raises RecordInvalid for a record the bridge cannot read."""
    record = records.normalize(record_type, record)
    record_id = records.record_id(record_type, record)
    message = OutboxMessage(*records.updated_event(client_user_id, user_id, record_type, record, cause))
    condition = "attribute_not_exists(pk) OR updated_at < :new"
    values: dict[str, Any] = {":new": record["updated_at"]}
    if record["score_state"] in records.FINAL_SCORE_STATES:
        condition += " OR (updated_at = :new AND score_state = :pending)"
        values[":pending"] = records.PENDING_SCORE
    item = {
        **record_key(client_user_id, record_type, record_id),
        "record_type": record_type,
        "record_id": record_id,
        "user_id": user_id,
        "updated_at": record["updated_at"],
        "score_state": record["score_state"],
        "record_version": records.RECORD_VERSION,
        "record_json": json.dumps(record, separators=(",", ":")),
        "stored_at": message.stored_at,
        "gsi1pk": listing_key(client_user_id, record_type),
        "gsi1sk": f"{records.record_time(record_type, record, sleep_start)}#{record_id}",
    }
    if record_type == "recovery" and sleep_start:
        item["sleep_start"] = records.normalize_timestamp(sleep_start)
    put = {
        "Put": {
            "TableName": _table().name,
            "Item": item,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
    }
    return [message] if _with_message(put, message) else []


def delete(client_user_id: str, user_id: int, record_type: str, record_id: str, cause: str) -> list[OutboxMessage]:
    """Delete a stored record. Returns the stored `member.record.deleted` message for
    `outbox.publish_stored`, or [] when no such record was stored."""
    message = OutboxMessage(*records.deleted_event(client_user_id, user_id, record_type, record_id, cause))
    remove = {
        "Delete": {
            "TableName": _table().name,
            "Key": record_key(client_user_id, record_type, record_id),
            "ConditionExpression": "attribute_exists(pk)",
        }
    }
    return [message] if _with_message(remove, message) else []


# Reads ---------------------------------------------------------------------------------------


def get(client_user_id: str, record_type: str, record_id: str) -> dict[str, Any] | None:
    """One stored record (normalised), or None."""
    item = _table().get_item(Key=record_key(client_user_id, record_type, record_id), ConsistentRead=True).get("Item")
    return json.loads(item["record_json"]) if item else None


def page(query: RecordQuery) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the query's records (normalised), newest first (by records.record_time),
    and the token of the next page (None after the last; the last page may be empty).
    Raises InvalidPageToken for a token not handed out by this listing, InvalidWindow when
    end is not after start, ValueError for a bad time or a limit under 1."""
    if query.limit < 1:
        raise ValueError("limit must be at least 1")
    client_user_id, record_type = query.client_user_id, query.record_type
    start, end = window(query.start, query.end)
    arguments: dict[str, Any] = {
        "IndexName": INDEX,
        "KeyConditionExpression": _condition(client_user_id, record_type, start, end),
        "ScanIndexForward": False,
        "Limit": query.limit,
    }
    if query.next_token is not None:
        arguments["ExclusiveStartKey"] = _start_key(query.next_token, client_user_id, record_type, start, end)
    answer = _table().query(**arguments)
    found = [json.loads(item["record_json"]) for item in answer.get("Items", [])]
    last = answer.get("LastEvaluatedKey")
    return found, dynamo.encode_page_token(last, listing_key(client_user_id, record_type)) if last else None


def ids_between(client_user_id: str, record_type: str, start: str | datetime, end: str | datetime) -> set[str]:
    """The id of every stored record of the type whose record time is in [start, end)."""
    start, end = window(start, end)
    arguments: dict[str, Any] = {
        "IndexName": INDEX,
        "KeyConditionExpression": _condition(client_user_id, record_type, start, end),
        "ProjectionExpression": "record_id",
    }
    found: set[str] = set()
    while True:
        answer = _table().query(**arguments)
        found.update(item["record_id"] for item in answer.get("Items", []))
        if "LastEvaluatedKey" not in answer:
            return found
        arguments["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def _condition(client_user_id: str, record_type: str, start: str | None, end: str | None) -> Any:
    # Sort keys are `<time>#<id>`: `<start>` sorts before every key at start (inclusive),
    # `<end>` before every key at end (exclusive), so BETWEEN is exactly [start, end).
    records.key_prefix(record_type)  # an unknown type is an error, not an empty listing
    condition = Key("gsi1pk").eq(listing_key(client_user_id, record_type))
    if start is not None and end is not None:
        return condition & Key("gsi1sk").between(start, end)
    if start is not None:
        return condition & Key("gsi1sk").gte(start)
    if end is not None:
        return condition & Key("gsi1sk").lt(end)
    return condition


def _start_key(token: str, client_user_id: str, record_type: str, start: str | None, end: str | None) -> dict[str, str]:
    """The start key of a `next_token` this listing (member and type) issued; its window is
    checked on the key itself, as DynamoDB refuses a start key outside the key condition."""
    key = dynamo.decode_page_token(token, listing_key(client_user_id, record_type))
    # DynamoDB refuses an empty or over-long key value (a 5xx): refuse it here as a 400.
    if set(key) != _TOKEN_KEYS or not all(
        isinstance(value, str) and 0 < len(value.encode()) <= 1024 for value in key.values()
    ):
        raise InvalidPageToken("next_token is not a page token")
    expected = record_key(client_user_id, record_type, "")
    ours = key["pk"] == expected["pk"] and key["sk"].startswith(expected["sk"]) and key["sk"] != expected["sk"]
    if not ours or key["gsi1pk"] != listing_key(client_user_id, record_type):
        raise InvalidPageToken("next_token belongs to another member or record type")
    if (start is not None and key["gsi1sk"] < start) or (end is not None and key["gsi1sk"] >= end):
        raise InvalidPageToken("next_token belongs to another window")
    return key
