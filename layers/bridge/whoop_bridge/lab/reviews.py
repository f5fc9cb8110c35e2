"""Clinical report reviews: where their details come from.

WHOOP has published only the `clinical_report_review.requested` webhook, not the endpoints
to read a review (docs/whoop.md#clinical-report-reviews). Fetching stays behind this one small interface and is
off until the deployment names the path (`ClinicalReportReviewPath`).
"""

from __future__ import annotations

from typing import Any, Protocol

from whoop_bridge.whoop.http import WhoopNotFound
from whoop_bridge.whoop.partner import PartnerClient


class ReviewSource(Protocol):
    def fetch(self, review_id: str) -> dict[str, Any] | None:
        """The review's details, or None when they cannot be had."""


class NoReviewSource:
    """The default: the review is stored and listed with its id only."""

    def fetch(self, review_id: str) -> dict[str, Any] | None:
        return None


class PartnerApiReviewSource:
    """GET `path` (with `{id}`) under the partner API once WHOOP publishes it."""

    def __init__(self, client: PartnerClient, path: str) -> None:
        if "{id}" not in path:
            raise ValueError("ClinicalReportReviewPath must contain {id}")
        self._client = client
        self._path = path

    def fetch(self, review_id: str) -> dict[str, Any] | None:
        try:
            return self._client.get(self._path.format(id=review_id), "GET clinical report review")
        except WhoopNotFound:
            return None


def review_source(client: PartnerClient, path: str) -> ReviewSource:
    """The source this deployment is configured for."""
    return PartnerApiReviewSource(client, path) if path else NoReviewSource()
