"""The dashboard's metrics on the local stack: an order taken in and confirmed through the
real handlers (requisition_processor, the state machine, service_request_tasks) writes its
EMF lines whole, next to the handlers' own flushed set, while the local stack runs handlers
as threads of one process (local/moto_patches.py `atomic_metric_flushes`)."""

from __future__ import annotations

from fakes.emf import emf_lines, points


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
