"""Every connect outcome reaches the platform: the callback's outcome for a known link is
the member's last attempt (outcome, reason, time), a failure is announced as
`member.connection_failed` (no token, no WHOOP text), and a failed retry leaves a working
connection alone. Against in-memory ports."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from fakes.emf import points
from fakes.members import member_ports

from whoop_bridge.config import DEFAULT_OAUTH_SCOPES
from whoop_bridge.members import connections, views
from whoop_bridge.models.connection import ConnectionStatus
from whoop_bridge.models.oauth_state import CallbackStatus
from whoop_bridge.secrets import SecretNotConfigured
from whoop_bridge.whoop.http import WhoopRequestRejected, WhoopTransientError, WhoopUnauthorized
from whoop_bridge.whoop.member import InvalidGrant, TokenGrant, UserLimitReached

RETURN_URL = "https://platform.example/whoop/done"
ALL_SCOPES = DEFAULT_OAUTH_SCOPES


@pytest.fixture
def fakes(monkeypatch):
    fakes = member_ports()
    monkeypatch.setattr(connections, "settings", lambda: fakes.ports.settings())
    fakes.whoop.grant = TokenGrant("access-1", 3600, "refresh-1", ALL_SCOPES)
    return fakes


def _link(fakes, member: str = "member-1", return_url: str | None = RETURN_URL) -> str:
    link = connections.create_link(member, return_url, "https://bridge.example/v1/oauth/whoop/callback", fakes.ports)
    return parse_qs(urlsplit(link["authorization_url"]).query)["state"][0]


def _failures(fakes) -> list[dict]:
    return [detail for detail_type, detail in fakes.bus.published if detail_type == "member.connection_failed"]


ERRORS = [
    ({"error": "access_denied"}, {}, CallbackStatus.DENIED, "access_denied"),
    (
        {"error": "access_denied", "error_description": "This application has reached its user limit"},
        {},
        CallbackStatus.USER_LIMIT,
        "access_denied",
    ),
    ({"error": "server_error"}, {}, CallbackStatus.ERROR, "server_error"),
    ({"error": "temporarily_unavailable"}, {}, CallbackStatus.ERROR, "temporarily_unavailable"),
    ({"error": "<b>Jane Doe</b>"}, {}, CallbackStatus.ERROR, "unrecognised_error"),
    ({"error": "made_up_code"}, {}, CallbackStatus.ERROR, "unrecognised_error"),
    ({}, {}, CallbackStatus.ERROR, "no_code"),
    ({"code": "c"}, {"exchange_code": InvalidGrant("invalid_grant", 400)}, CallbackStatus.ERROR, "invalid_grant"),
    ({"code": "c"}, {"exchange_code": WhoopTransientError("5xx", 503)}, CallbackStatus.ERROR, "whoop_unavailable"),
    ({"code": "c"}, {"exchange_code": WhoopUnauthorized("401", 401)}, CallbackStatus.ERROR, "invalid_client"),
    ({"code": "c"}, {"exchange_code": WhoopRequestRejected("400", 400)}, CallbackStatus.ERROR, "whoop_refused"),
    (
        {"code": "c"},
        {"exchange_code": UserLimitReached("user limit", 400, "access_denied")},
        CallbackStatus.USER_LIMIT,
        "access_denied",
    ),
    ({"code": "c"}, {"exchange_code": UserLimitReached("user limit", 400)}, CallbackStatus.USER_LIMIT, "whoop_refused"),
    ({"code": "c"}, {"basic_profile": WhoopTransientError("5xx", 502)}, CallbackStatus.ERROR, "profile_unreadable"),
]


@pytest.mark.parametrize(("query", "failures", "status", "reason"), ERRORS)
def test_each_failed_outcome_is_the_last_attempt_and_is_published_with_its_reason(
    fakes, capsys, query, failures, status, reason
):
    fakes.whoop.failures.update(failures)
    capsys.readouterr()
    query = {"error_description": "Detail about member Jane Doe 1990-01-01", **query}

    outcome = connections.complete({"state": _link(fakes), **query}, fakes.ports)

    assert (outcome.status, outcome.location) == (status, f"{RETURN_URL}?status={status}")
    attempt = fakes.attempts.get("member-1")
    assert (attempt.outcome, attempt.reason) == (status, reason) and attempt.at.endswith("Z")
    assert _failures(fakes) == [
        {"client_user_id": "member-1", "outcome": str(status), "reason": reason, "at": attempt.at}
    ]
    assert fakes.connections.items == {} and fakes.outbox.kept == {}  # published, then forgotten
    published = json.dumps(fakes.bus.published)
    assert "Jane" not in published and "access-1" not in published and "<b>" not in published
    assert points(capsys.readouterr().out, "MemberConnectAttempts") == [({"outcome": str(status)}, 1.0)]


def test_a_grant_without_read_profile_is_scopes_missing_revoked_and_not_stored(fakes):
    fakes.whoop.grant = TokenGrant("access-1", 3600, "refresh-1", ("offline", "read:sleep"))

    outcome = connections.complete({"state": _link(fakes), "code": "c"}, fakes.ports)

    assert outcome.status == CallbackStatus.SCOPES_MISSING
    assert fakes.whoop.revoked == ["access-1"] and fakes.connections.items == {}
    assert fakes.attempts.get("member-1").reason == "read_profile_not_granted"
    assert [detail["outcome"] for detail in _failures(fakes)] == ["scopes_missing"]


def test_a_connection_that_cannot_be_stored_is_recorded_as_not_stored(fakes):
    def refuse(*_args, **_kwargs):
        raise RuntimeError("DynamoDB down")

    fakes.connections.save = refuse

    connections.complete({"state": _link(fakes), "code": "c"}, fakes.ports)

    attempt = fakes.attempts.get("member-1")
    assert (attempt.outcome, attempt.reason) == ("error", "connection_not_stored")


def test_the_member_app_without_credentials_is_recorded_as_not_configured(fakes):
    def unconfigured():
        raise SecretNotConfigured("placeholders")

    state = _link(fakes)
    ports = dataclasses.replace(fakes.ports, whoop=unconfigured)

    outcome = connections.complete({"state": state, "code": "c"}, ports)

    assert outcome.status == CallbackStatus.NOT_CONFIGURED and outcome.location.endswith("status=not_configured")
    assert fakes.attempts.get("member-1").outcome == "not_configured"


@pytest.mark.parametrize(
    ("granted", "reason"),
    [(ALL_SCOPES, None), (("offline", "read:profile", "read:sleep"), "scopes_partly_granted")],
)
def test_a_success_is_the_last_attempt_and_publishes_no_failure(fakes, granted, reason):
    fakes.whoop.grant = TokenGrant("access-1", 3600, "refresh-1", granted)

    connections.complete({"state": _link(fakes), "code": "c"}, fakes.ports)

    attempt = fakes.attempts.get("member-1")
    assert (attempt.outcome, attempt.reason) == ("connected", reason)
    assert _failures(fakes) == [] and [kind for kind, _ in fakes.bus.published] == ["member.connected"]


def test_a_connected_member_who_retries_and_declines_stays_connected_with_the_failure_visible(fakes):
    connections.complete({"state": _link(fakes), "code": "c"}, fakes.ports)
    before = fakes.connections.get("member-1")

    connections.complete({"state": _link(fakes), "error": "access_denied"}, fakes.ports)

    after = fakes.connections.get("member-1")
    assert (after.status, after.token_version, after.sealed_tokens) == (
        ConnectionStatus.CONNECTED,
        before.token_version,
        before.sealed_tokens,
    )
    view = views.connection_status("member-1", fakes.ports)
    assert view["status"] == "connected" and view["user_id"] == 10129
    assert view["last_attempt"]["outcome"] == "denied" and view["last_attempt"]["reason"] == "access_denied"
    assert [detail["outcome"] for detail in _failures(fakes)] == ["denied"]


def test_a_link_opened_after_it_expired_is_link_expired_recorded_once_and_a_reload_gets_the_same(fakes):
    state = _link(fakes)
    fakes.oauth_states.states[hashlib.sha256(state.encode()).hexdigest()].expires_at = 1  # long gone

    first = connections.complete({"state": state, "code": "c"}, fakes.ports)
    reload = connections.complete({"state": state, "code": "c"}, fakes.ports)

    assert first.location == f"{RETURN_URL}?status=link_expired" and not first.repeated
    assert (reload.status, reload.location, reload.repeated) == (first.status, first.location, True)
    assert (fakes.attempts.get("member-1").outcome, fakes.attempts.get("member-1").reason) == (
        "link_expired",
        "link_expired",
    )
    assert [detail["outcome"] for detail in _failures(fakes)] == ["link_expired"]  # once, not per reload
    assert fakes.whoop.revoked == [] and fakes.connections.items == {}


def test_a_reload_of_a_finished_failure_gets_the_same_outcome_and_records_nothing_more(fakes):
    state = _link(fakes, return_url=None)
    first = connections.complete({"state": state, "error": "access_denied"}, fakes.ports)
    at = fakes.attempts.get("member-1").at

    reloads = [connections.complete({"state": state, "error": "access_denied"}, fakes.ports) for _ in range(2)]

    assert [(answer.status, answer.repeated) for answer in reloads] == [(first.status, True)] * 2
    assert fakes.attempts.get("member-1").at == at and len(_failures(fakes)) == 1


def test_an_unknown_state_is_recorded_for_nobody(fakes):
    _link(fakes)

    outcome = connections.complete({"state": "made-up-state", "error": "access_denied"}, fakes.ports)

    assert outcome.status == CallbackStatus.INVALID_STATE and fakes.attempts.last == {} and fakes.bus.published == []


def test_a_failure_the_bus_refuses_stays_in_the_outbox(fakes):
    fakes.bus.refusing = True

    connections.complete({"state": _link(fakes), "error": "access_denied"}, fakes.ports)

    (kept,) = fakes.outbox.kept.values()
    assert kept.detail_type == "member.connection_failed" and kept.detail["client_user_id"] == "member-1"


def test_an_attempt_that_cannot_be_recorded_still_answers_the_member_and_is_counted_for_an_alarm(fakes, capsys):
    def refuse(*_args, **_kwargs):
        raise RuntimeError("DynamoDB down")

    fakes.attempts.record = refuse
    capsys.readouterr()

    outcome = connections.complete({"state": _link(fakes), "error": "access_denied"}, fakes.ports)

    assert outcome.status == CallbackStatus.DENIED and fakes.bus.published == []
    # The platform never hears of this failure: the operator must (MemberConnectAttemptNotRecordedAlarm).
    assert points(capsys.readouterr().out, "MemberConnectAttemptNotRecorded") == [({}, 1.0)]


# What the member API shows -------------------------------------------------------------------


def test_a_member_who_only_ever_failed_shows_not_connected_with_the_attempt(fakes):
    assert views.connection_status("member-1", fakes.ports) is None  # before any attempt: 404

    connections.complete({"state": _link(fakes), "error": "access_denied"}, fakes.ports)

    view = views.connection_status("member-1", fakes.ports)
    assert view["status"] == "not_connected" and view["user_id"] is None and view["access_token_expires_at"] is None
    assert view["last_attempt"]["outcome"] == "denied"


def test_the_list_by_status_pages_through_and_not_connected_leaves_out_members_who_connected(fakes):
    for number in range(5):
        fakes.connect(f"member-c{number}", 20000 + number)
    fakes.connect("member-gone", 30000, status=ConnectionStatus.DISCONNECTED)
    connections.complete({"state": _link(fakes, "member-n1"), "error": "access_denied"}, fakes.ports)
    connections.complete({"state": _link(fakes, "member-n2"), "code": "c"}, fakes.ports)  # connects: not listed
    fakes.whoop.grant = TokenGrant("access-2", 3600, "refresh-2", ALL_SCOPES)

    first = views.connection_page("connected", 2, None, fakes.ports)
    second = views.connection_page("connected", 2, first["next_token"], fakes.ports)
    third = views.connection_page("connected", 2, second["next_token"], fakes.ports)
    listed = [entry["client_user_id"] for page in (first, second, third) for entry in page["connections"]]

    assert listed == ["member-c0", "member-c1", "member-c2", "member-c3", "member-c4", "member-n2"]
    assert third["next_token"] is None and all("backfill" not in entry for entry in third["connections"])
    assert third["connections"][-1]["last_attempt"]["outcome"] == "connected"
    never = views.connection_page("not_connected", 25, None, fakes.ports)["connections"]
    assert [(entry["client_user_id"], entry["last_attempt"]["outcome"]) for entry in never] == [("member-n1", "denied")]
    gone = views.connection_page("disconnected", 25, None, fakes.ports)["connections"]
    assert [entry["client_user_id"] for entry in gone] == ["member-gone"]
