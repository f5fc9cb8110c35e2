"""A clinical report review as the bridge keeps it (WHOOP's `clinical_report_review.requested`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ReviewStatus(StrEnum):
    # Awaiting the lab; WHOOP has published no route to answer a review yet (docs/whoop.md#clinical-report-reviews).
    PENDING = "pending"


@dataclass
class ReviewRecord:
    """One stored review: `details` as fetched (None when they could not be had), whether
    `clinical_report_review.requested` went out on the bus."""

    review_id: str
    review_status: ReviewStatus = ReviewStatus.PENDING
    received_at: str | None = None
    details: dict[str, Any] | None = None
    published: bool = False

    def view(self) -> dict[str, Any]:
        """As the lab API lists it: `{id, status, received_at, details}`."""
        return {
            "id": self.review_id,
            "status": self.review_status.value,
            "received_at": self.received_at,
            "details": self.details,
        }
