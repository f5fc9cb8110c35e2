"""The lab's dashboard metrics from the state machine's steps against in-memory ports: a test
counted per status WHOOP accepted, and the seconds from the order's arrival to ORDER_CONFIRMED
and to FULL_RESULTS_READY, measured from the stored times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes.emf import points
from fakes.lab import FakePartnerClient, fake_ports

from whoop_bridge import caches, times
from whoop_bridge.lab import lifecycle
from whoop_bridge.lab.measures import seconds_from_order
from whoop_bridge.models.service_request import ServiceRequestRecord
from whoop_bridge.models.task_status import TaskBusinessStatus as S

SR, REQ = "sr-1", "req-1"


@pytest.fixture
def ports():
    """A test of an order that arrived three minutes ago (settings as they come, caches fresh)."""
    caches.reset_all()
    ports = fake_ports()
    ports.requisitions.put_received({"id": REQ}, times.iso(datetime.now(UTC) - timedelta(minutes=3)), [SR], [])
    ports.service_requests.add(ServiceRequestRecord(SR, REQ, code="CBC"))
    yield ports
    caches.reset_all()


def test_each_status_accepted_is_counted_by_status_and_timed_from_the_order_where_it_matters(ports, capsys):
    client = FakePartnerClient()
    capsys.readouterr()

    for status in (S.ORDER_CONFIRMED, S.APPOINTMENT_ATTENDED, S.FULL_RESULTS_READY):
        lifecycle.set_status(client, SR, status.value, ports=ports)

    out = capsys.readouterr().out
    assert points(out, "StatusSent") == [
        ({"task_business_status": "ORDER_CONFIRMED"}, 1.0),
        ({"task_business_status": "APPOINTMENT_ATTENDED"}, 1.0),
        ({"task_business_status": "FULL_RESULTS_READY"}, 1.0),
    ]
    timed = points(out, "TimeFromOrderReceived")
    assert [dimensions for dimensions, _ in timed] == [
        {"task_business_status": "ORDER_CONFIRMED"},
        {"task_business_status": "FULL_RESULTS_READY"},
    ]
    assert all(180 <= seconds < 240 for _, seconds in timed)  # the order arrived three minutes ago


def test_an_issue_status_is_counted_under_its_own_name(ports, capsys):
    capsys.readouterr()
    lifecycle.set_status(FakePartnerClient(), SR, S.ORDER_ISSUE.value, reason="code not offered", ports=ports)

    out = capsys.readouterr().out
    assert points(out, "StatusSent") == [({"task_business_status": "ORDER_ISSUE"}, 1.0)]
    assert points(out, "TimeFromOrderReceived") == []


def test_a_retried_step_counts_nothing_again(ports, capsys):
    client = FakePartnerClient()
    lifecycle.set_status(client, SR, S.ORDER_CONFIRMED.value, ports=ports)
    capsys.readouterr()

    assert lifecycle.set_status(client, SR, S.ORDER_CONFIRMED.value, ports=ports)["repeated"] is True

    out = capsys.readouterr().out
    assert points(out, "StatusSent") == [] and points(out, "TimeFromOrderReceived") == []


def test_the_time_is_taken_from_the_first_entry_of_the_status_in_the_history():
    history = [
        {"task_business_status": "ORDER_CONFIRMED", "at": "2026-12-01T10:00:30.000Z"},
        {"task_business_status": "PARTIAL_RESULTS_READY", "at": "2026-12-02T09:00:00.000Z"},
        {"task_business_status": "PARTIAL_RESULTS_READY", "at": "2026-12-02T10:00:00.000Z"},
    ]
    received = "2026-12-01T10:00:00.000Z"
    assert seconds_from_order(received, history, "ORDER_CONFIRMED") == 30.0
    assert seconds_from_order(received, history, "PARTIAL_RESULTS_READY") == 23 * 3600
    assert seconds_from_order(received, history, "FULL_RESULTS_READY") is None
    assert seconds_from_order(None, history, "ORDER_CONFIRMED") is None
    assert seconds_from_order("yesterday", history, "ORDER_CONFIRMED") is None
