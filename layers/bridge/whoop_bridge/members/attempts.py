"""Every connect attempt's outcome reaches the platform: the OAuth callback's outcome for a
known link becomes the member's last attempt (`GET /connections/{id}`'s `last_attempt`), and
a failure is announced as `member.connection_failed` (stored with the attempt in the member
outbox, then published: at least once). A failed attempt never writes the connection, so a
connected member who retries and declines stays connected. Each attempt is counted
(`MemberConnectAttempts`, dimension `outcome`).
"""

from __future__ import annotations

import logging

from whoop_bridge import emf
from whoop_bridge.members import outbox
from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.models.connect_attempt import AttemptReason, ConnectAttempt, oauth_reason
from whoop_bridge.models.oauth_state import CallbackOutcome
from whoop_bridge.models.outbox_message import MemberMessage, OutboxMessage
from whoop_bridge.times import now_iso
from whoop_bridge.whoop.http import WhoopError, WhoopTransientError, WhoopUnauthorized
from whoop_bridge.whoop.member import InvalidGrant, UserLimitReached

logger = logging.getLogger(__name__)


def exchange_reason(error: WhoopError) -> str:
    """Why WHOOP's token endpoint gave no grant: its OAuth code where the client read one
    (`invalid_grant`, `invalid_client`, the user limit's code as `oauth_reason` keeps it),
    else `whoop_unavailable` (timeouts, 429, 5xx) or `whoop_refused`."""
    if isinstance(error, UserLimitReached) and error.error_code:
        return oauth_reason(error.error_code)
    if isinstance(error, InvalidGrant):
        return "invalid_grant"
    if isinstance(error, WhoopUnauthorized):
        return "invalid_client"
    if isinstance(error, WhoopTransientError):
        return AttemptReason.WHOOP_UNAVAILABLE
    return AttemptReason.WHOOP_REFUSED


def scopes_reason(granted: tuple[str, ...], asked: tuple[str, ...]) -> str | None:
    """A connection's reason: `scopes_partly_granted` when WHOOP named the granted scopes
    and some data scope the link asked for is not among them (`offline` has its own status)."""
    missing = [scope for scope in asked if scope != "offline" and scope not in granted]
    return AttemptReason.SCOPES_PARTLY_GRANTED if granted and missing else None


def record(result: CallbackOutcome, ports: MemberPorts = PORTS) -> ConnectAttempt | None:
    """Keep the outcome of a callback for a known link as the member's last attempt, with
    `member.connection_failed` when it failed. None (nothing kept) for an unknown link. A
    failure to keep it is logged and counted (`MemberConnectAttemptNotRecorded`, with an
    alarm), never raised: the member is answered either way."""
    if result.client_user_id is None or result.repeated:
        return None
    attempt = ConnectAttempt(result.client_user_id, result.status, result.reason, now_iso())
    messages = [OutboxMessage(MemberMessage.CONNECTION_FAILED, attempt.failure_detail())] if attempt.failed else []
    try:
        ports.attempts.record(attempt, messages)
    except Exception as error:  # noqa: BLE001 - the member's answer does not depend on it
        logger.error(
            "connect attempt not recorded",
            extra={
                "client_user_id": attempt.client_user_id,
                "outcome": attempt.outcome,
                "error_type": type(error).__name__,
            },
        )
        # The platform will not hear of this attempt: the operator must (an alarm).
        emf.put("MemberConnectAttemptNotRecorded", {})
        return None
    outbox.publish_stored(messages, ports)
    # For the dashboard: attempts per outcome (a few words, never an id).
    emf.put("MemberConnectAttempts", {"outcome": str(attempt.outcome)})
    return attempt
