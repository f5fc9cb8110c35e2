"""Connect links, WHOOP's callback outcomes and disconnects against in-memory ports."""

from __future__ import annotations

import dataclasses
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from fakes.members import member_ports

from whoop_bridge.members import connections, disconnect
from whoop_bridge.models.connection import ConnectionStatus
from whoop_bridge.models.oauth_state import CallbackStatus
from whoop_bridge.secrets import SecretNotConfigured
from whoop_bridge.whoop.http import WhoopTransientError
from whoop_bridge.whoop.member import TokenGrant, UserLimitReached

RETURN_URL = "https://platform.example/whoop/done"


def _link(fakes, member: str = "member-1") -> str:
    """A connect link's state, as WHOOP hands it back."""
    link = connections.create_link(member, RETURN_URL, "https://bridge.example/v1/oauth/whoop/callback", fakes.ports)
    return parse_qs(urlsplit(link["authorization_url"]).query)["state"][0]


@pytest.fixture
def fakes(monkeypatch):
    fakes = member_ports()
    monkeypatch.setattr(connections, "settings", lambda: fakes.ports.settings())
    return fakes


def test_a_link_stores_only_the_hash_of_its_state(fakes):
    state = _link(fakes)

    (stored,) = fakes.oauth_states.states
    assert stored == hashlib.sha256(state.encode()).hexdigest() and state not in stored


def test_consent_with_offline_access_connects_and_announces_it(fakes):
    state = _link(fakes)

    outcome = connections.complete({"state": state, "code": "code-1"}, fakes.ports)

    stored = fakes.connections.get("member-1")
    assert outcome.status == CallbackStatus.CONNECTED and outcome.location == f"{RETURN_URL}?status=connected"
    assert (stored.status, stored.user_id, stored.token_version, stored.refreshable) == ("connected", 10129, 1, True)
    assert fakes.items.get("member-1", "PROFILE") is None  # the profile rides in the connection's transaction
    assert [detail_type for detail_type, _ in fakes.bus.published] == ["member.connected"]


def test_consent_without_offline_access_is_offline_not_granted(fakes):
    fakes.whoop.grant = TokenGrant("access-1", 3600, None, ("read:profile",))

    outcome = connections.complete({"state": _link(fakes), "code": "code-1"}, fakes.ports)

    assert outcome.status == CallbackStatus.OFFLINE_NOT_GRANTED
    assert fakes.connections.get("member-1").status == ConnectionStatus.OFFLINE_NOT_GRANTED


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"error": "access_denied"}, CallbackStatus.DENIED),
        ({"error": "server_error"}, CallbackStatus.ERROR),
        ({}, CallbackStatus.ERROR),  # neither a code nor an error
    ],
)
def test_a_callback_without_consent_stores_no_connection(fakes, query, status):
    outcome = connections.complete({"state": _link(fakes), **query}, fakes.ports)

    assert outcome.status == status and fakes.connections.items == {}


def test_the_user_limit_at_the_code_exchange_is_its_own_outcome(fakes):
    fakes.whoop.failures["exchange_code"] = UserLimitReached("user limit", 400)

    assert connections.complete({"state": _link(fakes), "code": "c"}, fakes.ports).status == CallbackStatus.USER_LIMIT


def test_a_repeated_callback_gets_the_same_outcome_and_a_made_up_state_none(fakes):
    state = _link(fakes)
    first = connections.complete({"state": state, "code": "code-1"}, fakes.ports)

    again = connections.complete({"state": state, "code": "code-1"}, fakes.ports)

    assert (again.status, again.repeated, first.repeated) == (first.status, True, False)
    assert connections.complete({"state": "made-up", "code": "c"}, fakes.ports).status == CallbackStatus.INVALID_STATE


def test_a_connection_that_cannot_be_stored_is_revoked_and_answered_error(fakes):
    def refuse(*_args, **_kwargs):
        raise RuntimeError("DynamoDB down")

    fakes.connections.save = refuse

    outcome = connections.complete({"state": _link(fakes), "code": "code-1"}, fakes.ports)

    assert outcome.status == CallbackStatus.ERROR and fakes.whoop.revoked == ["access-1"]


def test_without_the_member_app_secret_the_callback_fails_closed(fakes):
    def unconfigured():
        raise SecretNotConfigured("placeholders")

    state = _link(fakes)
    outcome = connections.complete({"state": state, "code": "c"}, dataclasses.replace(fakes.ports, whoop=unconfigured))

    assert outcome.status == CallbackStatus.NOT_CONFIGURED and fakes.connections.items == {}


def test_a_reconnect_with_the_account_of_another_member_moves_it(fakes):
    fakes.connect("member-0", 10129)

    connections.complete({"state": _link(fakes), "code": "code-1"}, fakes.ports)

    moved = fakes.connections.get("member-0")
    assert (moved.status, moved.status_reason) == ("disconnected", "moved_to_another_member")
    assert fakes.connections.whoop_user_owner(10129) == "member-1"
    assert [detail_type for detail_type, _ in fakes.bus.published] == ["member.connected", "member.connection_moved"]


# Disconnect ----------------------------------------------------------------------------------


def test_a_disconnect_revokes_at_whoop_drops_tokens_and_data_and_announces_it():
    fakes = member_ports()
    fakes.connect()
    fakes.items.put("member-1", "PROFILE", {"user_id": 10129})

    disconnect.disconnect("member-1", ports=fakes.ports)

    stored = fakes.connections.get("member-1")
    assert fakes.whoop.revoked == ["access-0"]
    assert (stored.status, stored.sealed_tokens, stored.revoke_pending) == ("disconnected", None, None)
    assert fakes.items.items == {} and fakes.connections.whoop_user_owner(10129) is None
    assert fakes.bus.published[-1] == (
        "member.disconnected",
        {"client_user_id": "member-1", "user_id": 10129, "data_deleted": True},
    )
    disconnect.disconnect("member-1", ports=fakes.ports)  # a repeat changes nothing
    assert len(fakes.bus.published) == 1


def test_a_revoke_whoop_cannot_take_now_is_kept_pending_and_done_by_the_schedule():
    fakes = member_ports(delete_data_on_disconnect=False)
    fakes.connect()
    fakes.whoop.failures["revoke"] = [WhoopTransientError("down", 503)]

    disconnect.disconnect("member-1", ports=fakes.ports)

    pending = fakes.connections.get("member-1")
    assert pending.revoke_pending and pending.sealed_tokens and fakes.whoop.revoked == []
    assert disconnect.retry_pending_revocations(fakes.ports) == 1
    assert fakes.whoop.revoked == ["access-0"] and fakes.connections.get("member-1").sealed_tokens is None
    assert disconnect.retry_pending_revocations(fakes.ports) == 0
