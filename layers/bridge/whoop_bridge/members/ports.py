"""The interfaces the member rules reach the outside through, and the real modules behind
them. Every rule takes a `MemberPorts` (default `PORTS`, the real store modules, KMS, the
bus, SQS and WHOOP); tests/fakes/members.py holds in-memory stand-ins for tests/unit.

Each Protocol is what the rules call of a module: the store modules satisfy them as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from whoop_bridge import bus, queues
from whoop_bridge.clients import member_api
from whoop_bridge.config import Settings, settings
from whoop_bridge.members import vault
from whoop_bridge.members.vault import TokenPair
from whoop_bridge.models.connect_attempt import ConnectAttempt
from whoop_bridge.models.connection import Connection, ConnectionStatus, StatusReason
from whoop_bridge.models.member_profile import MemberItem
from whoop_bridge.models.member_record import RecordQuery
from whoop_bridge.models.oauth_state import CallbackStatus, OAuthState
from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.models.sync_job import SyncCause, SyncProgress
from whoop_bridge.store import (
    connect_attempt_store,
    connection_store,
    member_item_store,
    oauth_state_store,
    outbox_store,
    record_store,
    sync_progress_store,
)
from whoop_bridge.whoop.member import MemberApi


class ConnectionStore(Protocol):
    def get(self, client_user_id: str) -> Connection | None: ...
    def whoop_user_owner(self, user_id: int) -> str | None: ...
    def save(
        self,
        connection: Connection,
        profile: dict[str, Any] | None,
        *,
        moved_from: str | None,
        released_user_id: int | None,
        messages: list[OutboxMessage],
    ) -> bool: ...
    def take_refresh_lease(
        self, client_user_id: str, token_version: int, owner: str, now: float, lease_seconds: float
    ) -> bool: ...
    def release_refresh_lease(self, client_user_id: str, owner: str) -> None: ...
    def store_refreshed_tokens(
        self,
        client_user_id: str,
        token_version: int,
        sealed_tokens: bytes,
        expires_at: int,
        refreshable: bool,
        scopes: list[str],
    ) -> bool: ...
    def mark_reauthorization_required(
        self, client_user_id: str, token_version: int, reason: StatusReason, message: OutboxMessage
    ) -> bool: ...
    def mark_disconnected(
        self, connection: Connection, *, revoke_pending: bool, message: OutboxMessage | None
    ) -> bool: ...
    def replace_pending_tokens(
        self, client_user_id: str, token_version: int, sealed_tokens: bytes, expires_at: int
    ) -> bool: ...
    def forget_revoked_tokens(self, client_user_id: str, token_version: int) -> None: ...
    def expiring_before(self, expires_before: int) -> Iterator[Connection]: ...
    def awaiting_revoke(self) -> Iterator[Connection]: ...
    def refreshed_connections(self) -> Iterator[Connection]: ...
    def page_by_status(
        self, status: ConnectionStatus, limit: int, next_token: str | None
    ) -> tuple[list[Connection], str | None]: ...
    def count_by_status(self, status: ConnectionStatus) -> int: ...


class OAuthStateStore(Protocol):
    def put(self, state_hash: str, state: OAuthState) -> None: ...
    def take(self, state_hash: str, now: int) -> OAuthState | None: ...
    def take_expired(self, state_hash: str, now: int, keep_until: int) -> OAuthState | None: ...
    def finish(self, state_hash: str, outcome: CallbackStatus, keep_until: int) -> None: ...
    def get(self, state_hash: str) -> OAuthState | None: ...


class ConnectAttemptStore(Protocol):
    def record(self, attempt: ConnectAttempt, messages: list[OutboxMessage]) -> None: ...
    def get(self, client_user_id: str) -> ConnectAttempt | None: ...
    def get_many(self, client_user_ids: list[str]) -> dict[str, ConnectAttempt]: ...
    def page_not_connected(self, limit: int, next_token: str | None) -> tuple[list[ConnectAttempt], str | None]: ...
    def count_not_connected(self) -> int: ...


class OutboxStore(Protocol):
    def pending(self, stored_before: str) -> Iterator[OutboxMessage]: ...
    def forget(self, message_id: str) -> None: ...
    def forget_many(self, message_ids: list[str]) -> None: ...


class RecordStore(Protocol):
    def upsert(
        self,
        client_user_id: str,
        user_id: int,
        record_type: str,
        record: dict[str, Any],
        cause: str,
        *,
        sleep_start: str | None = None,
    ) -> list[OutboxMessage]: ...
    def delete(
        self, client_user_id: str, user_id: int, record_type: str, record_id: str, cause: str
    ) -> list[OutboxMessage]: ...
    def get(self, client_user_id: str, record_type: str, record_id: str) -> dict[str, Any] | None: ...
    def page(self, query: RecordQuery) -> tuple[list[dict[str, Any]], str | None]: ...
    def ids_between(
        self, client_user_id: str, record_type: str, start: str | datetime, end: str | datetime
    ) -> set[str]: ...


class SyncProgressStore(Protocol):
    def start(self, client_user_id: str, cause: SyncCause, steps: tuple[str, ...]) -> None: ...
    def note(
        self,
        client_user_id: str,
        cause: SyncCause,
        step: str,
        *,
        pages: int,
        records: int,
        state: str,
        started_at: str | None = None,
    ) -> None: ...
    def progress(self, client_user_id: str, cause: SyncCause) -> dict[str, SyncProgress]: ...


class MemberItemStore(Protocol):
    def put(self, client_user_id: str, kind: MemberItem, values: dict[str, Any]) -> None: ...
    def get(self, client_user_id: str, kind: MemberItem) -> dict[str, Any] | None: ...
    def delete_member_data(self, client_user_id: str) -> int: ...


class Vault(Protocol):
    """Seals a member's token pair (KMS, bound to the member)."""

    def seal(self, client_user_id: str, pair: TokenPair) -> bytes: ...
    def open_pair(self, client_user_id: str, sealed: bytes) -> TokenPair: ...


class Publisher(Protocol):
    """EventBridge (`whoop_bridge.bus`)."""

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...
    def publish_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[bool]: ...


class Queues(Protocol):
    """SQS (`whoop_bridge.queues`)."""

    def send(self, queue_url: str, bodies: list[str], delay_seconds: int) -> None: ...


@dataclass(frozen=True)
class MemberPorts:
    """Everything the member rules reach outside their own process through."""

    connections: ConnectionStore = connection_store  # type: ignore[assignment]
    oauth_states: OAuthStateStore = oauth_state_store  # type: ignore[assignment]
    attempts: ConnectAttemptStore = connect_attempt_store  # type: ignore[assignment]
    outbox: OutboxStore = outbox_store  # type: ignore[assignment]
    records: RecordStore = record_store  # type: ignore[assignment]
    progress: SyncProgressStore = sync_progress_store  # type: ignore[assignment]
    items: MemberItemStore = member_item_store  # type: ignore[assignment]
    vault: Vault = vault  # type: ignore[assignment]
    bus: Publisher = bus  # type: ignore[assignment]
    queues: Queues = queues  # type: ignore[assignment]
    whoop: Callable[[], MemberApi] = member_api
    settings: Callable[[], Settings] = settings


PORTS = MemberPorts()
