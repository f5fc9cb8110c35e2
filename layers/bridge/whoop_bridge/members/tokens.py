"""The token service: a valid WHOOP access token for a member, on request.

WHOOP rotates on every refresh, and of two concurrent refreshes the second fails with
`invalid_grant` (docs/whoop.md#token-rotation). So one caller at a time refreshes a member's pair, across
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

from whoop_bridge import emf
from whoop_bridge.members import outbox
from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.members.vault import TokenPair
from whoop_bridge.models.connection import Connection, ConnectionStatus, StatusReason
from whoop_bridge.models.outbox_message import MemberMessage, OutboxMessage
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


class NotConnected(Exception):
    """The member has no connection, or disconnected."""


class ReauthorizationRequired(Exception):
    """WHOOP no longer honours the member's tokens: they must connect again."""


class RefreshBusy(WhoopTransientError):
    """Another caller's refresh did not finish in time; try again shortly."""


class TokenService:
    """Tokens for members; `ports` (stores, KMS, WHOOP), `api` and `clock` are replaceable
    for tests (`api` defaults to the ports' WHOOP client)."""

    def __init__(
        self,
        api: Callable[[], MemberApi] | None = None,
        clock: Callable[[], float] = time.time,
        ports: MemberPorts = PORTS,
    ) -> None:
        self._ports = ports
        self._api = api or ports.whoop
        self._clock = clock

    def access_token(
        self, client_user_id: str, *, margin: float = REFRESH_MARGIN_SECONDS, connection: Connection | None = None
    ) -> str:
        """A token valid for at least `margin` seconds, refreshed first when needed.
        `connection`: the connection just read, to save reading it again. Raises
        NotConnected, ReauthorizationRequired, RefreshBusy or WHOOP's transient errors."""
        connection = self._usable(client_user_id, connection)
        if connection.valid_for(self._clock()) > margin:
            return self._pair(connection).access_token
        return self._refresh(connection, margin)

    def _usable(self, client_user_id: str, connection: Connection | None = None) -> Connection:
        connection = connection or self._ports.connections.get(client_user_id)
        if connection is None or connection.disconnected:
            raise NotConnected(client_user_id)
        if not connection.usable:
            raise ReauthorizationRequired(client_user_id)
        return connection

    def _pair(self, connection: Connection) -> TokenPair:
        return self._ports.vault.open_pair(connection.client_user_id, connection.sealed_tokens or b"")

    def _refresh(self, connection: Connection, margin: float) -> str:
        client_user_id = connection.client_user_id
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if connection.status == ConnectionStatus.OFFLINE_NOT_GRANTED or not self._pair(connection).refresh_token:
                return self._without_refresh(connection)
            owner = uuid.uuid4().hex
            if self._ports.connections.take_refresh_lease(
                client_user_id, connection.token_version, owner, self._clock(), LEASE_SECONDS
            ):
                return self._refresh_holding_lease(connection, owner)
            # Another caller is refreshing this member: wait for the pair it stores.
            version = connection.token_version
            while True:
                if time.monotonic() > deadline:
                    raise RefreshBusy(f"the token refresh of member {client_user_id} is still running")
                time.sleep(POLL_SECONDS)
                connection = self._usable(client_user_id)
                if connection.token_version != version:
                    break
                if connection.lease_lapsed(self._clock()):
                    break  # the holder gave up or died: try for the lease again
            if connection.token_version != version and connection.valid_for(self._clock()) > MINIMUM_VALIDITY_SECONDS:
                return self._pair(connection).access_token

    def _refresh_holding_lease(self, connection: Connection, owner: str) -> str:
        client_user_id, version = connection.client_user_id, connection.token_version
        pair = self._pair(connection)
        try:
            grant = self._api().refresh(pair.refresh_token or "")
        except InvalidGrant:
            latest = self._usable(client_user_id)
            if latest.token_version != version:
                # Someone else rotated the pair (our lease had lapsed): theirs is good.
                return self._pair(latest).access_token
            self._require_reauthorization(connection, StatusReason.REFRESH_TOKEN_REJECTED)
            raise ReauthorizationRequired(client_user_id) from None
        except BaseException:
            self._ports.connections.release_refresh_lease(client_user_id, owner)
            raise
        # WHOOP answers a refresh with a new refresh token; without one the member keeps
        # access only until this token expires.
        new_pair = TokenPair(grant.access_token, grant.refresh_token)
        expires_at = int(self._clock()) + grant.expires_in
        sealed = self._ports.vault.seal(client_user_id, new_pair)
        if not self._ports.connections.store_refreshed_tokens(
            client_user_id,
            version,
            sealed,
            expires_at,
            bool(grant.refresh_token),
            list(grant.scopes) or list(connection.scopes or ()),
        ):
            # Disconnected while we refreshed: the new pair must not be used.
            raise NotConnected(client_user_id)
        logger.info("member tokens refreshed", extra={"client_user_id": client_user_id, "token_version": version + 1})
        return new_pair.access_token

    def _without_refresh(self, connection: Connection) -> str:
        """No refresh token (`offline` not granted): the access token until it expires."""
        if connection.valid_for(self._clock()) > MINIMUM_VALIDITY_SECONDS:
            return self._pair(connection).access_token
        self._require_reauthorization(connection, StatusReason.ACCESS_TOKEN_EXPIRED_WITHOUT_OFFLINE)
        raise ReauthorizationRequired(connection.client_user_id)

    def _require_reauthorization(self, connection: Connection, reason: StatusReason) -> None:
        message = OutboxMessage(
            MemberMessage.REAUTHORIZATION_REQUIRED,
            {"client_user_id": connection.client_user_id, "user_id": connection.user_id, "reason": str(reason)},
        )
        if self._ports.connections.mark_reauthorization_required(
            connection.client_user_id, connection.token_version, reason, message
        ):
            logger.warning(
                "member must reconnect", extra={"client_user_id": connection.client_user_id, "status_reason": reason}
            )
            emf.put("MemberConnectionChanges", {"status": ConnectionStatus.REAUTHORIZATION_REQUIRED.value})
            outbox.publish_stored([message], self._ports)

    def refresh_expiring(self, *, margin: float = SCHEDULED_MARGIN_SECONDS) -> dict[str, int]:
        """The scheduled refresher: renew every pair that expires within `margin`. Counts
        `refreshed`, `reauthorization_required` and `failed`."""
        counts = {"refreshed": 0, "reauthorization_required": 0, "failed": 0}
        for connection in self._ports.connections.expiring_before(int(self._clock() + margin)):
            try:
                self.access_token(connection.client_user_id, margin=margin)
                counts["refreshed"] += 1
            except ReauthorizationRequired:
                counts["reauthorization_required"] += 1
            except NotConnected:
                continue
            except Exception:  # noqa: BLE001 - one member's failure must not stop the rest
                logger.exception("scheduled token refresh failed", extra={"client_user_id": connection.client_user_id})
                counts["failed"] += 1
        return counts


_service = TokenService()


def access_token(client_user_id: str) -> str:
    """A valid WHOOP access token for the member (see TokenService.access_token)."""
    return _service.access_token(client_user_id)
