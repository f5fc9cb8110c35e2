"""The token service: a valid WHOOP access token for a member, on request.

WHOOP rotates on every refresh, and of two concurrent refreshes the second fails with
`invalid_grant` (whoop-api.md §3.1). So one caller at a time refreshes a member's pair, across
every Lambda: it takes a lease on the connection item with a conditional write on
`token_version`, refreshes, and stores the new pair (version + 1) before using it. A caller
that loses the lease waits for the new version and reads it. `invalid_grant` is believed
only after a re-read shows nobody else rotated the pair: then the member must reconnect.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from whoop_bridge.clients import member_api
from whoop_bridge.members import outbox, vault
from whoop_bridge.members.vault import TokenPair
from whoop_bridge.store import member_store
from whoop_bridge.whoop.http import WhoopTransientError
from whoop_bridge.whoop.member import InvalidGrant, MemberApi

logger = logging.getLogger(__name__)

# Data calls refresh inline only inside this margin; the schedule renews earlier.
REFRESH_MARGIN_SECONDS = 300
# The refresher runs every 10 minutes, so it renews what expires within the next 15.
SCHEDULED_MARGIN_SECONDS = 900
# A token this close to expiry is not handed out at all.
MINIMUM_VALIDITY_SECONDS = 30
# Longer than one refresh call with its retries; a lease its holder dropped (a crashed
# Lambda) lapses after this and the next caller takes over.
LEASE_SECONDS = 45.0
WAIT_SECONDS = 20.0
POLL_SECONDS = 0.1
USABLE = frozenset({"connected", "offline_not_granted"})


class NotConnected(Exception):
    """The member has no connection, or disconnected."""


class ReauthorizationRequired(Exception):
    """WHOOP no longer honours the member's tokens: they must connect again."""


class RefreshBusy(WhoopTransientError):
    """Another caller's refresh did not finish in time; try again shortly."""


class TokenService:
    """Tokens for members; `api` and `clock` are replaceable for tests."""

    def __init__(self, api: Callable[[], MemberApi] = member_api, clock: Callable[[], float] = time.time) -> None:
        self._api = api
        self._clock = clock

    def access_token(
        self, client_user_id: str, *, margin: float = REFRESH_MARGIN_SECONDS, connection: dict[str, Any] | None = None
    ) -> str:
        """A token valid for at least `margin` seconds, refreshed first when needed.
        `connection`: the item just read, to save reading it again."""
        connection = self._usable(client_user_id, connection)
        if connection["access_expires_at"] - self._clock() > margin:
            return self._pair(connection).access_token
        return self._refresh(connection, margin)

    def _usable(self, client_user_id: str, connection: dict[str, Any] | None = None) -> dict[str, Any]:
        connection = connection or member_store.get_connection(client_user_id)
        if connection is None or connection.get("status") == "disconnected":
            raise NotConnected(client_user_id)
        if connection.get("status") not in USABLE or not connection.get("sealed_tokens"):
            raise ReauthorizationRequired(client_user_id)
        return connection

    @staticmethod
    def _pair(connection: dict[str, Any]) -> TokenPair:
        return vault.open_pair(connection["client_user_id"], connection["sealed_tokens"])

    def _refresh(self, connection: dict[str, Any], margin: float) -> str:
        client_user_id = connection["client_user_id"]
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if connection.get("status") == "offline_not_granted" or not self._pair(connection).refresh_token:
                return self._without_refresh(connection)
            owner = uuid.uuid4().hex
            if member_store.take_refresh_lease(
                client_user_id, connection["token_version"], owner, self._clock(), LEASE_SECONDS
            ):
                return self._refresh_holding_lease(connection, owner)
            # Another caller is refreshing this member: wait for the pair it stores.
            version = connection["token_version"]
            while True:
                if time.monotonic() > deadline:
                    raise RefreshBusy(f"the token refresh of member {client_user_id} is still running")
                time.sleep(POLL_SECONDS)
                connection = self._usable(client_user_id)
                if connection["token_version"] != version:
                    break
                if connection.get("refresh_lease_until", 0) < self._clock():
                    break  # the holder gave up or died: try for the lease again
            if (
                connection["token_version"] != version
                and connection["access_expires_at"] - self._clock() > MINIMUM_VALIDITY_SECONDS
            ):
                return self._pair(connection).access_token

    def _refresh_holding_lease(self, connection: dict[str, Any], owner: str) -> str:
        client_user_id, version = connection["client_user_id"], connection["token_version"]
        pair = self._pair(connection)
        try:
            grant = self._api().refresh(pair.refresh_token or "")
        except InvalidGrant:
            latest = self._usable(client_user_id)
            if latest["token_version"] != version:
                # Someone else rotated the pair (our lease had lapsed): theirs is good.
                return self._pair(latest).access_token
            self._require_reauthorization(connection, "refresh_token_rejected")
            raise ReauthorizationRequired(client_user_id) from None
        except BaseException:
            member_store.release_refresh_lease(client_user_id, owner)
            raise
        # WHOOP answers a refresh with a new refresh token; without one the member keeps
        # access only until this token expires.
        new_pair = TokenPair(grant.access_token, grant.refresh_token)
        expires_at = int(self._clock()) + grant.expires_in
        sealed = vault.seal(client_user_id, new_pair)
        if not member_store.store_refreshed_tokens(
            client_user_id,
            version,
            sealed,
            expires_at,
            bool(grant.refresh_token),
            list(grant.scopes) or connection["scopes"],
        ):
            # Disconnected while we refreshed: the new pair must not be used.
            raise NotConnected(client_user_id)
        logger.info("member tokens refreshed", extra={"client_user_id": client_user_id, "token_version": version + 1})
        return new_pair.access_token

    def _without_refresh(self, connection: dict[str, Any]) -> str:
        """No refresh token (`offline` not granted): the access token until it expires."""
        if connection["access_expires_at"] - self._clock() > MINIMUM_VALIDITY_SECONDS:
            return self._pair(connection).access_token
        self._require_reauthorization(connection, "access_token_expired_without_offline")
        raise ReauthorizationRequired(connection["client_user_id"])

    @staticmethod
    def _require_reauthorization(connection: dict[str, Any], reason: str) -> None:
        event = member_store.new_event(
            "member.reauthorization_required",
            {"client_user_id": connection["client_user_id"], "user_id": connection.get("user_id"), "reason": reason},
        )
        if member_store.mark_reauthorization_required(
            connection["client_user_id"], connection["token_version"], reason, event
        ):
            logger.warning(
                "member must reconnect", extra={"client_user_id": connection["client_user_id"], "status_reason": reason}
            )
            outbox.publish_stored([event])

    def refresh_expiring(self, *, margin: float = SCHEDULED_MARGIN_SECONDS) -> dict[str, int]:
        """The scheduled refresher: renew every pair that expires within `margin`."""
        counts = {"refreshed": 0, "reauthorization_required": 0, "failed": 0}
        for connection in member_store.connections_expiring_before(int(self._clock() + margin)):
            try:
                self.access_token(connection["client_user_id"], margin=margin)
                counts["refreshed"] += 1
            except ReauthorizationRequired:
                counts["reauthorization_required"] += 1
            except NotConnected:
                continue
            except Exception:  # noqa: BLE001 - one member's failure must not stop the rest
                logger.exception(
                    "scheduled token refresh failed", extra={"client_user_id": connection["client_user_id"]}
                )
                counts["failed"] += 1
        return counts


_service = TokenService()


def access_token(client_user_id: str) -> str:
    """A valid WHOOP access token for the member (see TokenService.access_token)."""
    return _service.access_token(client_user_id)
