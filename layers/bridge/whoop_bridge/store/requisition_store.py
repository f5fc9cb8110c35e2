"""Requisitions in LabTable: `REQ#<id>` / `REQ`, listed by the index as `REQUISITION` /
`<received_at>#<id>` (docs/data-model.md#requisition).

A received requisition is final; an `awaiting_whoop`, `not_found` or `invalid` one is
replaced by a later successful fetch. Every write is conditional, so a redelivered webhook
changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from whoop_bridge import times
from whoop_bridge.models.requisition import RequisitionOutcome, RequisitionRecord
from whoop_bridge.store import dynamo

LISTING = "REQUISITION"
_ITEM_KEY = ("REQ#", "REQ")
RECEIVED = RequisitionOutcome.RECEIVED.value
AWAITING = RequisitionOutcome.AWAITING_WHOOP.value


def _table() -> Any:
    # LabTable (docs/data-model.md#requisition), by the setting `lab_table_name`.
    return dynamo.table("lab_table_name")


def _key(requisition_id: str) -> dict[str, str]:
    return {"pk": f"REQ#{requisition_id}", "sk": "REQ"}


def _text(value: Any) -> str | None:
    # WHOOP's times are strings; anything else is kept as its JSON text (DynamoDB refuses floats).
    return value if value is None or isinstance(value, str) else json.dumps(value)


def _put(item: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
    return dynamo.applied(
        _table().put_item,
        Item={**_key(item["requisition_id"]), "kind": "requisition", "published": False, **item},
        ConditionExpression=condition,
        ExpressionAttributeValues=values,
    )


def put_received(
    requisition: dict[str, Any], received_at: str, service_request_ids: list[str], problems: list[dict[str, str]]
) -> bool:
    """Store a fetched requisition (WHOOP's JSON, `id` read already) unless it is stored as
    received; False then. An `awaiting_whoop`, `not_found` or `invalid` one is replaced: a
    later successful fetch makes it fully visible. `problems` names the parts the bridge
    could not read (they are kept as WHOOP sent them)."""
    requisition_id = requisition["id"]
    item = {
        "requisition_id": requisition_id,
        "outcome": RECEIVED,
        "received_at": received_at,
        "created_at": _text(requisition.get("created_at")),
        "updated_at": _text(requisition.get("updated_at")),
        # Patient and appointments stay as WHOOP sent them (encrypted at rest by the table's
        # KMS key); JSON text avoids DynamoDB's float restrictions.
        "patient_json": json.dumps(requisition.get("patient")),
        "appointments_json": json.dumps(requisition.get("appointments") or []),
        "service_request_ids": service_request_ids,
        "problems": problems,
        "gsi1pk": LISTING,
        "gsi1sk": f"{received_at}#{requisition_id}",
    }
    return _put(item, "attribute_not_exists(pk) OR outcome <> :received", {":received": RECEIVED})


def put_invalid(requisition_id: str, problems: list[dict[str, str]]) -> bool:
    """Record a requisition the bridge could not read, unless it is stored as received or
    invalid already; False then."""
    invalid = RequisitionOutcome.INVALID.value
    item = {"requisition_id": requisition_id, "outcome": invalid, "problems": problems, "received_at": times.now_iso()}
    return _put(
        item,
        "attribute_not_exists(pk) OR (outcome <> :received AND outcome <> :outcome)",
        {":received": RECEIVED, ":outcome": invalid},
    )


def start_not_found_wait(requisition_id: str, since: str, until: str) -> bool:
    """Record that WHOOP answered 404 at `since` and is asked again until `until`. False when
    the requisition is received, or another wait is still running (one chain of retries)."""
    item = {
        "requisition_id": requisition_id,
        "outcome": AWAITING,
        "not_found_since": since,
        "retry_until": until,
        "received_at": since,
    }
    return _put(
        item,
        "attribute_not_exists(pk) OR (outcome <> :received AND (outcome <> :awaiting OR retry_until < :now))",
        {":received": RECEIVED, ":awaiting": AWAITING, ":now": since},
    )


def give_up_not_found(requisition_id: str, since: str) -> bool:
    """The wait that began at `since` is over: the requisition is `not_found`. False when it
    was received meanwhile or another wait replaced this one."""
    return dynamo.applied(
        _table().update_item,
        Key=_key(requisition_id),
        UpdateExpression="SET outcome = :not_found",
        ConditionExpression="outcome = :awaiting AND not_found_since = :since",
        ExpressionAttributeValues={
            ":not_found": RequisitionOutcome.NOT_FOUND.value,
            ":awaiting": AWAITING,
            ":since": since,
        },
    )


def restart_intake(requisition_id: str, since: str, until: str) -> bool:
    """An operator resumed a requisition that failed intake (`not_found`, `invalid`): it is
    `awaiting_whoop` again, fetched until `until` as after a first 404 at `since`. False
    unless it is stored with one of those outcomes (e.g. the second of two concurrent resumes)."""
    return dynamo.applied(
        _table().update_item,
        Key=_key(requisition_id),
        UpdateExpression="SET outcome = :awaiting, not_found_since = :since, retry_until = :until",
        ConditionExpression="outcome IN (:not_found, :invalid)",
        ExpressionAttributeValues={
            ":awaiting": AWAITING,
            ":since": since,
            ":until": until,
            ":not_found": RequisitionOutcome.NOT_FOUND.value,
            ":invalid": RequisitionOutcome.INVALID.value,
        },
    )


def mark_published(requisition_id: str) -> None:
    """Note that the requisition's bus message went out."""
    _table().update_item(
        Key=_key(requisition_id),
        UpdateExpression="SET published = :yes",
        ExpressionAttributeValues={":yes": True},
    )


def get(requisition_id: str) -> RequisitionRecord | None:
    """The stored requisition, or None."""
    item = dynamo.get_item(_table(), _key(requisition_id))
    return _record(item) if item else None


def list_received(
    since: str | None, limit: int, next_token: str | None, scope: str
) -> tuple[list[RequisitionRecord], str | None]:
    """Received requisitions, newest first, received at or after `since` (a `times.iso`
    text), and the `next_token` for the next page. `scope` names the query parameters the
    token is bound to; InvalidPageToken for one this listing did not issue for them."""
    items, token = dynamo.index_page(
        _table(), LISTING, _ITEM_KEY, limit, next_token, f"requisitions {scope}", since=since, newest_first=True
    )
    return [_record(item) for item in items], token


def _record(item: dict[str, Any]) -> RequisitionRecord:
    return RequisitionRecord(
        requisition_id=item["requisition_id"],
        outcome=RequisitionOutcome(item["outcome"]),
        received_at=item.get("received_at"),
        created_at=item.get("created_at"),
        updated_at=item.get("updated_at"),
        patient=json.loads(item.get("patient_json") or "null"),
        appointments=json.loads(item.get("appointments_json") or "[]"),
        service_request_ids=item.get("service_request_ids", []),
        problems=item.get("problems", []),
        published=bool(item.get("published")),
        not_found_since=item.get("not_found_since"),
        retry_until=item.get("retry_until"),
    )
