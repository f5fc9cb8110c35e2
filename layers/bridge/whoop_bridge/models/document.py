"""Partner documents as the bridge keeps them: a service request's `based_on` references,
and each referenced document's fetch state and metadata (its bytes live in the document
bucket; docs/data-model.md#partner-document)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class DocumentState(StrEnum):
    PENDING = "pending"  # not fetched yet, or the next attempt is due (`next_attempt_at`)
    STORED = "stored"  # the bytes are in the bucket
    LINKED = "linked"  # WHOOP gave only a `url`
    UNAVAILABLE = "unavailable"  # every attempt failed

    @property
    def is_fetched(self) -> bool:
        """Stored or linked: final, nothing fetches or rewrites it."""
        return self in FETCHED


FETCHED = frozenset({DocumentState.STORED, DocumentState.LINKED})


class FetchOutcome(StrEnum):
    """What one fetch attempt (or a `partner_document.fetch` message) came to."""

    STORED = "stored"
    LINKED = "linked"
    UNAVAILABLE = "unavailable"
    RETRY_SCHEDULED = "retry_scheduled"  # the next attempt is queued
    # The document is fetched already, or the message duplicates an attempt that ran.
    NOTHING_TO_DO = "nothing_to_do"
    # Intake found the document registered already: fetched, or awaiting its retry.
    ALREADY_KNOWN = "already_known"
    MALFORMED = "malformed"  # a fetch message without a usable attempt or document

    @property
    def settled(self) -> bool:
        """Whether it ends the document's story (the queue's idempotency may remember it).
        Any other outcome must not stop the next attempt's message, which has the same key."""
        return self in (FetchOutcome.STORED, FetchOutcome.LINKED, FetchOutcome.UNAVAILABLE)


@dataclass(frozen=True)
class BasedOn:
    """One `based_on` reference of a requisition's service request; `document` says whether
    its `type` names a document (only those are fetched)."""

    service_request_id: str
    type: str
    id: str
    document: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DocumentRecord:
    """One referenced document: where it is referenced from, its fetch state, WHOOP's
    metadata once fetched and, when stored, the bucket object (`object_key`,
    `object_version`, `size` in bytes, `sha256` hex, `content_type`). `last_failure` is a
    reason such as `not_found`, `http_503`, `timeout`, never a body."""

    document_id: str
    state: DocumentState = DocumentState.PENDING
    attempts: int = 0
    reference_types: set[str] = field(default_factory=set)
    requisition_ids: set[str] = field(default_factory=set)
    service_request_ids: set[str] = field(default_factory=set)
    first_seen_at: str | None = None
    last_attempt_at: str | None = None
    next_attempt_at: str | None = None
    last_failure: str | None = None
    unavailable_at: str | None = None
    fetched_at: str | None = None
    # WHOOP's PartnerDocument fields, and the whole of it as JSON text.
    document_type: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    bundle_id: str | None = None
    url: str | None = None
    document_json: str | None = None
    object_key: str | None = None
    object_version: str | None = None
    size: int | None = None
    sha256: str | None = None
    content_type: str | None = None

    @property
    def due_now(self) -> bool:
        """Never fetched, or an attempt stopped before it scheduled the next: fetch now."""
        return self.state is DocumentState.PENDING and not self.next_attempt_at
