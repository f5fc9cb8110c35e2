"""Partner documents: what a service request is `based_on`, fetched once and kept for the lab.

WHOOP's ServiceRequest carries `based_on`, a list of FHIR references `{type, id}`. A
reference whose `type` names a document (case-insensitive: `DocumentReference`,
`Document`, `PartnerDocument`, `document_reference`, ...) is read with WHOOP's document
routes: `GET /v2/partner/document/{id}` (the PartnerDocument: `id`, `document_type`, `url?`,
`created_at`, `updated_at`, `bundle_id?`) and, unless the document is only a link (`url`),
`GET /v2/partner/document/{id}/content` (its raw bytes). Every other reference is recorded
with its service request and not fetched: WHOOP publishes no route to read it.

Documents never hold up an order: intake stores and starts the order's tests first, then
calls `receive_references`. A document is fetched once when its requisition arrives; when
that fails (404, 5xx, a timeout) the failure is recorded (`pending`, attempts, the reason;
never a body) and a `partner_document.fetch` message goes back on the partner events queue
with a delay (DOCUMENT_RETRY_DELAYS). After the last delay the document is `unavailable`
(metric `DocumentUnavailable`, alarmed); if the last failure was transient the message is
also left to fail into the dead-letter queue (alarmed), where a redrive tries again.
A stored or linked document is never fetched again.

States: `pending` (not fetched yet), `stored` (bytes in the bucket), `linked` (WHOOP gave
only a `url`), `unavailable` (every attempt failed).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from requests import JSONDecodeError

from whoop_bridge.config import settings
from whoop_bridge.lab import partner_queue
from whoop_bridge.store import document_store
from whoop_bridge.webhooks import MAX_RESOURCE_ID_LENGTH
from whoop_bridge.whoop.http import WhoopError, WhoopNotFound, WhoopTransientError
from whoop_bridge.whoop.partner import PartnerClient

logger = logging.getLogger(__name__)
metrics = Metrics()

# The partner events queue message that asks for the next attempt: {event_type, resource_id, attempt}.
FETCH_EVENT = "partner_document.fetch"
# Outcomes besides the states: the next attempt is queued, or there was nothing to do (the
# document is fetched already, or the message is a duplicate of an attempt that ran).
RETRY_SCHEDULED = "retry_scheduled"
NOTHING_TO_DO = "nothing_to_do"
# Only these end a document's story; the queue's idempotency may remember them. Any other
# outcome must not stop the next attempt's message, which has the same key.
SETTLED_OUTCOMES = frozenset({"stored", "linked", "unavailable"})
# How long a link the lab API hands out stays valid.
DOWNLOAD_LINK_SECONDS = 300


class DocumentState(StrEnum):
    PENDING = "pending"
    STORED = "stored"
    LINKED = "linked"
    UNAVAILABLE = "unavailable"


class DocumentFetchFailed(RuntimeError):
    """The last attempt failed for a transient reason: the message goes to the dead-letter queue."""


class Reference(BaseModel):
    """One FHIR reference of `based_on`; WHOOP may add fields."""

    model_config = ConfigDict(extra="allow")

    type: str
    # WHOOP's ids are uuids; an empty or longer one could not be kept (a DynamoDB or S3 key).
    id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_RESOURCE_ID_LENGTH)]

    @property
    def is_document(self) -> bool:
        return "document" in self.type.lower()


class PartnerDocument(BaseModel):
    """WHOOP's PartnerDocument. Unknown fields are kept (in `document_json`)."""

    model_config = ConfigDict(extra="allow")

    id: str
    document_type: str
    url: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    bundle_id: str | None = None


def references_of(requisition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every readable `based_on` reference of the requisition's service requests, as
    `{service_request_id, type, id, document}`; a malformed entry is skipped and counted."""
    found: list[dict[str, Any]] = []
    for service_request in requisition.get("service_requests") or []:
        if not isinstance(service_request, dict) or not isinstance(service_request.get("id"), str):
            continue
        based_on = service_request.get("based_on")
        for entry in based_on if isinstance(based_on, list) else []:
            try:
                reference = Reference.model_validate(entry)
            except ValidationError:
                metrics.add_metric(name="DocumentReferenceMalformed", unit=MetricUnit.Count, value=1)
                continue
            found.append(
                {
                    "service_request_id": service_request["id"],
                    "type": reference.type,
                    "id": reference.id,
                    "document": reference.is_document,
                }
            )
    return found


def receive_references(requisition: dict[str, Any], client: PartnerClient) -> dict[str, str]:
    """Record a received requisition's `based_on` references and fetch each referenced
    document that was never fetched; returns each document's outcome by id.

    Never raises for a WHOOP failure: that is recorded and retried later. Called again for the
    same requisition (a redelivery), it fetches nothing that was fetched or is awaiting its retry.
    """
    references = references_of(requisition)
    if not references:
        return {}
    document_store.put_references(requisition["id"], references)
    by_document: dict[str, list[dict[str, Any]]] = {}
    for reference in references:
        if reference["document"]:
            by_document.setdefault(reference["id"], []).append(reference)
    outcomes: dict[str, str] = {}
    for document_id, refs in by_document.items():
        item = document_store.register(
            document_id, refs[0]["type"], requisition["id"], [ref["service_request_id"] for ref in refs]
        )
        # Never fetched, or an attempt stopped before it scheduled the next: fetch now.
        if item["state"] == DocumentState.PENDING and not item.get("next_attempt_at"):
            outcomes[document_id] = fetch(document_id, 1, client)
        else:
            outcomes[document_id] = "already_known"
    return outcomes


def handle_fetch_message(event: dict[str, Any], client: PartnerClient) -> str:
    """A `partner_document.fetch` message from the queue: the next attempt."""
    attempt = event.get("attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        metrics.add_metric(name="PartnerEventMalformed", unit=MetricUnit.Count, value=1)
        return "malformed"
    if document_store.get_document(event["resource_id"]) is None:
        # Only the bridge sends this message, for a document it registered first.
        metrics.add_metric(name="PartnerEventMalformed", unit=MetricUnit.Count, value=1)
        return "malformed"
    return fetch(event["resource_id"], attempt, client)


def fetch(document_id: str, attempt: int, client: PartnerClient) -> str:
    """One attempt (`attempt` counts from 1) to fetch a registered document; the outcome.

    Raises `DocumentFetchFailed` only when the last attempt failed for a transient reason,
    so that the queue message ends in the dead-letter queue.
    """
    if document_store.start_attempt(document_id, attempt) is None:
        return NOTHING_TO_DO
    try:
        document = PartnerDocument.model_validate(client.get_document(document_id))
        metadata = _metadata(document)
        if document.url:
            # A link-only document carries no content at WHOOP: keep the link.
            document_store.mark_linked(document_id, metadata)
            metrics.add_metric(name="DocumentLinked", unit=MetricUnit.Count, value=1)
            return DocumentState.LINKED.value
        content = client.get_document_content(document_id)
        stored = document_store.put_content(document_id, content, _content_type(content))
        document_store.mark_stored(document_id, metadata, stored)
        metrics.add_metric(name="DocumentStored", unit=MetricUnit.Count, value=1)
        return DocumentState.STORED.value
    except WhoopNotFound:
        # Not found or not this partner's; WHOOP can also lag behind its own order: retried.
        return _failed(document_id, attempt, "not_found", transient=False)
    except WhoopTransientError as error:
        return _failed(document_id, attempt, f"http_{error.status}" if error.status else "timeout", transient=True)
    except WhoopError as error:
        return _failed(document_id, attempt, f"http_{error.status}" if error.status else "refused", transient=False)
    except (ValidationError, JSONDecodeError):
        # Not a PartnerDocument, or not JSON at all (a proxy's page with a 200): retried.
        return _failed(document_id, attempt, "invalid_document", transient=False)
    except (BotoCoreError, ClientError) as error:
        # The bucket or the table failed us, not WHOOP: the same attempt later.
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
        logger.warning(
            "document could not be kept",
            extra={"document_id": document_id, "error_type": type(error).__name__, "error_code": code},
        )
        return _failed(document_id, attempt, "storage_error", transient=True)


def _failed(document_id: str, attempt: int, reason: str, *, transient: bool) -> str:
    metrics.add_metric(name="DocumentFetchFailed", unit=MetricUnit.Count, value=1)
    delays = settings().document_retry_delays
    if attempt <= len(delays):
        delay = delays[attempt - 1]
        next_at = (
            (datetime.now(UTC) + timedelta(seconds=delay)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        # Scheduled before it is recorded: a recorded retry always has its message.
        partner_queue.enqueue(FETCH_EVENT, document_id, delay_seconds=delay, attempt=attempt + 1)
        document_store.mark_failed(document_id, reason, next_at)
        logger.warning(
            "document fetch failed; retry scheduled",
            extra={"document_id": document_id, "attempt": attempt, "failure": reason, "delay_seconds": delay},
        )
        return RETRY_SCHEDULED
    if document_store.mark_unavailable(document_id, reason):
        metrics.add_metric(name="DocumentUnavailable", unit=MetricUnit.Count, value=1)
    logger.error(
        "document unavailable after every attempt",
        extra={"document_id": document_id, "attempt": attempt, "failure": reason},
    )
    if transient:
        raise DocumentFetchFailed(f"document fetch failed {attempt} times ({reason})")
    return DocumentState.UNAVAILABLE.value


def _metadata(document: PartnerDocument) -> dict[str, Any]:
    fields = {
        "document_type": document.document_type,
        "created_at": document.created_at,
        "updated_at": document.updated_at,
        "bundle_id": document.bundle_id,
        "url": document.url,
        "document_json": document.model_dump_json(exclude_none=True),
    }
    return {name: value for name, value in fields.items() if value is not None}


# WHOOP does not say which media types documents have: known signatures, else bytes.
_SIGNATURES = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def _content_type(content: bytes) -> str:
    return next(
        (media for signature, media in _SIGNATURES if content.startswith(signature)), "application/octet-stream"
    )


# The lab's view ---------------------------------------------------------------------------


def document_view(document_id: str) -> dict[str, Any] | None:
    """A document as the lab sees it, or None when no order referenced it.

    `{id, document_type, created_at, updated_at, bundle_id, requisition_ids,
    service_request_ids, state, attempts, last_failure, content_type?, size?, sha256?,
    download_url?, download_url_expires_at?, url?}`: a stored document has a presigned link
    valid DOWNLOAD_LINK_SECONDS; a linked one WHOOP's `url`; a pending or unavailable one no link.
    """
    item = document_store.get_document(document_id)
    if item is None:
        return None
    view: dict[str, Any] = {
        "id": document_id,
        "document_type": item.get("document_type"),
        "created_at": item.get("created_at"),
        "updated_at": item.get("updated_at"),
        "bundle_id": item.get("bundle_id"),
        "requisition_ids": sorted(item.get("requisition_ids") or []),
        "service_request_ids": sorted(item.get("service_request_ids") or []),
        "state": item["state"],
        "attempts": item.get("attempts", 0),
        "last_failure": item.get("last_failure"),
        "fetched_at": item.get("fetched_at"),
    }
    if item["state"] == DocumentState.STORED:
        expires_at = datetime.now(UTC) + timedelta(seconds=DOWNLOAD_LINK_SECONDS)
        view.update(
            content_type=item.get("content_type"),
            size=item.get("size"),
            sha256=item.get("sha256"),
            download_url=document_store.download_link(
                item["object_key"], item.get("object_version", ""), DOWNLOAD_LINK_SECONDS
            ),
            download_url_expires_at=expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        )
    elif item["state"] == DocumentState.LINKED:
        view["url"] = item.get("url")
    return view


def references_by_service_request(requisition_id: str) -> dict[str, list[dict[str, Any]]]:
    """Each service request's `based_on` references, `{type, id, document, state?}`; a
    document's `state` is its fetch state (no content, no link)."""
    references = document_store.get_references(requisition_id)
    documents = document_store.get_documents([ref["id"] for ref in references if ref.get("document")])
    listed: dict[str, list[dict[str, Any]]] = {}
    for reference in references:
        entry: dict[str, Any] = {
            "type": reference["type"],
            "id": reference["id"],
            "document": bool(reference.get("document")),
        }
        if entry["document"]:
            entry["state"] = documents.get(reference["id"], {}).get("state", DocumentState.PENDING.value)
        listed.setdefault(reference["service_request_id"], []).append(entry)
    return listed
