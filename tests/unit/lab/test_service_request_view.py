"""GET /lab/service-requests/{id}'s rule against in-memory ports (scratch: how-to walk-through)."""

from __future__ import annotations

import pytest
from fakes.lab import fake_ports

from whoop_bridge.lab.errors import NotFound
from whoop_bridge.lab.views import get_service_request
from whoop_bridge.models.service_request import ServiceRequestRecord, WorkflowState


def test_a_stored_test_is_shown_and_an_unknown_one_is_not_found():
    ports = fake_ports()
    ports.service_requests.add(ServiceRequestRecord("sr-1", "req-1", code="CBC", workflow=WorkflowState.STARTING))

    view = get_service_request("sr-1", ports)

    assert (view["id"], view["code"], view["diagnostic_reports"]) == ("sr-1", "CBC", [])
    with pytest.raises(NotFound):
        get_service_request("sr-2", ports)
