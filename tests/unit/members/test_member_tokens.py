"""Token refresh rules against in-memory ports: one refresher at a time (the lease), the
new pair stored before use, `invalid_grant` believed only when nobody else rotated."""

from __future__ import annotations

import time

import pytest
from fakes.members import member_ports

from whoop_bridge.members import tokens
from whoop_bridge.members.tokens import NotConnected, ReauthorizationRequired, TokenService
from whoop_bridge.members.vault import TokenPair
from whoop_bridge.models.connection import ConnectionStatus
from whoop_bridge.whoop.member import InvalidGrant


def test_a_token_valid_beyond_the_margin_is_handed_out_without_a_refresh():
    fakes = member_ports()
    fakes.connect()

    assert TokenService(ports=fakes.ports).access_token("member-1") == "access-0"
    assert fakes.whoop.refreshes == []


def test_a_token_inside_the_margin_is_refreshed_and_the_new_pair_stored_first():
    fakes = member_ports()
    fakes.connect(access_expires_at=int(time.time()) + 60)

    token = TokenService(ports=fakes.ports).access_token("member-1")

    stored = fakes.connections.get("member-1")
    assert token == "access-2" and fakes.whoop.refreshes == ["refresh-0"]
    assert stored.token_version == 2 and stored.refresh_lease_owner is None
    assert fakes.vault.open_pair("member-1", stored.sealed_tokens) == TokenPair("access-2", "refresh-2")


def test_a_rejected_refresh_token_requires_reauthorization_and_announces_it():
    fakes = member_ports()
    fakes.connect(access_expires_at=int(time.time()) + 10)
    fakes.whoop.failures["refresh"] = InvalidGrant("invalid_grant", 400)

    with pytest.raises(ReauthorizationRequired):
        TokenService(ports=fakes.ports).access_token("member-1")

    stored = fakes.connections.get("member-1")
    assert (stored.status, stored.status_reason, stored.sealed_tokens) == (
        ConnectionStatus.REAUTHORIZATION_REQUIRED,
        "refresh_token_rejected",
        None,
    )
    assert fakes.bus.published == [
        (
            "member.reauthorization_required",
            {"client_user_id": "member-1", "user_id": 10129, "reason": "refresh_token_rejected"},
        )
    ]
    assert fakes.outbox.kept == {}  # published, so forgotten


def test_invalid_grant_after_another_caller_rotated_the_pair_uses_theirs():
    fakes = member_ports()
    fakes.connect(access_expires_at=int(time.time()) + 10)

    def rotated_meanwhile(_refresh_token):
        # Our lease lapsed and another caller stored a new pair before WHOOP refused ours.
        found = fakes.connections.items["member-1"]
        found.token_version += 1
        found.sealed_tokens = fakes.vault.seal("member-1", TokenPair("theirs", "their-refresh"))
        found.access_expires_at = int(time.time()) + 3600
        raise InvalidGrant("invalid_grant", 400)

    fakes.whoop.refresh = rotated_meanwhile

    assert TokenService(ports=fakes.ports).access_token("member-1") == "theirs"
    assert fakes.connections.get("member-1").status == ConnectionStatus.CONNECTED


def test_a_caller_that_loses_the_lease_waits_for_the_pair_the_holder_stores(monkeypatch):
    fakes = member_ports()
    fakes.connect(
        access_expires_at=int(time.time()) + 10, refresh_lease_owner="other", refresh_lease_until=time.time() + 45
    )
    polls = []

    def holder_finishes(_seconds):
        polls.append(1)
        found = fakes.connections.items["member-1"]
        found.token_version += 1
        found.sealed_tokens = fakes.vault.seal("member-1", TokenPair("from-holder", "next"))
        found.access_expires_at = int(time.time()) + 3600

    monkeypatch.setattr(tokens.time, "sleep", holder_finishes)

    assert TokenService(ports=fakes.ports).access_token("member-1") == "from-holder"
    assert polls == [1] and fakes.whoop.refreshes == []  # one refresh in all, the holder's


def test_an_offline_connection_is_usable_until_expiry_then_requires_reauthorization():
    fakes = member_ports()
    fakes.connect(
        status=ConnectionStatus.OFFLINE_NOT_GRANTED, offline_access=False, access_expires_at=int(time.time()) + 120
    )
    service = TokenService(ports=fakes.ports)

    assert service.access_token("member-1") == "access-0"  # inside the margin, but nothing to refresh with
    fakes.connections.items["member-1"].access_expires_at = int(time.time()) + 5
    with pytest.raises(ReauthorizationRequired):
        service.access_token("member-1")
    assert fakes.connections.get("member-1").status_reason == "access_token_expired_without_offline"


def test_no_token_for_a_member_never_connected_or_disconnected():
    fakes = member_ports()
    fakes.connect("gone", status=ConnectionStatus.DISCONNECTED)

    for member in ("nobody", "gone"):
        with pytest.raises(NotConnected):
            TokenService(ports=fakes.ports).access_token(member)


def test_a_failed_refresh_gives_the_lease_back():
    fakes = member_ports()
    fakes.connect(access_expires_at=int(time.time()) + 10)
    fakes.whoop.failures["refresh"] = RuntimeError("WHOOP down")

    with pytest.raises(RuntimeError):
        TokenService(ports=fakes.ports).access_token("member-1")
    assert fakes.connections.get("member-1").refresh_lease_owner is None


def test_the_scheduled_refresh_counts_each_member():
    fakes = member_ports()
    soon = int(time.time()) + 60
    fakes.connect("fresh", 1, access_expires_at=soon)
    fakes.connect("dead", 2, access_expires_at=soon, sealed_tokens=fakes.vault.seal("dead", TokenPair("a", "revoked")))
    fakes.connect("later", 3)  # expires beyond the margin: not listed

    counts = TokenService(ports=fakes.ports).refresh_expiring(margin=900)

    assert counts == {"refreshed": 1, "reauthorization_required": 1, "failed": 0}
    assert fakes.connections.get("later").token_version == 1
