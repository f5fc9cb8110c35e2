"""Page tokens of the lab listings: only a key the listing's own query could return is
used as DynamoDB's ExclusiveStartKey (anything else would be a ValidationException, a 5xx)."""

from __future__ import annotations

import pytest

from whoop_bridge.store import dynamo
from whoop_bridge.store.requisition_store import LISTING as REQUISITION_LISTING
from whoop_bridge.store.review_store import PENDING as PENDING_REVIEWS

ITEM_KEYS = {REQUISITION_LISTING: ("REQ#", "REQ"), PENDING_REVIEWS: ("REVIEW#", "REVIEW")}


def is_listing_key(listing: str, key) -> bool:
    return dynamo.is_index_key(key, listing, ITEM_KEYS[listing])


REQ = "0f8b6c2e-4d1a-4c3b-9a7e-2b5d8e1f3a64"
GOOD = {"pk": f"REQ#{REQ}", "sk": "REQ", "gsi1pk": "REQUISITION", "gsi1sk": f"2026-11-30T12:00:00.000Z#{REQ}"}


def test_a_key_the_requisition_listing_returned_is_accepted():
    assert is_listing_key(REQUISITION_LISTING, GOOD)


@pytest.mark.parametrize(
    "key",
    [
        {},
        {"pk": "", "sk": "", "gsi1pk": "", "gsi1sk": ""},
        {**GOOD, "extra": "x"},
        {k: v for k, v in GOOD.items() if k != "gsi1sk"},
        {**GOOD, "gsi1pk": "REVIEW#pending"},
        {**GOOD, "sk": "SR"},
        {**GOOD, "pk": "SR#abc"},
        {**GOOD, "gsi1sk": "2026-11-30T12:00:00.000Z#another"},
        {**GOOD, "gsi1sk": 5},
        # DynamoDB refuses a sort key over 1,024 bytes or a partition key over 2,048 (a 5xx).
        {**GOOD, "pk": "REQ#" + "x" * 2048, "gsi1sk": "2026-11-30T12:00:00.000Z#" + "x" * 2048},
        {**GOOD, "gsi1sk": "9" * 1000 + f"#{REQ}"},
        ["pk", "sk"],
        "REQ#x",
    ],
)
def test_anything_else_is_refused(key):
    assert not is_listing_key(REQUISITION_LISTING, key)


def test_a_requisition_key_is_not_a_review_key():
    assert not is_listing_key(PENDING_REVIEWS, GOOD)
    review = {"pk": "REVIEW#r-1", "sk": "REVIEW", "gsi1pk": PENDING_REVIEWS, "gsi1sk": "2026-11-30T12:00:00.000Z#r-1"}
    assert is_listing_key(PENDING_REVIEWS, review)
