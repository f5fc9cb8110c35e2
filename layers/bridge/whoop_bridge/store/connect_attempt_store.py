"""Members' last connect attempts in MemberTable: one small item per member beside its
connection (`MEMBER#<id>` / `CONNECT_ATTEMPT`), written by the OAuth callback with the bus
message that announces a failure (the member outbox), and never touching the connection.

While the member has no connection item, the attempt is what lists the member in the status
index as `not_connected` (models/connection.py STATUS_INDEX; docs/data-model.md#connect-attempt).
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from whoop_bridge.models.connect_attempt import NOT_CONNECTED, ConnectAttempt
from whoop_bridge.models.connection import STATUS_INDEX, status_index_keys, status_partition
from whoop_bridge.models.oauth_state import CallbackStatus
from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.store import dynamo

ATTEMPT = "CONNECT_ATTEMPT"
MEMBER_PREFIX = "MEMBER#"


def _table() -> Any:
    return dynamo.table("member_table_name")


def attempt_key(client_user_id: str) -> dict[str, str]:
    return {"pk": f"{MEMBER_PREFIX}{client_user_id}", "sk": ATTEMPT}


def _item(attempt: ConnectAttempt) -> dict[str, Any]:
    values = {"client_user_id": attempt.client_user_id, "outcome": str(attempt.outcome), "at": attempt.at}
    if attempt.reason is not None:
        values["reason"] = attempt.reason
    return {**attempt_key(attempt.client_user_id), **values}


def _attempt(item: dict[str, Any]) -> ConnectAttempt:
    return ConnectAttempt(item["client_user_id"], CallbackStatus(item["outcome"]), item.get("reason"), item["at"])


def record(attempt: ConnectAttempt, messages: list[OutboxMessage]) -> None:
    """Keep `attempt` as the member's last, with `messages` in the same transaction. The
    connection item is never written here; the attempt is listed as `not_connected` only
    while the member has none (checked in the same transaction)."""
    name = _table().name
    outbox = [{"Put": {"TableName": name, "Item": message.item()}} for message in messages]
    plain_put = {"Put": {"TableName": name, "Item": _item(attempt)}}
    if attempt.failed:
        listed = {**_item(attempt), **status_index_keys(NOT_CONNECTED, attempt.client_user_id)}
        never_connected = {
            "ConditionCheck": {
                "TableName": name,
                "Key": {**attempt_key(attempt.client_user_id), "sk": "CONNECTION"},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        transact = dynamo.client().transact_write_items
        if dynamo.applied(
            transact, TransactItems=[never_connected, {"Put": {"TableName": name, "Item": listed}}, *outbox]
        ):
            return
    dynamo.client().transact_write_items(TransactItems=[plain_put, *outbox])


def get(client_user_id: str) -> ConnectAttempt | None:
    item = dynamo.get_item(_table(), attempt_key(client_user_id))
    return _attempt(item) if item else None


def get_many(client_user_ids: list[str]) -> dict[str, ConnectAttempt]:
    """The last attempts of these members that have one, by `client_user_id`."""
    items = dynamo.get_items(_table(), [attempt_key(member) for member in dict.fromkeys(client_user_ids)])
    return {item["client_user_id"]: _attempt(item) for item in items}


def page_not_connected(limit: int, next_token: str | None) -> tuple[list[ConnectAttempt], str | None]:
    """One page (by `client_user_id`) of the members who tried to connect and never did,
    and the next page's token. Raises InvalidPageToken for a token not issued here."""
    items, token = dynamo.index_page(
        _table(),
        status_partition(NOT_CONNECTED),
        (MEMBER_PREFIX, ATTEMPT),
        limit,
        next_token,
        f"connections?status={NOT_CONNECTED}",
        index=STATUS_INDEX,
    )
    return [_attempt(item) for item in items], token


def count_not_connected(page_size: int | None = None) -> int:
    """How many members the status index lists as `not_connected` now (see `count_by_status`
    in connection_store.py)."""
    name, partition_key, _ = STATUS_INDEX
    condition = Key(partition_key).eq(status_partition(NOT_CONNECTED))
    return dynamo.count_all(_table(), page_size=page_size, IndexName=name, KeyConditionExpression=condition)
