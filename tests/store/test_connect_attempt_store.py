"""The connect attempt store and the status index against a moto MemberTable (both
indexes as the template declares them): an attempt never touches the connection, a failure
is listed as not_connected only while there is no connection, and status changes move a
connection in the index."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws

from whoop_bridge import caches
from whoop_bridge.models.connect_attempt import ConnectAttempt
from whoop_bridge.models.connection import Connection, ConnectionStatus, StatusReason
from whoop_bridge.models.oauth_state import CallbackStatus, OAuthState
from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.store import connect_attempt_store, connection_store, dynamo, oauth_state_store, outbox_store
from whoop_bridge.store.dynamo import InvalidPageToken


def _index(name: str) -> dict:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": f"{name}pk", "KeyType": "HASH"},
            {"AttributeName": f"{name}sk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


@pytest.fixture(autouse=True)
def member_table(monkeypatch):
    monkeypatch.setenv("MEMBER_TABLE_NAME", "members")
    with mock_aws():
        caches.reset_all()
        names = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="members",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in names],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[_index("gsi1"), _index("gsi2")],
        )
        yield boto3.resource("dynamodb", region_name="us-east-1").Table("members")
    caches.reset_all()


def _connect(member: str, user_id: int) -> Connection:
    connection = Connection(
        member,
        ConnectionStatus.CONNECTED,
        user_id=user_id,
        scopes=["offline"],
        offline_access=True,
        connected_at="2026-11-01T00:00:00.000Z",
        access_expires_at=int(time.time()) + 600,
        sealed_tokens=b"sealed",
    )
    assert connection_store.save(connection, None, moved_from=None, released_user_id=None, messages=[])
    return connection


def _failed(member: str, at: str = "2026-12-01T04:00:00.000Z") -> ConnectAttempt:
    return ConnectAttempt(member, CallbackStatus.DENIED, "access_denied", at)


def _listed(status: str) -> list[str]:
    if status == "not_connected":
        return [attempt.client_user_id for attempt in connect_attempt_store.page_not_connected(100, None)[0]]
    return [found.client_user_id for found in connection_store.page_by_status(ConnectionStatus(status), 100, None)[0]]


def test_a_failed_attempt_is_kept_with_its_message_and_listed_while_never_connected(member_table):
    message = OutboxMessage("member.connection_failed", {"client_user_id": "m-1"})

    connect_attempt_store.record(_failed("m-1"), [message])

    assert connect_attempt_store.get("m-1") == _failed("m-1")
    assert [kept.id for kept in outbox_store.pending("9999")] == [message.id]
    assert _listed("not_connected") == ["m-1"]
    assert connection_store.get("m-1") is None


def test_a_failed_retry_leaves_the_connection_as_it_was_and_is_not_listed_as_not_connected(member_table):
    _connect("m-1", 1)
    before = member_table.get_item(Key=connection_store.connection_key("m-1"))["Item"]

    connect_attempt_store.record(_failed("m-1"), [])

    assert member_table.get_item(Key=connection_store.connection_key("m-1"))["Item"] == before
    assert connect_attempt_store.get("m-1").outcome == CallbackStatus.DENIED
    assert _listed("not_connected") == [] and _listed("connected") == ["m-1"]


def test_a_later_success_takes_the_member_out_of_not_connected(member_table):
    connect_attempt_store.record(_failed("m-1"), [])
    _connect("m-1", 1)

    connect_attempt_store.record(ConnectAttempt("m-1", CallbackStatus.CONNECTED, None, "2026-12-01T04:01:00.000Z"), [])

    assert _listed("not_connected") == [] and connect_attempt_store.get_many(["m-1", "m-2"]) == {
        "m-1": ConnectAttempt("m-1", CallbackStatus.CONNECTED, None, "2026-12-01T04:01:00.000Z")
    }


def test_every_status_change_moves_the_connection_in_the_status_index(member_table):
    first = _connect("m-1", 1)
    _connect("m-2", 2)
    assert _listed("connected") == ["m-1", "m-2"]

    assert connection_store.mark_reauthorization_required(
        "m-1", first.token_version, StatusReason.REFRESH_TOKEN_REJECTED, OutboxMessage("x", {})
    )
    assert _listed("reauthorization_required") == ["m-1"] and _listed("connected") == ["m-2"]
    assert connection_store.store_refreshed_tokens("m-2", 1, b"new", int(time.time()) + 60, False, ["read:profile"])
    assert _listed("offline_not_granted") == ["m-2"]
    assert connection_store.mark_disconnected(connection_store.get("m-2"), revoke_pending=False, message=None)
    assert _listed("disconnected") == ["m-2"] and _listed("offline_not_granted") == []
    _connect("m-3", 3)  # then m-3 reconnects with m-1's WHOOP account: m-1 is ended
    moved = Connection.consented(
        "m-3", 1, scopes=["offline"], refreshable=True, now="2026-12-01T00:00:00.000Z",
        expires_at=int(time.time()) + 600, sealed_tokens=b"s", previous=connection_store.get("m-3"),
    )  # fmt: skip
    assert connection_store.save(moved, None, moved_from="m-1", released_user_id=3, messages=[])
    assert _listed("disconnected") == ["m-1", "m-2"] and _listed("connected") == ["m-3"]


def test_the_listing_pages_with_tokens_bound_to_its_status(member_table):
    for number in range(5):
        _connect(f"m-{number}", number + 1)

    first, token = connection_store.page_by_status(ConnectionStatus.CONNECTED, 2, None)
    second, token2 = connection_store.page_by_status(ConnectionStatus.CONNECTED, 2, token)
    third, token3 = connection_store.page_by_status(ConnectionStatus.CONNECTED, 2, token2)

    assert [found.client_user_id for found in first + second + third] == [f"m-{n}" for n in range(5)]
    assert token3 is None
    with pytest.raises(InvalidPageToken):
        connection_store.page_by_status(ConnectionStatus.DISCONNECTED, 2, token)
    with pytest.raises(InvalidPageToken):
        connect_attempt_store.page_not_connected(2, token)
    with pytest.raises(InvalidPageToken):
        connection_store.page_by_status(ConnectionStatus.CONNECTED, 2, "bm90LWEtdG9rZW4")


def test_a_late_state_is_taken_once_as_link_expired_and_an_unused_state_is_kept_a_day(member_table):
    now = int(time.time())
    oauth_state_store.put("h", OAuthState("m-1", "https://cb", expires_at=now - 5))
    assert member_table.get_item(Key=oauth_state_store.state_key("h"))["Item"]["ttl"] == now - 5 + 86_400
    assert oauth_state_store.take("h", now) is None

    taken = oauth_state_store.take_expired("h", now, now + 100)

    assert taken.client_user_id == "m-1" and taken.outcome == CallbackStatus.LINK_EXPIRED
    assert oauth_state_store.take_expired("h", now, now + 100) is None
    assert oauth_state_store.get("h").outcome_current(now)
    oauth_state_store.put("live", OAuthState("m-2", "https://cb", expires_at=now + 600))
    assert oauth_state_store.take_expired("live", now, now + 100) is None  # still valid: not expired


def test_an_unused_state_past_its_day_is_unknown_though_dynamodbs_ttl_has_not_swept_it(member_table):
    # DynamoDB's TTL deletes lazily (often days later): the README promises a link is
    # unknown a day after it expired, so a late click must not be taken as link_expired.
    now = int(time.time())
    oauth_state_store.put("old", OAuthState("m-1", "https://cb", expires_at=now - 86_400 - 5))

    assert oauth_state_store.take_expired("old", now, now + 100) is None
    assert oauth_state_store.get("old") is None
    assert member_table.get_item(Key=oauth_state_store.state_key("old"))["Item"]["client_user_id"] == "m-1"


def test_deleting_a_members_data_keeps_the_last_attempt(member_table):
    from whoop_bridge.models.member_profile import MemberItem
    from whoop_bridge.store import member_item_store

    connect_attempt_store.record(_failed("m-1"), [])
    member_item_store.put("m-1", MemberItem.PROFILE, {"user_id": 1})

    assert member_item_store.delete_member_data("m-1") == 1
    assert connect_attempt_store.get("m-1") == _failed("m-1")


def test_members_are_counted_per_status_over_every_page_of_the_index(member_table):
    for number in range(7):
        _connect(f"c-{number}", number + 1)
    for number in range(3):
        connect_attempt_store.record(_failed(f"n-{number}"), [])
    third = _connect("r-1", 100)
    assert connection_store.mark_reauthorization_required(
        "r-1", third.token_version, StatusReason.REFRESH_TOKEN_REJECTED, OutboxMessage("x", {})
    )
    queries = []
    events = dynamo.table("member_table_name").meta.client.meta.events
    events.register("provide-client-params.dynamodb.Query", lambda params, **_: queries.append(dict(params)))

    assert connection_store.count_by_status(ConnectionStatus.CONNECTED, page_size=2) == 7
    assert len(queries) == 4  # 2 + 2 + 2 + 1: followed LastEvaluatedKey to the last page
    assert all(query["Select"] == "COUNT" and query["IndexName"] == "gsi2" for query in queries)
    assert connect_attempt_store.count_not_connected(page_size=2) == 3
    assert connection_store.count_by_status(ConnectionStatus.REAUTHORIZATION_REQUIRED) == 1
    assert connection_store.count_by_status(ConnectionStatus.DISCONNECTED) == 0
    assert connection_store.count_by_status(ConnectionStatus.CONNECTED) == len(_listed("connected"))
