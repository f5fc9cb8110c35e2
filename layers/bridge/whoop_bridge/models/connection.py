"""A member's connection to WHOOP: its status, its sealed token pair and the rules on them.

A connection is one per platform user (`client_user_id`); it holds the WHOOP account
(`user_id`) the member consented with, the scopes granted, and the token pair sealed with
KMS (`sealed_tokens`; see `members/vault.py`). `token_version` counts the pair's rotations:
every token write is conditional on it, so a write based on a stale read fails. See
docs/data-model.md#connection for how it is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from whoop_bridge.times import iso

# The platform's id of its user: opaque, URL-safe, never an email address.
CLIENT_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class ConnectionStatus(StrEnum):
    """Where a connection stands (stored and answered as these words)."""

    CONNECTED = "connected"  # with a refresh token: the bridge keeps it fresh
    OFFLINE_NOT_GRANTED = "offline_not_granted"  # no refresh token: usable until it expires
    REAUTHORIZATION_REQUIRED = "reauthorization_required"  # WHOOP no longer honours the pair
    DISCONNECTED = "disconnected"


class StatusReason(StrEnum):
    """Why a connection left `connected` (the `status_reason` attribute)."""

    MOVED_TO_ANOTHER_MEMBER = "moved_to_another_member"
    REFRESH_TOKEN_REJECTED = "refresh_token_rejected"
    ACCESS_TOKEN_EXPIRED_WITHOUT_OFFLINE = "access_token_expired_without_offline"


# MemberTable's status index (gsi2; docs/data-model.md#status-index): a member's listed item
# (its connection, or its last connect attempt while it never connected) by status word.
STATUS_INDEX = ("gsi2", "gsi2pk", "gsi2sk")


def status_index_keys(status: str, client_user_id: str) -> dict[str, str]:
    """The status-index attributes of a member's listed item (both stores that write one)."""
    return {"gsi2pk": status_partition(status), "gsi2sk": f"MEMBER#{client_user_id}"}


def status_partition(status: str) -> str:
    return f"CONNECTION_STATUS#{status}"


# The statuses whose tokens may be used (and refreshed, when there is a refresh token).
USABLE = frozenset({ConnectionStatus.CONNECTED, ConnectionStatus.OFFLINE_NOT_GRANTED})
# What `GET /connections/{id}` shows of a connection, besides the token expiry and backfill.
STATUS_FIELDS = (
    "client_user_id",
    "status",
    "status_reason",
    "user_id",
    "scopes",
    "offline_access",
    "connected_at",
    "last_refreshed_at",
    "disconnected_at",
)


@dataclass
class Connection:
    """One member's connection as stored. Times are UTC ISO 8601 text (`times.iso`) except
    `access_expires_at` (epoch seconds) and `refresh_lease_until` (epoch seconds, float)."""

    client_user_id: str
    status: ConnectionStatus
    token_version: int = 1
    user_id: int | None = None
    scopes: list[str] | None = None
    offline_access: bool | None = None
    connected_at: str | None = None
    last_refreshed_at: str | None = None
    access_expires_at: int | None = None
    sealed_tokens: bytes | None = field(default=None, repr=False)
    status_reason: str | None = None
    disconnected_at: str | None = None
    reauthorization_required_at: str | None = None
    revoke_pending: bool | None = None
    refresh_lease_owner: str | None = None
    refresh_lease_until: float | None = None

    @classmethod
    def consented(
        cls,
        client_user_id: str,
        user_id: int,
        *,
        scopes: list[str],
        refreshable: bool,
        now: str,
        expires_at: int,
        sealed_tokens: bytes,
        previous: Connection | None,
    ) -> Connection:
        """A new connection after WHOOP's consent. Its `token_version` continues the previous
        connection's count, so a stale write against the old pair still fails."""
        return cls(
            client_user_id=client_user_id,
            user_id=user_id,
            status=ConnectionStatus.CONNECTED if refreshable else ConnectionStatus.OFFLINE_NOT_GRANTED,
            scopes=list(scopes),
            offline_access=refreshable,
            connected_at=now,
            last_refreshed_at=now,
            access_expires_at=expires_at,
            token_version=previous.token_version + 1 if previous else 1,
            sealed_tokens=sealed_tokens,
        )

    @property
    def disconnected(self) -> bool:
        return self.status == ConnectionStatus.DISCONNECTED

    @property
    def usable(self) -> bool:
        """Its tokens may be handed out (or refreshed): a usable status and a sealed pair."""
        return self.status in USABLE and bool(self.sealed_tokens)

    @property
    def refreshable(self) -> bool:
        """Kept fresh by the bridge (listed by token expiry): offline access was granted."""
        return self.status == ConnectionStatus.CONNECTED and bool(self.offline_access)

    def valid_for(self, now: float) -> float:
        """Seconds its access token is still valid for (negative once expired)."""
        return (self.access_expires_at or 0) - now

    def lease_lapsed(self, now: float) -> bool:
        """No caller holds the refresh lease (never taken, given back, or lapsed)."""
        return (self.refresh_lease_until or 0) < now

    def status_view(self, now: float) -> dict[str, Any]:
        """What the platform may know (`GET /connections/{id}`): STATUS_FIELDS and the access
        token's expiry; never a token. An offline connection whose token expired shows
        what the next token request would find."""
        view: dict[str, Any] = {key: getattr(self, key) for key in STATUS_FIELDS}
        live = self.sealed_tokens and not self.disconnected
        expires = iso(datetime.fromtimestamp(self.access_expires_at or 0, UTC), "seconds")
        view["access_token_expires_at"] = expires if live else None
        if self.status == ConnectionStatus.OFFLINE_NOT_GRANTED and (self.access_expires_at or 0) <= now:
            view.update(
                status=ConnectionStatus.REAUTHORIZATION_REQUIRED,
                status_reason=StatusReason.ACCESS_TOKEN_EXPIRED_WITHOUT_OFFLINE,
            )
        return view
