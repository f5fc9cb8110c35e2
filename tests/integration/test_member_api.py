"""member_api, oauth_callback and member_sync handlers with the sample events in events/,
on the local stack (moto from template.yaml, the emulator as WHOOP)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import boto3
import requests

from integration_harness import (
    SAMPLE_CLIENT_USER_ID,
    SAMPLE_CODE,
    SAMPLE_RETURN_URL,
    SAMPLE_STATE,
    load_event,
    log_records,
)


def _member_api(bridge, name: str, **replace: str) -> tuple[int, dict | None]:
    answer = bridge.invoke("MemberApiFunction", load_event(name, **replace))
    body = answer.get("body") or ""
    return answer["statusCode"], json.loads(body) if body else None


def _attempt_failed(bridge, member: str, reason: str) -> None:
    """No connection, and the platform sees the failed attempt (200 `not_connected`)."""
    status, found = _member_api(bridge, "member_api_get_connection.json", **{SAMPLE_CLIENT_USER_ID: member})
    assert status == 200 and found["status"] == "not_connected" and found["user_id"] is None
    assert (found["last_attempt"]["outcome"], found["last_attempt"]["reason"]) == ("error", reason)


def _callback(bridge, name: str, state: str, code: str | None = None) -> dict:
    replace = {SAMPLE_STATE: state}
    if code is not None:
        replace[SAMPLE_CODE] = code
    return bridge.invoke("OAuthCallbackFunction", load_event(name, **replace))


def _consent(bridge, authorization_url: str) -> dict[str, str]:
    """WHOOP's consent page approves; the redirect's code and state."""
    bridge.emulator.redirect_uris[:] = [parse_qs(urlsplit(authorization_url).query)["redirect_uri"][0]]
    answer = requests.get(authorization_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return {key: values[0] for key, values in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def test_create_connection_sample_gives_a_whoop_link_for_the_apis_own_callback(bridge):
    status, body = _member_api(bridge, "member_api_create_connection.json")

    assert status == 201
    query = parse_qs(urlsplit(body["authorization_url"]).query)
    # The callback is this API's address, from the request's own domain and stage.
    assert query["redirect_uri"] == ["https://k3v9x2m7qa.execute-api.us-east-1.amazonaws.com/v1/oauth/whoop/callback"]
    assert query["client_id"] == [bridge.emulator.member_client_id]
    assert len(query["state"][0]) >= 43  # 32 random bytes, URL-safe base64
    assert body["expires_at"].endswith("Z")


def test_sample_callbacks_connect_and_decline(bridge, logs):
    _status, link = _member_api(bridge, "member_api_create_connection.json")
    redirect = _consent(bridge, link["authorization_url"])

    answer = _callback(bridge, "oauth_callback_approved.json", redirect["state"], redirect["code"])

    assert answer["statusCode"] == 302
    assert answer["headers"]["Location"] == f"{SAMPLE_RETURN_URL}?status=connected"
    assert answer["headers"]["Referrer-Policy"] == "no-referrer"
    status, body = _member_api(bridge, "member_api_get_connection.json")
    assert status == 200 and body["status"] == "connected" and body["client_user_id"] == SAMPLE_CLIENT_USER_ID
    status, profile = _member_api(bridge, "member_api_get_profile.json")
    assert status == 200 and profile["user_id"] == body["user_id"]
    assert bridge.published("member.connected", client_user_id=SAMPLE_CLIENT_USER_ID)
    assert any(record["message"] == "OAuth callback completed" for record in log_records(logs))
    assert redirect["code"] not in logs.getvalue() and redirect["state"] not in logs.getvalue()

    _status, link = _member_api(bridge, "member_api_create_connection.json")
    state = parse_qs(urlsplit(link["authorization_url"]).query)["state"][0]
    declined = _callback(bridge, "oauth_callback_denied.json", state)
    assert declined["statusCode"] == 302 and declined["headers"]["Location"] == f"{SAMPLE_RETURN_URL}?status=denied"
    # Declining a new link leaves the existing connection alone.
    assert _member_api(bridge, "member_api_get_connection.json")[1]["status"] == "connected"


def test_sample_callback_with_its_own_made_up_state_is_a_400_page(bridge):
    answer = _callback(bridge, "oauth_callback_approved.json", SAMPLE_STATE)

    assert answer["statusCode"] == 400
    assert answer["headers"]["Content-Type"].startswith("text/html")
    assert "Location" not in answer["headers"]


def test_delete_sample_disconnects_and_repeats_harmlessly(bridge):
    _status, link = _member_api(bridge, "member_api_create_connection.json")
    redirect = _consent(bridge, link["authorization_url"])
    assert _callback(bridge, "oauth_callback_approved.json", redirect["state"], redirect["code"])["statusCode"] == 302
    revocations = bridge.emulator.revocations

    assert _member_api(bridge, "member_api_delete_connection.json") == (204, None)
    assert _member_api(bridge, "member_api_delete_connection.json") == (204, None)

    assert bridge.emulator.revocations == revocations + 1
    assert _member_api(bridge, "member_api_get_connection.json")[1]["status"] == "disconnected"
    assert _member_api(bridge, "member_api_get_profile.json")[0] == 404


def test_schedule_sample_runs_the_upkeep(bridge):
    counts = bridge.invoke("MemberSyncFunction", load_event("schedule_member_sync_refresh_tokens.json"))

    assert set(counts) == {"refreshed", "reauthorization_required", "failed", "revoked", "events_published"}
    assert counts["failed"] == 0


def test_a_member_event_whose_publish_failed_is_published_by_the_schedule(bridge, monkeypatch):
    from whoop_bridge import bus

    table = boto3.resource("dynamodb", region_name="us-east-1").Table(bridge.stack.output("MemberTable"))
    from whoop_bridge.models.outbox_message import OutboxMessage, outbox_key
    from whoop_bridge.store import outbox_store

    event = OutboxMessage("member.connected", {"client_user_id": "outbox-member", "user_id": 1})
    event.stored_at = "2000-01-01T00:00:00.000Z"  # older than the grace period
    outbox_store.keep([event])

    def refuse(*_args, **_kwargs):
        raise bus.PublishFailed("EventBridge refused it")

    monkeypatch.setattr(bus, "publish_many", refuse)
    from whoop_bridge.members import outbox

    outbox.publish_stored([event])
    assert table.get_item(Key=outbox_key(event.id))["Item"]["detail_type"] == "member.connected"
    monkeypatch.undo()

    counts = bridge.invoke("MemberSyncFunction", load_event("schedule_member_sync_refresh_tokens.json"))

    assert counts["events_published"] >= 1
    assert bridge.published("member.connected", client_user_id="outbox-member")
    assert "Item" not in table.get_item(Key=outbox_key(event.id))


def test_two_members_consenting_with_one_whoop_account_at_once_leave_exactly_one_owner(bridge, monkeypatch):
    """B reads "no owner", then A connects the same WHOOP account and commits, then B
    writes: B's mapping write must not overwrite A's silently; B takes the moved path."""
    from whoop_bridge.members import connections
    from whoop_bridge.store import connection_store
    from whoop_bridge.whoop.member import TokenGrant

    user_id, scopes = 77001, ("offline", "read:profile")
    profile = {"user_id": user_id, "email": None, "first_name": None, "last_name": None}
    real_get_user = connection_store.whoop_user_owner
    reads: list[str] = []

    def interleaved(wanted: int):
        found = real_get_user(wanted)
        if not reads:
            reads.append("b read")
            # Between B's read and B's write, A connects the same account and commits.
            monkeypatch.setattr(connection_store, "whoop_user_owner", real_get_user)
            connections._store_connection("race-a", user_id, TokenGrant("access-a", 3600, "refresh-a", scopes), profile)
            monkeypatch.setattr(connection_store, "whoop_user_owner", interleaved)
        return found

    monkeypatch.setattr(connection_store, "whoop_user_owner", interleaved)
    connections._store_connection("race-b", user_id, TokenGrant("access-b", 3600, "refresh-b", scopes), profile)
    monkeypatch.setattr(connection_store, "whoop_user_owner", real_get_user)

    assert reads == ["b read"]
    assert connection_store.whoop_user_owner(user_id) == "race-b"
    a, b = connection_store.get("race-a"), connection_store.get("race-b")
    assert (a.status, a.status_reason, a.sealed_tokens) == ("disconnected", "moved_to_another_member", None)
    assert b.status == "connected"
    assert bridge.published(
        "member.connection_moved", user_id=user_id, from_client_user_id="race-a", to_client_user_id="race-b"
    )


def test_concurrent_consents_with_one_whoop_account_in_threads_end_with_one_owner(bridge):
    import threading

    from whoop_bridge.members import connections
    from whoop_bridge.store import connection_store
    from whoop_bridge.whoop.member import TokenGrant

    user_id, scopes = 77002, ("offline", "read:profile")
    profile = {"user_id": user_id, "email": None, "first_name": None, "last_name": None}
    members = [f"thread-race-{index}" for index in range(4)]
    start = threading.Barrier(len(members))
    failures: list[BaseException] = []

    def consent(client_user_id: str) -> None:
        start.wait()
        try:
            connections._store_connection(
                client_user_id, user_id, TokenGrant(f"access-{client_user_id}", 3600, "refresh", scopes), profile
            )
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=consent, args=(member,)) for member in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert failures == []
    owner = connection_store.whoop_user_owner(user_id)
    statuses = {member: connection_store.get(member).status for member in members}
    assert statuses[owner] == "connected"
    assert all(status == "disconnected" for member, status in statuses.items() if member != owner), statuses
    assert all(
        connection_store.get(member).status_reason == "moved_to_another_member" for member in members if member != owner
    )


def test_a_callback_whose_connection_cannot_be_stored_sends_the_member_back_with_error_and_revokes_the_grant(
    bridge, monkeypatch, logs
):
    """WHOOP gave a grant but the bridge cannot keep it (DynamoDB or KMS failing): the member
    still lands on the platform's page with `status=error` (not API Gateway's bare 502), a
    reload answers the same, and the grant is not left live at WHOOP unknown to the bridge."""
    from botocore.exceptions import ClientError

    from whoop_bridge.store import connection_store

    member = "store-fails-member"
    _status, link = _member_api(bridge, "member_api_create_connection.json", **{SAMPLE_CLIENT_USER_ID: member})
    redirect = _consent(bridge, link["authorization_url"])
    revocations = bridge.emulator.revocations

    def refuse(*_args, **_kwargs):
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "TransactWriteItems"
        )

    monkeypatch.setattr(connection_store, "save", refuse)
    answer = _callback(bridge, "oauth_callback_approved.json", redirect["state"], redirect["code"])
    monkeypatch.undo()

    assert answer["statusCode"] == 302
    assert answer["headers"]["Location"] == f"{SAMPLE_RETURN_URL}?status=error"
    assert bridge.emulator.revocations == revocations + 1
    _attempt_failed(bridge, member, "connection_not_stored")
    failed = [
        record
        for record in log_records(logs)
        if record.get("level") == "ERROR" and record.get("client_user_id") == member
    ]
    assert failed and failed[0].get("error_code") == "ClientError"
    assert redirect["code"] not in logs.getvalue()
    # A reload gets the same answer, not "link expired".
    again = _callback(bridge, "oauth_callback_approved.json", redirect["state"], redirect["code"])
    assert again["statusCode"] == 302 and again["headers"]["Location"] == f"{SAMPLE_RETURN_URL}?status=error"


def test_a_token_answer_that_is_not_json_sends_the_member_back_with_error_and_is_counted(bridge, logs, capsys):
    """WHOOP (or a proxy before it) answers the code exchange 200 with a page, not a token:
    `status=error` on the return URL, logged at ERROR and counted, not a Lambda error."""
    member = "token-not-json-member"
    _status, link = _member_api(bridge, "member_api_create_connection.json", **{SAMPLE_CLIENT_USER_ID: member})
    redirect = _consent(bridge, link["authorization_url"])
    bridge.emulator.inject_fault("POST", r"/oauth/oauth2/token$", status=200, body="<html>maintenance</html>", count=1)

    answer = _callback(bridge, "oauth_callback_approved.json", redirect["state"], redirect["code"])

    assert answer["statusCode"] == 302
    assert answer["headers"]["Location"] == f"{SAMPLE_RETURN_URL}?status=error"
    _attempt_failed(bridge, member, "whoop_unavailable")
    assert any(
        record.get("level") == "ERROR" and record.get("client_user_id") == member for record in log_records(logs)
    )
    assert '"OAuthAuthorizationFailed":[1.0]' in capsys.readouterr().out.replace(" ", "")
    assert "maintenance" not in logs.getvalue()
