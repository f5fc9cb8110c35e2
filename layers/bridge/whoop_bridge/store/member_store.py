"""MemberTable: the WHOOP app's rate budget (`RATE_BUDGET#<client_id>` / `RATE_BUDGET`).
Everything else of the table has its own store module (see member_table.py)."""

from __future__ import annotations

from typing import Any

from whoop_bridge.store.dynamo import applied as _applied
from whoop_bridge.store.dynamo import number as _decimal
from whoop_bridge.store.dynamo import plain
from whoop_bridge.store.member_table import table as _table

# The WHOOP app's rate budget ------------------------------------------------------------------


def budget_key(app: str) -> dict[str, str]:
    return {"pk": f"RATE_BUDGET#{app}", "sk": "RATE_BUDGET"}


def get_budget(app: str) -> dict[str, Any] | None:
    item = _table().get_item(Key=budget_key(app), ConsistentRead=True).get("Item")
    if not item:
        return None
    state = plain(item)
    # The call times are one string: a small item, cheap to read and write.
    state["calls"] = [float(call) for call in state["calls"].split(",")]
    return state


def _calls_text(calls: list[float]) -> str:
    return ",".join(f"{call:.3f}" for call in calls)


def create_budget(app: str, slots: int) -> None:
    """The budget's first state; a concurrent creator's item wins."""
    _applied(
        _table().put_item,
        Item={
            **budget_key(app),
            "calls": _calls_text([0.0] * slots),
            "head": 0,
            "version": 0,
            "day": "",
            "day_used": 0,
            "whoop_remaining": 0,
            "whoop_reset_at": 0,
            "hold_until": 0,
        },
        ConditionExpression="attribute_not_exists(pk)",
    )


def take_budget_call(
    app: str, version: int, calls: list[float], head: int, day: str, day_used: int, background_next_at: float | None
) -> bool:
    """Record one call in the budget, if nobody else did since `version` was read; WHOOP's
    own count of what is left goes down by one with it."""
    values: dict[str, Any] = {
        ":calls": _calls_text(calls),
        ":head": head,
        ":next": version + 1,
        ":day": day,
        ":used": day_used,
        ":one": 1,
        ":version": version,
    }
    update = "SET calls = :calls, head = :head, version = :next, #day = :day, day_used = :used, whoop_remaining = whoop_remaining - :one"
    if background_next_at is not None:
        update += ", background_next_at = :pace"
        values[":pace"] = _decimal(background_next_at)
    return _applied(
        _table().update_item,
        Key=budget_key(app),
        UpdateExpression=update,
        ConditionExpression="version = :version",
        ExpressionAttributeNames={"#day": "day"},
        ExpressionAttributeValues=values,
    )


def note_whoop_limit(app: str, remaining: int, reset_at: float, *, hold: bool) -> None:
    """What WHOOP says is left until `reset_at`, kept when it is lower than the stored view
    (or that view has lapsed). `hold` (a 429): no call at all until then."""
    values: dict[str, Any] = {":remaining": remaining, ":reset": _decimal(reset_at), ":one": 1}
    # A new version, so that a take based on an older read fails and reads this.
    update = "SET whoop_remaining = :remaining, whoop_reset_at = :reset, version = version + :one"
    if hold:
        update += ", hold_until = :reset"
    _applied(
        _table().update_item,
        Key=budget_key(app),
        UpdateExpression=update,
        ConditionExpression="attribute_exists(pk) AND (whoop_reset_at < :reset OR whoop_remaining > :remaining)",
        ExpressionAttributeValues=values,
    )
