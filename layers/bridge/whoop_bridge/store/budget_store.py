"""The WHOOP app's rate budget in MemberTable: one item per app (its client id).

| item | pk | sk |
|---|---|---|
| the WHOOP app's rate budget | `RATE_BUDGET#<client_id>` | `RATE_BUDGET` |

The item holds a `BudgetState` (models/budget.py), its call times as one text of
comma-separated seconds (a small item, cheap to read and write). Every change is
conditional: a call is taken only if `version` is still the one read, and WHOOP's own limit
is noted only when it is lower than the stored view or names a later window. These
functions are the budget's `BudgetStateStore` (whoop/budget.py).
"""

from __future__ import annotations

from typing import Any

from whoop_bridge.models.budget import SAME_WINDOW_SECONDS, BudgetState
from whoop_bridge.store import dynamo


def _table() -> Any:
    return dynamo.table("member_table_name")


def budget_key(app: str) -> dict[str, str]:
    return {"pk": f"RATE_BUDGET#{app}", "sk": "RATE_BUDGET"}


def _calls_text(calls: tuple[float, ...]) -> str:
    return ",".join(f"{call:.3f}" for call in calls)


def _state(item: dict[str, Any]) -> BudgetState:
    values = dynamo.plain(item)
    background_next_at = values.get("background_next_at")
    return BudgetState(
        calls=tuple(float(call) for call in values["calls"].split(",")),
        head=values["head"],
        version=values["version"],
        day=values["day"],
        day_used=values["day_used"],
        whoop_remaining=values["whoop_remaining"],
        whoop_reset_at=float(values["whoop_reset_at"]),
        hold_until=float(values["hold_until"]),
        background_next_at=None if background_next_at is None else float(background_next_at),
        priority_seen_at=float(values.get("priority_seen_at", 0)),
    )


def get(app: str) -> BudgetState | None:
    """The app's budget as stored (a consistent read), or None before its first call."""
    item = _table().get_item(Key=budget_key(app), ConsistentRead=True).get("Item")
    return _state(item) if item else None


def create(app: str, state: BudgetState) -> None:
    """Store `state` as the app's first budget; a concurrent creator's item wins."""
    item: dict[str, Any] = {
        **budget_key(app),
        "calls": _calls_text(state.calls),
        "head": state.head,
        "version": state.version,
        "day": state.day,
        "day_used": state.day_used,
        "whoop_remaining": state.whoop_remaining,
        "whoop_reset_at": dynamo.number(state.whoop_reset_at),
        "hold_until": dynamo.number(state.hold_until),
        "priority_seen_at": dynamo.number(state.priority_seen_at),
    }
    if state.background_next_at is not None:
        item["background_next_at"] = dynamo.number(state.background_next_at)
    dynamo.put_if_new(_table(), item)


def take(app: str, read: BudgetState, taken: BudgetState) -> bool:
    """Record one call (`taken`, the state after it) if nobody changed the budget since
    `read`; False otherwise. WHOOP's count of what is left goes down by one in the item
    itself; the pace and when a webhook was last seen are written only when the call moved them."""
    values: dict[str, Any] = {
        ":calls": _calls_text(taken.calls),
        ":head": taken.head,
        ":next": read.version + 1,
        ":day": taken.day,
        ":used": taken.day_used,
        ":one": 1,
        ":version": read.version,
    }
    update = "SET calls = :calls, head = :head, version = :next, #day = :day, day_used = :used, whoop_remaining = whoop_remaining - :one"
    if taken.background_next_at is not None and taken.background_next_at != read.background_next_at:
        update += ", background_next_at = :pace"
        values[":pace"] = dynamo.number(taken.background_next_at)
    if taken.priority_seen_at != read.priority_seen_at:
        update += ", priority_seen_at = :seen"
        values[":seen"] = dynamo.number(taken.priority_seen_at)
    return _update(app, update, "version = :version", values, names={"#day": "day"})


def claim(app: str, read: BudgetState, waiting: BudgetState) -> bool:
    """A waiting webhook's claim on the minute's reserve (`waiting`, from
    `BudgetState.waiting`) if nobody changed the budget since `read`; False otherwise."""
    values = {":seen": dynamo.number(waiting.priority_seen_at), ":next": read.version + 1, ":version": read.version}
    update = "SET priority_seen_at = :seen, version = :next"
    return _update(app, update, "version = :version", values)


def note(app: str, remaining: int, reset_at: float, *, hold: bool) -> None:
    """What WHOOP says is left until `reset_at`, kept when it is lower than the stored view
    (or that view has lapsed); nothing before the budget's item exists. `hold` (a 429): no
    call at all until then."""
    values: dict[str, Any] = {
        ":remaining": remaining,
        ":reset": dynamo.number(reset_at),
        ":window": dynamo.number(reset_at - SAME_WINDOW_SECONDS),
        ":one": 1,
    }
    # A new version, so that a take based on an older read fails and reads this.
    update = "SET whoop_remaining = :remaining, whoop_reset_at = :reset, version = version + :one"
    # A later window, or a lower count in this one (a reset up to a second later is this one).
    newer = "whoop_reset_at < :window OR whoop_remaining > :remaining"
    if hold:
        update += ", hold_until = :reset"
        newer += " OR hold_until < :reset"
    _update(app, update, f"attribute_exists(pk) AND ({newer})", values)


def _update(app: str, update: str, condition: str, values: dict[str, Any], names: dict[str, str] | None = None) -> bool:
    """One conditional update of the app's item; False when `condition` did not hold."""
    arguments: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
    return dynamo.applied(
        _table().update_item,
        Key=budget_key(app),
        UpdateExpression=update,
        ConditionExpression=condition,
        ExpressionAttributeValues=values,
        **arguments,
    )


def forget(app: str) -> None:
    """The app's budget gone: the next call starts a fresh one (tests; a new local stack)."""
    _table().delete_item(Key=budget_key(app))
