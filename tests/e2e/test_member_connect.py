"""Member connect end to end: the platform's HTTP calls, the member's browser through the
emulator's consent page and the bridge's callback, MemberTable in moto, KMS sealing, the
token service under concurrency, the scheduled refresher, disconnect and revocation."""

from __future__ import annotations

import hashlib
import threading
import time
import traceback
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from local.demo import DEMO_RETURN_URL as RETURN_URL
from local.demo import age_tokens, follow_consent
from local.stack import HandlerError

# Every state a test saw: the log audit at the end checks none of them was logged.
SEEN_STATES: list[str] = []


def _member() -> str:
    return f"member-{uuid.uuid4().hex[:10]}"


def _table(bridge) -> Any:
    return boto3.resource("dynamodb", region_name="us-east-1").Table(bridge.stack.output("MemberTable"))


def _connection_item(bridge, client_user_id: str) -> dict[str, Any] | None:
    return (
        _table(bridge)
        .get_item(Key={"pk": f"MEMBER#{client_user_id}", "sk": "CONNECTION"}, ConsistentRead=True)
        .get("Item")
    )


def _link(bridge, client_user_id: str, return_url: str | None = RETURN_URL) -> str:
    answer = bridge.platform.connect_link(client_user_id, return_url)
    assert answer.status_code == 201, answer.text
    url = answer.json()["authorization_url"]
    SEEN_STATES.append(parse_qs(urlsplit(url).query)["state"][0])
    return url


def _connect(bridge, client_user_id: str, return_url: str | None = RETURN_URL) -> list[requests.Response]:
    return follow_consent(_link(bridge, client_user_id, return_url))


def _landing(hops: list[requests.Response]) -> dict[str, list[str]]:
    final = hops[-1]
    assert final.status_code == 302, final.text
    location = final.headers["Location"]
    assert location.startswith(RETURN_URL + "?")
    return parse_qs(urlsplit(location).query)


def _status(bridge, client_user_id: str) -> dict[str, Any]:
    answer = bridge.platform.connection(client_user_id)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _not_connected_after(bridge, client_user_id: str, outcome: str, reason: str) -> None:
    """Nothing connected, and the platform sees the attempt (was a 404 before attempts were kept)."""
    assert _connection_item(bridge, client_user_id) is None
    status = _status(bridge, client_user_id)
    assert status["status"] == "not_connected" and status["user_id"] is None
    assert (status["last_attempt"]["outcome"], status["last_attempt"]["reason"]) == (outcome, reason)


def _refresh_calls(bridge) -> int:
    """Refresh requests that reached WHOOP, answered or refused."""
    return sum(
        1
        for call in bridge.emulator.calls_to("POST", r"^/oauth/oauth2/token$")
        if (call["body"] or {}).get("grant_type") == "refresh_token"
    )


def _tokens():
    from whoop_bridge.members import tokens

    return tokens


def test_connect_stores_the_connection_with_sealed_tokens_and_reports_its_status(bridge):
    member = _member()
    exchanges = bridge.emulator.member_code_exchanges

    hops = _connect(bridge, member)

    assert _landing(hops) == {"status": ["connected"]}
    assert bridge.emulator.member_code_exchanges == exchanges + 1
    status = _status(bridge, member)
    user_id = status["user_id"]
    assert status["status"] == "connected" and isinstance(user_id, int)
    assert set(status["scopes"]) == {
        "offline",
        "read:recovery",
        "read:cycles",
        "read:workout",
        "read:sleep",
        "read:profile",
        "read:body_measurement",
    }
    assert status["connected_at"] and status["last_refreshed_at"] and status["access_token_expires_at"]
    assert "token" not in " ".join(key for key in status if key != "access_token_expires_at")

    # The stored item holds no plaintext token, only one KMS ciphertext bound to the member.
    item = _connection_item(bridge, member)
    stored = repr(item)
    for credential in bridge.emulator.issued_credentials():
        assert credential not in stored
    sealed = bytes(item["sealed_tokens"])
    kms = boto3.client("kms", region_name="us-east-1")
    opened = kms.decrypt(
        CiphertextBlob=sealed, EncryptionContext={"purpose": "whoop-member-tokens", "client_user_id": member}
    )["Plaintext"]
    assert opened.decode() and b"access_token" in opened
    with pytest.raises(ClientError):
        kms.decrypt(
            CiphertextBlob=sealed,
            EncryptionContext={"purpose": "whoop-member-tokens", "client_user_id": "someone-else"},
        )

    # The token service hands out a token WHOOP accepts.
    token = _tokens().access_token(member)
    profile = requests.get(
        f"{bridge.emulator.base_url}/developer/v2/user/profile/basic",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert profile.status_code == 200 and profile.json()["user_id"] == user_id

    assert bridge.domain_events.published(
        "member.connected", client_user_id=member, user_id=user_id, offline_access=True
    )
    stored_profile = bridge.platform.session.get(f"{bridge.stack.url}/members/{member}/profile", timeout=10)
    assert stored_profile.status_code == 200 and stored_profile.json()["user_id"] == user_id


def test_ten_concurrent_callers_needing_a_refresh_cause_exactly_one_refresh(bridge):
    member = _member()
    assert _landing(_connect(bridge, member)) == {"status": ["connected"]}
    age_tokens(bridge.stack, member, 60)  # inside the 5-minute margin: every caller needs a refresh
    before = _connection_item(bridge, member)
    refreshes, calls = bridge.emulator.member_refreshes, _refresh_calls(bridge)
    barrier = threading.Barrier(10)
    results: list[str] = []
    errors: list[str] = []

    def caller() -> None:
        barrier.wait()
        try:
            results.append(_tokens().access_token(member))
        except BaseException:  # noqa: BLE001 - reported below, with where it came from
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=caller) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert _refresh_calls(bridge) == calls + 1
    assert bridge.emulator.member_refreshes == refreshes + 1
    assert len(results) == 10 and len(set(results)) == 1
    after = _connection_item(bridge, member)
    assert after["token_version"] == before["token_version"] + 1
    assert "refresh_lease_owner" not in after
    profile = requests.get(
        f"{bridge.emulator.base_url}/developer/v2/user/profile/basic",
        headers={"Authorization": f"Bearer {results[0]}"},
        timeout=10,
    )
    assert profile.status_code == 200


def test_the_emulator_itself_refuses_the_second_of_two_concurrent_refreshes(bridge):
    """Why the lease exists: WHOOP's rotation kills the second of two refreshes."""
    bridge.emulator.member_token_ttl_seconds = 3600
    member = _member()
    _connect(bridge, member)
    from whoop_bridge.clients import member_api
    from whoop_bridge.members import vault
    from whoop_bridge.whoop.member import InvalidGrant

    item = _connection_item(bridge, member)
    pair = vault.open_pair(member, bytes(item["sealed_tokens"]))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def refresh() -> None:
        barrier.wait()
        try:
            member_api().refresh(pair.refresh_token)
            outcomes.append("ok")
        except InvalidGrant:
            outcomes.append("invalid_grant")

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["invalid_grant", "ok"]


def test_scheduled_refresher_renews_tokens_before_they_expire(bridge):
    bridge.emulator.member_token_ttl_seconds = 600  # expires inside the refresher's 15-minute window
    member = _member()
    _connect(bridge, member)
    before = _status(bridge, member)
    refreshes = bridge.emulator.member_refreshes
    time.sleep(0.01)

    counts = bridge.stack.run_schedule("MemberSyncFunction", "RefreshTokens")

    assert counts["refreshed"] >= 1 and counts["failed"] == 0
    assert bridge.emulator.member_refreshes >= refreshes + 1
    after = _status(bridge, member)
    assert after["status"] == "connected"
    assert after["last_refreshed_at"] > before["last_refreshed_at"]


# An expired link of a known state is `link_expired`, told to the platform
# (test_member_connect_outcomes.py); a state used long ago or made up is refused.
@pytest.mark.parametrize("forgery", ["forged", "reused"])
def test_a_forged_or_reused_state_is_refused_and_nothing_is_stored(bridge, forgery):
    member = _member()
    url = _link(bridge, member)
    exchanges = bridge.emulator.member_code_exchanges
    consent = requests.get(url, allow_redirects=False, timeout=10)
    callback = consent.headers["Location"]
    state = parse_qs(urlsplit(callback).query)["state"][0]
    if forgery == "forged":
        forged = ("A" if state[0] != "A" else "B") + state[1:]
        callback = callback.replace(f"state={state}", f"state={forged}")
    else:
        first = requests.get(callback, allow_redirects=False, timeout=10)
        assert first.status_code == 302
        exchanges += 1
        for kept in ("CONNECTION", "CONNECT_ATTEMPT"):  # only the replay's effect is under test
            _table(bridge).delete_item(Key={"pk": f"MEMBER#{member}", "sk": kept})
        # Past the time a completed callback's outcome is kept for a reload.
        _table(bridge).update_item(
            Key={"pk": f"STATE#{hashlib.sha256(state.encode()).hexdigest()}", "sk": "STATE"},
            UpdateExpression="SET outcome_until = :past",
            ExpressionAttributeValues={":past": int(time.time()) - 1},
        )

    replay = requests.get(callback, allow_redirects=False, timeout=10)

    assert replay.status_code == 400
    assert "Location" not in replay.headers
    assert 'data-status="invalid_state"' in replay.text and replay.headers["Cache-Control"] == "no-store"
    assert _connection_item(bridge, member) is None
    assert bridge.platform.connection(member).status_code == 404
    assert bridge.emulator.member_code_exchanges == exchanges  # no code was exchanged for it


def test_a_reload_of_a_completed_callback_answers_the_same_outcome_and_exchanges_no_code(bridge):
    member = _member()
    consent = requests.get(_link(bridge, member), allow_redirects=False, timeout=10)
    callback = consent.headers["Location"]
    first = requests.get(callback, allow_redirects=False, timeout=10)
    assert first.status_code == 302 and first.headers["Location"].endswith("status=connected")
    exchanges, connected = bridge.emulator.member_code_exchanges, _connection_item(bridge, member)

    # The browser reloads, or the member taps twice: the same answer, nothing done again.
    reloads = [requests.get(callback, allow_redirects=False, timeout=30) for _ in range(2)]

    assert [(answer.status_code, answer.headers.get("Location")) for answer in reloads] == [
        (302, first.headers["Location"])
    ] * 2
    assert bridge.emulator.member_code_exchanges == exchanges
    assert _connection_item(bridge, member)["token_version"] == connected["token_version"]
    assert len(bridge.domain_events.published("member.connected", client_user_id=member)) == 1
    # The kept outcome is a status word: no token or code in the state's item.
    query = parse_qs(urlsplit(callback).query)
    state_item = repr(
        _table(bridge).get_item(
            Key={"pk": f"STATE#{hashlib.sha256(query['state'][0].encode()).hexdigest()}", "sk": "STATE"}
        )["Item"]
    )
    assert query["code"][0] not in state_item
    assert "connected" in state_item


def test_a_double_submit_while_the_first_callback_runs_gets_its_outcome(bridge):
    member = _member()
    consent = requests.get(_link(bridge, member), allow_redirects=False, timeout=10)
    callback = consent.headers["Location"]
    exchanges = bridge.emulator.member_code_exchanges
    bridge.emulator.inject_fault("POST", r"^/oauth/oauth2/token$", status=None, delay=1.5)  # WHOOP is slow to exchange
    answers: list[requests.Response] = []
    first = threading.Thread(target=lambda: answers.append(requests.get(callback, allow_redirects=False, timeout=30)))
    first.start()
    time.sleep(0.5)

    second = requests.get(callback, allow_redirects=False, timeout=30)
    first.join(30)

    assert answers and answers[0].status_code == 302 and answers[0].headers["Location"].endswith("status=connected")
    assert second.status_code == 302 and second.headers["Location"] == answers[0].headers["Location"]
    assert bridge.emulator.member_code_exchanges == exchanges + 1


@pytest.mark.parametrize("error", ["invalid_scope", "request_forbidden", "server_error", "temporarily_unavailable"])
def test_an_authorization_error_other_than_access_denied_is_status_error_logged_and_counted(bridge, capsys, error):
    member = _member()
    consent = requests.get(_link(bridge, member), allow_redirects=False, timeout=10)
    callback = urlsplit(consent.headers["Location"])
    state = parse_qs(callback.query)["state"][0]
    description = "Detail for member Jane Doe 1990-01-01"
    capsys.readouterr()
    errors_before = bridge.log.getvalue().count("WHOOP refused the authorization")

    params = {"error": error, "error_description": description, "state": state}
    answer = requests.get(callback._replace(query="").geturl(), params=params, allow_redirects=False, timeout=10)

    assert answer.status_code == 302 and parse_qs(urlsplit(answer.headers["Location"]).query) == {"status": ["error"]}
    _not_connected_after(bridge, member, "error", error)
    logged = [line for line in bridge.log.getvalue().splitlines() if "WHOOP refused the authorization" in line]
    assert len(logged) == errors_before + 1
    assert '"level":"ERROR"' in logged[-1] and f'"error_code":"{error}"' in logged[-1]
    assert "Jane" not in bridge.log.getvalue()
    printed = capsys.readouterr().out
    assert any('"OAuthAuthorizationFailed"' in line for line in printed.splitlines()), "the metric was not emitted"


def test_an_error_word_outside_oauths_codes_is_logged_as_unrecognised_not_as_written(bridge):
    """The callback's query is the member's to write: only OAuth's own codes reach the log."""
    member = _member()
    consent = requests.get(_link(bridge, member), allow_redirects=False, timeout=10)
    callback = urlsplit(consent.headers["Location"])
    state = parse_qs(callback.query)["state"][0]

    params = {"error": "Jane_Doe_1990-01-01", "state": state}
    answer = requests.get(callback._replace(query="").geturl(), params=params, allow_redirects=False, timeout=10)

    assert answer.status_code == 302
    logged = [line for line in bridge.log.getvalue().splitlines() if "WHOOP refused the authorization" in line]
    assert logged and '"error_code":"unrecognised_error"' in logged[-1]
    assert "Jane" not in bridge.log.getvalue()


def test_an_authorization_error_from_whoops_own_consent_page_reaches_the_platform_as_error(bridge):
    member = _member()
    url = _link(bridge, member)
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()} | {"scope": "read:everything"}
    import urllib.parse

    hops = follow_consent(parts._replace(query=urllib.parse.urlencode(query)).geturl())

    assert _landing(hops) == {"status": ["error"]}
    _not_connected_after(bridge, member, "error", "invalid_scope")


def test_declined_consent_sends_the_member_back_with_denied(bridge):
    bridge.emulator.decline_consent = True
    member = _member()

    assert _landing(_connect(bridge, member)) == {"status": ["denied"]}
    _not_connected_after(bridge, member, "denied", "access_denied")


def test_the_apps_user_limit_reaches_the_return_url_as_its_own_status(bridge):
    bridge.emulator.user_limit = len(bridge.emulator.authorized_members())
    member = _member()

    assert _landing(_connect(bridge, member)) == {"status": ["user_limit"]}
    _not_connected_after(bridge, member, "user_limit", "access_denied")


def test_without_offline_the_connection_says_so_and_ends_cleanly_at_expiry(bridge):
    bridge.emulator.withhold_scopes = {"offline"}
    member = _member()

    assert _landing(_connect(bridge, member)) == {"status": ["offline_not_granted"]}
    assert _status(bridge, member)["status"] == "offline_not_granted"
    token = _tokens().access_token(member)  # usable while the access token lives
    assert token

    age_tokens(bridge.stack, member, 0)
    # The status says so at once, before any token request finds it out.
    assert _status(bridge, member)["status"] == "reauthorization_required"
    with pytest.raises(_tokens().ReauthorizationRequired):
        _tokens().access_token(member)
    status = _status(bridge, member)
    assert (
        status["status"] == "reauthorization_required"
        and status["status_reason"] == "access_token_expired_without_offline"
    )
    assert bridge.domain_events.published(
        "member.reauthorization_required", client_user_id=member, reason="access_token_expired_without_offline"
    )


@pytest.mark.parametrize(
    "return_url",
    [
        "https://evil.example/whoop/done",
        "https://platform.example.evil.example/whoop/done",
        "https://platform.example/whoop/done/../../elsewhere",
        "http://platform.example/whoop/done",
        "https://platform.example/whoop/done#fragment",
        "javascript:alert(1)",
    ],
)
def test_a_return_url_outside_the_allowed_list_is_refused(bridge, return_url):
    answer = bridge.platform.connect_link(_member(), return_url)

    assert answer.status_code == 400
    assert [problem["field"] for problem in answer.json()["problems"]] == ["return_url"]


def test_a_return_url_may_carry_its_own_query(bridge):
    member = _member()
    hops = _connect(bridge, member, RETURN_URL + "?session=abc")

    assert _landing(hops) == {"session": ["abc"], "status": ["connected"]}


def test_without_a_return_url_the_member_sees_a_small_page(bridge):
    hops = _connect(bridge, _member(), return_url=None)

    assert hops[-1].status_code == 200
    assert hops[-1].headers["Content-Type"].startswith("text/html")
    assert 'data-status="connected"' in hops[-1].text


def test_bad_connect_requests_name_each_problem(bridge):
    answer = bridge.platform.session.post(
        f"{bridge.stack.url}/connections", json={"client_user_id": "someone@example.com", "extra": 1}, timeout=10
    )

    assert answer.status_code == 400
    assert {problem["field"] for problem in answer.json()["problems"]} == {"client_user_id", "extra"}


def test_a_whoop_account_connected_again_by_another_member_moves_to_it(bridge):
    user = bridge.emulator.add_member()["user_id"]
    bridge.emulator.signed_in_user_id = user
    first, second = _member(), _member()
    _connect(bridge, first)

    assert _landing(_connect(bridge, second)) == {"status": ["connected"]}

    assert _status(bridge, second)["user_id"] == user
    old = _status(bridge, first)
    assert old["status"] == "disconnected" and old["status_reason"] == "moved_to_another_member"
    assert "sealed_tokens" not in _connection_item(bridge, first)
    assert bridge.domain_events.published(
        "member.connection_moved", user_id=user, from_client_user_id=first, to_client_user_id=second
    )


def test_disconnect_twice_answers_204_both_times_and_revokes_once(bridge):
    member = _member()
    _connect(bridge, member)
    user_id = _status(bridge, member)["user_id"]
    revocations = bridge.emulator.revocations

    assert bridge.platform.disconnect(member).status_code == 204
    assert bridge.platform.disconnect(member).status_code == 204

    assert bridge.emulator.revocations == revocations + 1
    assert user_id not in bridge.emulator.authorized_members()
    status = _status(bridge, member)
    assert status["status"] == "disconnected" and status["access_token_expires_at"] is None
    assert "sealed_tokens" not in _connection_item(bridge, member)
    # DeleteDataOnDisconnect is on by default: the stored profile went with the tokens.
    assert bridge.platform.session.get(f"{bridge.stack.url}/members/{member}/profile", timeout=10).status_code == 404
    assert len(bridge.domain_events.published("member.disconnected", client_user_id=member)) == 1
    assert bridge.platform.disconnect("never-connected").status_code == 204


def test_a_revoke_whoop_cannot_take_now_is_finished_by_the_schedule(bridge):
    member = _member()
    _connect(bridge, member)
    revocations = bridge.emulator.revocations
    bridge.emulator.inject_fault("DELETE", r"/v2/user/access$", status=503, count=10)

    assert bridge.platform.disconnect(member).status_code == 204
    assert _status(bridge, member)["status"] == "disconnected"
    assert _connection_item(bridge, member)["revoke_pending"] is True
    assert bridge.emulator.revocations == revocations

    bridge.emulator.clear_faults()
    counts = bridge.stack.run_schedule("MemberSyncFunction", "RefreshTokens")

    assert counts["revoked"] == 1
    assert bridge.emulator.revocations == revocations + 1
    item = _connection_item(bridge, member)
    assert "sealed_tokens" not in item and "revoke_pending" not in item


def test_invalid_grant_after_a_re_read_requires_reauthorization(bridge):
    member = _member()
    _connect(bridge, member)
    user_id = _status(bridge, member)["user_id"]
    bridge.emulator.revoke_member(user_id)  # the member removed the app in WHOOP
    age_tokens(bridge.stack, member, 60)

    with pytest.raises(_tokens().ReauthorizationRequired):
        _tokens().access_token(member)

    status = _status(bridge, member)
    assert status["status"] == "reauthorization_required" and status["status_reason"] == "refresh_token_rejected"
    assert "sealed_tokens" not in _connection_item(bridge, member)
    assert bridge.domain_events.published("member.reauthorization_required", client_user_id=member, user_id=user_id)
    # Reconnecting brings the member back.
    assert _landing(_connect(bridge, member)) == {"status": ["connected"]}
    assert _status(bridge, member)["status"] == "connected"


def test_unknown_member_and_bad_ids_are_clear_errors(bridge):
    assert bridge.platform.connection("nobody-here").status_code == 404
    assert bridge.platform.connection("bad id").status_code == 400
    with pytest.raises(HandlerError):
        bridge.stack.invoke("MemberSyncFunction", {"action": "nonsense"})


def test_zz_no_token_code_state_or_secret_in_any_log_line(bridge):
    """Runs last in this module: every line the functions logged during the whole run."""
    logged = bridge.log.getvalue()
    # The audit really reads the member functions' logs.
    for message in (
        "connect link created",
        "OAuth callback completed",
        "member tokens refreshed",
        "member disconnected",
        "member must reconnect",
    ):
        assert message in logged
    credentials = bridge.emulator.issued_credentials()
    assert len(credentials) > 20 and len(SEEN_STATES) > 10
    leaked = [value[:6] + "…" for value in [*credentials, *SEEN_STATES] if value in logged]
    assert leaked == []
