"""A connect link's OAuth `state` and the outcome of WHOOP's callback for it.

A state is single use and lives 10 minutes; only its SHA-256 is stored (see
`members/connections.py`). Once taken, it keeps the callback's outcome (a status word,
never a token or a code) for a while, so a repeat of the callback gets the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class CallbackStatus(StrEnum):
    """Where WHOOP's callback left the member: the `status` added to the return URL, or
    the page shown when the link had none."""

    CONNECTED = "connected"
    OFFLINE_NOT_GRANTED = "offline_not_granted"
    DENIED = "denied"  # the member declined on WHOOP's page
    USER_LIMIT = "user_limit"  # the WHOOP app's member limit is reached
    SCOPES_MISSING = "scopes_missing"  # the member did not grant read:profile
    ERROR = "error"
    LINK_EXPIRED = "link_expired"  # a known link used after its 10 minutes
    INVALID_STATE = "invalid_state"  # unknown state, or one used long ago
    NOT_CONFIGURED = "not_configured"  # the member app's credentials are placeholders


@dataclass
class OAuthState:
    """A stored state: the link it was made for, when it expires (epoch seconds), and once
    taken, when (`taken_at`) and with which outcome, kept until `outcome_until`."""

    client_user_id: str
    redirect_uri: str
    created_at: str | None = None
    return_url: str | None = None
    expires_at: int = 0
    taken_at: int | None = None
    outcome: CallbackStatus | None = None
    outcome_until: int | None = None

    @property
    def taken(self) -> bool:
        return self.taken_at is not None

    def outcome_current(self, now: float) -> bool:
        """The outcome is stored and still answered to a repeat."""
        return self.outcome is not None and (self.outcome_until or 0) > now


@dataclass(frozen=True)
class CallbackOutcome:
    """Where the member goes after the callback. `return_url` None: show a page instead.
    `repeated`: the answer to a repeat of a callback that already completed. `reason`: the
    short word recorded with the attempt (models/connect_attempt.py), never WHOOP's text."""

    status: CallbackStatus
    return_url: str | None = None
    client_user_id: str | None = None
    repeated: bool = False
    reason: str | None = None

    @property
    def location(self) -> str | None:
        """The return URL with `status` added to its query, or None."""
        if self.return_url is None:
            return None
        parts = urlsplit(self.return_url)
        query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "status"]
        return urlunsplit(parts._replace(query=urlencode([*query, ("status", str(self.status))])))


INVALID_STATE = CallbackOutcome(CallbackStatus.INVALID_STATE)
