"""A requisition (a lab order) as the bridge keeps it: what became of WHOOP's
`lab_requisition.created` (docs/data-model.md#requisition)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RequisitionOutcome(StrEnum):
    """What intake made of an announced requisition."""

    # Fetched and stored; its tests are started. Final: nothing replaces it.
    RECEIVED = "received"
    # WHOOP answered 404 (read lag): fetched again until `retry_until`.
    AWAITING_WHOOP = "awaiting_whoop"
    # Still 404 once the retry bound passed (alarmed).
    NOT_FOUND = "not_found"
    # WHOOP's answer could not be read at all (`problems`; alarmed); nothing was sent to WHOOP.
    INVALID = "invalid"


@dataclass
class RequisitionRecord:
    """One stored requisition.

    `patient` and `appointments` are kept as WHOOP sent them (received only); `problems`
    `[{field, problem}]` names what the bridge could not read; `published` says whether its
    bus message (`requisition.received` or `requisition.unavailable`) went out. Times are
    `times.iso` text, except `created_at`/`updated_at` (WHOOP's, as sent).
    """

    requisition_id: str
    outcome: RequisitionOutcome
    received_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    patient: Any = None
    appointments: list[Any] = field(default_factory=list)
    service_request_ids: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    published: bool = False
    # The running 404 wait: when WHOOP first answered 404, and until when it is asked again.
    not_found_since: str | None = None
    retry_until: str | None = None

    @property
    def is_received(self) -> bool:
        return self.outcome is RequisitionOutcome.RECEIVED

    def is_waiting_since(self, since: str) -> bool:
        """Whether this is the 404 wait that began at `since` (not received meanwhile, not replaced)."""
        return self.outcome is RequisitionOutcome.AWAITING_WHOOP and self.not_found_since == since
