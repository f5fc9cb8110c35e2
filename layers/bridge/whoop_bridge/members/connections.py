"""Member connections: connect links, WHOOP's OAuth callback, status and disconnect.

A connect link carries a single-use `state` (32 random bytes, URL-safe) that lives 10
minutes and is bound to the platform's `client_user_id`, the return URL and the redirect
URI it was made for. Only its SHA-256 is stored, so the table alone cannot forge a callback.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from whoop_bridge.clients import member_api
from whoop_bridge.config import settings
from whoop_bridge.members import outbox, vault
from whoop_bridge.members.tokens import NotConnected, ReauthorizationRequired, TokenService
from whoop_bridge.members.vault import TokenPair
from whoop_bridge.store import member_store
from whoop_bridge.whoop.http import WhoopError, WhoopTransientError
from whoop_bridge.whoop.member import InvalidGrant, MemberApi, UserLimitReached, is_user_limit

logger = logging.getLogger(__name__)

LINK_SECONDS = 600
STATE_BYTES = 32
CALLBACK_PATH = "/oauth/whoop/callback"
# The platform's id of its user: opaque, URL-safe, never an email address.
CLIENT_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_STATE_LENGTH = 512
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PROFILE_FIELDS = ("user_id", "email", "first_name", "last_name")


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


def create_link(client_user_id: str, return_url: str | None, callback_url: str) -> dict[str, Any]:
    """`POST /connections`: an authorization URL for the member, valid 10 minutes."""
    if return_url is not None and not return_url_allowed(return_url):
        raise ReturnUrlNotAllowed(return_url)
    api = member_api()  # fails closed while the member-app secret holds placeholders
    state = secrets.token_urlsafe(STATE_BYTES)
    expires_at = int(time.time()) + LINK_SECONDS
    link = {"client_user_id": client_user_id, "redirect_uri": callback_url, "created_at": member_store.now_iso()}
    if return_url is not None:
        link["return_url"] = return_url
    member_store.put_oauth_state(_state_hash(state), link, expires_at)
    logger.info("connect link created", extra={"client_user_id": client_user_id})
    return {
        "authorization_url": api.authorization_url(callback_url, settings().oauth_scopes, state),
        "expires_at": _iso(expires_at),
    }


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# The callback ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Where the member goes after the callback. `return_url` None: show a page instead.
    `repeated`: the answer to a repeat of a callback that already completed."""

    status: str
    return_url: str | None = None
    client_user_id: str | None = None
    repeated: bool = False

    @property
    def location(self) -> str | None:
        """The return URL with `status` added to its query, or None."""
        if self.return_url is None:
            return None
        parts = urlsplit(self.return_url)
        query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "status"]
        return urlunsplit(parts._replace(query=urlencode([*query, ("status", self.status)])))


INVALID_STATE = Outcome("invalid_state")


# How long a completed callback's outcome is kept for a repeat (a reload, a double submit),
# and how long a repeat waits for the first callback still running.
OUTCOME_SECONDS = 600
REPEAT_WAIT_SECONDS = 10.0
# OAuth's error codes are short ASCII words; anything else is logged as "unrecognised".
OAUTH_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def complete(query: dict[str, str]) -> Outcome:
    """`GET /oauth/whoop/callback`: consume the state, then record what the member chose.

    The state is consumed before anything else, so a code is never exchanged twice; a
    repeat of a callback that completed in the last OUTCOME_SECONDS gets the same outcome."""
    state = query.get("state") or ""
    if not state or len(state) > MAX_STATE_LENGTH:
        logger.warning("OAuth callback refused: no usable state")
        return INVALID_STATE
    state_hash = _state_hash(state)
    link = member_store.take_oauth_state(state_hash, int(time.time()))
    if link is None:
        return _repeated(state_hash)
    result = _complete(link, query)
    member_store.finish_oauth_state(state_hash, result.status, int(time.time()) + OUTCOME_SECONDS)
    logger.info("OAuth callback completed", extra={"client_user_id": result.client_user_id, "outcome": result.status})
    return result


def _repeated(state_hash: str) -> Outcome:
    """A state already taken: the outcome it had, waiting briefly while the first callback
    still runs; INVALID_STATE when it is unknown, expired or its outcome has lapsed."""
    deadline = time.monotonic() + REPEAT_WAIT_SECONDS
    while True:
        stored = member_store.get_oauth_state(state_hash)
        if stored is None or "taken_at" not in stored:
            logger.warning("OAuth callback refused: the state is unknown or expired")
            return INVALID_STATE
        if stored.get("outcome") and stored["outcome_until"] > time.time():
            logger.info(
                "OAuth callback repeated: answering its outcome again",
                extra={"client_user_id": stored["client_user_id"], "outcome": stored["outcome"]},
            )
            return Outcome(stored["outcome"], stored.get("return_url"), stored["client_user_id"], repeated=True)
        if stored.get("outcome") or time.monotonic() >= deadline:
            logger.warning("OAuth callback refused: the state was already used")
            return INVALID_STATE
        time.sleep(0.25)


def _complete(link: dict[str, Any], query: dict[str, str]) -> Outcome:
    client_user_id, return_url = link["client_user_id"], link.get("return_url")

    def outcome(status: str) -> Outcome:
        return Outcome(status, return_url, client_user_id)

    error = query.get("error")
    if error:
        # WHOOP's description is shown to nobody and never logged (it is free text); it
        # only tells the user limit apart.
        if is_user_limit(query.get("error_description")):
            return outcome("user_limit")
        if error == "access_denied":
            return outcome("denied")  # the member declined on WHOOP's page
        error_code = error if OAUTH_ERROR_CODE.match(error) else "unrecognised"
        logger.error(
            "WHOOP refused the authorization", extra={"client_user_id": client_user_id, "error_code": error_code}
        )
        return outcome("error")
    code = query.get("code")
    if not code:
        logger.error("OAuth callback without a code or an error", extra={"client_user_id": client_user_id})
        return outcome("error")
    try:
        api = member_api()
        grant = api.exchange_code(code, link["redirect_uri"])
    except UserLimitReached:
        return outcome("user_limit")
    except WhoopError as error:
        logger.error(
            "OAuth code exchange failed",
            extra={"client_user_id": client_user_id, "error_code": type(error).__name__, "status_code": error.status},
        )
        return outcome("error")
    try:
        profile = api.basic_profile(grant.access_token)
        user_id = int(profile["user_id"])
    except (WhoopError, KeyError, TypeError, ValueError) as error:
        logger.error(
            "WHOOP profile could not be read after consent",
            extra={"client_user_id": client_user_id, "error_code": type(error).__name__},
        )
        _revoke_quietly(api, grant.access_token)  # no user_id, no connection: leave nothing open
        return outcome("error")
    try:
        _store_connection(client_user_id, user_id, grant, {key: profile.get(key) for key in PROFILE_FIELDS})
    except Exception as error:  # noqa: BLE001 - the member is sent back either way, and told
        # The grant cannot be kept (DynamoDB, KMS): end it at WHOOP rather than leave it live
        # and unknown, and send the member back with `error` instead of a bare 502.
        logger.error(
            "connection could not be stored after consent",
            extra={"client_user_id": client_user_id, "error_code": type(error).__name__},
        )
        _revoke_quietly(api, grant.access_token)
        return outcome("error")
    return outcome("connected" if grant.refresh_token else "offline_not_granted")


def _revoke_quietly(api: MemberApi, access_token: str) -> None:
    try:
        api.revoke(access_token)
    except WhoopError:
        logger.warning("could not revoke the tokens of an unfinished connection")


# Attempts to save a connection while other members take the same WHOOP account.
SAVE_ATTEMPTS = 5


def _store_connection(client_user_id: str, user_id: int, grant: Any, profile: dict[str, Any]) -> None:
    """Save the connection; when another member connected the same WHOOP account between
    our read and our write, read its owner again and take the documented "moved" path."""
    for _ in range(SAVE_ATTEMPTS):
        if _save_connection(client_user_id, user_id, grant, profile):
            return
        logger.info("WHOOP account taken meanwhile by another connection; saving again", extra={"user_id": user_id})
    raise RuntimeError("the WHOOP account's owner kept changing while this connection was saved")


def _save_connection(client_user_id: str, user_id: int, grant: Any, profile: dict[str, Any]) -> bool:
    now = member_store.now_iso()
    previous = member_store.get_connection(client_user_id)
    owner = member_store.get_user(user_id)
    moved_from = owner["client_user_id"] if owner and owner["client_user_id"] != client_user_id else None
    released = previous.get("user_id") if previous and previous.get("user_id") not in (None, user_id) else None
    if released is not None and (member_store.get_user(int(released)) or {}).get("client_user_id") != client_user_id:
        released = None  # another member holds that account now: its mapping is not ours to drop
    expires_at = int(time.time()) + grant.expires_in
    offline = bool(grant.refresh_token)
    connection: dict[str, Any] = {
        "client_user_id": client_user_id,
        "user_id": user_id,
        "status": "connected" if offline else "offline_not_granted",
        "scopes": list(grant.scopes),
        "offline_access": offline,
        "connected_at": now,
        "last_refreshed_at": now,
        "access_expires_at": expires_at,
        # Continues the old count, so a stale write against the old pair still fails.
        "token_version": int(previous["token_version"]) + 1 if previous else 1,
        "sealed_tokens": vault.seal(client_user_id, TokenPair(grant.access_token, grant.refresh_token)),
    }
    if offline:
        connection.update(
            {"gsi1pk": member_store.TOKEN_EXPIRY, "gsi1sk": member_store.expiry_sort_key(expires_at, client_user_id)}
        )
    stored_events = [
        member_store.new_event(
            "member.connected",
            {
                "client_user_id": client_user_id,
                "user_id": user_id,
                "scopes": list(grant.scopes),
                "offline_access": offline,
            },
        )
    ]
    if moved_from:
        stored_events.append(
            member_store.new_event(
                "member.connection_moved",
                {"user_id": user_id, "from_client_user_id": moved_from, "to_client_user_id": client_user_id},
            )
        )
    if not member_store.save_connection(
        connection, profile, moved_from=moved_from, released_user_id=released, events=stored_events
    ):
        return False
    if moved_from:
        # One WHOOP account, one member: the newer connection wins, and both sides hear of it.
        logger.warning(
            "WHOOP account moved to another member",
            extra={"user_id": user_id, "from_client_user_id": moved_from, "to_client_user_id": client_user_id},
        )
    outbox.publish_stored(stored_events)
    return True


# Status and disconnect ---------------------------------------------------------------------

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


def status(client_user_id: str) -> dict[str, Any] | None:
    """`GET /connections/{id}`: what the platform may know of a connection; never a token."""
    connection = member_store.get_connection(client_user_id)
    if connection is None:
        return None
    view = {key: connection.get(key) for key in STATUS_FIELDS}
    live = connection.get("sealed_tokens") and connection["status"] != "disconnected"
    view["access_token_expires_at"] = _iso(connection["access_expires_at"]) if live else None
    if connection["status"] == "offline_not_granted" and connection["access_expires_at"] <= time.time():
        # Nothing can renew it: say what the next token request would find.
        view.update(status="reauthorization_required", status_reason="access_token_expired_without_offline")
    view["backfill"] = member_store.sync_progress(client_user_id, "backfill") or None
    return view


DISCONNECT_ATTEMPTS = 5


def disconnect(client_user_id: str, tokens: TokenService | None = None, *, attempt: int = 1) -> None:
    """`DELETE /connections/{id}`: revoke at WHOOP, drop the tokens (and, if so configured,
    the member's records), announce it. Repeating it changes nothing."""
    connection = member_store.get_connection(client_user_id)
    if connection is None or connection.get("status") == "disconnected":
        return
    revoke_pending = False
    if connection.get("sealed_tokens"):
        revoke_pending = not _revoke(connection, tokens or TokenService())
        connection = member_store.get_connection(client_user_id) or connection  # a refresh may have rotated it
    delete_data = settings().delete_data_on_disconnect
    event = member_store.new_event(
        "member.disconnected",
        {"client_user_id": client_user_id, "user_id": connection.get("user_id"), "data_deleted": delete_data},
    )
    if not member_store.mark_disconnected(connection, revoke_pending=revoke_pending, event=event):
        if attempt >= DISCONNECT_ATTEMPTS:
            raise RuntimeError("the connection kept changing during the disconnect; try again")
        return disconnect(client_user_id, tokens, attempt=attempt + 1)  # it changed under us: read it again
    if delete_data:
        member_store.delete_member_records(client_user_id)
    logger.info("member disconnected", extra={"client_user_id": client_user_id, "revoke_pending": revoke_pending})
    outbox.publish_stored([event])


def _revoke(connection: dict[str, Any], tokens: TokenService) -> bool:
    """Revoke the member's grant at WHOOP; False when WHOOP could not be reached (the
    scheduled job tries again, and keeps the sealed tokens until then)."""
    client_user_id = connection["client_user_id"]
    try:
        access_token = tokens.access_token(client_user_id, margin=60)
    except (ReauthorizationRequired, NotConnected):
        return True  # WHOOP already holds no live token for this connection
    except WhoopTransientError:
        return False
    try:
        revoked = member_api().revoke(access_token)
    except WhoopTransientError:
        logger.warning("revoke at WHOOP deferred: WHOOP unreachable", extra={"client_user_id": client_user_id})
        return False
    logger.info(
        "member access revoked at WHOOP" if revoked else "member access was already revoked at WHOOP",
        extra={"client_user_id": client_user_id},
    )
    return True


def retry_pending_revocations() -> int:
    """The scheduled job: revoke what a disconnect could not; how many are done."""
    done = 0
    for connection in member_store.connections_awaiting_revoke():
        try:
            _revoke_pending(connection)
        except WhoopTransientError:
            continue
        done += 1
    return done


def _revoke_pending(connection: dict[str, Any]) -> None:
    client_user_id, version = connection["client_user_id"], connection["token_version"]
    api = member_api()
    pair = vault.open_pair(client_user_id, connection["sealed_tokens"])
    access_token: str | None = pair.access_token
    if connection["access_expires_at"] - time.time() < 60:
        access_token = None
        if pair.refresh_token:
            try:
                grant = api.refresh(pair.refresh_token)
            except InvalidGrant:
                grant = None  # the member or WHOOP revoked it already
            if grant is not None:
                # Stored before the revoke, so a failed revoke never leaves a live pair unknown.
                renewed = TokenPair(grant.access_token, grant.refresh_token)
                expires_at = int(time.time()) + grant.expires_in
                if not member_store.replace_pending_tokens(
                    client_user_id, version, vault.seal(client_user_id, renewed), expires_at
                ):
                    return
                access_token, version = renewed.access_token, version + 1
    if access_token is not None:
        api.revoke(access_token)
    member_store.forget_revoked_tokens(client_user_id, version)
    logger.info("deferred revoke done", extra={"client_user_id": client_user_id})
