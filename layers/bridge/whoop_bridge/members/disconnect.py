"""Ending a member's connection: `DELETE /connections/{id}` and the scheduled revoke of
what a disconnect could not revoke at WHOOP then.

A disconnect revokes the grant at WHOOP, drops the sealed tokens (kept, listed as awaiting
a revoke, while WHOOP cannot be reached), deletes the member's data when
DeleteDataOnDisconnect is on, and announces `member.disconnected`.
"""

from __future__ import annotations

import logging
import time

from whoop_bridge import emf
from whoop_bridge.members import outbox
from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.members.tokens import NotConnected, ReauthorizationRequired, TokenService
from whoop_bridge.members.vault import TokenPair
from whoop_bridge.models.connection import Connection, ConnectionStatus
from whoop_bridge.models.outbox_message import MemberMessage, OutboxMessage
from whoop_bridge.whoop.http import WhoopTransientError
from whoop_bridge.whoop.member import InvalidGrant

logger = logging.getLogger(__name__)

DISCONNECT_ATTEMPTS = 5
# An access token closer to expiry than this is renewed before it is revoked.
REVOKE_MARGIN_SECONDS = 60


def disconnect(
    client_user_id: str, tokens: TokenService | None = None, *, attempt: int = 1, ports: MemberPorts = PORTS
) -> None:
    """`DELETE /connections/{id}`: revoke at WHOOP, drop the tokens (and, if so configured,
    the member's data), announce it. Repeating it changes nothing."""
    connection = ports.connections.get(client_user_id)
    if connection is None or connection.disconnected:
        return
    revoke_pending = False
    if connection.sealed_tokens:
        revoke_pending = not _revoke(connection, tokens or TokenService(ports=ports), ports)
        connection = ports.connections.get(client_user_id) or connection  # a refresh may have rotated it
    delete_data = ports.settings().delete_data_on_disconnect
    message = OutboxMessage(
        MemberMessage.DISCONNECTED,
        {"client_user_id": client_user_id, "user_id": connection.user_id, "data_deleted": delete_data},
    )
    if not ports.connections.mark_disconnected(connection, revoke_pending=revoke_pending, message=message):
        if attempt >= DISCONNECT_ATTEMPTS:
            raise RuntimeError("the connection kept changing during the disconnect; try again")
        return disconnect(client_user_id, tokens, attempt=attempt + 1, ports=ports)  # changed under us: read again
    if delete_data:
        ports.items.delete_member_data(client_user_id)
    logger.info("member disconnected", extra={"client_user_id": client_user_id, "revoke_pending": revoke_pending})
    emf.put("MemberConnectionChanges", {"status": ConnectionStatus.DISCONNECTED.value})
    outbox.publish_stored([message], ports)


def _revoke(connection: Connection, tokens: TokenService, ports: MemberPorts) -> bool:
    """Revoke the member's grant at WHOOP; False when WHOOP could not be reached (the
    scheduled job tries again, and keeps the sealed tokens until then)."""
    client_user_id = connection.client_user_id
    try:
        access_token = tokens.access_token(client_user_id, margin=REVOKE_MARGIN_SECONDS)
    except (ReauthorizationRequired, NotConnected):
        return True  # WHOOP already holds no live token for this connection
    except WhoopTransientError:
        return False
    try:
        revoked = ports.whoop().revoke(access_token)
    except WhoopTransientError:
        logger.warning("revoke at WHOOP deferred: WHOOP unreachable", extra={"client_user_id": client_user_id})
        return False
    logger.info(
        "member access revoked at WHOOP" if revoked else "member access was already revoked at WHOOP",
        extra={"client_user_id": client_user_id},
    )
    return True


def retry_pending_revocations(ports: MemberPorts = PORTS) -> int:
    """The scheduled job: revoke what a disconnect could not; how many are done."""
    done = 0
    for connection in ports.connections.awaiting_revoke():
        try:
            _revoke_pending(connection, ports)
        except WhoopTransientError:
            continue
        done += 1
    return done


def _revoke_pending(connection: Connection, ports: MemberPorts) -> None:
    client_user_id, version = connection.client_user_id, connection.token_version
    api = ports.whoop()
    pair = ports.vault.open_pair(client_user_id, connection.sealed_tokens or b"")
    access_token: str | None = pair.access_token
    if connection.valid_for(time.time()) < REVOKE_MARGIN_SECONDS:
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
                sealed = ports.vault.seal(client_user_id, renewed)
                if not ports.connections.replace_pending_tokens(client_user_id, version, sealed, expires_at):
                    return
                access_token, version = renewed.access_token, version + 1
    if access_token is not None:
        api.revoke(access_token)
    ports.connections.forget_revoked_tokens(client_user_id, version)
    logger.info("deferred revoke done", extra={"client_user_id": client_user_id})
