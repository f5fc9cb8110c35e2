"""Sync progress in MemberTable: per member, cause and step (a record type or `profile`),
where a backfill or reconciliation stands (`SYNC#<cause>#<step>`)."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from whoop_bridge.models.sync_job import StepState, SyncCause, SyncProgress
from whoop_bridge.store import dynamo
from whoop_bridge.times import now_iso


def _table() -> Any:
    return dynamo.table("member_table_name")


def _key(client_user_id: str, cause: SyncCause, step: str) -> dict[str, str]:
    return {"pk": f"MEMBER#{client_user_id}", "sk": f"SYNC#{cause}#{step}"}


def start(client_user_id: str, cause: SyncCause, steps: tuple[str, ...]) -> None:
    """A job's progress per step, from `queued`."""
    with _table().batch_writer() as batch:
        for step in steps:
            batch.put_item(
                Item={
                    **_key(client_user_id, cause, step),
                    "state": StepState.QUEUED.value,
                    "pages": 0,
                    "records": 0,
                    "started_at": now_iso(),
                }
            )


def note(
    client_user_id: str,
    cause: SyncCause,
    step: str,
    *,
    pages: int,
    records: int,
    state: str,
    started_at: str | None = None,
) -> None:
    """More pages of a step, and where it stands (a StepState or a `skipped_*` outcome).
    `started_at` (a `times.iso` text) marks the step's first page of a new run: its counts
    start afresh from these (a daily reconciliation reuses the item; a timeline shows the
    last run)."""
    values = {":state": str(state), ":at": now_iso(), ":pages": pages, ":records": records}
    if started_at:
        update = "SET #state = :state, updated_at = :at, started_at = :started, pages = :pages, #records = :records"
        values[":started"] = started_at
    else:
        update = "SET #state = :state, updated_at = :at ADD pages :pages, #records :records"
    _table().update_item(
        Key=_key(client_user_id, cause, step),
        UpdateExpression=update,
        ExpressionAttributeNames={"#state": "state", "#records": "records"},
        ExpressionAttributeValues=values,
    )


def progress(client_user_id: str, cause: SyncCause) -> dict[str, SyncProgress]:
    """Per step: its progress (empty when no such job ran)."""
    found = dynamo.query_all(
        _table(),
        KeyConditionExpression=Key("pk").eq(f"MEMBER#{client_user_id}") & Key("sk").begins_with(f"SYNC#{cause}#"),
        ConsistentRead=True,
    )
    return {
        item["sk"].rsplit("#", 1)[-1]: SyncProgress(
            state=item.get("state"),
            pages=item.get("pages"),
            records=item.get("records"),
            updated_at=item.get("updated_at"),
            started_at=item.get("started_at"),
        )
        for item in found
    }
