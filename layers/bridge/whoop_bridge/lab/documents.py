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
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from requests import JSONDecodeError

from whoop_bridge import times
from whoop_bridge.config import settings
from whoop_bridge.lab.ports import REAL, LabPorts
from whoop_bridge.models.document import BasedOn, DocumentRecord, DocumentState, FetchOutcome
from whoop_bridge.models.lab_order import PartnerDocument, Reference
from whoop_bridge.whoop.http import WhoopError, WhoopNotFound, WhoopTransientError
from whoop_bridge.whoop.partner import PartnerClient

logger = logging.getLogger(__name__)
metrics = Metrics()

# The partner events queue message that asks for the next attempt: {event_type, resource_id, attempt}.
FETCH_EVENT = "partner_document.fetch"
# How long a link the lab API hands out stays valid.
DOWNLOAD_LINK_SECONDS = 300


class DocumentFetchFailed(RuntimeError):
    """The last attempt failed for a transient reason: the message goes to the dead-letter queue."""


def references_of(requisition: dict[str, Any]) -> list[BasedOn]:
    """Every readable `based_on` reference of the requisition's service requests (WHOOP's
    JSON); a malformed entry is skipped and counted."""
    found: list[BasedOn] = []
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
            found.append(BasedOn(service_request["id"], reference.type, reference.id, reference.is_document))
    return found


def receive_references(
    requisition: dict[str, Any], client: PartnerClient, ports: LabPorts = REAL
) -> dict[str, FetchOutcome]:
    """Record a received requisition's `based_on` references and fetch each referenced
    document that was never fetched; returns each document's outcome by id.

    Never raises for a WHOOP failure: that is recorded and retried later. Called again for the
    same requisition (a redelivery), it fetches nothing that was fetched or is awaiting its retry.
    """
    references = references_of(requisition)
    if not references:
        return {}
    ports.documents.put_references(requisition["id"], references)
    by_document: dict[str, list[BasedOn]] = {}
    for reference in references:
        if reference.document:
            by_document.setdefault(reference.id, []).append(reference)
    outcomes: dict[str, FetchOutcome] = {}
    for document_id, refs in by_document.items():
        record = ports.documents.register(
            document_id, refs[0].type, requisition["id"], [ref.service_request_id for ref in refs]
        )
        if record.due_now:
            outcomes[document_id] = fetch(document_id, 1, client, ports)
        else:
            outcomes[document_id] = FetchOutcome.ALREADY_KNOWN
    return outcomes


def handle_fetch_message(event: dict[str, Any], client: PartnerClient, ports: LabPorts = REAL) -> FetchOutcome:
    """A `partner_document.fetch` message from the queue `{event_type, resource_id, attempt}`: the next attempt."""
    attempt = event.get("attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        metrics.add_metric(name="PartnerEventMalformed", unit=MetricUnit.Count, value=1)
        return FetchOutcome.MALFORMED
    if ports.documents.get(event["resource_id"]) is None:
        # Only the bridge sends this message, for a document it registered first.
        metrics.add_metric(name="PartnerEventMalformed", unit=MetricUnit.Count, value=1)
        return FetchOutcome.MALFORMED
    return fetch(event["resource_id"], attempt, client, ports)


def fetch(document_id: str, attempt: int, client: PartnerClient, ports: LabPorts = REAL) -> FetchOutcome:
    """One attempt (`attempt` counts from 1) to fetch a registered document; the outcome.

    Raises `DocumentFetchFailed` only when the last attempt failed for a transient reason,
    so that the queue message ends in the dead-letter queue.
    """
    store = ports.documents
    if store.start_attempt(document_id, attempt) is None:
        return FetchOutcome.NOTHING_TO_DO
    try:
        document = PartnerDocument.model_validate(client.get_document(document_id))
        metadata = _metadata(document)
        if document.url:
            # A link-only document carries no content at WHOOP: keep the link.
            store.mark_linked(document_id, metadata)
            metrics.add_metric(name="DocumentLinked", unit=MetricUnit.Count, value=1)
            return FetchOutcome.LINKED
        content = client.get_document_content(document_id)
        stored = store.put_content(document_id, content, content_type(content))
        store.mark_stored(document_id, metadata, stored)
        metrics.add_metric(name="DocumentStored", unit=MetricUnit.Count, value=1)
        return FetchOutcome.STORED
    except WhoopNotFound:
        # Not found or not this partner's; WHOOP can also lag behind its own order: retried.
        return _failed(document_id, attempt, "not_found", ports, transient=False)
    except WhoopTransientError as error:
        return _failed(
            document_id, attempt, f"http_{error.status}" if error.status else "timeout", ports, transient=True
        )
    except WhoopError as error:
        return _failed(
            document_id, attempt, f"http_{error.status}" if error.status else "refused", ports, transient=False
        )
    except (ValidationError, JSONDecodeError):
        # Not a PartnerDocument, or not JSON at all (a proxy's page with a 200): retried.
        return _failed(document_id, attempt, "invalid_document", ports, transient=False)
    except (BotoCoreError, ClientError) as error:
        # The bucket or the table failed us, not WHOOP: the same attempt later.
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
        logger.warning(
            "document could not be kept",
            extra={"document_id": document_id, "error_type": type(error).__name__, "error_code": code},
        )
        return _failed(document_id, attempt, "storage_error", ports, transient=True)


def _failed(document_id: str, attempt: int, reason: str, ports: LabPorts, *, transient: bool) -> FetchOutcome:
    metrics.add_metric(name="DocumentFetchFailed", unit=MetricUnit.Count, value=1)
    delays = settings().document_retry_delays
    if attempt <= len(delays):
        delay = delays[attempt - 1]
        next_at = times.iso(datetime.now(UTC) + timedelta(seconds=delay))
        # Scheduled before it is recorded: a recorded retry always has its message.
        ports.queue.enqueue(FETCH_EVENT, document_id, delay_seconds=delay, attempt=attempt + 1)
        ports.documents.mark_failed(document_id, reason, next_at)
        logger.warning(
            "document fetch failed; retry scheduled",
            extra={"document_id": document_id, "attempt": attempt, "failure": reason, "delay_seconds": delay},
        )
        return FetchOutcome.RETRY_SCHEDULED
    if ports.documents.mark_unavailable(document_id, reason):
        metrics.add_metric(name="DocumentUnavailable", unit=MetricUnit.Count, value=1)
    logger.error(
        "document unavailable after every attempt",
        extra={"document_id": document_id, "attempt": attempt, "failure": reason},
    )
    if transient:
        raise DocumentFetchFailed(f"document fetch failed {attempt} times ({reason})")
    return FetchOutcome.UNAVAILABLE


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


def content_type(content: bytes) -> str:
    """The media type of `content` by its signature (PDF, PNG, JPEG), else application/octet-stream."""
    return next(
        (media for signature, media in _SIGNATURES if content.startswith(signature)), "application/octet-stream"
    )


# The lab's view ---------------------------------------------------------------------------


def document_view(document_id: str, ports: LabPorts = REAL) -> dict[str, Any] | None:
    """A document as the lab sees it, or None when no order referenced it.

    `{id, document_type, created_at, updated_at, bundle_id, requisition_ids,
    service_request_ids, state, attempts, last_failure, fetched_at, content_type?, size?,
    sha256?, download_url?, download_url_expires_at?, url?}`: a stored document has a
    presigned link valid DOWNLOAD_LINK_SECONDS; a linked one WHOOP's `url`; a pending or
    unavailable one no link.
    """
    record = ports.documents.get(document_id)
    if record is None:
        return None
    view: dict[str, Any] = {
        "id": document_id,
        "document_type": record.document_type,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "bundle_id": record.bundle_id,
        "requisition_ids": sorted(record.requisition_ids),
        "service_request_ids": sorted(record.service_request_ids),
        "state": record.state.value,
        "attempts": record.attempts,
        "last_failure": record.last_failure,
        "fetched_at": record.fetched_at,
    }
    if record.state is DocumentState.STORED:
        expires_at = datetime.now(UTC) + timedelta(seconds=DOWNLOAD_LINK_SECONDS)
        view.update(
            content_type=record.content_type,
            size=record.size,
            sha256=record.sha256,
            download_url=ports.documents.download_link(
                record.object_key or "", record.object_version or "", DOWNLOAD_LINK_SECONDS
            ),
            download_url_expires_at=times.iso(expires_at, "seconds"),
        )
    elif record.state is DocumentState.LINKED:
        view["url"] = record.url
    return view


def references_by_service_request(requisition_id: str, ports: LabPorts = REAL) -> dict[str, list[dict[str, Any]]]:
    """Each service request's `based_on` references, `{type, id, document, state?}`; a
    document's `state` is its fetch state (no content, no link)."""
    references = ports.documents.get_references(requisition_id)
    records: dict[str, DocumentRecord] = ports.documents.get_many([ref.id for ref in references if ref.document])
    listed: dict[str, list[dict[str, Any]]] = {}
    for reference in references:
        entry: dict[str, Any] = {"type": reference.type, "id": reference.id, "document": reference.document}
        if reference.document:
            record = records.get(reference.id)
            entry["state"] = (record.state if record else DocumentState.PENDING).value
        listed.setdefault(reference.service_request_id, []).append(entry)
    return listed
