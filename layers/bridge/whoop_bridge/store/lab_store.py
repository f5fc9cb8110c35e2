"""LabTable: requisitions, service requests, diagnostic reports, clinical report reviews.

One table, keyed by `pk`/`sk`:

| item | pk | sk | gsi1pk / gsi1sk |
|---|---|---|---|
| requisition | `REQ#<id>` | `REQ` | `REQUISITION` / `<received_at>#<id>` |
| service request | `SR#<id>` | `SR` | |
| diagnostic report | `SR#<id>` | `REPORT#<received_at>#<report_id>` | |
| clinical report review | `REVIEW#<id>` | `REVIEW` | `REVIEW#pending` / `<received_at>#<id>` |

Every write that intake or a state machine step may repeat is conditional or checks what is
stored first, so a redelivered webhook or a retried step changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from whoop_bridge import aws
from whoop_bridge.config import settings

REQUISITION_INDEX = "gsi1"
REQUISITION_LISTING = "REQUISITION"
PENDING_REVIEWS = "REVIEW#pending"
# A requisition WHOOP answered 404 for, fetched again until its `retry_until`.
AWAITING_WHOOP = "awaiting_whoop"


class ServiceRequestBusy(RuntimeError):
    """Another event holds the service request's task token right now."""


def now_iso() -> str:
    """UTC now as ISO 8601 with milliseconds and `Z`."""
    return iso(datetime.now(UTC))


def _table() -> Any:
    config = settings()
    config.require("lab_table_name")
    return aws.table(config.lab_table_name)


def plain(value: Any) -> Any:
    """An item with DynamoDB's Decimals turned back into ints and floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _is_condition_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


def _put_if_new(item: dict[str, Any]) -> bool:
    try:
        _table().put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
    except ClientError as error:
        if _is_condition_failure(error):
            return False
        raise
    return True


# Requisitions ---------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """A time as the table keeps times: UTC, milliseconds, `Z` (they compare as text)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: Any) -> str | None:
    # WHOOP's times are strings; anything else is kept as its JSON text (DynamoDB refuses floats).
    return value if value is None or isinstance(value, str) else json.dumps(value)


def put_requisition_if_new(
    requisition: dict[str, Any],
    received_at: str,
    service_request_ids: list[str] | None = None,
    problems: list[dict[str, str]] | None = None,
) -> bool:
    """Store a fetched requisition unless it is already stored as received; False then.

    A requisition recorded earlier as `awaiting_whoop`, `not_found` or `invalid` is
    replaced: a later successful fetch makes it fully visible. `problems` names the parts
    the bridge could not read (they are kept as WHOOP sent them).
    """
    requisition_id = requisition["id"]
    if service_request_ids is None:
        service_request_ids = [sr["id"] for sr in requisition["service_requests"]]
    try:
        _table().put_item(
            Item={
                "pk": f"REQ#{requisition_id}",
                "sk": "REQ",
                "kind": "requisition",
                "requisition_id": requisition_id,
                "outcome": "received",
                "received_at": received_at,
                "created_at": _text(requisition.get("created_at")),
                "updated_at": _text(requisition.get("updated_at")),
                # Patient and appointments stay as WHOOP sent them (encrypted at rest by the
                # table's KMS key); JSON text avoids DynamoDB's float restrictions.
                "patient_json": json.dumps(requisition.get("patient")),
                "appointments_json": json.dumps(requisition.get("appointments") or []),
                "service_request_ids": service_request_ids,
                "problems": problems or [],
                "published": False,
                "gsi1pk": REQUISITION_LISTING,
                "gsi1sk": f"{received_at}#{requisition_id}",
            },
            ConditionExpression="attribute_not_exists(pk) OR outcome <> :received",
            ExpressionAttributeValues={":received": "received"},
        )
    except ClientError as error:
        if _is_condition_failure(error):
            return False
        raise
    return True


def put_unavailable_requisition(requisition_id: str, outcome: str, problems: list[dict[str, str]]) -> bool:
    """Record a requisition the bridge could not take (`invalid`), unless it is stored as
    received; False then."""
    try:
        _table().put_item(
            Item={
                "pk": f"REQ#{requisition_id}",
                "sk": "REQ",
                "kind": "requisition",
                "requisition_id": requisition_id,
                "outcome": outcome,
                "problems": problems,
                "received_at": now_iso(),
                "published": False,
            },
            ConditionExpression="attribute_not_exists(pk) OR (outcome <> :received AND outcome <> :outcome)",
            ExpressionAttributeValues={":received": "received", ":outcome": outcome},
        )
    except ClientError as error:
        if _is_condition_failure(error):
            return False
        raise
    return True


def start_not_found_wait(requisition_id: str, since: str, until: str) -> bool:
    """Record that WHOOP answered 404 at `since` and is asked again until `until`. False when
    the requisition is received, or another wait is still running (one chain of retries)."""
    try:
        _table().put_item(
            Item={
                "pk": f"REQ#{requisition_id}",
                "sk": "REQ",
                "kind": "requisition",
                "requisition_id": requisition_id,
                "outcome": AWAITING_WHOOP,
                "not_found_since": since,
                "retry_until": until,
                "received_at": since,
                "published": False,
            },
            ConditionExpression="attribute_not_exists(pk) OR (outcome <> :received AND (outcome <> :awaiting OR retry_until < :now))",
            ExpressionAttributeValues={":received": "received", ":awaiting": AWAITING_WHOOP, ":now": since},
        )
    except ClientError as error:
        if _is_condition_failure(error):
            return False
        raise
    return True


def give_up_not_found(requisition_id: str, since: str) -> bool:
    """The wait that began at `since` is over: the requisition is `not_found`. False when it
    was received meanwhile or another wait replaced this one."""
    try:
        _table().update_item(
            Key={"pk": f"REQ#{requisition_id}", "sk": "REQ"},
            UpdateExpression="SET outcome = :not_found",
            ConditionExpression="outcome = :awaiting AND not_found_since = :since",
            ExpressionAttributeValues={":not_found": "not_found", ":awaiting": AWAITING_WHOOP, ":since": since},
        )
    except ClientError as error:
        if _is_condition_failure(error):
            return False
        raise
    return True


def get_requisition(requisition_id: str) -> dict[str, Any] | None:
    """The stored requisition item, or None."""
    item = _table().get_item(Key={"pk": f"REQ#{requisition_id}", "sk": "REQ"}, ConsistentRead=True).get("Item")
    return plain(item) if item else None


def mark_requisition(requisition_id: str, **flags: bool) -> None:
    """Set bookkeeping flags (`published`) on a requisition."""
    names = {f"#{key}": key for key in flags}
    values = {f":{key}": value for key, value in flags.items()}
    _table().update_item(
        Key={"pk": f"REQ#{requisition_id}", "sk": "REQ"},
        UpdateExpression="SET " + ", ".join(f"#{key} = :{key}" for key in flags),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def list_requisitions(
    since: str | None, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Received requisitions, newest first, from `since` on; with the key for the next page."""
    condition = Key("gsi1pk").eq(REQUISITION_LISTING)
    if since:
        condition = condition & Key("gsi1sk").gte(since)
    query: dict[str, Any] = {
        "IndexName": REQUISITION_INDEX,
        "KeyConditionExpression": condition,
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start_key:
        query["ExclusiveStartKey"] = start_key
    page = _table().query(**query)
    return [plain(item) for item in page.get("Items", [])], page.get("LastEvaluatedKey")


_LISTING_ITEMS = {REQUISITION_LISTING: ("REQ#", "REQ"), PENDING_REVIEWS: ("REVIEW#", "REVIEW")}


def is_listing_key(listing: str, key: Any) -> bool:
    """Whether `key` is a LastEvaluatedKey that listing's query could have returned (the
    table's and the index's key attributes, naming one of its items): anything else would
    be a DynamoDB ValidationException as ExclusiveStartKey."""
    prefix, sort_key = _LISTING_ITEMS[listing]
    if (
        not isinstance(key, dict)
        or set(key) != {"pk", "sk", "gsi1pk", "gsi1sk"}
        or not all(isinstance(v, str) for v in key.values())
    ):
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


# Service requests -----------------------------------------------------------------------


def put_service_request_if_new(item: dict[str, Any]) -> bool:
    """Store a service request once; False when it was already stored."""
    return _put_if_new({"pk": f"SR#{item['service_request_id']}", "sk": "SR", "kind": "service_request", **item})


def get_service_request(service_request_id: str) -> dict[str, Any] | None:
    """The stored service request, or None."""
    item = _table().get_item(Key={"pk": f"SR#{service_request_id}", "sk": "SR"}, ConsistentRead=True).get("Item")
    return plain(item) if item else None


def get_service_requests(service_request_ids: list[str]) -> list[dict[str, Any]]:
    """Several service requests by id, in the order asked (missing ones left out)."""
    name = _table().name
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(service_request_ids), 100):
        keys = [{"pk": f"SR#{sr_id}", "sk": "SR"} for sr_id in service_request_ids[start : start + 100]]
        request: dict[str, Any] = {name: {"Keys": keys, "ConsistentRead": True}}
        while request:
            answer = aws.dynamodb().batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(name, []):
                found[item["service_request_id"]] = plain(item)
            request = answer.get("UnprocessedKeys") or {}
    return [found[sr_id] for sr_id in service_request_ids if sr_id in found]


def record_status(
    service_request_id: str,
    task_business_status: str,
    *,
    reason: str | None,
    event_id: str,
    workflow: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """Keep a status WHOOP accepted, with its time, as the service request's history."""
    at = now_iso()
    entry = {"task_business_status": task_business_status, "at": at, "event_id": event_id}
    if reason:
        entry["reason"] = reason
    sets = {
        "task_business_status": task_business_status,
        "last_event_id": event_id,
        "workflow": workflow,
        "updated_at": at,
        **(extra or {}),
    }
    _table().update_item(
        Key={"pk": f"SR#{service_request_id}", "sk": "SR"},
        UpdateExpression="SET history = list_append(if_not_exists(history, :empty), :entry), "
        + ", ".join(f"#{key} = :{key}" for key in sets),
        ExpressionAttributeNames={f"#{key}": key for key in sets},
        ExpressionAttributeValues={
            ":empty": [],
            ":entry": [entry],
            **{f":{key}": value for key, value in sets.items()},
        },
    )


def set_workflow(service_request_id: str, workflow: str, **attributes: Any) -> None:
    """Move the service request's workflow state (`closed`, `failed`, ...) with extra attributes."""
    sets = {"workflow": workflow, "updated_at": now_iso(), **attributes}
    _table().update_item(
        Key={"pk": f"SR#{service_request_id}", "sk": "SR"},
        UpdateExpression="SET " + ", ".join(f"#{key} = :{key}" for key in sets) + " REMOVE task_token",
        ExpressionAttributeNames={f"#{key}": key for key in sets},
        ExpressionAttributeValues={f":{key}": value for key, value in sets.items()},
    )


def store_task_token(service_request_id: str, task_token: str, phase: str) -> None:
    """Keep the token of the execution's wait so lab_api can resume it."""
    workflow = "awaiting_correction" if phase == "correction" else "awaiting_lab_event"
    _table().update_item(
        Key={"pk": f"SR#{service_request_id}", "sk": "SR"},
        UpdateExpression="SET task_token = :token, token_phase = :phase, workflow = :workflow, updated_at = :at",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":token": task_token, ":phase": phase, ":workflow": workflow, ":at": now_iso()},
    )


def claim_task_token(service_request_id: str, task_token: str, pending_event: dict[str, Any]) -> None:
    """Take the token for one event, so no second event can resume the same wait."""
    try:
        _table().update_item(
            Key={"pk": f"SR#{service_request_id}", "sk": "SR"},
            UpdateExpression="SET pending_event = :event, workflow = :workflow, updated_at = :at REMOVE task_token",
            ConditionExpression="task_token = :token",
            ExpressionAttributeValues={
                ":event": pending_event,
                ":workflow": "processing",
                ":at": now_iso(),
                ":token": task_token,
            },
        )
    except ClientError as error:
        if _is_condition_failure(error):
            raise ServiceRequestBusy(service_request_id) from None
        raise


def restore_task_token(service_request_id: str, task_token: str, workflow: str) -> None:
    """Give a claimed token back when the execution could not be resumed (a transient fault)."""
    _table().update_item(
        Key={"pk": f"SR#{service_request_id}", "sk": "SR"},
        UpdateExpression="SET task_token = :token, workflow = :workflow REMOVE pending_event",
        ConditionExpression="attribute_not_exists(task_token)",
        ExpressionAttributeValues={":token": task_token, ":workflow": workflow},
    )


# Diagnostic reports ---------------------------------------------------------------------


def put_report(service_request_id: str, report_id: str, report: dict[str, Any], report_kind: str) -> dict[str, Any]:
    """Keep the lab's report, as written, before the execution is asked to submit it."""
    received_at = now_iso()
    item = {
        "pk": f"SR#{service_request_id}",
        "sk": f"REPORT#{received_at}#{report_id}",
        "kind": "diagnostic_report",
        "report_id": report_id,
        "service_request_id": service_request_id,
        "report_status": report["status"],
        "report_kind": report_kind,
        "observation_count": len(report.get("observations", [])),
        "report_json": json.dumps(report, separators=(",", ":")),
        "received_at": received_at,
    }
    _table().put_item(Item=item)
    return item


def list_reports(service_request_id: str) -> list[dict[str, Any]]:
    """The service request's reports, oldest first."""
    page = _table().query(
        KeyConditionExpression=Key("pk").eq(f"SR#{service_request_id}") & Key("sk").begins_with("REPORT#"),
        ConsistentRead=True,
    )
    return [plain(item) for item in page.get("Items", [])]


def get_report(service_request_id: str, report_id: str) -> dict[str, Any] | None:
    """One report of the service request by id."""
    return next((item for item in list_reports(service_request_id) if item["report_id"] == report_id), None)


def mark_report_submitted(service_request_id: str, sort_key: str, outbox: dict[str, Any]) -> None:
    """Note that WHOOP accepted the report, so a retried step does not post it again, with
    the event still to publish."""
    _table().update_item(
        Key={"pk": f"SR#{service_request_id}", "sk": sort_key},
        UpdateExpression="SET submitted_at = :at, outbox = :outbox",
        ExpressionAttributeValues={":at": now_iso(), ":outbox": outbox},
    )


def service_request_key(service_request_id: str) -> dict[str, str]:
    """The service request item's key."""
    return {"pk": f"SR#{service_request_id}", "sk": "SR"}


def clear_outbox(key: dict[str, str]) -> None:
    """Forget an item's published event."""
    _table().update_item(Key=key, UpdateExpression="REMOVE outbox")


# Clinical report reviews ----------------------------------------------------------------


def put_review_if_new(review_id: str, details: dict[str, Any] | None) -> bool:
    """Store a pending clinical report review once."""
    received_at = now_iso()
    item: dict[str, Any] = {
        "pk": f"REVIEW#{review_id}",
        "sk": "REVIEW",
        "kind": "clinical_report_review",
        "review_id": review_id,
        "review_status": "pending",
        "received_at": received_at,
        "published": False,
        "gsi1pk": PENDING_REVIEWS,
        "gsi1sk": f"{received_at}#{review_id}",
    }
    if details is not None:
        item["details_json"] = json.dumps(details)
    return _put_if_new(item)


def get_review(review_id: str) -> dict[str, Any] | None:
    """The stored review, or None."""
    item = _table().get_item(Key={"pk": f"REVIEW#{review_id}", "sk": "REVIEW"}, ConsistentRead=True).get("Item")
    return plain(item) if item else None


def mark_review_published(review_id: str) -> None:
    """Note that `clinical_report_review.requested` went out."""
    _table().update_item(
        Key={"pk": f"REVIEW#{review_id}", "sk": "REVIEW"},
        UpdateExpression="SET published = :yes",
        ExpressionAttributeValues={":yes": True},
    )


def list_pending_reviews(
    limit: int, start_key: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Pending reviews, oldest first, with the key for the next page."""
    query: dict[str, Any] = {
        "IndexName": REQUISITION_INDEX,
        "KeyConditionExpression": Key("gsi1pk").eq(PENDING_REVIEWS),
        "Limit": limit,
    }
    if start_key:
        query["ExclusiveStartKey"] = start_key
    page = _table().query(**query)
    return [plain(item) for item in page.get("Items", [])], page.get("LastEvaluatedKey")
