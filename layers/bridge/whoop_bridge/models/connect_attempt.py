"""A member's last connect attempt: what the OAuth callback ended with, so the platform
sees every outcome (`GET /connections/{id}`'s `last_attempt`, `member.connection_failed`).

`outcome` is the `status` word the return URL got (models/oauth_state.py CallbackStatus);
`reason` a short word: WHOOP's OAuth error code when WHOOP gave one of RFC 6749's (e.g.
`access_denied`, `invalid_grant`; docs/whoop.md#oauth), else the bridge's own word. Never
WHOOP's free text. See docs/data-model.md#connect-attempt for how it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from whoop_bridge.models.oauth_state import CallbackStatus

# The OAuth 2.0 error codes (RFC 6749 4.1.2.1 and 5.2) kept as a reason; any other code
# WHOOP sends is recorded as UNRECOGNISED_ERROR.
OAUTH_ERROR_CODES = frozenset(
    {
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "invalid_client",
        "invalid_grant",
        "unsupported_grant_type",
        "request_forbidden",
    }
)


class AttemptReason(StrEnum):
    """The bridge's own reasons, where WHOOP gave no error code."""

    UNRECOGNISED_ERROR = "unrecognised_error"  # WHOOP sent a code outside OAUTH_ERROR_CODES
    NO_CODE = "no_code"  # the callback carried neither a code nor an error
    WHOOP_UNAVAILABLE = "whoop_unavailable"  # the token endpoint timed out or answered 5xx/429
    WHOOP_REFUSED = "whoop_refused"  # the token endpoint refused without a known code
    PROFILE_UNREADABLE = "profile_unreadable"  # WHOOP's profile could not be read after consent
    PROFILE_SCOPE_NOT_GRANTED = "read_profile_not_granted"
    NOT_STORED = "connection_not_stored"  # the bridge could not store it (the grant was revoked)
    LINK_EXPIRED = "link_expired"
    NOT_CONFIGURED = "not_configured"
    SCOPES_PARTLY_GRANTED = "scopes_partly_granted"  # connected, without some data scopes


def oauth_reason(code: str | None) -> str:
    """WHOOP's error code as a reason: itself when a known OAuth code, else a generic word."""
    return code if code in OAUTH_ERROR_CODES else str(AttemptReason.UNRECOGNISED_ERROR)


# Outcomes that leave the member connected.
SUCCEEDED = frozenset({CallbackStatus.CONNECTED, CallbackStatus.OFFLINE_NOT_GRANTED})
# What `GET /connections` lists for members who tried but never connected.
NOT_CONNECTED = "not_connected"


@dataclass(frozen=True)
class ConnectAttempt:
    """One member's last connect attempt. `at` is UTC ISO 8601 (`times.now_iso`)."""

    client_user_id: str
    outcome: CallbackStatus
    reason: str | None
    at: str

    @property
    def failed(self) -> bool:
        return self.outcome not in SUCCEEDED

    def view(self) -> dict[str, str | None]:
        """`last_attempt` as the member API shows it."""
        return {"outcome": str(self.outcome), "reason": self.reason, "at": self.at}

    def failure_detail(self) -> dict[str, str | None]:
        """`member.connection_failed`'s detail: ids, words and the time; no token, no WHOOP text."""
        return {"client_user_id": self.client_user_id, **self.view()}
