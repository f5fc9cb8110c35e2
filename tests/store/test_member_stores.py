"""The member store modules against a moto MemberTable: keys, conditions and the outbox
written in the same transaction as the change it announces."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws

from whoop_bridge import caches
from whoop_bridge.models.connection import Connection, ConnectionStatus, StatusReason
from whoop_bridge.models.member_profile import MemberItem
from whoop_bridge.models.member_record import RecordQuery
from whoop_bridge.models.oauth_state import CallbackStatus, OAuthState
from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.models.sync_job import StepState, SyncCause
from whoop_bridge.store import (
    connection_store,
    member_item_store,
    oauth_state_store,
    outbox_store,
    record_store,
    sync_progress_store,
)
from whoop_bridge.store.dynamo import InvalidPageToken


@pytest.fixture(autouse=True)
def member_table(monkeypatch):
    monkeypatch.setenv("MEMBER_TABLE_NAME", "members")
    with mock_aws():
        caches.reset_all()
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="members",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        yield boto3.resource("dynamodb", region_name="us-east-1").Table("members")
    caches.reset_all()


def _connection(member: str = "m-1", user_id: int = 1, **changes) -> Connection:
    values = {
        "status": ConnectionStatus.CONNECTED,
        "user_id": user_id,
        "scopes": ["offline"],
        "offline_access": True,
        "connected_at": "2026-11-01T00:00:00.000Z",
        "access_expires_at": int(time.time()) + 600,
        "sealed_tokens": b"sealed",
    } | changes
    return Connection(member, **values)


def _saved(connection: Connection, **kwargs) -> bool:
    arguments = {"moved_from": None, "released_user_id": None, "messages": []} | kwargs
    return connection_store.save(connection, None, **arguments)


def test_a_saved_connection_reads_back_whole_and_is_listed_by_expiry(member_table):
    message = OutboxMessage("member.connected", {"client_user_id": "m-1"})
    connection = _connection()  # once: its expiry is read off the clock
    assert _saved(connection, messages=[message])

    found = connection_store.get("m-1")
    assert found == connection  # Binary back to bytes, the status an enum
    assert connection_store.whoop_user_owner(1) == "m-1"
    assert [c.client_user_id for c in connection_store.expiring_before(int(time.time()) + 3600)] == ["m-1"]
    assert [m.id for m in outbox_store.pending("9999")] == [message.id]


def test_a_second_member_cannot_take_an_owned_whoop_account_without_moving_it():
    assert _saved(_connection("m-1"))
    assert not _saved(_connection("m-2"))
    assert _saved(_connection("m-2"), moved_from="m-1")

    moved = connection_store.get("m-1")
    assert (moved.status, moved.status_reason, moved.sealed_tokens) == ("disconnected", "moved_to_another_member", None)
    assert connection_store.whoop_user_owner(1) == "m-2"


def test_the_refresh_lease_is_one_callers_and_a_stale_version_writes_nothing():
    _saved(_connection())
    now = time.time()

    assert connection_store.take_refresh_lease("m-1", 1, "a", now, 45)
    assert not connection_store.take_refresh_lease("m-1", 1, "b", now, 45)
    assert connection_store.store_refreshed_tokens("m-1", 1, b"new", int(now) + 3600, True, ["offline"])
    assert not connection_store.store_refreshed_tokens("m-1", 1, b"stale", int(now) + 3600, True, ["offline"])
    found = connection_store.get("m-1")
    assert (found.token_version, found.sealed_tokens, found.refresh_lease_owner) == (2, b"new", None)


def test_reauthorization_required_drops_the_pair_and_keeps_its_message():
    _saved(_connection())
    message = OutboxMessage("member.reauthorization_required", {"client_user_id": "m-1"})

    assert connection_store.mark_reauthorization_required("m-1", 1, StatusReason.REFRESH_TOKEN_REJECTED, message)

    found = connection_store.get("m-1")
    assert (found.status, found.sealed_tokens, found.token_version) == ("reauthorization_required", None, 2)
    assert list(connection_store.expiring_before(2**40)) == []
    assert [m.detail_type for m in outbox_store.pending("9999")] == ["member.reauthorization_required"]


def test_a_disconnect_awaiting_a_revoke_keeps_the_pair_until_it_is_forgotten():
    _saved(_connection())

    assert connection_store.mark_disconnected(_connection(), revoke_pending=True, message=None)
    (pending,) = connection_store.awaiting_revoke()
    assert (
        pending.revoke_pending and pending.sealed_tokens == b"sealed" and connection_store.whoop_user_owner(1) is None
    )
    assert connection_store.replace_pending_tokens("m-1", 2, b"renewed", 1)
    connection_store.forget_revoked_tokens("m-1", 3)
    assert connection_store.get("m-1").sealed_tokens is None and list(connection_store.awaiting_revoke()) == []


def test_an_oauth_state_is_taken_once_and_keeps_its_outcome():
    oauth_state_store.put("h", OAuthState("m-1", "https://x/cb", "t", None, int(time.time()) + 600))

    taken = oauth_state_store.take("h", int(time.time()))
    assert taken.client_user_id == "m-1" and taken.taken
    assert oauth_state_store.take("h", int(time.time())) is None
    oauth_state_store.finish("h", CallbackStatus.DENIED, int(time.time()) + 600)
    assert oauth_state_store.get("h").outcome == CallbackStatus.DENIED
    assert oauth_state_store.take("unknown", 0) is None


def test_the_outbox_lists_older_messages_first_and_forgets_them():
    old = OutboxMessage("a", {"n": 1}, stored_at="2026-01-01T00:00:00.000Z")
    new = OutboxMessage("b", {"n": 2}, stored_at="2026-01-02T00:00:00.000Z")
    outbox_store.keep([new, old])

    assert [m.detail for m in outbox_store.pending("2026-01-03")] == [{"n": 1}, {"n": 2}]
    assert [m.id for m in outbox_store.pending("2026-01-01T12")] == [old.id]
    outbox_store.forget_many([old.id, new.id])
    assert list(outbox_store.pending("9999")) == []


def test_member_items_and_progress_go_with_the_member_data_but_the_connection_stays():
    _saved(_connection())
    member_item_store.put("m-1", MemberItem.BODY_MEASUREMENT, {"height_meter": 1.83, "max_heart_rate": 190})
    sync_progress_store.start("m-1", SyncCause.BACKFILL, ("sleep",))
    sync_progress_store.note("m-1", SyncCause.BACKFILL, "sleep", pages=1, records=4, state=StepState.RUNNING)

    assert member_item_store.get("m-1", MemberItem.BODY_MEASUREMENT)["height_meter"] == 1.83
    progress = sync_progress_store.progress("m-1", SyncCause.BACKFILL)["sleep"]
    assert (progress.state, progress.pages, progress.records) == ("running", 1, 4)
    assert member_item_store.delete_member_data("m-1") == 2
    assert connection_store.get("m-1") is not None and sync_progress_store.progress("m-1", SyncCause.BACKFILL) == {}


def test_a_steps_first_page_of_a_new_run_starts_its_counts_and_start_time_afresh():
    for run in ("2026-11-01T04:00:00.000Z", "2026-11-02T04:00:00.000Z"):
        sync_progress_store.note(
            "m-1", SyncCause.RECONCILIATION, "sleep", pages=1, records=3, state=StepState.RUNNING, started_at=run
        )
        sync_progress_store.note("m-1", SyncCause.RECONCILIATION, "sleep", pages=1, records=2, state=StepState.DONE)

    progress = sync_progress_store.progress("m-1", SyncCause.RECONCILIATION)["sleep"]
    assert (progress.state, progress.pages, progress.records) == ("done", 2, 5)
    assert progress.started_at == "2026-11-02T04:00:00.000Z" < progress.updated_at


def test_record_pages_carry_tokens_bound_to_their_member_and_type():
    for hour in (1, 2, 3):
        start = f"2026-11-01T0{hour}:00:00.000Z"
        cycle = {"id": hour, "user_id": 1, "created_at": start, "updated_at": start, "start": start}
        assert record_store.upsert("m-1", 1, "cycle", cycle, "backfill")

    first, token = record_store.page(RecordQuery("m-1", "cycle", limit=2))
    rest, last = record_store.page(RecordQuery("m-1", "cycle", limit=2, next_token=token))

    assert [r["id"] for r in first + rest] == [3, 2, 1] and last is None
    for member, kind in (("m-2", "cycle"), ("m-1", "sleep")):
        with pytest.raises(InvalidPageToken):
            record_store.page(RecordQuery(member, kind, next_token=token))
