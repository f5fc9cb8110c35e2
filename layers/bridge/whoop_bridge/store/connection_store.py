"""Connections in MemberTable: the connection item with its sealed tokens and refresh lease,
the WHOOP user mapping (one WHOOP account, one member), and the two index lists of
connections (by access-token expiry, and awaiting a revoke at WHOOP).

Every token write is conditional on `token_version` (see models/connection.py), so a write
based on a stale read fails (False) instead of overwriting a newer pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, fields
from enum import Enum
from typing import Any

from boto3.dynamodb.conditions import Key

from whoop_bridge.models.connection import (
    STATUS_INDEX,
    Connection,
    ConnectionStatus,
    StatusReason,
    status_index_keys,
    status_partition,
)
from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.store import dynamo
from whoop_bridge.times import now_iso

INDEX = "gsi1"
CONNECTION = "CONNECTION"
TOKEN_EXPIRY = "TOKEN_EXPIRY"
REVOKE_PENDING = "REVOKE_PENDING"
_FIELDS = frozenset(field.name for field in fields(Connection))
_DROP_PAIR = "REMOVE sealed_tokens, gsi1pk, gsi1sk, refresh_lease_owner, refresh_lease_until"
_USABLE = {":connected": ConnectionStatus.CONNECTED.value, ":offline": ConnectionStatus.OFFLINE_NOT_GRANTED.value}


def _table() -> Any:
    return dynamo.table("member_table_name")


def _outbox_puts(name: str, messages: list[OutboxMessage]) -> list[dict[str, Any]]:
    return [{"Put": {"TableName": name, "Item": message.item()}} for message in messages]


def _listed(status: ConnectionStatus, client_user_id: str) -> dict[str, str]:
    """The values `:listed` and `:listed_as` of a status change: the item's status-index place."""
    keys = status_index_keys(status, client_user_id)
    return {":listed": keys["gsi2pk"], ":listed_as": keys["gsi2sk"]}


def connection_key(client_user_id: str) -> dict[str, str]:
    return {"pk": f"MEMBER#{client_user_id}", "sk": CONNECTION}


def user_key(user_id: int) -> dict[str, str]:
    return {"pk": f"WHOOP_USER#{user_id}", "sk": "USER"}


def expiry_sort_key(expires_at: int, client_user_id: str) -> str:
    """Sorts connections by access-token expiry (epoch seconds, zero-padded)."""
    return f"{expires_at:012d}#{client_user_id}"


def _item(connection: Connection) -> dict[str, Any]:
    """The stored item: the connection's set values, its key, and its place in the
    token-expiry index when the bridge keeps its tokens fresh."""
    values = {
        key: value.value if isinstance(value, Enum) else dynamo.number(value) if isinstance(value, float) else value
        for key, value in asdict(connection).items()
        if value is not None
    }
    item = {
        **connection_key(connection.client_user_id),
        **values,
        **status_index_keys(connection.status, connection.client_user_id),
    }
    if connection.refreshable:
        item.update(
            gsi1pk=TOKEN_EXPIRY, gsi1sk=expiry_sort_key(connection.access_expires_at or 0, connection.client_user_id)
        )
    return item


def _connection(item: dict[str, Any]) -> Connection:
    values = {key: value for key, value in dynamo.plain(item).items() if key in _FIELDS}
    values["status"] = ConnectionStatus(values["status"])
    if values.get("sealed_tokens") is not None:
        values["sealed_tokens"] = bytes(values["sealed_tokens"])  # DynamoDB hands back a Binary
    return Connection(**values)


def get(client_user_id: str) -> Connection | None:
    item = _table().get_item(Key=connection_key(client_user_id), ConsistentRead=True).get("Item")
    return _connection(item) if item else None


def whoop_user_owner(user_id: int) -> str | None:
    """The `client_user_id` whose connection holds this WHOOP account, or None."""
    item = _table().get_item(Key=user_key(user_id), ConsistentRead=True).get("Item")
    return item["client_user_id"] if item else None


def save(
    connection: Connection,
    profile: dict[str, Any] | None,
    *,
    moved_from: str | None,
    released_user_id: int | None,
    messages: list[OutboxMessage],
) -> bool:
    """Store a completed connection in one transaction: the connection, its WHOOP user
    mapping and profile, the end of the connection the account moved from, the mapping a
    reconnect to another WHOOP account let go, and the messages that announce it.

    The mapping is written only if it is still what the caller read (no owner, this member,
    or `moved_from`), so of two members consenting with one WHOOP account at once exactly
    one owns it. False, and nothing written, when another connection took it meanwhile:
    read the owner again and save with it as `moved_from`."""
    name = _table().name
    client_user_id = connection.client_user_id
    mapping_condition = "attribute_not_exists(pk) OR client_user_id = :me"
    mapping_values: dict[str, Any] = {":me": client_user_id}
    if moved_from:
        mapping_condition += " OR client_user_id = :from"
        mapping_values[":from"] = moved_from
    mapping = {
        **user_key(connection.user_id or 0),
        "client_user_id": client_user_id,
        "updated_at": connection.connected_at,
    }
    items: list[dict[str, Any]] = [
        {"Put": {"TableName": name, "Item": _item(connection)}},
        {
            "Put": {
                "TableName": name,
                "Item": mapping,
                "ConditionExpression": mapping_condition,
                "ExpressionAttributeValues": mapping_values,
            }
        },
    ]
    if profile is not None:
        # The profile WHOOP gave at consent (see member_item_store), written with the connection.
        at = connection.connected_at or now_iso()
        profile_item = {"pk": f"MEMBER#{client_user_id}", "sk": "PROFILE", **profile, "updated_at": at}
        items.append({"Put": {"TableName": name, "Item": profile_item}})
    if moved_from:
        items.append(
            {
                "Update": {
                    "TableName": name,
                    "Key": connection_key(moved_from),
                    "UpdateExpression": "SET #status = :disconnected, status_reason = :moved, disconnected_at = :at, "
                    f"token_version = token_version + :one, gsi2pk = :listed, gsi2sk = :listed_as {_DROP_PAIR}",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        **_listed(ConnectionStatus.DISCONNECTED, moved_from),
                        ":disconnected": ConnectionStatus.DISCONNECTED.value,
                        ":moved": StatusReason.MOVED_TO_ANOTHER_MEMBER.value,
                        ":at": connection.connected_at,
                        ":one": 1,
                        ":user": connection.user_id,
                    },
                    # Only the connection that still holds this WHOOP account ends here.
                    "ConditionExpression": "attribute_exists(pk) AND user_id = :user",
                }
            }
        )
    if released_user_id is not None:
        items.append(_release_user(name, released_user_id, client_user_id))
    return dynamo.applied(dynamo.client().transact_write_items, TransactItems=items + _outbox_puts(name, messages))


def _release_user(name: str, user_id: int, client_user_id: str) -> dict[str, Any]:
    """Drop a WHOOP user mapping, unless another member holds it now."""
    return {
        "Delete": {
            "TableName": name,
            "Key": user_key(user_id),
            "ConditionExpression": "attribute_not_exists(pk) OR client_user_id = :me",
            "ExpressionAttributeValues": {":me": client_user_id},
        }
    }


def take_refresh_lease(client_user_id: str, token_version: int, owner: str, now: float, lease_seconds: float) -> bool:
    """The one right to refresh this member's pair now; False when another caller holds it
    or the pair has already changed."""
    return dynamo.applied(
        _table().update_item,
        Key=connection_key(client_user_id),
        UpdateExpression="SET refresh_lease_owner = :owner, refresh_lease_until = :until",
        ConditionExpression="token_version = :version AND (attribute_not_exists(refresh_lease_until) OR refresh_lease_until < :now)",
        ExpressionAttributeValues={
            ":owner": owner,
            ":until": dynamo.number(now + lease_seconds),
            ":version": token_version,
            ":now": dynamo.number(now),
        },
    )


def release_refresh_lease(client_user_id: str, owner: str) -> None:
    """Give the lease back after a failed refresh, so the next caller need not wait it out."""
    dynamo.applied(
        _table().update_item,
        Key=connection_key(client_user_id),
        UpdateExpression="REMOVE refresh_lease_owner, refresh_lease_until",
        ConditionExpression="refresh_lease_owner = :owner",
        ExpressionAttributeValues={":owner": owner},
    )


def store_refreshed_tokens(
    client_user_id: str, token_version: int, sealed_tokens: bytes, expires_at: int, refreshable: bool, scopes: list[str]
) -> bool:
    """The new pair replaces the one of `token_version`, atomically; False when the
    connection changed meanwhile (disconnected, or another pair stored). Without a new
    refresh token the connection becomes `offline_not_granted` and leaves the expiry index."""
    values: dict[str, Any] = {
        ":tokens": sealed_tokens,
        ":version": token_version,
        ":next": token_version + 1,
        ":expires": expires_at,
        ":at": now_iso(),
        ":scopes": scopes,
        **_USABLE,
    }
    update = "SET sealed_tokens = :tokens, token_version = :next, access_expires_at = :expires, last_refreshed_at = :at, scopes = :scopes"
    if refreshable:
        update += ", gsi1pk = :index, gsi1sk = :sort REMOVE refresh_lease_owner, refresh_lease_until"
        values.update({":index": TOKEN_EXPIRY, ":sort": expiry_sort_key(expires_at, client_user_id)})
    else:
        update += ", #status = :offline, gsi2pk = :listed, gsi2sk = :listed_as REMOVE refresh_lease_owner, refresh_lease_until, gsi1pk, gsi1sk"
        values.update(_listed(ConnectionStatus.OFFLINE_NOT_GRANTED, client_user_id))
    return dynamo.applied(
        _table().update_item,
        Key=connection_key(client_user_id),
        UpdateExpression=update,
        ConditionExpression="token_version = :version AND #status IN (:connected, :offline)",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=values,
    )


def mark_reauthorization_required(
    client_user_id: str, token_version: int, reason: StatusReason, message: OutboxMessage
) -> bool:
    """The pair of `token_version` is dead at WHOOP: the member must connect again. The
    sealed tokens are dropped (useless now) and the message is kept in the same write."""
    name = _table().name
    update = {
        "TableName": name,
        "Key": connection_key(client_user_id),
        "UpdateExpression": "SET #status = :status, status_reason = :reason, reauthorization_required_at = :at, "
        f"token_version = token_version + :one, gsi2pk = :listed, gsi2sk = :listed_as {_DROP_PAIR}",
        "ConditionExpression": "token_version = :version AND #status IN (:connected, :offline)",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": {
            ":status": ConnectionStatus.REAUTHORIZATION_REQUIRED.value,
            **_listed(ConnectionStatus.REAUTHORIZATION_REQUIRED, client_user_id),
            ":reason": str(reason),
            ":at": now_iso(),
            ":one": 1,
            ":version": token_version,
            **_USABLE,
        },
    }
    return dynamo.applied(
        dynamo.client().transact_write_items, TransactItems=[{"Update": update}, *_outbox_puts(name, [message])]
    )


def mark_disconnected(connection: Connection, *, revoke_pending: bool, message: OutboxMessage | None) -> bool:
    """End a connection: its tokens are dropped unless WHOOP still has to revoke them (it
    is then listed as awaiting a revoke), and its WHOOP user mapping goes. False when the
    connection changed since it was read."""
    name = _table().name
    client_user_id = connection.client_user_id
    update = (
        "SET #status = :disconnected, disconnected_at = :at, token_version = token_version + :one, "
        "gsi2pk = :listed, gsi2sk = :listed_as"
    )
    values: dict[str, Any] = {
        ":disconnected": ConnectionStatus.DISCONNECTED.value,
        **_listed(ConnectionStatus.DISCONNECTED, client_user_id),
        ":at": now_iso(),
        ":one": 1,
        ":version": connection.token_version,
    }
    if revoke_pending:
        update += (
            ", revoke_pending = :true, gsi1pk = :index, gsi1sk = :sort REMOVE refresh_lease_owner, refresh_lease_until"
        )
        values.update({":true": True, ":index": REVOKE_PENDING, ":sort": f"{now_iso()}#{client_user_id}"})
    else:
        update += " REMOVE sealed_tokens, revoke_pending, gsi1pk, gsi1sk, refresh_lease_owner, refresh_lease_until"
    items: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": name,
                "Key": connection_key(client_user_id),
                "UpdateExpression": update,
                "ConditionExpression": "token_version = :version",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }
    ]
    if connection.user_id is not None:
        items.append(_release_user(name, int(connection.user_id), client_user_id))
    return dynamo.applied(
        dynamo.client().transact_write_items, TransactItems=items + _outbox_puts(name, [message] if message else [])
    )


def replace_pending_tokens(client_user_id: str, token_version: int, sealed_tokens: bytes, expires_at: int) -> bool:
    """A disconnected member's pair, renewed only so it can be revoked, replaces the old one."""
    return dynamo.applied(
        _table().update_item,
        Key=connection_key(client_user_id),
        UpdateExpression="SET sealed_tokens = :tokens, access_expires_at = :expires, token_version = :next",
        ConditionExpression="token_version = :version AND revoke_pending = :true",
        ExpressionAttributeValues={
            ":tokens": sealed_tokens,
            ":expires": expires_at,
            ":next": token_version + 1,
            ":version": token_version,
            ":true": True,
        },
    )


def forget_revoked_tokens(client_user_id: str, token_version: int) -> None:
    """WHOOP has revoked them: the sealed tokens of a disconnected member go."""
    dynamo.applied(
        _table().update_item,
        Key=connection_key(client_user_id),
        UpdateExpression="REMOVE sealed_tokens, revoke_pending, gsi1pk, gsi1sk",
        ConditionExpression="token_version = :version",
        ExpressionAttributeValues={":version": token_version},
    )


def expiring_before(expires_before: int) -> Iterator[Connection]:
    """Refreshable connections whose access token expires before the given epoch second."""
    condition = Key("gsi1pk").eq(TOKEN_EXPIRY) & Key("gsi1sk").lt(f"{expires_before:012d}#\uffff")
    for item in dynamo.query_all(_table(), IndexName=INDEX, KeyConditionExpression=condition):
        yield _connection(item)


def awaiting_revoke() -> Iterator[Connection]:
    """Disconnected connections whose grant WHOOP has yet to revoke."""
    for item in dynamo.query_all(_table(), IndexName=INDEX, KeyConditionExpression=Key("gsi1pk").eq(REVOKE_PENDING)):
        yield _connection(item)


def refreshed_connections() -> Iterator[Connection]:
    """Every connection whose tokens the bridge keeps fresh (the token-expiry index)."""
    for item in dynamo.query_all(_table(), IndexName=INDEX, KeyConditionExpression=Key("gsi1pk").eq(TOKEN_EXPIRY)):
        yield _connection(item)


def page_by_status(status: ConnectionStatus, limit: int, next_token: str | None) -> tuple[list[Connection], str | None]:
    """One page (at most `limit`, by `client_user_id`) of the connections whose stored status
    is `status` (the status index), and the next page's token (None on the last). Raises
    InvalidPageToken for a token this listing did not issue for this status."""
    items, token = dynamo.index_page(
        _table(),
        status_partition(status),
        (connection_key("")["pk"], CONNECTION),
        limit,
        next_token,
        f"connections?status={status}",
        index=STATUS_INDEX,
    )
    return [_connection(item) for item in items], token


def count_by_status(status: ConnectionStatus, page_size: int | None = None) -> int:
    """How many connections the status index lists under `status` now (a COUNT query over
    every page; `page_size` items a page at most, DynamoDB's 1 MB page when None)."""
    name, partition_key, _ = STATUS_INDEX
    condition = Key(partition_key).eq(status_partition(status))
    return dynamo.count_all(_table(), page_size=page_size, IndexName=name, KeyConditionExpression=condition)
