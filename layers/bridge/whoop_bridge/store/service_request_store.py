"""Service requests in LabTable: `SR#<id>` / `SR` (docs/data-model.md#service-request).

Intake stores each once; the execution's steps record the statuses WHOOP accepted and its
workflow state; its waits keep their task token here, which the lab API claims with a
conditional write so that of two concurrent updates only one resumes a wait.
"""

from __future__ import annotations

from dataclasses import fields
from enum import StrEnum
from typing import Any

from whoop_bridge import times
from whoop_bridge.models.service_request import (
    AcceptedStatus,
    Decision,
    ServiceRequestRecord,
    TokenPhase,
    WorkflowState,
)
from whoop_bridge.models.task_status import TaskBusinessStatus
from whoop_bridge.store import dynamo

# The record's `pending_update` is kept as `pending_event` (the item's older name).
_ATTRIBUTES = {field.name: field.name for field in fields(ServiceRequestRecord)} | {"pending_update": "pending_event"}
_ENUMS = {
    "workflow": WorkflowState,
    "decision": Decision,
    "task_business_status": TaskBusinessStatus,
    "token_phase": TokenPhase,
}


def _table() -> Any:
    # LabTable (docs/data-model.md#service-request), by the setting `lab_table_name`.
    return dynamo.table("lab_table_name")


def _key(service_request_id: str) -> dict[str, str]:
    return {"pk": f"SR#{service_request_id}", "sk": "SR"}


def _update(service_request_id: str, sets: dict[str, Any], *, prefix: str = "", suffix: str = "", **extra: Any) -> None:
    """SET each of `sets` (with `prefix` clauses before them and `suffix` after)."""
    clauses = prefix + ", ".join(f"#{name} = :{name}" for name in sets)
    _table().update_item(
        Key=_key(service_request_id),
        UpdateExpression="SET " + clauses + suffix,
        ExpressionAttributeNames={f"#{name}": name for name in sets},
        ExpressionAttributeValues={**extra.pop("values", {}), **{f":{name}": value for name, value in sets.items()}},
        **extra,
    )


def put_if_new(record: ServiceRequestRecord) -> bool:
    """Store a service request once; False when it was already stored."""
    # An attribute the record leaves None is not written (it reads back as None); nor is
    # `resumes` before the first resume (claim_resume writes it).
    item = {
        _ATTRIBUTES[name]: value.value if isinstance(value, StrEnum) else value
        for name, value in vars(record).items()
        if value is not None and not (name == "resumes" and value == 0)
    }
    return dynamo.put_if_new(_table(), {**_key(record.service_request_id), "kind": "service_request", **item})


def get(service_request_id: str) -> ServiceRequestRecord | None:
    """The stored service request, or None."""
    item = dynamo.get_item(_table(), _key(service_request_id))
    return _record(item) if item else None


def get_many(service_request_ids: list[str]) -> list[ServiceRequestRecord]:
    """Several service requests by id, in the order asked (missing ones left out)."""
    found = {
        item["service_request_id"]: item
        for item in dynamo.get_items(_table(), [_key(sr_id) for sr_id in dict.fromkeys(service_request_ids)])
    }
    return [_record(found[sr_id]) for sr_id in service_request_ids if sr_id in found]


def record_status(service_request_id: str, accepted: AcceptedStatus) -> None:
    """Keep a status WHOOP accepted, with its time, in the service request's history, with
    the bus message still to publish (`accepted.outbox`) in the same write."""
    at = times.now_iso()
    sets = {
        "task_business_status": accepted.status.value,
        "last_event_id": accepted.event_id,
        "workflow": accepted.workflow.value,
        "updated_at": at,
        "outbox": accepted.outbox,
    }
    if accepted.correction_deadline:
        sets["correction_deadline"] = accepted.correction_deadline
    _update(
        service_request_id,
        sets,
        prefix="history = list_append(if_not_exists(history, :empty), :entry), ",
        values={":empty": [], ":entry": [accepted.history_entry(at)]},
    )


def close(service_request_id: str, *, closed_at: str | None = None, closed_reason: str | None = None) -> None:
    """Nothing more is accepted: workflow `closed`, with when (the correction window ended)
    or why (the wait ended), and the task token forgotten."""
    attributes = {"closed_at": closed_at, "closed_reason": closed_reason}
    _end(service_request_id, WorkflowState.CLOSED, {k: v for k, v in attributes.items() if v is not None})


def record_failure(service_request_id: str, failure: dict[str, str]) -> None:
    """The execution stopped: workflow `failed` with `failure` `{error, cause, at}`."""
    _end(service_request_id, WorkflowState.FAILED, {"failure": failure})


def _end(service_request_id: str, workflow: WorkflowState, attributes: dict[str, Any]) -> None:
    sets = {"workflow": workflow.value, "updated_at": times.now_iso(), **attributes}
    _update(service_request_id, sets, suffix=" REMOVE task_token")


def clear_outbox(service_request_id: str) -> None:
    """Forget the published bus message."""
    _table().update_item(Key=_key(service_request_id), UpdateExpression="REMOVE outbox")


# Resumes (models/resume.py) --------------------------------------------------------------


def claim_resume(service_request_id: str, number: int, entry: dict[str, Any]) -> bool:
    """Take the `number`-th resume of a failed test: workflow `starting`, `resumes` =
    `number`, `entry` appended to the history and the failure forgotten (the entry keeps its
    error), in one conditional write. False when the test is not `failed` or another resume
    took this number: of two concurrent resumes only one starts an execution."""
    # Before the first resume the item has no `resumes` (put_if_new leaves 0 out).
    previous = "attribute_not_exists(resumes)" if number == 1 else "resumes = :previous"
    values = {":previous": number - 1} if number > 1 else {}
    return dynamo.applied(
        _table().update_item,
        Key=_key(service_request_id),
        UpdateExpression="SET #workflow = :starting, resumes = :number, updated_at = :at, "
        "history = list_append(if_not_exists(history, :empty), :entry) REMOVE failure",
        ConditionExpression=f"#workflow = :failed AND {previous}",
        ExpressionAttributeNames={"#workflow": "workflow"},
        ExpressionAttributeValues={
            **values,
            ":starting": WorkflowState.STARTING.value,
            ":failed": WorkflowState.FAILED.value,
            ":number": number,
            ":at": times.now_iso(),
            ":empty": [],
            ":entry": [entry],
        },
    )


def release_resume(service_request_id: str, number: int, failure: dict[str, Any] | None, entry_index: int) -> None:
    """The `number`-th resume's execution could not be started: the test is `failed` again
    with its `failure`, and the resume's history entry (at `entry_index`) removed; `resumes`
    stays, so the next resume takes the next name. Nothing when a later write moved the test on."""
    dynamo.applied(
        _table().update_item,
        Key=_key(service_request_id),
        UpdateExpression=f"SET #workflow = :failed, failure = :failure REMOVE history[{int(entry_index)}]",
        ConditionExpression="#workflow = :starting AND resumes = :number",
        ExpressionAttributeNames={"#workflow": "workflow"},
        ExpressionAttributeValues={
            ":failed": WorkflowState.FAILED.value,
            ":failure": failure,
            ":starting": WorkflowState.STARTING.value,
            ":number": number,
        },
    )


# Task tokens ------------------------------------------------------------------------------


def store_task_token(service_request_id: str, task_token: str, phase: TokenPhase) -> None:
    """Keep the token of the execution's wait so the lab API can resume it."""
    _table().update_item(
        Key=_key(service_request_id),
        UpdateExpression="SET task_token = :token, token_phase = :phase, workflow = :workflow, updated_at = :at",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={
            ":token": task_token,
            ":phase": phase.value,
            ":workflow": phase.workflow.value,
            ":at": times.now_iso(),
        },
    )


def claim_task_token(service_request_id: str, task_token: str, pending_update: dict[str, Any]) -> bool:
    """Take the token for one update (workflow `processing`), so no second update can resume
    the same wait. False when the token is no longer the stored one (another update took it)."""
    return dynamo.applied(
        _table().update_item,
        Key=_key(service_request_id),
        UpdateExpression="SET pending_event = :update, workflow = :workflow, updated_at = :at REMOVE task_token",
        ConditionExpression="task_token = :token",
        ExpressionAttributeValues={
            ":update": pending_update,
            ":workflow": WorkflowState.PROCESSING.value,
            ":at": times.now_iso(),
            ":token": task_token,
        },
    )


def restore_task_token(service_request_id: str, task_token: str, workflow: WorkflowState) -> None:
    """Give a claimed token back when the execution could not be resumed (a transient fault).
    Raises botocore's ClientError (`ConditionalCheckFailedException`) when a token was stored
    meanwhile: the newer wait's token is kept."""
    _table().update_item(
        Key=_key(service_request_id),
        UpdateExpression="SET task_token = :token, workflow = :workflow REMOVE pending_event",
        ConditionExpression="attribute_not_exists(task_token)",
        ExpressionAttributeValues={":token": task_token, ":workflow": workflow.value},
    )


def _record(item: dict[str, Any]) -> ServiceRequestRecord:
    values = {}
    for name, attribute in _ATTRIBUTES.items():
        value = item.get(attribute)
        if value is not None:
            values[name] = _ENUMS[name](value) if name in _ENUMS else value
    if "resumes" in values:
        values["resumes"] = dynamo.plain(values["resumes"])  # a Decimal from DynamoDB
    return ServiceRequestRecord(**values)
