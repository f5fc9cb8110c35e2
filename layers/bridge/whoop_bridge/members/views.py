"""What the member API shows: a connection's status, the stored profile, and pages of a
member's stored records. Reads only; never a token."""

from __future__ import annotations

import time
from typing import Any

from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.models.connect_attempt import NOT_CONNECTED, ConnectAttempt
from whoop_bridge.models.connection import STATUS_FIELDS, ConnectionStatus
from whoop_bridge.models.member_profile import MemberItem, profile_view
from whoop_bridge.models.member_record import RecordQuery
from whoop_bridge.models.sync_job import SyncCause


class NoConnection(LookupError):
    """The member has no connection (the API answers 404)."""


def connection_status(client_user_id: str, ports: MemberPorts = PORTS) -> dict[str, Any] | None:
    """`GET /connections/{id}`: the connection's status view (models/connection.py), its
    backfill's progress per step (None before one ran) and its `last_attempt`
    (`{outcome, reason, at}`, None before one); for a member who tried and never connected,
    `status: not_connected` with the attempt; None when neither exists."""
    connection = ports.connections.get(client_user_id)
    attempt = ports.attempts.get(client_user_id)
    if connection is None:
        return not_connected_view(attempt) if attempt is not None else None
    view = connection.status_view(time.time())
    progress = ports.progress.progress(client_user_id, SyncCause.BACKFILL)
    view["backfill"] = {step: found.view() for step, found in progress.items()} or None
    view["last_attempt"] = attempt.view() if attempt is not None else None
    return view


def not_connected_view(attempt: ConnectAttempt) -> dict[str, Any]:
    """A member who tried to connect and never did: every status field empty but the id."""
    view: dict[str, Any] = dict.fromkeys(STATUS_FIELDS)
    view.update(
        client_user_id=attempt.client_user_id,
        status=NOT_CONNECTED,
        access_token_expires_at=None,
        backfill=None,
        last_attempt=attempt.view(),
    )
    return view


# What `GET /connections?status=` takes: a connection's stored status, or `not_connected`.
LISTED_STATUSES = (*(str(status) for status in ConnectionStatus), NOT_CONNECTED)


def connection_page(status: str, limit: int, next_token: str | None, ports: MemberPorts = PORTS) -> dict[str, Any]:
    """`GET /connections?status=`: `{"connections", "next_token"}`, by `client_user_id`, each
    entry as `GET /connections/{id}` shows it but without `backfill`. `status` is one of
    LISTED_STATUSES (the stored status: an offline connection whose token lapsed is listed
    under `offline_not_granted` and shown as `reauthorization_required`). Raises
    InvalidPageToken."""
    if status == NOT_CONNECTED:
        tried, token = ports.attempts.page_not_connected(limit, next_token)
        entries = [not_connected_view(attempt) for attempt in tried]
    else:
        found, token = ports.connections.page_by_status(ConnectionStatus(status), limit, next_token)
        last = ports.attempts.get_many([connection.client_user_id for connection in found]) if found else {}
        now = time.time()
        entries = []
        for connection in found:
            view = connection.status_view(now)
            attempt = last.get(connection.client_user_id)
            view["last_attempt"] = attempt.view() if attempt is not None else None
            entries.append(view)
    for entry in entries:
        entry.pop("backfill", None)
    return {"connections": entries, "next_token": token}


def profile(client_user_id: str, ports: MemberPorts = PORTS) -> dict[str, Any] | None:
    """`GET /members/{id}/profile`: the stored WHOOP profile and when it was read, or None."""
    stored = ports.items.get(client_user_id, MemberItem.PROFILE)
    return profile_view(stored) if stored is not None else None


def record_page(query: RecordQuery, ports: MemberPorts = PORTS) -> dict[str, Any]:
    """`GET /members/{id}/<record_type>`: `{"records", "next_token"}`, newest first in
    [start, end). Raises NoConnection for a member never connected, InvalidPageToken,
    InvalidWindow or ValueError (see record_store.page)."""
    if ports.connections.get(query.client_user_id) is None:
        raise NoConnection(query.client_user_id)
    found, token = ports.records.page(query)
    return {"records": found, "next_token": token}
