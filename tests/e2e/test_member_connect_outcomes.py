"""Every connect outcome reaches the platform, end to end: the member's browser through the
emulator's consent page (its OAuth switches and injected faults) and the bridge's callback;
the platform reads `last_attempt` at `GET /connections/{id}`, lists connections by status,
and hears `member.connection_failed` on the bus. The fallback pages carry the platform's
name (escaped) and colours, and a reload of a finished page shows the same outcome."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from conftest import running_harness

from local.demo import DEMO_RETURN_URL as RETURN_URL
from local.demo import follow_consent

PAGE_NAME = 'Acme <Health> & "Co"'
PAGE_COLOR = "#0a7cff"
TOKEN_PATH = r"^/oauth/oauth2/token$"


@pytest.fixture(scope="module")
def _module_bridge() -> Any:
    yield from running_harness(
        {"ConnectPageName": PAGE_NAME, "ConnectPageColor": PAGE_COLOR, "ConnectPageBackgroundColor": "#fafafa"}
    )


def _member() -> str:
    return f"member-{uuid.uuid4().hex[:10]}"


def _link(bridge, member: str, return_url: str | None = RETURN_URL) -> str:
    answer = bridge.platform.connect_link(member, return_url)
    assert answer.status_code == 201, answer.text
    return answer.json()["authorization_url"]


def _status_on_return_url(hops: list[requests.Response]) -> str:
    assert hops[-1].status_code == 302, hops[-1].text
    location = hops[-1].headers["Location"]
    assert location.startswith(RETURN_URL + "?")
    (status,) = parse_qs(urlsplit(location).query)["status"]
    return status


def _connection(bridge, member: str) -> dict[str, Any]:
    answer = bridge.platform.connection(member)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _listing(bridge, **query: Any) -> requests.Response:
    return bridge.platform.session.get(f"{bridge.stack.url}/connections", params=query, timeout=30)


def _listed(bridge, status: str, limit: int = 2) -> list[dict[str, Any]]:
    """Every entry of `status`, page by page."""
    entries, token = [], None
    while True:
        answer = _listing(bridge, status=status, limit=limit, **({"next_token": token} if token else {}))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["connections"]) <= limit
        entries += page["connections"]
        token = page["next_token"]
        if token is None:
            return entries


def _failed_once(bridge, member: str, outcome: str, reason: str) -> None:
    """The platform sees the failure: last_attempt on the connection, one bus message."""
    attempt = _connection(bridge, member)["last_attempt"]
    assert (attempt["outcome"], attempt["reason"]) == (outcome, reason)
    (message,) = bridge.domain_events.published("member.connection_failed", client_user_id=member)
    assert message == {
        "version": "1",
        "client_user_id": member,
        "outcome": outcome,
        "reason": reason,
        "at": attempt["at"],
    }


def _never_connected(bridge, member: str) -> None:
    status = _connection(bridge, member)
    assert status["status"] == "not_connected" and status["user_id"] is None and status["scopes"] is None
    assert member in [entry["client_user_id"] for entry in _listed(bridge, "not_connected", limit=25)]


def _state_item_key(authorization_url: str) -> dict[str, str]:
    state = parse_qs(urlsplit(authorization_url).query)["state"][0]
    return {"pk": f"STATE#{hashlib.sha256(state.encode()).hexdigest()}", "sk": "STATE"}


def _table(bridge) -> Any:
    return boto3.resource("dynamodb", region_name="us-east-1").Table(bridge.stack.output("MemberTable"))


def test_declined_consent_reaches_the_platform(bridge):
    bridge.emulator.decline_consent = True
    member = _member()

    assert _status_on_return_url(follow_consent(_link(bridge, member))) == "denied"

    _failed_once(bridge, member, "denied", "access_denied")
    _never_connected(bridge, member)


def test_the_apps_user_limit_reaches_the_platform(bridge):
    bridge.emulator.user_limit = len(bridge.emulator.authorized_members())
    member = _member()

    assert _status_on_return_url(follow_consent(_link(bridge, member))) == "user_limit"

    _failed_once(bridge, member, "user_limit", "access_denied")
    _never_connected(bridge, member)


def test_whoops_token_endpoint_failing_past_every_retry_reaches_the_platform(bridge):
    bridge.emulator.inject_fault("POST", TOKEN_PATH, status=503, count=20)
    member = _member()

    assert _status_on_return_url(follow_consent(_link(bridge, member))) == "error"

    _failed_once(bridge, member, "error", "whoop_unavailable")
    _never_connected(bridge, member)


def test_an_invalid_grant_at_the_code_exchange_reaches_the_platform_without_whoops_text(bridge):
    refusal = {"error": "invalid_grant", "error_description": "code for Jane Doe already used"}
    bridge.emulator.inject_fault("POST", TOKEN_PATH, status=400, body=refusal)
    member = _member()

    assert _status_on_return_url(follow_consent(_link(bridge, member))) == "error"

    _failed_once(bridge, member, "error", "invalid_grant")
    assert "Jane" not in str(bridge.domain_events.seen) and "Jane" not in bridge.log.getvalue()


def test_a_consent_without_the_profile_scope_is_scopes_missing_and_the_grant_is_revoked(bridge):
    bridge.emulator.withhold_scopes = {"read:profile"}
    member = _member()
    revocations = bridge.emulator.revocations

    assert _status_on_return_url(follow_consent(_link(bridge, member))) == "scopes_missing"

    _failed_once(bridge, member, "scopes_missing", "read_profile_not_granted")
    _never_connected(bridge, member)
    assert bridge.emulator.revocations == revocations + 1


def test_an_expired_link_reaches_the_platform_once_and_a_reload_gets_the_same(bridge):
    member = _member()
    url = _link(bridge, member)
    exchanges = bridge.emulator.member_code_exchanges
    consent = requests.get(url, allow_redirects=False, timeout=10)
    _table(bridge).update_item(
        Key=_state_item_key(url),
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 60},
    )

    answers = [requests.get(consent.headers["Location"], allow_redirects=False, timeout=30) for _ in range(2)]

    assert [answer.status_code for answer in answers] == [302, 302]
    assert answers[0].headers["Location"] == answers[1].headers["Location"] == f"{RETURN_URL}?status=link_expired"
    _failed_once(bridge, member, "link_expired", "link_expired")
    _never_connected(bridge, member)
    assert bridge.emulator.member_code_exchanges == exchanges  # no code exchanged for it


def test_a_success_is_the_last_attempt_and_no_failure_is_published(bridge):
    member = _member()

    assert _status_on_return_url(follow_consent(_link(bridge, member))) == "connected"

    status = _connection(bridge, member)
    assert status["status"] == "connected" and status["last_attempt"]["outcome"] == "connected"
    assert status["last_attempt"]["reason"] is None
    assert bridge.domain_events.published("member.connection_failed", client_user_id=member) == []
    assert member in [entry["client_user_id"] for entry in _listed(bridge, "connected")]


def test_a_connected_members_failed_retry_leaves_the_connection_working(bridge):
    member = _member()
    assert _status_on_return_url(follow_consent(_link(bridge, member))) == "connected"
    before = _connection(bridge, member)
    item = _table(bridge).get_item(Key={"pk": f"MEMBER#{member}", "sk": "CONNECTION"})["Item"]
    bridge.emulator.decline_consent = True

    assert _status_on_return_url(follow_consent(_link(bridge, member))) == "denied"

    after = _connection(bridge, member)
    moving = ("last_attempt", "backfill")  # the backfill runs meanwhile
    assert {key: value for key, value in after.items() if key not in moving} == {
        key: value for key, value in before.items() if key not in moving
    }
    assert _table(bridge).get_item(Key={"pk": f"MEMBER#{member}", "sk": "CONNECTION"})["Item"] == item
    _failed_once(bridge, member, "denied", "access_denied")
    from whoop_bridge.members import tokens

    assert tokens.access_token(member)  # the tokens still work
    assert member not in [entry["client_user_id"] for entry in _listed(bridge, "not_connected", limit=25)]


@pytest.mark.parametrize(("declined", "status", "code"), [(False, "connected", 200), (True, "denied", 200)])
def test_a_reload_of_a_finished_page_shows_the_same_outcome(bridge, declined, status, code):
    bridge.emulator.decline_consent = declined
    member = _member()
    consent = requests.get(_link(bridge, member, return_url=None), allow_redirects=False, timeout=10)
    callback = consent.headers["Location"]
    exchanges = bridge.emulator.member_code_exchanges

    pages = [requests.get(callback, allow_redirects=False, timeout=30) for _ in range(3)]

    assert [page.status_code for page in pages] == [code] * 3
    assert all(f'data-status="{status}"' in page.text for page in pages)
    assert pages[1].text == pages[0].text == pages[2].text
    assert bridge.emulator.member_code_exchanges == exchanges + (0 if declined else 1)
    assert len(bridge.domain_events.published("member.connection_failed", client_user_id=member)) == int(declined)


def test_the_pages_carry_the_platforms_name_escaped_and_its_colours_for_a_web_view(bridge):
    bridge.emulator.decline_consent = True

    hops = follow_consent(_link(bridge, _member(), return_url=None))

    page = hops[-1]
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Acme &lt;Health&gt; &amp; &quot;Co&quot;" in page.text and "<Health>" not in page.text
    assert f"color: {PAGE_COLOR}" in page.text and "background: #fafafa" in page.text
    assert 'name="viewport"' in page.text and "close" not in page.text.lower()


def test_the_list_pages_by_status_and_refuses_bad_parameters_naming_each(bridge):
    members = [_member() for _ in range(3)]
    for member in members:
        assert _status_on_return_url(follow_consent(_link(bridge, member))) == "connected"
    assert bridge.platform.disconnect(members[0]).status_code == 204

    connected = _listed(bridge, "connected", limit=2)
    disconnected = _listed(bridge, "disconnected", limit=1)

    ids = [entry["client_user_id"] for entry in connected]
    assert set(members[1:]) <= set(ids) and members[0] not in ids and len(ids) == len(set(ids))
    assert ids == sorted(ids) and {entry["status"] for entry in connected} == {"connected"}
    assert members[0] in [entry["client_user_id"] for entry in disconnected]
    assert {entry["status"] for entry in disconnected} == {"disconnected"}
    assert all("token" not in key for entry in connected for key in entry if key != "access_token_expires_at")

    bad = _listing(bridge, status="failed-ish", limit=0)
    assert bad.status_code == 400
    assert {problem["field"] for problem in bad.json()["problems"]} == {"query.status", "query.limit"}
    assert _listing(bridge).status_code == 400  # a status is required
    foreign = _listing(bridge, status="connected", limit=1).json()["next_token"]
    assert foreign is not None
    for token in ("not-a-token", foreign):
        refused = _listing(bridge, status="disconnected", next_token=token)
        assert refused.status_code == 400
        assert [problem["field"] for problem in refused.json()["problems"]] == ["query.next_token"]
