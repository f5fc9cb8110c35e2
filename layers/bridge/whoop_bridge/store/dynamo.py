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

from botocore.exceptions import ClientError

from whoop_bridge import aws
from whoop_bridge.config import settings


class InvalidPageToken(ValueError):
    """A `next_token` this listing did not issue, for these parameters; the API answers 400."""


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


def query_all(table_: Any, **arguments: Any) -> Iterator[dict[str, Any]]:
    """Every item a `table_.query(**arguments)` finds, following its pages, as plain values."""
    while True:
        page = table_.query(**arguments)
        for item in page.get("Items", []):
            yield plain(item)
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
