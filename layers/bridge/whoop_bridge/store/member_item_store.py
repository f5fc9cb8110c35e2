"""A member's single items in MemberTable (`PROFILE`, `BODY_MEASUREMENT`: WHOOP's values as
read, replaced whole), and the deletion of everything stored of a member but its connection
(DeleteDataOnDisconnect)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key

from whoop_bridge.models.member_profile import MemberItem
from whoop_bridge.store import dynamo
from whoop_bridge.times import now_iso


def _table() -> Any:
    return dynamo.table("member_table_name")


def member_pk(client_user_id: str) -> str:
    return f"MEMBER#{client_user_id}"


# Sort keys of a member's items that are connection state, not the member's data.
NOT_DATA = frozenset({"CONNECTION", "CONNECT_ATTEMPT"})


def put(client_user_id: str, kind: MemberItem, values: dict[str, Any]) -> None:
    """Replace the member's item of `kind` with `values`, stamped `updated_at` now."""
    exact = {key: Decimal(str(value)) if isinstance(value, float) else value for key, value in values.items()}
    item = {"pk": member_pk(client_user_id), "sk": str(kind), **exact, "updated_at": now_iso()}
    _table().put_item(Item=item)


def get(client_user_id: str, kind: MemberItem) -> dict[str, Any] | None:
    """The item's values and `updated_at`, or None."""
    key = {"pk": member_pk(client_user_id), "sk": str(kind)}
    item = _table().get_item(Key=key, ConsistentRead=True).get("Item")
    if not item:
        return None
    return {key: value for key, value in dynamo.plain(item).items() if key not in ("pk", "sk")}


def delete_member_data(client_user_id: str) -> int:
    """Delete every stored item of a member but the connection (records, profile, sync
    progress); how many went."""
    members = _table()
    deleted = 0
    arguments: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(member_pk(client_user_id)),
        "ProjectionExpression": "pk, sk",
    }
    with members.batch_writer() as batch:
        while True:
            page = members.query(**arguments)
            for item in page.get("Items", []):
                if item["sk"] not in NOT_DATA:
                    batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
                    deleted += 1
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return deleted
