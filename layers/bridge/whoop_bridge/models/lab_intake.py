"""What the lab side's queue consumer makes of each partner message (logged, and kept by
the idempotency layer when settled)."""

from __future__ import annotations

from enum import StrEnum


class IntakeOutcome(StrEnum):
    RECEIVED = "received"  # the requisition is stored and its tests started
    REVIEW_STORED = "review_stored"  # a clinical report review is stored and published
    # WHOOP answered 404: fetched again later (read lag), or joined a running wait.
    RETRYING = "retrying"
    # A delayed retry that no longer applies: received meanwhile, or an older wait.
    SUPERSEDED = "superseded"
    NOT_FOUND = "not_found"  # still 404 when the retry bound passed
    INVALID = "invalid"  # the requisition could not be read
    MALFORMED = "malformed"  # not a partner message the bridge can use
    IGNORED = "ignored"  # an event type the bridge does not handle
