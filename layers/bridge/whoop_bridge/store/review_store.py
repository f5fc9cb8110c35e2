"""Clinical report reviews in LabTable: `REVIEW#<id>` / `REVIEW`, listed by the index as
`REVIEW#pending` / `<received_at>#<id>` (docs/data-model.md#clinical-report-review)."""

from __future__ import annotations

import json
from typing import Any

from whoop_bridge import times
from whoop_bridge.models.review import ReviewRecord, ReviewStatus
from whoop_bridge.store import dynamo

PENDING = "REVIEW#pending"
_ITEM_KEY = ("REVIEW#", "REVIEW")


def _table() -> Any:
    # LabTable (docs/data-model.md#clinical-report-review), by the setting `lab_table_name`.
    return dynamo.table("lab_table_name")


def _key(review_id: str) -> dict[str, str]:
    return {"pk": f"REVIEW#{review_id}", "sk": "REVIEW"}


def put_if_new(review_id: str, details: dict[str, Any] | None) -> bool:
    """Store a pending review once, with its `details` when they could be fetched; False
    when it was already stored."""
    received_at = times.now_iso()
    item: dict[str, Any] = {
        **_key(review_id),
        "kind": "clinical_report_review",
        "review_id": review_id,
        "review_status": ReviewStatus.PENDING.value,
        "received_at": received_at,
        "published": False,
        "gsi1pk": PENDING,
        "gsi1sk": f"{received_at}#{review_id}",
    }
    if details is not None:
        item["details_json"] = json.dumps(details)
    return dynamo.put_if_new(_table(), item)


def get(review_id: str) -> ReviewRecord | None:
    """The stored review, or None."""
    item = dynamo.get_item(_table(), _key(review_id))
    return _record(item) if item else None


def mark_published(review_id: str) -> None:
    """Note that `clinical_report_review.requested` went out."""
    _table().update_item(
        Key=_key(review_id),
        UpdateExpression="SET published = :yes",
        ExpressionAttributeValues={":yes": True},
    )


def list_pending(limit: int, next_token: str | None) -> tuple[list[ReviewRecord], str | None]:
    """Pending reviews, oldest first, and the `next_token` for the next page;
    InvalidPageToken for a token this listing did not issue."""
    items, token = dynamo.index_page(_table(), PENDING, _ITEM_KEY, limit, next_token, "pending reviews")
    return [_record(item) for item in items], token


def _record(item: dict[str, Any]) -> ReviewRecord:
    return ReviewRecord(
        review_id=item["review_id"],
        review_status=ReviewStatus(item["review_status"]),
        received_at=item.get("received_at"),
        details=json.loads(item["details_json"]) if item.get("details_json") else None,
        published=bool(item.get("published")),
    )
