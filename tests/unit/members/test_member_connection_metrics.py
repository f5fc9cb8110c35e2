"""The members widget of the dashboard: each change of a connection's status is counted where
it happens (`MemberConnectionChanges`, dimension `status`): a consent, a pair WHOOP no longer
honours, a disconnect. In-memory ports, no AWS."""

from __future__ import annotations

import dataclasses
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from fakes.emf import points
from fakes.members import member_ports

from whoop_bridge.members import connections, disconnect
from whoop_bridge.members.tokens import ReauthorizationRequired, TokenService
from whoop_bridge.whoop.member import InvalidGrant

METRIC = "MemberConnectionChanges"


@pytest.fixture
def fakes(monkeypatch):
    fakes = member_ports()
    monkeypatch.setattr(connections, "settings", lambda: fakes.ports.settings())
    return fakes


def _consent(fakes, member: str = "member-1") -> None:
    link = connections.create_link(member, None, "https://bridge.example/v1/oauth/whoop/callback", fakes.ports)
    state = parse_qs(urlsplit(link["authorization_url"]).query)["state"][0]
    connections.complete({"state": state, "code": "code-1"}, fakes.ports)


def test_a_consent_counts_a_connection_with_or_without_offline_access(fakes, capsys):
    capsys.readouterr()
    _consent(fakes, "member-1")
    fakes.whoop.grant = dataclasses.replace(fakes.whoop.grant, refresh_token=None)
    fakes.whoop.profile = {**fakes.whoop.profile, "user_id": 20230}
    _consent(fakes, "member-2")

    assert points(capsys.readouterr().out, METRIC) == [
        ({"status": "connected"}, 1.0),
        ({"status": "offline_not_granted"}, 1.0),
    ]


def test_a_declined_consent_counts_no_connection(fakes, capsys):
    link = connections.create_link("member-1", None, "https://bridge.example/cb", fakes.ports)
    state = parse_qs(urlsplit(link["authorization_url"]).query)["state"][0]
    capsys.readouterr()

    connections.complete({"state": state, "error": "access_denied"}, fakes.ports)

    assert points(capsys.readouterr().out, METRIC) == []


def test_a_pair_whoop_refuses_counts_a_member_needing_reauthorization_once(fakes, capsys):
    fakes.connect(access_expires_at=int(time.time()) + 10)
    fakes.whoop.failures["refresh"] = InvalidGrant("invalid_grant", 400)
    capsys.readouterr()

    for _ in range(2):
        with pytest.raises(ReauthorizationRequired):
            TokenService(ports=fakes.ports).access_token("member-1")

    assert points(capsys.readouterr().out, METRIC) == [({"status": "reauthorization_required"}, 1.0)]


def test_a_disconnect_is_counted_once_however_often_it_is_asked(fakes, capsys):
    fakes.connect()
    capsys.readouterr()

    disconnect.disconnect("member-1", ports=fakes.ports)
    disconnect.disconnect("member-1", ports=fakes.ports)

    assert points(capsys.readouterr().out, METRIC) == [({"status": "disconnected"}, 1.0)]
