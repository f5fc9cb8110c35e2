"""OAuth states in MemberTable: a connect link's single-use `state`, by its SHA-256.

A state lives until `expires_at` (epoch seconds). An unused one is kept a day longer
(then DynamoDB's TTL sweeps it), so a link opened after its 10 minutes is still known and
its member is told (`link_expired`). Taking it is one conditional write, so a state is
consumed once; the item then keeps the callback's outcome for a repeat of the callback.
"""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Any

from botocore.exceptions import ClientError

from whoop_bridge.models.oauth_state import CallbackStatus, OAuthState
from whoop_bridge.store import dynamo

_FIELDS = frozenset(field.name for field in fields(OAuthState))
_LINK_FIELDS = ("client_user_id", "redirect_uri", "created_at", "return_url")
# How long past its expiry DynamoDB's TTL may sweep a state (an unused one is kept for
# this long to attribute a late click; a used one's outcome is kept by `finish`).
_TTL_SLACK_SECONDS = 3600
UNUSED_KEPT_SECONDS = 86_400


def _table() -> Any:
    return dynamo.table("member_table_name")


def state_key(state_hash: str) -> dict[str, str]:
    return {"pk": f"STATE#{state_hash}", "sk": "STATE"}


def _state(item: dict[str, Any]) -> OAuthState:
    values = {key: value for key, value in dynamo.plain(item).items() if key in _FIELDS}
    if values.get("outcome") is not None:
        values["outcome"] = CallbackStatus(values["outcome"])
    return OAuthState(**values)


def put(state_hash: str, state: OAuthState) -> None:
    """A connect link's state, bound to its member and URLs; DynamoDB's TTL sweeps it later."""
    link = {key: getattr(state, key) for key in _LINK_FIELDS if getattr(state, key) is not None}
    _table().put_item(
        Item={
            **state_key(state_hash),
            **link,
            "expires_at": state.expires_at,
            "ttl": state.expires_at + UNUSED_KEPT_SECONDS,
        },
        ConditionExpression="attribute_not_exists(pk)",
    )


def take(state_hash: str, now: int) -> OAuthState | None:
    """Consume a state once: the state, or None when unknown, expired or already used. The
    item stays (marked `taken_at`) to keep the callback's outcome for a repeat."""
    return _take(state_hash, "expires_at > :now", "SET taken_at = :now", {":now": now})


def take_expired(state_hash: str, now: int, keep_until: int) -> OAuthState | None:
    """Consume a known state that expired unused, with the outcome `link_expired` kept until
    `keep_until` (a reload gets it again): the state, or None when it is unknown, still
    valid, already used or past its `ttl` (DynamoDB's TTL sweeps lazily)."""
    return _take(
        state_hash,
        "expires_at <= :now AND #ttl > :now",
        "SET taken_at = :now, outcome = :outcome, outcome_until = :until, #ttl = :ttl",
        {":now": now, ":outcome": str(CallbackStatus.LINK_EXPIRED), **_kept(keep_until)},
        {"#ttl": "ttl"},
    )


def _take(
    state_hash: str, expiry: str, update: str, values: dict[str, Any], names: dict[str, str] | None = None
) -> OAuthState | None:
    """One conditional write that consumes an untaken state whose expiry meets `expiry`."""
    try:
        answer = _table().update_item(
            Key=state_key(state_hash),
            UpdateExpression=update,
            ConditionExpression=f"attribute_exists(pk) AND {expiry} AND attribute_not_exists(taken_at)",
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            **({"ExpressionAttributeNames": names} if names else {}),
        )
    except ClientError as error:
        if dynamo.condition_failed(error):
            return None
        raise
    return _state(answer["Attributes"])


def _kept(keep_until: int) -> dict[str, int]:
    """`:until` and `:ttl` of an outcome kept until `keep_until` (then swept)."""
    return {":until": keep_until, ":ttl": keep_until + _TTL_SLACK_SECONDS}


def finish(state_hash: str, outcome: CallbackStatus, keep_until: int) -> None:
    """Keep a consumed state's outcome (a status word, never a token or code) until
    `keep_until`, so a repeated callback (a reload, a double submit) gets the same answer."""
    _table().update_item(
        Key=state_key(state_hash),
        UpdateExpression="SET outcome = :outcome, outcome_until = :until, #ttl = :ttl",
        ConditionExpression="attribute_exists(taken_at)",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":outcome": str(outcome), **_kept(keep_until)},
    )


def get(state_hash: str) -> OAuthState | None:
    """A state as stored (link, `taken_at`, `outcome`, `outcome_until`), or None: also once
    its `ttl` has passed, since DynamoDB's TTL may sweep it days later (the link is unknown
    a day after it expired, as documented)."""
    item = _table().get_item(Key=state_key(state_hash), ConsistentRead=True).get("Item")
    if not item or int(item.get("ttl", 0)) <= time.time():
        return None
    return _state(item)
