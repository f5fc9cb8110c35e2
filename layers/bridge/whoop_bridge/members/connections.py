"""Member connections: connect links and WHOOP's OAuth callback (`members/disconnect.py`
ends them, `members/views.py` shows them).

A connect link carries a single-use `state` (32 random bytes, URL-safe) that lives 10
minutes and is bound to the platform's `client_user_id`, the return URL and the redirect
URI it was made for. Only its SHA-256 is stored, so the table alone cannot forge a callback.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from whoop_bridge import emf
from whoop_bridge.config import ConfigurationError, settings
from whoop_bridge.members import attempts, outbox
from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.members.vault import TokenPair
from whoop_bridge.models.connect_attempt import AttemptReason, oauth_reason
from whoop_bridge.models.connection import CLIENT_USER_ID, Connection
from whoop_bridge.models.member_profile import PROFILE_FIELDS
from whoop_bridge.models.oauth_state import INVALID_STATE, CallbackOutcome, CallbackStatus, OAuthState
from whoop_bridge.models.outbox_message import MemberMessage, OutboxMessage
from whoop_bridge.observability import error_summary
from whoop_bridge.secrets import SecretNotConfigured
from whoop_bridge.times import iso, now_iso
from whoop_bridge.whoop.http import WhoopError
from whoop_bridge.whoop.member import MemberApi, UserLimitReached, is_user_limit

logger = logging.getLogger(__name__)

__all__ = ["CLIENT_USER_ID", "PROFILE_FIELDS", "CallbackOutcome", "complete", "create_link"]

LINK_SECONDS = 600
STATE_BYTES = 32
CALLBACK_PATH = "/oauth/whoop/callback"
MAX_STATE_LENGTH = 512
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class ReturnUrlNotAllowed(ValueError):
    """The return URL is not one of `AllowedReturnUrls` (no open redirect)."""


# Connect links ---------------------------------------------------------------------------


def redirect_uri(request_context: dict[str, Any], headers: dict[str, Any] | None) -> str:
    """The callback URL WHOOP sends the member to: the custom domain's when one is set,
    else this API's own address (the stack's `OAuthRedirectUrl` output)."""
    configured = settings().oauth_redirect_url
    if configured:
        return configured
    proto = next((value for key, value in (headers or {}).items() if key.lower() == "x-forwarded-proto"), "https")
    return f"{proto}://{request_context['domainName']}/{request_context['stage']}{CALLBACK_PATH}"


def return_url_allowed(return_url: str) -> bool:
    """Same scheme, host, port and path as an `AllowedReturnUrls` entry; only the query may
    differ. https only, except on this machine."""
    try:
        wanted = urlsplit(return_url)
        wanted_port = wanted.port
    except ValueError:
        return False
    if wanted.fragment or wanted.username or wanted.password or not wanted.hostname:
        return False
    if wanted.scheme != "https" and not (wanted.scheme == "http" and wanted.hostname in LOCAL_HOSTS):
        return False
    for allowed in settings().allowed_return_urls:
        entry = urlsplit(allowed)
        if (entry.scheme, entry.hostname, entry.port, entry.path or "/") == (
            wanted.scheme,
            wanted.hostname,
            wanted_port,
            wanted.path or "/",
        ):
            return True
    return False


def create_link(
    client_user_id: str, return_url: str | None, callback_url: str, ports: MemberPorts = PORTS
) -> dict[str, Any]:
    """`POST /connections`: an authorization URL for the member, valid 10 minutes.
    Raises ReturnUrlNotAllowed, and SecretNotConfigured while the member app has none."""
    if return_url is not None and not return_url_allowed(return_url):
        raise ReturnUrlNotAllowed(return_url)
    api = ports.whoop()  # fails closed while the member-app secret holds placeholders
    state = secrets.token_urlsafe(STATE_BYTES)
    expires_at = int(time.time()) + LINK_SECONDS
    link = OAuthState(client_user_id, callback_url, now_iso(), return_url, expires_at)
    ports.oauth_states.put(_state_hash(state), link)
    logger.info("connect link created", extra={"client_user_id": client_user_id})
    return {
        "authorization_url": api.authorization_url(callback_url, ports.settings().oauth_scopes, state),
        "expires_at": iso(datetime.fromtimestamp(expires_at, UTC), "seconds"),
    }


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


# The callback ------------------------------------------------------------------------------

# How long a completed callback's outcome is kept for a repeat (a reload of the finished
# page, a double submit), and how long a repeat waits for the first callback still running.
OUTCOME_SECONDS = 86_400
REPEAT_WAIT_SECONDS = 10.0
# The scope the bridge cannot connect without: the profile names the WHOOP account.
PROFILE_SCOPE = "read:profile"


def complete(query: dict[str, str], ports: MemberPorts = PORTS) -> CallbackOutcome:
    """`GET /oauth/whoop/callback`: consume the state, then record what the member chose.

    The state is consumed before anything else, so a code is never exchanged twice; a
    repeat of a callback that completed in the last OUTCOME_SECONDS gets the same outcome.
    Every outcome of a known link is the member's last attempt (members/attempts.py).
    Without the member app's credentials (or a stack setting) nothing is exchanged: the
    outcome is NOT_CONFIGURED (fail closed)."""
    try:
        return _consume(query, ports)
    except (SecretNotConfigured, ConfigurationError) as error:
        logger.error("OAuth callback refused: the bridge is not configured", extra={"detail": error_summary(error)})
        return CallbackOutcome(CallbackStatus.NOT_CONFIGURED)


def _consume(query: dict[str, str], ports: MemberPorts) -> CallbackOutcome:
    state = query.get("state") or ""
    if not state or len(state) > MAX_STATE_LENGTH:
        logger.warning("OAuth callback refused: no usable state")
        return INVALID_STATE
    state_hash = _state_hash(state)
    link = ports.oauth_states.take(state_hash, int(time.time()))
    if link is None:
        return _repeated(state_hash, ports)
    try:
        result = _complete(link, query, ports)
    except (SecretNotConfigured, ConfigurationError) as error:
        logger.error("OAuth callback refused: the bridge is not configured", extra={"detail": error_summary(error)})
        result = CallbackOutcome(
            CallbackStatus.NOT_CONFIGURED, link.return_url, link.client_user_id, reason=AttemptReason.NOT_CONFIGURED
        )
    ports.oauth_states.finish(state_hash, result.status, int(time.time()) + OUTCOME_SECONDS)
    logger.info("OAuth callback completed", extra={"client_user_id": result.client_user_id, "outcome": result.status})
    attempts.record(result, ports)
    return result


def _repeated(state_hash: str, ports: MemberPorts) -> CallbackOutcome:
    """A state not taken now: the outcome it had (waiting briefly while the first callback
    still runs); `link_expired` for a known link opened after its 10 minutes (recorded once);
    INVALID_STATE when it is unknown or its outcome has lapsed."""
    deadline = time.monotonic() + REPEAT_WAIT_SECONDS
    while True:
        stored = ports.oauth_states.get(state_hash)
        if stored is None:
            logger.warning("OAuth callback refused: the state is unknown")
            return INVALID_STATE
        if not stored.taken:
            now = int(time.time())
            expired = ports.oauth_states.take_expired(state_hash, now, now + OUTCOME_SECONDS)
            if expired is not None:
                logger.warning(
                    "OAuth callback refused: the link expired", extra={"client_user_id": expired.client_user_id}
                )
                result = CallbackOutcome(
                    CallbackStatus.LINK_EXPIRED,
                    expired.return_url,
                    expired.client_user_id,
                    reason=AttemptReason.LINK_EXPIRED,
                )
                attempts.record(result, ports)
                return result
            if time.monotonic() >= deadline:
                return INVALID_STATE
            continue  # taken meanwhile: read it again
        if stored.outcome is not None and stored.outcome_current(time.time()):
            logger.info(
                "OAuth callback repeated: answering its outcome again",
                extra={"client_user_id": stored.client_user_id, "outcome": stored.outcome},
            )
            return CallbackOutcome(stored.outcome, stored.return_url, stored.client_user_id, repeated=True)
        if stored.outcome is not None or time.monotonic() >= deadline:
            logger.warning("OAuth callback refused: the state was already used")
            return INVALID_STATE
        time.sleep(0.25)


def _complete(link: OAuthState, query: dict[str, str], ports: MemberPorts) -> CallbackOutcome:
    client_user_id = link.client_user_id

    def outcome(status: CallbackStatus, reason: str | None = None) -> CallbackOutcome:
        return CallbackOutcome(status, link.return_url, client_user_id, reason=reason)

    error = query.get("error")
    if error:
        # WHOOP's description is shown to nobody and never logged (it is free text); it
        # only tells the user limit apart.
        reason = oauth_reason(error)
        if is_user_limit(query.get("error_description")):
            return outcome(CallbackStatus.USER_LIMIT, reason)
        if error == "access_denied":
            return outcome(CallbackStatus.DENIED, reason)  # the member declined on WHOOP's page
        # Logged from the fixed list only: the query is the member's own to write.
        logger.error("WHOOP refused the authorization", extra={"client_user_id": client_user_id, "error_code": reason})
        return outcome(CallbackStatus.ERROR, reason)
    code = query.get("code")
    if not code:
        logger.error("OAuth callback without a code or an error", extra={"client_user_id": client_user_id})
        return outcome(CallbackStatus.ERROR, AttemptReason.NO_CODE)
    try:
        api = ports.whoop()
        grant = api.exchange_code(code, link.redirect_uri)
    except UserLimitReached as refused:
        return outcome(CallbackStatus.USER_LIMIT, attempts.exchange_reason(refused))
    except WhoopError as error:
        logger.error(
            "OAuth code exchange failed",
            extra={"client_user_id": client_user_id, "error_code": type(error).__name__, "status_code": error.status},
        )
        return outcome(CallbackStatus.ERROR, attempts.exchange_reason(error))
    if grant.scopes and PROFILE_SCOPE not in grant.scopes:
        # WHOOP named what was granted, and not the profile: no user_id, no connection.
        logger.warning("OAuth consent without read:profile", extra={"client_user_id": client_user_id})
        _revoke_quietly(api, grant.access_token)
        return outcome(CallbackStatus.SCOPES_MISSING, AttemptReason.PROFILE_SCOPE_NOT_GRANTED)
    try:
        profile = api.basic_profile(grant.access_token)
        user_id = int(profile["user_id"])
    except (WhoopError, KeyError, TypeError, ValueError) as error:
        logger.error(
            "WHOOP profile could not be read after consent",
            extra={"client_user_id": client_user_id, "error_code": type(error).__name__},
        )
        _revoke_quietly(api, grant.access_token)  # no user_id, no connection: leave nothing open
        return outcome(CallbackStatus.ERROR, AttemptReason.PROFILE_UNREADABLE)
    try:
        _store_connection(client_user_id, user_id, grant, {key: profile.get(key) for key in PROFILE_FIELDS}, ports)
    except Exception as error:  # noqa: BLE001 - the member is sent back either way, and told
        # The grant cannot be kept (DynamoDB, KMS): end it at WHOOP rather than leave it live
        # and unknown, and send the member back with `error` instead of a bare 502.
        logger.error(
            "connection could not be stored after consent",
            extra={"client_user_id": client_user_id, "error_code": type(error).__name__},
        )
        _revoke_quietly(api, grant.access_token)
        return outcome(CallbackStatus.ERROR, AttemptReason.NOT_STORED)
    status = CallbackStatus.CONNECTED if grant.refresh_token else CallbackStatus.OFFLINE_NOT_GRANTED
    return outcome(status, attempts.scopes_reason(grant.scopes, ports.settings().oauth_scopes))


def _revoke_quietly(api: MemberApi, access_token: str) -> None:
    try:
        api.revoke(access_token)
    except WhoopError:
        logger.warning("could not revoke the tokens of an unfinished connection")


# Attempts to save a connection while other members take the same WHOOP account.
SAVE_ATTEMPTS = 5


def _store_connection(
    client_user_id: str, user_id: int, grant: Any, profile: dict[str, Any], ports: MemberPorts = PORTS
) -> None:
    """Save the connection; when another member connected the same WHOOP account between
    our read and our write, read its owner again and take the documented "moved" path."""
    for _ in range(SAVE_ATTEMPTS):
        if _save_connection(client_user_id, user_id, grant, profile, ports):
            return
        logger.info("WHOOP account taken meanwhile by another connection; saving again", extra={"user_id": user_id})
    raise RuntimeError("the WHOOP account's owner kept changing while this connection was saved")


def _save_connection(
    client_user_id: str, user_id: int, grant: Any, profile: dict[str, Any], ports: MemberPorts
) -> bool:
    stores = ports.connections
    previous = stores.get(client_user_id)
    owner = stores.whoop_user_owner(user_id)
    moved_from = owner if owner and owner != client_user_id else None
    released = previous.user_id if previous and previous.user_id not in (None, user_id) else None
    if released is not None and stores.whoop_user_owner(int(released)) != client_user_id:
        released = None  # another member holds that account now: its mapping is not ours to drop
    refreshable = bool(grant.refresh_token)
    connection = Connection.consented(
        client_user_id,
        user_id,
        scopes=list(grant.scopes),
        refreshable=refreshable,
        now=now_iso(),
        expires_at=int(time.time()) + grant.expires_in,
        sealed_tokens=ports.vault.seal(client_user_id, TokenPair(grant.access_token, grant.refresh_token)),
        previous=previous,
    )
    connected = {
        "client_user_id": client_user_id,
        "user_id": user_id,
        "scopes": list(grant.scopes),
        "offline_access": refreshable,
    }
    messages = [OutboxMessage(MemberMessage.CONNECTED, connected)]
    if moved_from:
        moved = {"user_id": user_id, "from_client_user_id": moved_from, "to_client_user_id": client_user_id}
        messages.append(OutboxMessage(MemberMessage.CONNECTION_MOVED, moved))
    if not stores.save(connection, profile, moved_from=moved_from, released_user_id=released, messages=messages):
        return False
    emf.put("MemberConnectionChanges", {"status": connection.status.value})  # connected or offline_not_granted
    if moved_from:
        # One WHOOP account, one member: the newer connection wins, and both sides hear of it.
        logger.warning(
            "WHOOP account moved to another member",
            extra={"user_id": user_id, "from_client_user_id": moved_from, "to_client_user_id": client_user_id},
        )
    outbox.publish_stored(messages, ports)
    return True
