"""The one small DynamoDB helper the store modules share.

It holds what every store needs the same way: the table by its setting, the conditional-write
check, numbers and items as DynamoDB takes and gives them, and the page-token codec. Keys
and condition expressions stay in each store module; nothing here knows an item's shape.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from whoop_bridge import aws
from whoop_bridge.config import settings
from whoop_bridge.models.listing import InvalidPageToken


def table(setting: str) -> Any:
    """The boto3 Table named by the setting `setting` (e.g. `lab_table_name`).

    Raises ConfigurationError when the setting is empty (the function's environment lacks it).
    """
    config = settings()
    config.require(setting)
    return aws.table(getattr(config, setting))


def client() -> Any:
    """The low-level client that takes plain Python values, as the Table resource does
    (for transactions across items)."""
    return aws.dynamodb().meta.client


def condition_failed(error: ClientError) -> bool:
    """True when a condition did not hold. A transaction cancelled for another reason (a
    conflicting transaction, throttling) is not that: the caller raises it and retries,
    since reading it as "already done" would lose the write."""
    code = error.response["Error"]["Code"]
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons") or []
        return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)
    return code == "ConditionalCheckFailedException"


def applied(operation: Callable[..., Any], **arguments: Any) -> bool:
    """Run a conditional write or a transaction; False when a condition did not hold.

    `operation` is e.g. `table.put_item` or `client().transact_write_items`; every other
    error is raised.
    """
    try:
        operation(**arguments)
    except ClientError as error:
        if condition_failed(error):
            return False
        raise
    return True


def put_if_new(table_: Any, item: dict[str, Any]) -> bool:
    """Put `item` unless an item with its key exists; False then (a redelivery, a retried step)."""
    return applied(table_.put_item, Item=item, ConditionExpression="attribute_not_exists(pk)")


def plain(value: Any) -> Any:
    """An item with DynamoDB's Decimals turned back into ints and floats, at any depth."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def number(value: float) -> Decimal:
    """A float as DynamoDB takes it (it refuses floats), kept to milliseconds."""
    return Decimal(str(round(value, 3)))


def encode_page_token(key: dict[str, Any], scope: str) -> str:
    """An opaque `next_token` for DynamoDB's `LastEvaluatedKey` `key`, bound to `scope`
    (the listing and its query parameters, as text) so it is refused anywhere else."""
    text = json.dumps({"key": plain(key), "of": _digest(scope)}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_page_token(token: str, scope: str) -> dict[str, Any]:
    """The start key in `token`, which `encode_page_token` issued for `scope`.

    Raises InvalidPageToken for text that is not such a token. The store checks the key's
    shape itself (DynamoDB refuses a start key outside the key condition with a 500).
    """
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        # RecursionError: a made-up token nested deeper than json reads.
        raise InvalidPageToken("next_token is not a page token") from None
    if not isinstance(decoded, dict) or decoded.get("of") != _digest(scope) or not isinstance(decoded.get("key"), dict):
        raise InvalidPageToken("next_token is not one this listing issued for these query parameters")
    return decoded["key"]


def _digest(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def _pages(table_: Any, arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each answer of `table_.query(**arguments)`, from the first page to the last (LastEvaluatedKey)."""
    while True:
        page = table_.query(**arguments)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        arguments = {**arguments, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def query_all(table_: Any, **arguments: Any) -> Iterator[dict[str, Any]]:
    """Every item a `table_.query(**arguments)` finds, following its pages, as plain values."""
    for page in _pages(table_, arguments):
        for item in page.get("Items", []):
            yield plain(item)


def count_all(table_: Any, *, page_size: int | None = None, **arguments: Any) -> int:
    """How many items a `table_.query(**arguments)` matches, over every page, read as
    `Select=COUNT` (no item comes back; each page still reads up to 1 MB, or `page_size` items)."""
    arguments = {**arguments, "Select": "COUNT"} | ({"Limit": page_size} if page_size else {})
    return sum(page["Count"] for page in _pages(table_, arguments))


# Reads and index listings ------------------------------------------------------------------

# DynamoDB's key size limits: a partition key of at most 2,048 bytes, a sort key of 1,024.
_PARTITION_KEY_BYTES, _SORT_KEY_BYTES = 2048, 1024


def get_item(table_: Any, key: dict[str, str]) -> dict[str, Any] | None:
    """One item by `key`, read consistently, with plain numbers; None when absent."""
    item = table_.get_item(Key=key, ConsistentRead=True).get("Item")
    return plain(item) if item else None


def get_items(table_: Any, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Several items by key (read consistently, 100 a request, unprocessed keys asked
    again), with plain numbers; missing ones left out, in no particular order."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {table_.name: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
        while request:
            answer = aws.dynamodb().batch_get_item(RequestItems=request)
            found += [plain(item) for item in answer.get("Responses", {}).get(table_.name, [])]
            request = answer.get("UnprocessedKeys") or {}
    return found


def is_index_key(
    key: Any, partition: str, item_key: tuple[str, str], index: tuple[str, str] = ("gsi1pk", "gsi1sk")
) -> bool:
    """Whether `key` is a LastEvaluatedKey that a query of the index's `partition` could have
    returned: exactly the table's (`pk`, `sk`) and the index's key attributes as strings
    within DynamoDB's size limits, naming an item with `pk` = `<prefix><id>` and `sk` =
    `<sort key>` (`item_key`) whose index sort key ends with `#<id>`. Anything else would be
    a ValidationException (a 5xx) as ExclusiveStartKey."""
    index_pk, index_sk = index
    if not isinstance(key, dict) or set(key) != {"pk", "sk", index_pk, index_sk}:
        return False
    if not all(isinstance(value, str) for value in key.values()):
        return False
    if any(len(key[name].encode()) > _PARTITION_KEY_BYTES for name in ("pk", index_pk)) or any(
        len(key[name].encode()) > _SORT_KEY_BYTES for name in ("sk", index_sk)
    ):
        return False
    prefix, sort_key = item_key
    item_id = key["pk"].removeprefix(prefix)
    return (
        key[index_pk] == partition
        and key["sk"] == sort_key
        and key["pk"].startswith(prefix)
        and bool(item_id)
        and key[index_sk].endswith(f"#{item_id}")
    )


def index_page(
    table_: Any,
    partition: str,
    item_key: tuple[str, str],
    limit: int,
    next_token: str | None,
    scope: str,
    *,
    since: str | None = None,
    newest_first: bool = False,
    index: tuple[str, str, str] = ("gsi1", "gsi1pk", "gsi1sk"),
) -> tuple[list[dict[str, Any]], str | None]:
    """One page (`limit` items at most) of the index's `partition`, its sort key at or after
    `since` when given, and the `next_token` for the next page (None on the last).

    `scope` names the listing and its query parameters: a token is refused (InvalidPageToken)
    unless it was issued for the same scope and names a key this query could have returned
    (`is_index_key`, and not before `since`), so a made-up token never reaches DynamoDB.
    """
    name, index_pk, index_sk = index
    condition = Key(index_pk).eq(partition)
    if since:
        condition = condition & Key(index_sk).gte(since)
    query: dict[str, Any] = {
        "IndexName": name,
        "KeyConditionExpression": condition,
        "ScanIndexForward": not newest_first,
        "Limit": limit,
    }
    if next_token:
        start_key = decode_page_token(next_token, scope)
        if not is_index_key(start_key, partition, item_key, (index_pk, index_sk)) or (
            since and start_key[index_sk] < since
        ):
            raise InvalidPageToken("next_token is not one this listing issued for these query parameters")
        query["ExclusiveStartKey"] = start_key
    page = table_.query(**query)
    last_key = page.get("LastEvaluatedKey")
    return [plain(item) for item in page.get("Items", [])], encode_page_token(last_key, scope) if last_key else None
