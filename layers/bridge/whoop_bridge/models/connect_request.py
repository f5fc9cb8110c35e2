"""`POST /connections`'s body (pydantic). Apart from `connection.py` so the OAuth callback,
which imports the connection model, does not load pydantic on its cold start."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from whoop_bridge.models.connection import CLIENT_USER_ID


class ConnectRequest(BaseModel):
    """`POST /connections`: who is connecting, and where to send them back."""

    model_config = ConfigDict(extra="forbid")

    client_user_id: str = Field(
        pattern=CLIENT_USER_ID.pattern,
        description="the platform's own id of its user: opaque, URL-safe, not an email address",
    )
    return_url: Optional[str] = Field(
        default=None,
        max_length=2048,
        description="one of AllowedReturnUrls (the query may differ); omit to show a page",
    )
