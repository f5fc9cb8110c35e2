"""Validation errors as the API answers them: a list of problems, each naming where and what."""

from __future__ import annotations

from typing import Any


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
