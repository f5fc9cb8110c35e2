"""In-memory stand-ins for the member rules' ports (whoop_bridge.members.ports): the stores
keep their conditions (token versions, the refresh lease, newest-wins records), so the
rules run against them as against DynamoDB, without AWS. `member_ports()` builds a set."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

from whoop_bridge.config import Settings
from whoop_bridge.members.ports import MemberPorts
from whoop_bridge.members.vault import TokenPair
from whoop_bridge.models import member_record as records
from whoop_bridge.models.connect_attempt import ConnectAttempt
from whoop_bridge.models.connection import Connection, ConnectionStatus, StatusReason
from whoop_bridge.models.member_profile import MemberItem
from whoop_bridge.models.oauth_state import CallbackStatus, OAuthState
from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.models.sync_job import StepState, SyncCause, SyncProgress
from whoop_bridge.times import now_iso
from whoop_bridge.whoop.http import WhoopNotFound
from whoop_bridge.whoop.member import InvalidGrant, TokenGrant


class FakeOutbox:
    def __init__(self) -> None:
        self.kept: dict[str, OutboxMessage] = {}

    def keep(self, messages: list[OutboxMessage]) -> None:
        self.kept.update({message.id: message for message in messages})

    def pending(self, stored_before: str) -> Iterator[OutboxMessage]:
        yield from sorted(
            (message for message in self.kept.values() if message.stored_at < stored_before),
            key=lambda message: message.stored_at,
        )

    def forget(self, message_id: str) -> None:
        self.kept.pop(message_id, None)

    def forget_many(self, message_ids: list[str]) -> None:
        for message_id in message_ids:
            self.forget(message_id)


class FakeConnections:
    """Connections and WHOOP user owners, with the store's version and lease conditions."""

    def __init__(self, outbox: FakeOutbox) -> None:
        self.items: dict[str, Connection] = {}
        self.owners: dict[int, str] = {}
        self.awaiting: set[str] = set()
        self._outbox = outbox

    def add(self, connection: Connection) -> Connection:
        self.items[connection.client_user_id] = connection
        if connection.user_id is not None:
            self.owners[connection.user_id] = connection.client_user_id
        return connection

    def get(self, client_user_id: str) -> Connection | None:
        found = self.items.get(client_user_id)
        return dataclasses.replace(found) if found else None  # a copy, as a read is

    def whoop_user_owner(self, user_id: int) -> str | None:
        return self.owners.get(user_id)

    def save(self, connection, profile, *, moved_from, released_user_id, messages) -> bool:
        owner = self.owners.get(connection.user_id)
        if owner not in (None, connection.client_user_id, moved_from):
            return False
        if moved_from:
            moved = self.items[moved_from]
            moved.status, moved.status_reason = ConnectionStatus.DISCONNECTED, StatusReason.MOVED_TO_ANOTHER_MEMBER
            moved.sealed_tokens, moved.token_version = None, moved.token_version + 1
        if released_user_id is not None and self.owners.get(released_user_id) == connection.client_user_id:
            del self.owners[released_user_id]
        self.add(dataclasses.replace(connection))
        self._outbox.keep(messages)
        return True

    def _current(self, client_user_id: str, token_version: int) -> Connection | None:
        found = self.items.get(client_user_id)
        return found if found is not None and found.token_version == token_version else None

    def take_refresh_lease(self, client_user_id, token_version, owner, now, lease_seconds) -> bool:
        found = self._current(client_user_id, token_version)
        if found is None or not found.lease_lapsed(now):
            return False
        found.refresh_lease_owner, found.refresh_lease_until = owner, now + lease_seconds
        return True

    def release_refresh_lease(self, client_user_id: str, owner: str) -> None:
        found = self.items.get(client_user_id)
        if found is not None and found.refresh_lease_owner == owner:
            found.refresh_lease_owner = found.refresh_lease_until = None

    def store_refreshed_tokens(self, client_user_id, token_version, sealed_tokens, expires_at, refreshable, scopes):
        found = self._current(client_user_id, token_version)
        if found is None or found.status not in (ConnectionStatus.CONNECTED, ConnectionStatus.OFFLINE_NOT_GRANTED):
            return False
        found.sealed_tokens, found.token_version, found.access_expires_at = sealed_tokens, token_version + 1, expires_at
        found.scopes, found.last_refreshed_at = scopes, now_iso()
        found.refresh_lease_owner = found.refresh_lease_until = None
        if not refreshable:
            found.status = ConnectionStatus.OFFLINE_NOT_GRANTED
        return True

    def mark_reauthorization_required(self, client_user_id, token_version, reason, message) -> bool:
        found = self._current(client_user_id, token_version)
        if found is None or not found.usable:
            return False
        found.status, found.status_reason = ConnectionStatus.REAUTHORIZATION_REQUIRED, reason
        found.sealed_tokens, found.token_version = None, token_version + 1
        self._outbox.keep([message])
        return True

    def mark_disconnected(self, connection, *, revoke_pending, message) -> bool:
        found = self._current(connection.client_user_id, connection.token_version)
        if found is None:
            return False
        found.status, found.token_version = ConnectionStatus.DISCONNECTED, found.token_version + 1
        found.disconnected_at = now_iso()
        if revoke_pending:
            found.revoke_pending = True
            self.awaiting.add(found.client_user_id)
        else:
            found.sealed_tokens = None
        if self.owners.get(found.user_id) == found.client_user_id:
            del self.owners[found.user_id]
        self._outbox.keep([message] if message else [])
        return True

    def replace_pending_tokens(self, client_user_id, token_version, sealed_tokens, expires_at) -> bool:
        found = self._current(client_user_id, token_version)
        if found is None or not found.revoke_pending:
            return False
        found.sealed_tokens, found.access_expires_at, found.token_version = sealed_tokens, expires_at, token_version + 1
        return True

    def forget_revoked_tokens(self, client_user_id: str, token_version: int) -> None:
        found = self._current(client_user_id, token_version)
        if found is not None:
            found.sealed_tokens, found.revoke_pending = None, None
            self.awaiting.discard(client_user_id)

    def expiring_before(self, expires_before: int) -> Iterator[Connection]:
        for found in list(self.items.values()):
            if found.refreshable and (found.access_expires_at or 0) < expires_before:
                yield dataclasses.replace(found)

    def awaiting_revoke(self) -> Iterator[Connection]:
        for client_user_id in sorted(self.awaiting):
            yield dataclasses.replace(self.items[client_user_id])

    def refreshed_connections(self) -> Iterator[Connection]:
        for found in list(self.items.values()):
            if found.refreshable:
                yield dataclasses.replace(found)

    def page_by_status(self, status, limit, next_token):
        return _paged(
            [self.items[member] for member in sorted(self.items) if self.items[member].status == status],
            limit,
            next_token,
        )

    def count_by_status(self, status):
        return sum(connection.status == status for connection in self.items.values())


def _paged(found: list[Any], limit: int, next_token: str | None) -> tuple[list[Any], str | None]:
    """A page of an ordered list; the token is the next item's position (as text)."""
    start = int(next_token or 0)
    page = [dataclasses.replace(item) for item in found[start : start + limit]]
    return page, str(start + limit) if start + limit < len(found) else None


class FakeConnectAttempts:
    """Last connect attempts; `not_connected` lists those whose member has no connection."""

    def __init__(self, outbox: FakeOutbox, connections: FakeConnections) -> None:
        self.last: dict[str, ConnectAttempt] = {}
        self._outbox, self._connections = outbox, connections

    def record(self, attempt: ConnectAttempt, messages: list[OutboxMessage]) -> None:
        self.last[attempt.client_user_id] = attempt
        self._outbox.keep(messages)

    def get(self, client_user_id: str) -> ConnectAttempt | None:
        return self.last.get(client_user_id)

    def get_many(self, client_user_ids: list[str]) -> dict[str, ConnectAttempt]:
        return {member: self.last[member] for member in client_user_ids if member in self.last}

    def page_not_connected(self, limit, next_token):
        never = [self.last[member] for member in sorted(self.last) if member not in self._connections.items]
        return _paged(never, limit, next_token)

    def count_not_connected(self):
        return sum(member not in self._connections.items for member in self.last)


class FakeOAuthStates:
    def __init__(self) -> None:
        self.states: dict[str, OAuthState] = {}

    def put(self, state_hash: str, state: OAuthState) -> None:
        assert state_hash not in self.states
        self.states[state_hash] = dataclasses.replace(state)

    def take(self, state_hash: str, now: int) -> OAuthState | None:
        found = self.states.get(state_hash)
        if found is None or found.expires_at <= now or found.taken:
            return None
        found.taken_at = now
        return dataclasses.replace(found)

    def take_expired(self, state_hash: str, now: int, keep_until: int) -> OAuthState | None:
        found = self.states.get(state_hash)
        if found is None or found.expires_at > now or found.taken:
            return None
        found.taken_at, found.outcome, found.outcome_until = now, CallbackStatus.LINK_EXPIRED, keep_until
        return dataclasses.replace(found)

    def finish(self, state_hash: str, outcome: CallbackStatus, keep_until: int) -> None:
        found = self.states[state_hash]
        found.outcome, found.outcome_until = outcome, keep_until

    def get(self, state_hash: str) -> OAuthState | None:
        found = self.states.get(state_hash)
        return dataclasses.replace(found) if found else None


class FakeRecords:
    """Records newest-`updated_at`-wins, as record_store keeps them (no listing order)."""

    def __init__(self, outbox: FakeOutbox) -> None:
        self.stored: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.times: dict[tuple[str, str, str], str] = {}
        self._outbox = outbox

    def upsert(self, client_user_id, user_id, record_type, record, cause, *, sleep_start=None):
        record = records.normalize(record_type, record)
        key = (client_user_id, record_type, records.record_id(record_type, record))
        old = self.stored.get(key)
        newer = old is None or old["updated_at"] < record["updated_at"]
        rescored = (
            old is not None
            and old["updated_at"] == record["updated_at"]
            and old["score_state"] == records.PENDING_SCORE
            and record["score_state"] in records.FINAL_SCORE_STATES
        )
        if not (newer or rescored):
            return []
        self.stored[key] = record
        self.times[key] = records.record_time(record_type, record, sleep_start)
        message = OutboxMessage(*records.updated_event(client_user_id, user_id, record_type, record, cause))
        self._outbox.keep([message])
        return [message]

    def delete(self, client_user_id, user_id, record_type, record_id, cause):
        if self.stored.pop((client_user_id, record_type, record_id), None) is None:
            return []
        message = OutboxMessage(*records.deleted_event(client_user_id, user_id, record_type, record_id, cause))
        self._outbox.keep([message])
        return [message]

    def get(self, client_user_id, record_type, record_id):
        return self.stored.get((client_user_id, record_type, record_id))

    def page(self, query):
        found = [
            record
            for (member, kind, _), record in self.stored.items()
            if (member, kind) == (query.client_user_id, query.record_type)
        ]
        return found[: query.limit], None

    def ids_between(self, client_user_id, record_type, start, end):
        since, until = records.window(start, end)
        return {
            record_id
            for (member, kind, record_id), at in self.times.items()
            if (member, kind) == (client_user_id, record_type) and since <= at < until
        }


class FakeProgress:
    def __init__(self) -> None:
        self.steps: dict[tuple[str, str, str], SyncProgress] = {}

    def start(self, client_user_id: str, cause: SyncCause, steps: tuple[str, ...]) -> None:
        for step in steps:
            self.steps[(client_user_id, str(cause), step)] = SyncProgress(StepState.QUEUED, started_at=now_iso())

    def note(self, client_user_id, cause, step, *, pages, records, state, started_at=None) -> None:
        found = self.steps.setdefault((client_user_id, str(cause), step), SyncProgress(state))
        if started_at:
            found.pages, found.records, found.started_at = 0, 0, started_at
        found.state, found.pages, found.records = str(state), found.pages + pages, found.records + records
        found.updated_at = now_iso()

    def progress(self, client_user_id: str, cause: SyncCause) -> dict[str, SyncProgress]:
        return {
            step: found
            for (member, kind, step), found in self.steps.items()
            if (member, kind) == (client_user_id, cause)
        }


class FakeItems:
    def __init__(self, records: FakeRecords, progress: FakeProgress) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self._records, self._progress = records, progress

    def put(self, client_user_id: str, kind: MemberItem, values: dict[str, Any]) -> None:
        self.items[(client_user_id, str(kind))] = {**values, "updated_at": now_iso()}

    def get(self, client_user_id: str, kind: MemberItem) -> dict[str, Any] | None:
        return self.items.get((client_user_id, str(kind)))

    def delete_member_data(self, client_user_id: str) -> int:
        gone = [key for key in self.items if key[0] == client_user_id]
        gone_records = [key for key in self._records.stored if key[0] == client_user_id]
        for key in gone:
            del self.items[key]
        for key in gone_records:
            del self._records.stored[key]
        return len(gone) + len(gone_records)


class FakeVault:
    """ "Seals" a pair as JSON bound to its member; refuses it for another member, as KMS does."""

    def seal(self, client_user_id: str, pair: TokenPair) -> bytes:
        return json.dumps([client_user_id, pair.access_token, pair.refresh_token]).encode()

    def open_pair(self, client_user_id: str, sealed: bytes) -> TokenPair:
        member, access_token, refresh_token = json.loads(sealed)
        assert member == client_user_id, "sealed for another member"
        return TokenPair(access_token, refresh_token)


class FakeBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.refusing = False

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.published.append((str(detail_type), detail))

    def publish_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[bool]:
        if self.refusing:
            return [False] * len(events)
        for detail_type, detail in events:
            self.publish(detail_type, detail)
        return [True] * len(events)


class FakeQueues:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], int]] = []

    def send(self, queue_url: str, bodies: list[str], delay_seconds: int) -> None:
        self.sent.extend((queue_url, json.loads(body), delay_seconds) for body in bodies)


class FakeWhoop:
    """WHOOP's member API as the rules call it: scripted grants, records and failures.
    `failures[name]` is an exception (or a list of them, used up in turn) an operation raises."""

    def __init__(self) -> None:
        self.refreshes: list[str] = []
        self.revoked: list[str] = []
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.recoveries: dict[int, dict[str, Any]] = {}
        self.pages: dict[tuple[str, str | None], tuple[list[dict[str, Any]], str | None]] = {}
        self.profile: dict[str, Any] = {"user_id": 10129, "email": "m@example.com", "first_name": "M", "last_name": "P"}
        self.body: dict[str, Any] = {"height_meter": 1.8, "weight_kilogram": 80.5, "max_heart_rate": 190}
        self.grant = TokenGrant("access-1", 3600, "refresh-1", ("offline", "read:profile"))
        self.failures: dict[str, Any] = {}

    def _fail(self, name: str) -> None:
        failure = self.failures.get(name)
        if isinstance(failure, list):
            failure = failure.pop(0) if failure else None
        if failure is not None:
            raise failure

    def authorization_url(self, redirect_uri: str, scopes: tuple[str, ...], state: str) -> str:
        return f"https://whoop.example/oauth?state={state}"

    def exchange_code(self, code: str, redirect_uri: str) -> TokenGrant:
        self._fail("exchange_code")
        return self.grant

    def refresh(self, refresh_token: str) -> TokenGrant:
        self.refreshes.append(refresh_token)
        self._fail("refresh")
        if refresh_token == "revoked":
            raise InvalidGrant("invalid_grant", 400)
        count = len(self.refreshes) + 1
        return TokenGrant(f"access-{count}", 3600, f"refresh-{count}", self.grant.scopes)

    def basic_profile(self, access_token: str, *, priority: str = "interactive") -> dict[str, Any]:
        self._fail("basic_profile")
        return self.profile

    def body_measurement(self, access_token: str, *, priority: str) -> dict[str, Any]:
        return self.body

    def record(self, access_token: str, record_type: str, record_id: str, *, priority: str) -> dict[str, Any]:
        self._fail("record")
        if (record_type, record_id) not in self.records:
            raise WhoopNotFound("not found", 404)
        return self.records[(record_type, record_id)]

    def cycle_recovery(self, access_token: str, cycle_id: int, *, priority: str) -> dict[str, Any]:
        return self.recoveries[cycle_id]

    def page(self, access_token, record_type, *, start, end, next_token, priority):
        self._fail("page")
        return self.pages.get((record_type, next_token), ([], None))

    def revoke(self, access_token: str) -> bool:
        self._fail("revoke")
        self.revoked.append(access_token)
        return True


def test_settings(**changes: Any) -> Settings:
    """Settings as a deployed stack has them, with `changes`."""
    base = Settings(
        environment="test",
        whoop_api_base_url="https://whoop.example",
        lab_table_name="lab",
        idempotency_table_name="idempotency",
        event_bus_name="bus",
        partner_secret_arn="arn:partner",
        partner_events_queue_url="https://sqs/partner",
        state_machine_arn="arn:states",
        accepted_test_codes=frozenset(),
        lab_event_timeout_days=30,
        correction_window_days=30,
        clinical_report_review_path="/review",
        whoop_timeout_seconds=1.0,
        whoop_max_retries=0,
        whoop_backoff_seconds=0.0,
        member_table_name="members",
        member_events_queue_url="https://sqs/member-events",
        member_jobs_queue_url="https://sqs/member-jobs",
        allowed_return_urls=("https://platform.example/whoop/done",),
    )
    return dataclasses.replace(base, **changes)


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


@dataclasses.dataclass
class FakeMembers:
    """One set of fakes and the ports over them."""

    whoop: FakeWhoop
    outbox: FakeOutbox
    connections: FakeConnections
    oauth_states: FakeOAuthStates
    attempts: FakeConnectAttempts
    records: FakeRecords
    progress: FakeProgress
    items: FakeItems
    vault: FakeVault
    bus: FakeBus
    queues: FakeQueues
    ports: MemberPorts

    def connect(self, client_user_id: str = "member-1", user_id: int = 10129, **changes: Any) -> Connection:
        """A stored connection with a live pair (access `access-0`, refresh `refresh-0`)."""
        import time

        values: dict[str, Any] = {
            "status": ConnectionStatus.CONNECTED,
            "user_id": user_id,
            "offline_access": True,
            "scopes": ["offline", "read:cycles", "read:sleep", "read:recovery", "read:workout", "read:profile"],
            "access_expires_at": int(time.time()) + 3600,
            "sealed_tokens": self.vault.seal(client_user_id, TokenPair("access-0", "refresh-0")),
        } | changes
        return self.connections.add(Connection(client_user_id, **values))


def member_ports(**settings_changes: Any) -> FakeMembers:
    """Fresh fakes and the MemberPorts over them."""
    whoop, outbox, vault, bus, queues = FakeWhoop(), FakeOutbox(), FakeVault(), FakeBus(), FakeQueues()
    connections, oauth_states, records_, progress = (
        FakeConnections(outbox),
        FakeOAuthStates(),
        FakeRecords(outbox),
        FakeProgress(),
    )
    items = FakeItems(records_, progress)
    attempts = FakeConnectAttempts(outbox, connections)
    config = test_settings(**settings_changes)
    ports = MemberPorts(
        connections=connections,
        oauth_states=oauth_states,
        attempts=attempts,
        outbox=outbox,
        records=records_,
        progress=progress,
        items=items,
        vault=vault,
        bus=bus,
        queues=queues,
        whoop=lambda: whoop,  # type: ignore[arg-type,return-value]
        settings=lambda: config,
    )
    return FakeMembers(
        whoop, outbox, connections, oauth_states, attempts, records_, progress, items, vault, bus, queues, ports
    )
