"""A member's single WHOOP items the bridge keeps: the basic profile and the body
measurement, with the fields it keeps of each (WHOOP's own names)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

PROFILE_FIELDS = ("user_id", "email", "first_name", "last_name")
BODY_MEASUREMENT_FIELDS = ("height_meter", "weight_kilogram", "max_heart_rate")


class MemberItem(StrEnum):
    """The kinds of single item (their sort keys in MemberTable)."""

    PROFILE = "PROFILE"
    BODY_MEASUREMENT = "BODY_MEASUREMENT"


FIELDS = {MemberItem.PROFILE: PROFILE_FIELDS, MemberItem.BODY_MEASUREMENT: BODY_MEASUREMENT_FIELDS}


def kept(kind: MemberItem, whoop_values: dict[str, Any]) -> dict[str, Any]:
    """The fields the bridge keeps of WHOOP's answer for `kind` (None for an absent one)."""
    return {key: whoop_values.get(key) for key in FIELDS[kind]}


def profile_view(stored: dict[str, Any]) -> dict[str, Any]:
    """`GET /members/{id}/profile`: the profile's fields and when it was read."""
    return kept(MemberItem.PROFILE, stored) | {"updated_at": stored.get("updated_at")}
