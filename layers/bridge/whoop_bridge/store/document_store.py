"""Partner documents: their state and metadata in LabTable, their bytes in the document
bucket (docs/data-model.md#partner-document).

| item | pk | sk |
|---|---|---|
| document | `DOC#<id>` | `DOC` |
| a requisition's `based_on` references | `BASEDON#<requisition_id>` | `BASEDON` |

A document's bytes are one object, `documents/<id>`, in the bucket named by
DOCUMENT_BUCKET_NAME, encrypted with the stack's key (SSE-KMS, bucket key on). The table
holds the object's version, size, SHA-256 and content type, never the bytes.

Every write here is safe to repeat: registering adds to sets, and a stored or linked
document is never changed again (each later write is conditional on that).
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from typing import Any

from botocore.exceptions import ClientError

from whoop_bridge import aws
from whoop_bridge.config import settings
from whoop_bridge.models.document import BasedOn, DocumentRecord, DocumentState
from whoop_bridge.store import dynamo
from whoop_bridge.times import now_iso

OBJECT_PREFIX = "documents/"
_FIELDS = tuple(field.name for field in fields(DocumentRecord))
# The item's condition that the document is neither stored nor linked (final).
_NOT_FETCHED = "attribute_exists(pk) AND NOT #state IN (:stored, :linked)"
_FETCHED_VALUES = {":stored": DocumentState.STORED.value, ":linked": DocumentState.LINKED.value}


def _table() -> Any:
    # LabTable (docs/data-model.md#partner-document), by the setting `lab_table_name`.
    return dynamo.table("lab_table_name")


def _key(document_id: str) -> dict[str, str]:
    return {"pk": f"DOC#{document_id}", "sk": "DOC"}


def _record(item: dict[str, Any]) -> DocumentRecord:
    values = {name: item[name] for name in _FIELDS if item.get(name) is not None}
    return DocumentRecord(**{**values, "state": DocumentState(item["state"])})


# Documents ------------------------------------------------------------------------------


def register(
    document_id: str, reference_type: str, requisition_id: str, service_request_ids: list[str]
) -> DocumentRecord:
    """Note that a requisition's service requests are based on this document; returns the
    document as it now is (`state` pending and `attempts` 0 when it was never fetched)."""
    answer = _table().update_item(
        Key=_key(document_id),
        UpdateExpression=(
            "SET kind = :kind, document_id = :id, #state = if_not_exists(#state, :pending), "
            "attempts = if_not_exists(attempts, :zero), first_seen_at = if_not_exists(first_seen_at, :now) "
            "ADD reference_types :type, requisition_ids :requisition, service_request_ids :service_requests"
        ),
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={
            ":kind": "partner_document",
            ":id": document_id,
            ":pending": DocumentState.PENDING.value,
            ":zero": 0,
            ":now": now_iso(),
            ":type": {reference_type},
            ":requisition": {requisition_id},
            ":service_requests": set(service_request_ids),
        },
        ReturnValues="ALL_NEW",
    )
    return _record(dynamo.plain(answer["Attributes"]))


def start_attempt(document_id: str, attempt: int) -> int | None:
    """Count the fetch attempt `attempt` (from 1); the attempts so far, or None when there is
    nothing to do: the document is stored or linked, or this attempt already ran and the next
    is scheduled (a duplicate message). An attempt that stopped before it scheduled the next
    (no `next_attempt_at`) may run again."""
    try:
        answer = _table().update_item(
            Key=_key(document_id),
            UpdateExpression="SET attempts = if_not_exists(attempts, :zero) + :one, last_attempt_at = :now REMOVE next_attempt_at",
            ConditionExpression=f"{_NOT_FETCHED} AND (attribute_not_exists(next_attempt_at) OR attempts < :attempt)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":zero": 0,
                ":one": 1,
                ":now": now_iso(),
                ":attempt": attempt,
                **_FETCHED_VALUES,
            },
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as error:
        # The one conditional write here that needs the item's new value: not `dynamo.applied`.
        if dynamo.condition_failed(error):
            return None
        raise
    return int(answer["Attributes"]["attempts"])


def _finish(document_id: str, sets: dict[str, Any], removes: tuple[str, ...] = ()) -> bool:
    """Write a fetch's outcome unless the document is already stored or linked."""
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return dynamo.applied(
        _table().update_item,
        Key=_key(document_id),
        UpdateExpression=expression,
        ConditionExpression=_NOT_FETCHED,
        ExpressionAttributeNames={"#state": "state", **{f"#{name}": name for name in sets}},
        # The document's own attributes are named `:<name>`; the states `:stored`/`:linked` stay apart.
        ExpressionAttributeValues={**_FETCHED_VALUES, **{f":{name}": value for name, value in sets.items()}},
    )


def mark_stored(document_id: str, metadata: dict[str, Any], stored_object: dict[str, Any]) -> bool:
    """The content is in the bucket (`stored_object` from `put_content`): state `stored`."""
    return _finish(
        document_id,
        {"state": DocumentState.STORED.value, "fetched_at": now_iso(), **metadata, **stored_object},
        ("last_failure", "next_attempt_at"),
    )


def mark_linked(document_id: str, metadata: dict[str, Any]) -> bool:
    """A link-only document (WHOOP's `url`, no content): state `linked`."""
    return _finish(
        document_id,
        {"state": DocumentState.LINKED.value, "fetched_at": now_iso(), **metadata},
        ("last_failure", "next_attempt_at"),
    )


def mark_failed(document_id: str, reason: str, next_attempt_at: str) -> bool:
    """An attempt failed (`reason`: e.g. `not_found`, `http_503`, `timeout`); another is due."""
    return _finish(
        document_id, {"state": DocumentState.PENDING.value, "last_failure": reason, "next_attempt_at": next_attempt_at}
    )


def mark_unavailable(document_id: str, reason: str) -> bool:
    """Every attempt failed: state `unavailable`. True only for the write that made it so."""
    if dynamo.applied(
        _table().update_item,
        Key=_key(document_id),
        UpdateExpression="SET #state = :unavailable, last_failure = :reason, unavailable_at = :now REMOVE next_attempt_at",
        ConditionExpression="attribute_exists(pk) AND NOT #state IN (:stored, :linked, :unavailable)",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={
            ":unavailable": DocumentState.UNAVAILABLE.value,
            ":reason": reason,
            ":now": now_iso(),
            **_FETCHED_VALUES,
        },
    ):
        return True
    # Already unavailable: keep the newest reason (a later attempt may have failed otherwise).
    _finish(document_id, {"last_failure": reason})
    return False


def get(document_id: str) -> DocumentRecord | None:
    """The stored document, or None."""
    item = dynamo.get_item(_table(), _key(document_id))
    return _record(item) if item else None


def get_many(document_ids: list[str]) -> dict[str, DocumentRecord]:
    """Several documents by id (missing ones left out)."""
    items = dynamo.get_items(_table(), [_key(doc_id) for doc_id in dict.fromkeys(document_ids)])
    return {item["document_id"]: _record(item) for item in items}


# References -----------------------------------------------------------------------------


def put_references(requisition_id: str, references: list[BasedOn]) -> None:
    """Keep every `based_on` reference of a requisition's service requests, documents or
    not. The same requisition gives the same list, so writing it again changes nothing."""
    _table().put_item(
        Item={
            "pk": f"BASEDON#{requisition_id}",
            "sk": "BASEDON",
            "kind": "based_on",
            "requisition_id": requisition_id,
            "references": [reference.as_dict() for reference in references],
        }
    )


def get_references(requisition_id: str) -> list[BasedOn]:
    """The requisition's `based_on` references, or [] when it has none."""
    item = dynamo.get_item(_table(), {"pk": f"BASEDON#{requisition_id}", "sk": "BASEDON"})
    return [BasedOn(**reference) for reference in item["references"]] if item else []


# Bytes ----------------------------------------------------------------------------------


def _bucket() -> str:
    config = settings()
    config.require("document_bucket_name")
    return config.document_bucket_name


def put_content(document_id: str, content: bytes, content_type: str) -> dict[str, Any]:
    """Put the bytes in the bucket, encrypted with the stack's key; returns what the item
    keeps of them (`object_key`, `object_version`, `size`, `sha256`, `content_type`).

    The same bytes put twice make a second version of the same object (the lifecycle
    expires it); the item names the version it was written with.
    """
    config = settings()
    config.require("bridge_key_arn")
    key = f"{OBJECT_PREFIX}{document_id}"
    answer = aws.s3().put_object(
        Bucket=_bucket(),
        Key=key,
        Body=content,
        ContentType=content_type,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=config.bridge_key_arn,
        BucketKeyEnabled=True,
    )
    return {
        "object_key": key,
        "object_version": answer.get("VersionId") or "",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "content_type": content_type,
    }


def download_link(object_key: str, object_version: str, expires_in_seconds: int) -> str:
    """A presigned GET of the stored version, valid for `expires_in_seconds`."""
    params = {"Bucket": _bucket(), "Key": object_key}
    if object_version:
        params["VersionId"] = object_version
    return aws.s3().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in_seconds)
