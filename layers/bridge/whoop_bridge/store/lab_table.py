"""LabTable, which the lab stores share: one table keyed by `pk`/`sk`, and one index
(`gsi1`: `gsi1pk`/`gsi1sk`) for the lab API's listings.

| item | pk | sk | gsi1pk / gsi1sk | store |
|---|---|---|---|---|
| requisition | `REQ#<id>` | `REQ` | `REQUISITION` / `<received_at>#<id>` | requisition_store |
| service request | `SR#<id>` | `SR` | | service_request_store |
| diagnostic report | `SR#<id>` | `REPORT#<received_at>#<report_id>` | | report_store |
| clinical report review | `REVIEW#<id>` | `REVIEW` | `REVIEW#pending` / `<received_at>#<id>` | review_store |
| document | `DOC#<id>` | `DOC` | | document_store |
| a requisition's `based_on` references | `BASEDON#<requisition_id>` | `BASEDON` | | document_store |

Every write that intake or a state machine step may repeat is conditional or checks what is
stored first, so a redelivered webhook or a retried step changes nothing (docs/data-model.md).
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from whoop_bridge import aws
from whoop_bridge.store import dynamo

INDEX = "gsi1"
_KEY_NAMES = {"pk", "sk", "gsi1pk", "gsi1sk"}


def table() -> Any:
    """The LabTable (setting `lab_table_name`); ConfigurationError when unset."""
    return dynamo.table("lab_table_name")


def get_item(pk: str, sk: str) -> dict[str, Any] | None:
    """One item by key, read consistently, with plain numbers; None when absent."""
    item = table().get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
    return dynamo.plain(item) if item else None


def get_items(keys: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Several items by key (read consistently, 100 at a time); missing ones left out, in no order."""
    name = table().name
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {name: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
        while request:
            answer = aws.dynamodb().batch_get_item(RequestItems=request)
            found += [dynamo.plain(item) for item in answer.get("Responses", {}).get(name, [])]
            request = answer.get("UnprocessedKeys") or {}
    return found


def is_listing_key(key: Any, listing: str, prefix: str, sort_key: str) -> bool:
    """Whether `key` is a LastEvaluatedKey the `listing` query could have returned (the
    table's and the index's key attributes, naming an item `pk` = `<prefix><id>`, `sk` =
    `sort_key`, `gsi1sk` ending `#<id>`): anything else would be a DynamoDB
    ValidationException as ExclusiveStartKey."""
    if not isinstance(key, dict) or set(key) != _KEY_NAMES or not all(isinstance(v, str) for v in key.values()):
        return False
    # DynamoDB's key size limits: a partition key of at most 2,048 bytes, a sort key of 1,024.
    if any(len(key[name].encode()) > 2048 for name in ("pk", "gsi1pk")) or any(
        len(key[name].encode()) > 1024 for name in ("sk", "gsi1sk")
    ):
        return False
    item_id = key["pk"].removeprefix(prefix)
    return (
        key["gsi1pk"] == listing
        and key["sk"] == sort_key
        and key["pk"].startswith(prefix)
        and bool(item_id)
        and key["gsi1sk"].endswith(f"#{item_id}")
    )


def listing_page(
    listing: str,
    item_key: tuple[str, str],
    limit: int,
    next_token: str | None,
    scope: str,
    *,
    since: str | None = None,
    newest_first: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the index's `listing` (`limit` items at most; `gsi1sk` >= `since` when
    given) and the `next_token` for the next page (None on the last).

    `item_key` is the listed items' `(pk prefix, sk)`; `scope` names the listing and its
    query parameters: a token is refused (InvalidPageToken) unless this listing issued it
    for the same scope, and unless its key is one this query could have returned, so a
    made-up token never reaches DynamoDB.
    """
    condition = Key("gsi1pk").eq(listing)
    if since:
        condition = condition & Key("gsi1sk").gte(since)
    query: dict[str, Any] = {
        "IndexName": INDEX,
        "KeyConditionExpression": condition,
        "ScanIndexForward": not newest_first,
        "Limit": limit,
    }
    if next_token:
        start_key = dynamo.decode_page_token(next_token, scope)
        if not is_listing_key(start_key, listing, *item_key) or (since and start_key["gsi1sk"] < since):
            raise dynamo.InvalidPageToken("next_token is not one this listing issued for these query parameters")
        query["ExclusiveStartKey"] = start_key
    page = table().query(**query)
    last_key = page.get("LastEvaluatedKey")
    items = [dynamo.plain(item) for item in page.get("Items", [])]
    return items, dynamo.encode_page_token(last_key, scope) if last_key else None
