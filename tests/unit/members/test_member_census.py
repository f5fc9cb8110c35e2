"""The members widget's gauge: member_sync's 10-minute upkeep writes how many members stand
in each listed status now (`MembersByStatus`, dimension `status`), counted through the ports
as the status index holds them; a count that fails is logged and counted
(`MembersNotCounted`) and never stops the token refresh. In-memory ports, no AWS."""

from __future__ import annotations

import logging
import time

import pytest
from fakes.emf import points
from fakes.members import member_ports

from whoop_bridge.members import census, jobs
from whoop_bridge.members.views import LISTED_STATUSES
from whoop_bridge.models.connect_attempt import ConnectAttempt
from whoop_bridge.models.connection import ConnectionStatus
from whoop_bridge.models.oauth_state import CallbackStatus
from whoop_bridge.whoop.member import InvalidGrant


def _members():
    fakes = member_ports()
    for number in range(3):
        fakes.connect(f"connected-{number}", user_id=100 + number)
    fakes.connect("offline-1", user_id=200, status=ConnectionStatus.OFFLINE_NOT_GRANTED)
    fakes.connect("gone-1", user_id=300, status=ConnectionStatus.DISCONNECTED)
    for member in ("never-1", "never-2", "connected-0"):  # connected-0 tried again: it is connected
        fakes.attempts.record(
            ConnectAttempt(member, CallbackStatus.DENIED, "access_denied", "2026-12-01T05:00:00Z"), []
        )
    return fakes


def _gauge(out: str) -> dict[str, float]:
    written = points(out, census.GAUGE)
    assert len(written) == len({dimensions["status"] for dimensions, _ in written})  # one point per status
    return {dimensions["status"]: value for dimensions, value in written}


def test_the_upkeep_writes_the_members_of_every_listed_status(capsys):
    fakes = _members()
    capsys.readouterr()

    counts, _metrics = jobs.upkeep(fakes.ports)

    assert _gauge(capsys.readouterr().out) == {
        "connected": 3,
        "offline_not_granted": 1,
        "reauthorization_required": 0,
        "disconnected": 1,
        "not_connected": 2,
    }
    assert set(counts) == {"refreshed", "reauthorization_required", "failed", "revoked", "events_published"}


def test_the_gauge_counts_after_the_runs_own_refreshes(capsys):
    fakes = _members()
    fakes.connect("expiring-1", user_id=400, access_expires_at=int(time.time()) + 10)
    fakes.whoop.failures["refresh"] = InvalidGrant("invalid_grant", 400)
    capsys.readouterr()

    counts, _metrics = jobs.upkeep(fakes.ports)

    assert counts["reauthorization_required"] == 1
    gauge = _gauge(capsys.readouterr().out)
    assert gauge["reauthorization_required"] == 1 and gauge["connected"] == 3


def test_a_failed_count_is_logged_and_counted_and_the_refresh_goes_on(capsys, monkeypatch):
    fakes = _members()
    fakes.connect("expiring-1", user_id=400, access_expires_at=int(time.time()) + 10)
    real = fakes.connections.count_by_status

    def throttled(status):
        if status == ConnectionStatus.CONNECTED:
            raise RuntimeError("ProvisionedThroughputExceededException")
        return real(status)

    monkeypatch.setattr(fakes.connections, "count_by_status", throttled)
    capsys.readouterr()

    # A handler on the module's own logger, not caplog's on the root: a Powertools Logger set
    # up earlier in the run stops the package's records from propagating.
    logged: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = logged.append  # type: ignore[method-assign]
    census.logger.addHandler(handler)
    try:
        counts, _metrics = jobs.upkeep(fakes.ports)
    finally:
        census.logger.removeHandler(handler)

    out = capsys.readouterr().out
    assert counts["refreshed"] == 1 and fakes.whoop.refreshes == ["refresh-0"]
    assert points(out, census.NOT_COUNTED) == [({"status": "connected"}, 1.0)]
    assert set(_gauge(out)) == set(LISTED_STATUSES) - {"connected"}
    (record,) = [record for record in logged if record.getMessage() == "members not counted"]
    assert record.status == "connected" and record.error_type == "RuntimeError"


def test_nothing_counted_still_leaves_the_upkeep_whole(capsys, monkeypatch):
    fakes = _members()

    def unavailable(*_args):
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(fakes.connections, "count_by_status", unavailable)
    monkeypatch.setattr(fakes.attempts, "count_not_connected", unavailable)
    capsys.readouterr()

    assert census.report_members_by_status(fakes.ports) == {}
    out = capsys.readouterr().out
    assert points(out, census.GAUGE) == []
    assert sorted(dimensions["status"] for dimensions, _ in points(out, census.NOT_COUNTED)) == sorted(LISTED_STATUSES)


@pytest.mark.parametrize("status", LISTED_STATUSES)
def test_each_status_is_counted_through_its_own_port(status):
    fakes = _members()

    expected = {"connected": 3, "offline_not_granted": 1, "reauthorization_required": 0, "disconnected": 1}
    assert census.count_status(status, fakes.ports) == expected.get(status, 2)
