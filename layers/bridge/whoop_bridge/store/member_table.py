r"""MemberTable's layout, shared by its store modules: the table, its index, the member
partition, and the items several stores write in one transaction (a bus message in the
outbox, a member's profile). Lab functions never see this table.

| item | pk | sk | gsi1pk / gsi1sk | store |
|---|---|---|---|---|
| OAuth state (10 min, TTL; once taken, its outcome for 10 more) | `STATE#<sha256 of state>` | `STATE` | | oauth_state_store |
| connection | `MEMBER#<client_user_id>` | `CONNECTION` | `TOKEN_EXPIRY` / `<expiry>#<client_user_id>` (refreshable), `REVOKE_PENDING` / `<time>#<id>` | connection_store |
| WHOOP user | `WHOOP_USER#<user_id>` | `USER` | | connection_store |
| member item (profile, body measurement) | `MEMBER#<client_user_id>` | `PROFILE`, `BODY_MEASUREMENT` | | member_item_store |
| sync progress | `MEMBER#<client_user_id>` | `SYNC#<cause>#<step>` | | sync_progress_store |
| member record | `MEMBER#<client_user_id>` | `<TYPE>#<record_id>` | `RECORDS#<client_user_id>#<type>` / `<record_time>#<record_id>` | record_store |
| the WHOOP app's rate budget | `RATE_BUDGET#<client_id>` | `RATE_BUDGET` | | budget_store |
| outbox message | `OUTBOX#<id>` | `OUTBOX` | `OUTBOX` / `<stored_at>#<id>` | outbox_store |

docs/data-model.md describes each item's attributes and access patterns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key

from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.store import dynamo

INDEX = "gsi1"
OUTBOX = "OUTBOX"


def table() -> Any:
    """The MemberTable (setting `member_table_name`)."""
    return dynamo.table("member_table_name")


def member_pk(client_user_id: str) -> str:
    """The partition of everything the bridge keeps of one member."""
    return f"MEMBER#{client_user_id}"


def query_index(partition: str, sort_condition: Any = None) -> Iterator[dict[str, Any]]:
    """Every item of an index partition (all pages), as plain values, in sort-key order."""
    condition = Key("gsi1pk").eq(partition)
    if sort_condition is not None:
        condition = condition & sort_condition
    yield from query_all(IndexName=INDEX, KeyConditionExpression=condition)


def query_all(**arguments: Any) -> Iterator[dict[str, Any]]:
    """Every item a query finds, following its pages, as plain values."""
    while True:
        page = table().query(**arguments)
        for item in page.get("Items", []):
            yield dynamo.plain(item)
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def outbox_key(message_id: str) -> dict[str, str]:
    return {"pk": f"OUTBOX#{message_id}", "sk": OUTBOX}


def outbox_puts(messages: list[OutboxMessage]) -> list[dict[str, Any]]:
    """Transaction entries that keep `messages` in the outbox with the change they announce."""
    name = table().name
    return [
        {
            "Put": {
                "TableName": name,
                "Item": {
                    **outbox_key(message.id),
                    "gsi1pk": OUTBOX,
                    "gsi1sk": f"{message.stored_at}#{message.id}",
                    "detail_type": str(message.detail_type),
                    "detail_json": json.dumps(message.detail, default=str),
                },
            }
        }
        for message in messages
    ]


def member_item(client_user_id: str, sort_key: str, values: dict[str, Any], updated_at: str) -> dict[str, Any]:
    """A member's single item (`PROFILE`, `BODY_MEASUREMENT`): its values (floats as
    DynamoDB takes them) and when they were read from WHOOP."""
    exact = {key: Decimal(str(value)) if isinstance(value, float) else value for key, value in values.items()}
    return {"pk": member_pk(client_user_id), "sk": sort_key, **exact, "updated_at": updated_at}
