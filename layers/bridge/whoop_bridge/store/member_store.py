r"""MemberTable: OAuth states, connections (with their sealed tokens), WHOOP user mappings,
member records and the outbox of member events. Lab functions never see this table.

| item | pk | sk | gsi1pk / gsi1sk |
|---|---|---|---|
| OAuth state (10 min, TTL; once taken, its outcome for 10 more) | `STATE#<sha256 of state>` | `STATE` | |
| connection | `MEMBER#<client_user_id>` | `CONNECTION` | `TOKEN_EXPIRY` / `<expiry>#<client_user_id>` (refreshable), `REVOKE_PENDING` / `<time>#<id>` |
| member item (profile, body measurement, sync progress) | `MEMBER#<client_user_id>` | `PROFILE`, `BODY_MEASUREMENT`, `SYNC#<cause>#<record_type>` | |
| member record (see record_store) | `MEMBER#<client_user_id>` | `<TYPE>#<record_id>` | `RECORDS#<client_user_id>#<type>` / `<record_time>#<record_id>` |
| the WHOOP app's rate budget (see budget_store) | `RATE_BUDGET#<client_id>` | `RATE_BUDGET` | |
| WHOOP user | `WHOOP_USER#<user_id>` | `USER` | |
| outbox event | `OUTBOX#<id>` | `OUTBOX` | `OUTBOX` / `<time>#<id>` |

A connection's tokens are one KMS ciphertext (`sealed_tokens`); `token_version` counts
its rotations and every token write is conditional on it, so a write based on a stale read
fails instead of overwriting a newer pair.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from whoop_bridge import aws
from whoop_bridge.config import settings
from whoop_bridge.store.dynamo import plain
from whoop_bridge.times import now_iso

INDEX = "gsi1"
TOKEN_EXPIRY = "TOKEN_EXPIRY"
REVOKE_PENDING = "REVOKE_PENDING"
OUTBOX = "OUTBOX"
CONNECTION = "CONNECTION"
# Sort keys of a member's items that are connection state, not the member's data records.
NOT_RECORDS = frozenset({CONNECTION})

__all__ = ["now_iso", "plain"]


def _table() -> Any:
    config = settings()
    config.require("member_table_name")
    return aws.table(config.member_table_name)


def _client() -> Any:
    # The resource's client takes plain Python values, as the Table resource does.
    return aws.dynamodb().meta.client


def _condition_failed(error: ClientError) -> bool:
    """A condition did not hold; a transaction cancelled for another reason (a conflict
    with a concurrent transaction) is not that, and is raised for the caller to retry."""
    code = error.response["Error"]["Code"]
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons") or []
        return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)
    return code == "ConditionalCheckFailedException"


def _applied(operation: Callable[..., Any], **arguments: Any) -> bool:
    """Run a conditional write (or a transaction); False when a condition did not hold."""
    try:
        operation(**arguments)
    except ClientError as error:
        if _condition_failed(error):
            return False
        raise
    return True


def member_key(client_user_id: str) -> dict[str, str]:
    return {"pk": f"MEMBER#{client_user_id}", "sk": CONNECTION}


def user_key(user_id: int) -> dict[str, str]:
    return {"pk": f"WHOOP_USER#{user_id}", "sk": "USER"}


def expiry_sort_key(expires_at: int, client_user_id: str) -> str:
    """Sorts connections by access-token expiry (epoch seconds, zero-padded)."""
    return f"{expires_at:012d}#{client_user_id}"


# OAuth states ----------------------------------------------------------------------------


def put_oauth_state(state_hash: str, link: dict[str, Any], expires_at: int) -> None:
    """A connect link's state, bound to its member and URLs; DynamoDB's TTL sweeps it later."""
    _table().put_item(
        Item={"pk": f"STATE#{state_hash}", "sk": "STATE", **link, "expires_at": expires_at, "ttl": expires_at + 3600},
        ConditionExpression="attribute_not_exists(pk)",
    )


def take_oauth_state(state_hash: str, now: int) -> dict[str, Any] | None:
    """Consume a state once: its link, or None when unknown, expired or already used. The
    item stays (marked `taken_at`) to keep the callback's outcome for a repeat."""
    try:
        answer = _table().update_item(
            Key={"pk": f"STATE#{state_hash}", "sk": "STATE"},
            UpdateExpression="SET taken_at = :now",
            ConditionExpression="attribute_exists(pk) AND expires_at > :now AND attribute_not_exists(taken_at)",
            ExpressionAttributeValues={":now": now},
            ReturnValues="ALL_NEW",
        )
    except ClientError as error:
        if _condition_failed(error):
            return None
        raise
    return plain(answer.get("Attributes"))


def finish_oauth_state(state_hash: str, outcome: str, keep_until: int) -> None:
    """Keep a consumed state's outcome (a status word, never a token or code) until
    `keep_until`, so a repeated callback (a reload, a double submit) gets the same answer."""
    _table().update_item(
        Key={"pk": f"STATE#{state_hash}", "sk": "STATE"},
        UpdateExpression="SET outcome = :outcome, outcome_until = :until, #ttl = :ttl",
        ConditionExpression="attribute_exists(taken_at)",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":outcome": outcome, ":until": keep_until, ":ttl": keep_until + 3600},
    )


def get_oauth_state(state_hash: str) -> dict[str, Any] | None:
    """A state as stored (link, `taken_at`, `outcome`, `outcome_until`), or None."""
    item = _table().get_item(Key={"pk": f"STATE#{state_hash}", "sk": "STATE"}, ConsistentRead=True).get("Item")
    return plain(item) if item else None


# Connections -------------------------------------------------------------------------------


def get_connection(client_user_id: str) -> dict[str, Any] | None:
    item = _table().get_item(Key=member_key(client_user_id), ConsistentRead=True).get("Item")
    return plain(item) if item else None


def get_user(user_id: int) -> dict[str, Any] | None:
    item = _table().get_item(Key=user_key(user_id), ConsistentRead=True).get("Item")
    return plain(item) if item else None


def new_event(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """A member event to store with the change it announces (see `publish_stored`)."""
    return {"id": uuid.uuid4().hex, "detail_type": detail_type, "detail": detail, "stored_at": now_iso()}


def _outbox_puts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    table = _table().name
    return [
        {
            "Put": {
                "TableName": table,
                "Item": {
                    **outbox_key(event["id"]),
                    "gsi1pk": OUTBOX,
                    "gsi1sk": f"{event['stored_at']}#{event['id']}",
                    "detail_type": event["detail_type"],
                    "detail_json": json.dumps(event["detail"], default=str),
                },
            }
        }
        for event in events
    ]


def outbox_key(event_id: str) -> dict[str, str]:
    return {"pk": f"OUTBOX#{event_id}", "sk": OUTBOX}


def save_connection(
    connection: dict[str, Any],
    profile: dict[str, Any] | None,
    *,
    moved_from: str | None,
    released_user_id: int | None,
    events: list[dict[str, Any]],
) -> bool:
    """Store a completed connection in one transaction: the connection, its WHOOP user
    mapping and profile, the end of the connection the account moved from, the mapping a
    reconnect to another WHOOP account let go, and the events that announce it.

    The mapping is written only if it is still what the caller read (no owner, this member,
    or `moved_from`), so of two members consenting with one WHOOP account at once exactly
    one owns it. False, and nothing written, when another connection took it meanwhile:
    read the owner again and save with it as `moved_from`."""
    table = _table().name
    client_user_id = connection["client_user_id"]
    mapping_condition = "attribute_not_exists(pk) OR client_user_id = :me"
    mapping_values: dict[str, Any] = {":me": client_user_id}
    if moved_from:
        mapping_condition += " OR client_user_id = :from"
        mapping_values[":from"] = moved_from
    items: list[dict[str, Any]] = [
        {"Put": {"TableName": table, "Item": {**member_key(client_user_id), **connection}}},
        {
            "Put": {
                "TableName": table,
                "Item": {
                    **user_key(connection["user_id"]),
                    "client_user_id": client_user_id,
                    "updated_at": connection["connected_at"],
                },
                "ConditionExpression": mapping_condition,
                "ExpressionAttributeValues": mapping_values,
            }
        },
    ]
    if profile is not None:
        items.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": {
                        "pk": f"MEMBER#{client_user_id}",
                        "sk": "PROFILE",
                        **profile,
                        "updated_at": connection["connected_at"],
                    },
                }
            }
        )
    if moved_from:
        items.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": member_key(moved_from),
                    "UpdateExpression": "SET #status = :disconnected, status_reason = :moved, disconnected_at = :at, token_version = token_version + :one "
                    "REMOVE sealed_tokens, gsi1pk, gsi1sk, refresh_lease_owner, refresh_lease_until",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":disconnected": "disconnected",
                        ":moved": "moved_to_another_member",
                        ":at": connection["connected_at"],
                        ":one": 1,
                        ":user": connection["user_id"],
                    },
                    # Only the connection that still holds this WHOOP account ends here.
                    "ConditionExpression": "attribute_exists(pk) AND user_id = :user",
                }
            }
        )
    if released_user_id is not None:
        items.append(
            {
                "Delete": {
                    "TableName": table,
                    "Key": user_key(released_user_id),
                    "ConditionExpression": "attribute_not_exists(pk) OR client_user_id = :me",
                    "ExpressionAttributeValues": {":me": client_user_id},
                }
            }
        )
    return _applied(_client().transact_write_items, TransactItems=items + _outbox_puts(events))


def take_refresh_lease(client_user_id: str, token_version: int, owner: str, now: float, lease_seconds: float) -> bool:
    """The one right to refresh this member's pair now; False when another caller holds it
    or the pair has already changed."""
    return _applied(
        _table().update_item,
        Key=member_key(client_user_id),
        UpdateExpression="SET refresh_lease_owner = :owner, refresh_lease_until = :until",
        ConditionExpression="token_version = :version AND (attribute_not_exists(refresh_lease_until) OR refresh_lease_until < :now)",
        ExpressionAttributeValues={
            ":owner": owner,
            ":until": _decimal(now + lease_seconds),
            ":version": token_version,
            ":now": _decimal(now),
        },
    )


def release_refresh_lease(client_user_id: str, owner: str) -> None:
    """Give the lease back after a failed refresh, so the next caller need not wait it out."""
    _applied(
        _table().update_item,
        Key=member_key(client_user_id),
        UpdateExpression="REMOVE refresh_lease_owner, refresh_lease_until",
        ConditionExpression="refresh_lease_owner = :owner",
        ExpressionAttributeValues={":owner": owner},
    )


def store_refreshed_tokens(
    client_user_id: str, token_version: int, sealed_tokens: bytes, expires_at: int, refreshable: bool, scopes: list[str]
) -> bool:
    """The new pair replaces the one of `token_version`, atomically; False when the
    connection changed meanwhile (disconnected, or another pair stored)."""
    values: dict[str, Any] = {
        ":tokens": sealed_tokens,
        ":version": token_version,
        ":next": token_version + 1,
        ":expires": expires_at,
        ":at": now_iso(),
        ":scopes": scopes,
        ":connected": "connected",
        ":offline": "offline_not_granted",
    }
    update = "SET sealed_tokens = :tokens, token_version = :next, access_expires_at = :expires, last_refreshed_at = :at, scopes = :scopes"
    if refreshable:
        update += ", gsi1pk = :index, gsi1sk = :sort REMOVE refresh_lease_owner, refresh_lease_until"
        values.update({":index": TOKEN_EXPIRY, ":sort": expiry_sort_key(expires_at, client_user_id)})
    else:
        update += ", #status = :offline REMOVE refresh_lease_owner, refresh_lease_until, gsi1pk, gsi1sk"
    return _applied(
        _table().update_item,
        Key=member_key(client_user_id),
        UpdateExpression=update,
        ConditionExpression="token_version = :version AND #status IN (:connected, :offline)",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=values,
    )


def mark_reauthorization_required(client_user_id: str, token_version: int, reason: str, event: dict[str, Any]) -> bool:
    """The pair of `token_version` is dead at WHOOP: the member must connect again. The
    sealed tokens are dropped (useless now) and the event is kept in the same write."""
    table = _table().name
    return _applied(
        _client().transact_write_items,
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": member_key(client_user_id),
                    "UpdateExpression": "SET #status = :status, status_reason = :reason, reauthorization_required_at = :at, token_version = token_version + :one "
                    "REMOVE sealed_tokens, gsi1pk, gsi1sk, refresh_lease_owner, refresh_lease_until",
                    "ConditionExpression": "token_version = :version AND #status IN (:connected, :offline)",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":status": "reauthorization_required",
                        ":reason": reason,
                        ":at": now_iso(),
                        ":one": 1,
                        ":version": token_version,
                        ":connected": "connected",
                        ":offline": "offline_not_granted",
                    },
                }
            },
            *_outbox_puts([event]),
        ],
    )


def mark_disconnected(connection: dict[str, Any], *, revoke_pending: bool, event: dict[str, Any] | None) -> bool:
    """End a connection: its tokens are dropped unless WHOOP still has to revoke them, and
    its WHOOP user mapping goes. False when the connection changed since it was read."""
    table = _table().name
    client_user_id = connection["client_user_id"]
    update = "SET #status = :disconnected, disconnected_at = :at, token_version = token_version + :one"
    values: dict[str, Any] = {
        ":disconnected": "disconnected",
        ":at": now_iso(),
        ":one": 1,
        ":version": connection["token_version"],
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
                "TableName": table,
                "Key": member_key(client_user_id),
                "UpdateExpression": update,
                "ConditionExpression": "token_version = :version",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }
    ]
    if connection.get("user_id") is not None:
        items.append(
            {
                "Delete": {
                    "TableName": table,
                    "Key": user_key(int(connection["user_id"])),
                    "ConditionExpression": "attribute_not_exists(pk) OR client_user_id = :me",
                    "ExpressionAttributeValues": {":me": client_user_id},
                }
            }
        )
    return _applied(_client().transact_write_items, TransactItems=items + _outbox_puts([event] if event else []))


def replace_pending_tokens(client_user_id: str, token_version: int, sealed_tokens: bytes, expires_at: int) -> bool:
    """A disconnected member's pair, renewed only so it can be revoked, replaces the old one."""
    return _applied(
        _table().update_item,
        Key=member_key(client_user_id),
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
    _applied(
        _table().update_item,
        Key=member_key(client_user_id),
        UpdateExpression="REMOVE sealed_tokens, revoke_pending, gsi1pk, gsi1sk",
        ConditionExpression="token_version = :version",
        ExpressionAttributeValues={":version": token_version},
    )


def connections_expiring_before(expires_before: int) -> Iterator[dict[str, Any]]:
    """Refreshable connections whose access token expires before the given epoch second."""
    yield from _index_items(TOKEN_EXPIRY, Key("gsi1sk").lt(f"{expires_before:012d}#\uffff"))


def connections_awaiting_revoke() -> Iterator[dict[str, Any]]:
    yield from _index_items(REVOKE_PENDING)


def _index_items(partition: str, sort_condition: Any = None) -> Iterator[dict[str, Any]]:
    condition = Key("gsi1pk").eq(partition)
    if sort_condition is not None:
        condition = condition & sort_condition
    arguments: dict[str, Any] = {"IndexName": INDEX, "KeyConditionExpression": condition}
    while True:
        page = _table().query(**arguments)
        for item in page.get("Items", []):
            yield plain(item)
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# Member records ------------------------------------------------------------------------------


def get_record(client_user_id: str, sort_key: str) -> dict[str, Any] | None:
    item = _table().get_item(Key={"pk": f"MEMBER#{client_user_id}", "sk": sort_key}, ConsistentRead=True).get("Item")
    return plain(item) if item else None


def delete_member_records(client_user_id: str) -> int:
    """Delete every stored record of a member (the connection item stays); how many went."""
    table = _table()
    deleted = 0
    arguments: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(f"MEMBER#{client_user_id}"),
        "ProjectionExpression": "pk, sk",
    }
    with table.batch_writer() as batch:
        while True:
            page = table.query(**arguments)
            for item in page.get("Items", []):
                if item["sk"] not in NOT_RECORDS:
                    batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
                    deleted += 1
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return deleted


# Outbox ----------------------------------------------------------------------------------------


def pending_events(stored_before: str) -> Iterator[dict[str, Any]]:
    """Member events stored before the given time and not yet published, oldest first."""
    for item in _index_items(OUTBOX, Key("gsi1sk").lt(stored_before)):
        yield {
            "id": item["pk"].removeprefix("OUTBOX#"),
            "detail_type": item["detail_type"],
            "detail": json.loads(item["detail_json"]),
        }


def forget_event(event_id: str) -> None:
    _table().delete_item(Key=outbox_key(event_id))


def forget_events(event_ids: list[str]) -> None:
    """Published: these events leave the outbox (batched, 25 to a request)."""
    if len(event_ids) == 1:
        forget_event(event_ids[0])
        return
    with _table().batch_writer() as batch:
        for event_id in event_ids:
            batch.delete_item(Key=outbox_key(event_id))


def _decimal(value: float) -> Decimal:
    return Decimal(str(round(value, 3)))


# Sync progress and member items ------------------------------------------------------------------


def put_member_item(client_user_id: str, sort_key: str, values: dict[str, Any]) -> None:
    """A member's single item (`PROFILE`, `BODY_MEASUREMENT`), replaced whole."""
    exact = {key: Decimal(str(value)) if isinstance(value, float) else value for key, value in values.items()}
    _table().put_item(Item={"pk": f"MEMBER#{client_user_id}", "sk": sort_key, **exact, "updated_at": now_iso()})


def start_sync_progress(client_user_id: str, cause: str, record_types: tuple[str, ...]) -> None:
    """A backfill's progress per record type, from `queued`."""
    with _table().batch_writer() as batch:
        for record_type in record_types:
            batch.put_item(
                Item={
                    "pk": f"MEMBER#{client_user_id}",
                    "sk": f"SYNC#{cause}#{record_type}",
                    "state": "queued",
                    "pages": 0,
                    "records": 0,
                    "started_at": now_iso(),
                }
            )


def note_sync_progress(
    client_user_id: str, cause: str, record_type: str, *, pages: int, records: int, state: str
) -> None:
    """One more page of a backfill or reconciliation, and where it stands."""
    _table().update_item(
        Key={"pk": f"MEMBER#{client_user_id}", "sk": f"SYNC#{cause}#{record_type}"},
        UpdateExpression="SET #state = :state, updated_at = :at ADD pages :pages, #records :records",
        ExpressionAttributeNames={"#state": "state", "#records": "records"},
        ExpressionAttributeValues={":state": state, ":at": now_iso(), ":pages": pages, ":records": records},
    )


def sync_progress(client_user_id: str, cause: str) -> dict[str, dict[str, Any]]:
    """Per record type: `state`, `pages`, `records`, `updated_at`."""
    answer = _table().query(
        KeyConditionExpression=Key("pk").eq(f"MEMBER#{client_user_id}") & Key("sk").begins_with(f"SYNC#{cause}#"),
        ConsistentRead=True,
    )
    return {
        item["sk"].rsplit("#", 1)[-1]: {
            key: plain(item.get(key)) for key in ("state", "pages", "records", "updated_at")
        }
        for item in answer.get("Items", [])
    }


def connected_members() -> Iterator[dict[str, Any]]:
    """Every connection whose tokens the bridge keeps fresh (the token-expiry index)."""
    yield from _index_items(TOKEN_EXPIRY)
