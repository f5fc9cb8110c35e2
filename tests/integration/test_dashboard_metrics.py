"""The dashboard's metrics on the local stack: an order taken in and confirmed through the
real handlers (requisition_processor, the state machine, service_request_tasks) writes its
EMF lines whole, next to the handlers' own flushed set, while the local stack runs handlers
as threads of one process (local/moto_patches.py `atomic_metric_flushes`); member_sync's
10-minute run writes the members per status as the status index holds them."""

from __future__ import annotations

import time
from collections import Counter

import boto3
from fakes.emf import dimension_sets, emf_lines, points

from integration_harness import load_event
from whoop_bridge.models.connect_attempt import ConnectAttempt
from whoop_bridge.models.connection import Connection, ConnectionStatus
from whoop_bridge.models.oauth_state import CallbackStatus
from whoop_bridge.store import connect_attempt_store, connection_store


def test_an_order_confirmed_writes_its_calls_status_and_time_from_the_order(bridge, capsys):
    capsys.readouterr()

    requisition = bridge.process_requisition(["LIPID_PANEL", "CBC"])

    out = capsys.readouterr().out
    assert len(emf_lines(out, "RequisitionReceived")) == 1  # the handler's shared set, flushed once
    routes = [dimensions["route"] for dimensions, _ in points(out, "WhoopCalls")]
    assert routes.count("GET /v2/partner/requisition/{id}") == 1
    assert routes.count("PATCH /v2/partner/service-request/{id}/status") == 2
    ids = [requisition["id"], *(service_request["id"] for service_request in requisition["service_requests"])]
    assert not [route for route in routes if any(identifier in route for identifier in ids)]
    assert points(out, "StatusSent") == [({"task_business_status": "ORDER_CONFIRMED"}, 1.0)] * 2
    timed = points(out, "TimeFromOrderReceived")
    assert [dimensions for dimensions, _ in timed] == [{"task_business_status": "ORDER_CONFIRMED"}] * 2
    assert all(0 <= seconds < 60 for _, seconds in timed)
    assert points(out, "WhoopCallErrors") == []


def test_a_refresh_tokens_run_writes_the_members_per_status(bridge, capsys):
    for number, status in enumerate([ConnectionStatus.CONNECTED] * 3 + [ConnectionStatus.OFFLINE_NOT_GRANTED]):
        connection = Connection(
            f"gauge-{number}",
            status,
            user_id=88000 + number,
            scopes=["read:profile"],
            offline_access=status == ConnectionStatus.CONNECTED,
            connected_at="2026-12-01T05:00:00.000Z",
            access_expires_at=int(time.time()) + 7200,  # beyond the refresh margin: no WHOOP call
            sealed_tokens=b"sealed",
        )
        assert connection_store.save(connection, None, moved_from=None, released_user_id=None, messages=[])
    connect_attempt_store.record(ConnectAttempt("gauge-never", CallbackStatus.DENIED, "access_denied", "2026"), [])
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(bridge.stack.output("MemberTable"))
    listed = Counter(
        item["gsi2pk"].split("#", 1)[1] for item in table.scan()["Items"] if "gsi2pk" in item
    )  # what the index holds, read apart from the store
    capsys.readouterr()

    counts = bridge.invoke("MemberSyncFunction", load_event("schedule_member_sync_refresh_tokens.json"))

    out = capsys.readouterr().out
    assert counts["failed"] == 0
    written = {dimensions["status"]: value for dimensions, value in points(out, "MembersByStatus")}
    expected = ("connected", "offline_not_granted", "reauthorization_required", "disconnected", "not_connected")
    assert written == {status: float(listed[status]) for status in expected}
    assert written["connected"] >= 3 and written["offline_not_granted"] >= 1 and written["not_connected"] >= 1
    assert all({"status"} in dimension_sets(line) for line in emf_lines(out, "MembersByStatus"))  # what it plots
    assert points(out, "MembersNotCounted") == []
