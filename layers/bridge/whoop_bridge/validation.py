"""Validation errors as the API answers them: a list of problems, each naming where and what."""

from __future__ import annotations

import re
from typing import Any

# A date-time whose offset lost its `+`: `2026-01-01T00:00:00 01:00`.
_OFFSET_AS_SPACE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def problems(error: Any) -> list[dict[str, str]]:
    """A validation error (pydantic's, or the event handler's) as a list of problems, each
    naming where and what. Input values are left out: they may be results or patient fields.
    """
    listed = []
    for item in error.errors():
        parts = () if item.get("type") == "json_invalid" else item.get("loc", ())
        location = ".".join(str(part) for part in parts if part != "body") or "body"
        message = str(item.get("msg", "invalid"))
        listed.append({"field": location, "problem": message.removeprefix("Value error, ")})
    return listed


def query_date_time(value: Any) -> Any:
    """A query string's date-time with its offset's `+` put back. API Gateway form-decodes
    the query, so `start=2026-01-01T00:00:00+01:00` sent unescaped reaches the Lambda as
    `2026-01-01T00:00:00 01:00`; that is read as `+01:00`. Anything else is left as given
    (for the date-time validation to accept or refuse)."""
    if isinstance(value, str):
        return _OFFSET_AS_SPACE.sub(r"\1+\2", value)
    return value
