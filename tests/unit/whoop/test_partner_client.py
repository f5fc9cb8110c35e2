"""The WHOOP partner API client against the local emulator (no AWS: the credentials are
passed in; the partner secret's own tests are in tests/integration/test_partner_secret.py).

What an integrator notices: one token per warm container, renewed before it lapses or
when WHOOP says 401; transient faults retried; every other failure mapped to an error the
caller can act on; and every partner endpoint speaking WHOOP's shapes.
"""

from __future__ import annotations

import socket

import pytest

from local.emulator import WhoopEmulator
from whoop_bridge import __version__, caches
from whoop_bridge.whoop import http as whoop_http
from whoop_bridge.whoop.http import (
    ClientOptions,
    WhoopNotFound,
    WhoopRequestRejected,
    WhoopTransientError,
    WhoopUnauthorized,
)
from whoop_bridge.whoop.partner import PartnerClient

REQUISITION = r"/v2/partner/requisition/[^/]+$"
REPORT = {
    "status": "final",
    "observations": [
        {"code": "TOTAL_CHOLESTEROL", "value_numeric": 185, "unit": "mg/dL", "status": "final"},
        {"code": "BLOOD_TYPE", "value_text": "A+", "status": "final"},
    ],
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_cached_tokens():
    caches.reset_all()
    yield
    caches.reset_all()


@pytest.fixture
def emulator():
    emu = WhoopEmulator().start()
    yield emu
    emu.stop()


def client_for(
    emu: WhoopEmulator, *, secret: str | None = None, clock=None, base_url: str | None = None
) -> PartnerClient:
    credentials = {"client_id": emu.client_id, "client_secret": emu.client_secret if secret is None else secret}
    kwargs = {"clock": clock} if clock is not None else {}
    return PartnerClient(
        base_url or emu.base_url,
        lambda: dict(credentials),
        ClientOptions(timeout_seconds=5, max_retries=3, backoff_seconds=0.01),
        **kwargs,
    )


@pytest.fixture
def client(emulator):
    return client_for(emulator)


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# Token -------------------------------------------------------------------------------------


def test_token_is_fetched_once_and_reused(emulator, client):
    requisition = emulator.create_requisition(["CBC"])
    service_request_id = requisition["service_requests"][0]["id"]
    client.get_requisition(requisition["id"])
    client.get_service_request(service_request_id)
    client.update_service_request_status(service_request_id, "ORDER_CONFIRMED")
    assert emulator.token_requests == 1


def test_token_is_shared_by_clients_of_the_same_container(emulator):
    requisition = emulator.create_requisition(["CBC"])
    client_for(emulator).get_requisition(requisition["id"])
    client_for(emulator).get_requisition(requisition["id"])
    assert emulator.token_requests == 1


def test_token_is_renewed_a_margin_before_expiry(emulator):
    clock = FakeClock()
    client = client_for(emulator, clock=clock)
    requisition_id = emulator.create_requisition(["CBC"])["id"]
    client.get_requisition(requisition_id)
    clock.now += 3600 - 60 - 1  # just inside the renewal margin of the default 3600 s token
    client.get_requisition(requisition_id)
    assert emulator.token_requests == 1
    clock.now += 2  # past expiry minus margin
    client.get_requisition(requisition_id)
    assert emulator.token_requests == 2
    # The renewed token is then reused.
    client.get_requisition(requisition_id)
    assert emulator.token_requests == 2
    assert all(call["status"] == 200 for call in emulator.calls_to("GET", REQUISITION))


def test_expires_in_from_whoop_is_honoured():
    with WhoopEmulator(token_ttl_seconds=120) as emu:
        clock = FakeClock()
        client = client_for(emu, clock=clock)
        requisition_id = emu.create_requisition(["CBC"])["id"]
        client.get_requisition(requisition_id)
        clock.now += 59
        client.get_requisition(requisition_id)
        assert emu.token_requests == 1
        clock.now += 2  # 61 s: past 120 s minus the 60 s margin
        client.get_requisition(requisition_id)
        assert emu.token_requests == 2


def test_a_401_renews_the_token_once_and_the_call_succeeds(emulator, client):
    requisition = emulator.create_requisition(["CBC"])
    client.get_requisition(requisition["id"])
    emulator.expire_tokens()
    assert client.get_requisition(requisition["id"])["id"] == requisition["id"]
    assert emulator.token_requests == 2
    assert [call["status"] for call in emulator.calls_to("GET", REQUISITION)] == [200, 401, 200]


def test_wrong_client_secret_is_unauthorized_and_not_echoed(emulator):
    client = client_for(emulator, secret="not-the-secret-xyz")
    with pytest.raises(WhoopUnauthorized) as caught:
        client.get_requisition("3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert caught.value.status == 401
    assert "not-the-secret-xyz" not in str(caught.value)
    assert emulator.calls_to("GET", REQUISITION) == []  # no call went out without a token


# Errors and retries --------------------------------------------------------------------------


def test_unknown_requisition_is_not_found(emulator, client):
    with pytest.raises(WhoopNotFound) as caught:
        client.get_requisition("3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert caught.value.status == 404


def test_two_500s_then_success_is_a_success(emulator, client):
    requisition = emulator.create_requisition(["CBC"])
    client.get_requisition(requisition["id"])  # token first, so only requisition calls are faulted
    emulator.reset_calls()
    emulator.inject_fault("GET", REQUISITION, status=500, count=2)
    assert client.get_requisition(requisition["id"])["id"] == requisition["id"]
    assert [call["status"] for call in emulator.calls_to("GET", REQUISITION)] == [500, 500, 200]


def test_more_500s_than_retries_is_a_transient_error(emulator, client):
    requisition = emulator.create_requisition(["CBC"])
    emulator.inject_fault("GET", REQUISITION, status=500, count=4)
    with pytest.raises(WhoopTransientError) as caught:
        client.get_requisition(requisition["id"])
    assert caught.value.status == 500
    assert [call["status"] for call in emulator.calls_to("GET", REQUISITION)] == [500, 500, 500, 500]


def test_transient_errors_on_a_post_are_retried_and_the_report_stored_once(emulator, client):
    service_request_id = emulator.create_requisition(["CBC"])["service_requests"][0]["id"]
    emulator.inject_fault("POST", r"/results$", status=503, count=1)
    client.submit_diagnostic_report(service_request_id, REPORT)
    assert emulator.reports(service_request_id) == [REPORT]


def test_429_with_an_immediate_reset_is_retried(emulator, client):
    requisition = emulator.create_requisition(["CBC"])
    emulator.inject_fault("GET", REQUISITION, status=429, count=1, headers={"X-RateLimit-Reset": "0"})
    assert client.get_requisition(requisition["id"])["id"] == requisition["id"]
    assert [call["status"] for call in emulator.calls_to("GET", REQUISITION)] == [429, 200]


def test_429_with_a_reset_beyond_the_wait_limit_fails_as_transient_without_waiting(emulator, client, monkeypatch):
    # The limit is shrunk so the test does not sleep 20 s when the client does wait.
    monkeypatch.setattr(whoop_http, "MAX_RESET_WAIT_SECONDS", 0.05)
    requisition = emulator.create_requisition(["CBC"])
    emulator.inject_fault("GET", REQUISITION, status=429, count=1, headers={"X-RateLimit-Reset": "3600"})
    with pytest.raises(WhoopTransientError):
        client.get_requisition(requisition["id"])
    assert [call["status"] for call in emulator.calls_to("GET", REQUISITION)] == [429]


@pytest.mark.parametrize("status", [400, 409, 422])
def test_an_undocumented_4xx_is_rejected_and_not_retried(emulator, client, status):
    # WHOOP documents only 200 and 404 on the status route; should it ever answer another
    # 4xx, the call is refused as made, never retried unchanged.
    service_request_id = emulator.create_requisition(["CBC"])["service_requests"][0]["id"]
    emulator.inject_fault("PATCH", r"/status$", status=status, body={"error": "conflict"})
    with pytest.raises(WhoopRequestRejected) as caught:
        client.update_service_request_status(service_request_id, "APPOINTMENT_ATTENDED")
    assert caught.value.status == status
    assert len(emulator.calls_to("PATCH", r"/status$")) == 1


def test_connection_refused_is_a_transient_error(emulator):
    client = client_for(emulator, base_url=closed_port_url())
    with pytest.raises(WhoopTransientError) as caught:
        client.get_requisition("3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert caught.value.status is None


# Endpoints (docs/whoop.md#partner-endpoints) ---------------------------------------------------------------


def test_get_requisition_returns_whoop_shape(emulator, client):
    requisition = emulator.create_requisition(["LIPID_PANEL", "CBC"])
    assert client.get_requisition(requisition["id"]) == requisition


def test_patch_requisition_status_sets_every_service_request(emulator, client):
    requisition = emulator.create_requisition(["LIPID_PANEL", "CBC"])
    assert client.update_requisition_status(requisition["id"], "ORDER_CONFIRMED") is None
    for service_request in requisition["service_requests"]:
        history = emulator.status_history(service_request["id"])
        assert [(entry["status"], entry["reason"]) for entry in history] == [("ORDER_CONFIRMED", None)]
    (call,) = emulator.calls_to("PATCH", r"/requisition/[^/]+/status$")
    assert call["status"] == 204
    assert call["body"] == {"task_business_status": "ORDER_CONFIRMED"}  # no null reason sent


def test_patch_requisition_status_with_a_reason(emulator, client):
    requisition = emulator.create_requisition(["CBC"])
    client.update_requisition_status(requisition["id"], "APPOINTMENT_ISSUE", "member cancelled")
    history = emulator.status_history(requisition["service_requests"][0]["id"])
    assert [(entry["status"], entry["reason"]) for entry in history] == [("APPOINTMENT_ISSUE", "member cancelled")]


def test_get_service_request(emulator, client):
    service_request = emulator.create_requisition(["HBA1C"])["service_requests"][0]
    assert client.get_service_request(service_request["id"]) == service_request


def test_patch_service_request_status_returns_the_updated_service_request(emulator, client):
    service_request = emulator.create_requisition(["CBC"])["service_requests"][0]
    updated = client.update_service_request_status(service_request["id"], "RESULTS_ISSUE", "sample haemolysed")
    assert updated == {**service_request, "task_business_status": "RESULTS_ISSUE"}
    assert emulator.status_history(service_request["id"])[-1]["reason"] == "sample haemolysed"


def test_submit_diagnostic_report_is_stored_exactly_as_sent(emulator, client):
    service_request_id = emulator.create_requisition(["LIPID_PANEL"])["service_requests"][0]["id"]
    assert client.submit_diagnostic_report(service_request_id, REPORT) is None
    assert emulator.reports(service_request_id) == [REPORT]
    (call,) = emulator.calls_to("POST", r"/results$")
    assert call["status"] == 201


@pytest.mark.parametrize("appointment_type", [None, "MOBILE", "VIRTUAL"])
def test_add_test_data_returns_the_new_requisition_id(emulator, client, appointment_type):
    requisition_id = client.add_test_data(appointment_type)

    requisition = client.get_requisition(requisition_id)
    assert requisition["service_requests"]
    assert requisition["appointments"][0]["type"] == (appointment_type or "IN_PERSON")
    (call,) = emulator.calls_to("POST", r"/development/add-test-data$")
    assert call["status"] == 200
    assert emulator.webhook_deliveries == []  # WHOOP announces no test data: the id is the start


def test_add_test_data_is_not_found_in_production():
    with WhoopEmulator(production=True) as emu:
        with pytest.raises(WhoopNotFound):
            client_for(emu).add_test_data()


def test_every_call_names_the_bridge_and_its_version(emulator, client):
    requisition = emulator.create_requisition(["CBC"])
    client.get_requisition(requisition["id"])
    client.update_requisition_status(requisition["id"], "ORDER_CONFIRMED")
    assert [call["user_agent"] for call in emulator.calls] == [f"whoop-bridge/{__version__}"] * 3  # token, GET, PATCH
