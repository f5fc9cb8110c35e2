"""Times as the bridge keeps and sends them: UTC ISO 8601 with `Z`.

Stored times use milliseconds, so two of them compare correctly as text (DynamoDB sort keys
and conditions compare strings). WHOOP's own times are ISO 8601 with `Z` too.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime, timespec: str = "milliseconds") -> str:
    """`moment` in UTC as ISO 8601 with `Z`, e.g. `2026-12-01T01:20:15.123Z`.

    A naive `moment` is taken as UTC. `timespec` is `datetime.isoformat`'s ("seconds" for
    times shown to people or sent to WHOOP with whole seconds).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def now_iso(timespec: str = "milliseconds") -> str:
    """UTC now as `iso` writes it."""
    return iso(datetime.now(UTC), timespec)


def parse(text: str) -> datetime:
    """An ISO 8601 time with `Z` or an offset as an aware datetime; ValueError otherwise."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment
