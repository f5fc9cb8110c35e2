"""What the member API shows: a connection's status, the stored profile, and pages of a
member's stored records. Reads only; never a token."""

from __future__ import annotations

import time
from typing import Any

from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.models.member_profile import MemberItem, profile_view
from whoop_bridge.models.member_record import RecordQuery
from whoop_bridge.models.sync_job import SyncCause


class NoConnection(LookupError):
    """The member has no connection (the API answers 404)."""


def connection_status(client_user_id: str, ports: MemberPorts = PORTS) -> dict[str, Any] | None:
    """`GET /connections/{id}`: the connection's status view (models/connection.py) and its
    backfill's progress per step (None before one ran), or None when there is none."""
    connection = ports.connections.get(client_user_id)
    if connection is None:
        return None
    view = connection.status_view(time.time())
    progress = ports.progress.progress(client_user_id, SyncCause.BACKFILL)
    view["backfill"] = {step: found.view() for step, found in progress.items()} or None
    return view


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
