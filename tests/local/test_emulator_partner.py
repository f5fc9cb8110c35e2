"""Unit tests for the local WHOOP partner API emulator (local/emulator/)."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

# The repo root holds the `local` package; make it importable however pytest is invoked.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from local.emulator import WhoopEmulator

PARTNER = "/developer/v2/partner"
GOOD_REPORT = {
    "status": "final",
    "observations": [
        {"code": "TOTAL_CHOLESTEROL", "value_numeric": 185, "unit": "mg/dL", "status": "final"},
        {"code": "HDL", "value_numeric": 52.5, "unit": "mg/dL", "status": "final"},
        {"code": "BLOOD_TYPE", "value_text": "A+", "status": "final"},
    ],
}


@pytest.fixture
def emulator():
    with WhoopEmulator() as emu:
        yield emu


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False  # never route loopback calls through a proxy from the environment
        yield session


def token_body(emu: WhoopEmulator, **overrides: str) -> dict:
    body = {
        "grant_type": "client_credentials",
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "scope": "whoop-partner/token",
    }
    body.update(overrides)
    return body


def get_token(emu: WhoopEmulator, http: requests.Session) -> str:
    response = http.post(emu.base_url + PARTNER + "/token", json=token_body(emu), timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def auth(emulator, http):
    return {"Authorization": f"Bearer {get_token(emulator, http)}"}


def patch_sr(emu, http, auth, sr_id, status, reason=None):
    body = {"task_business_status": status}
    if reason is not None:
        body["reason"] = reason
    return http.patch(f"{emu.base_url}{PARTNER}/service-request/{sr_id}/status", json=body, headers=auth, timeout=5)


class _Receiver:
    """A tiny webhook receiver that records deliveries and answers 204."""

    def __init__(self, on_event=None) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                # dict() keeps the header names exactly as sent, so tests check their casing.
                received.append((dict(self.headers.items()), body))
                if on_event is not None:
                    on_event(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/whoop"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    rec = _Receiver()
    yield rec
    rec.close()


# ---------------------------------------------------------------- token


def test_token_success_is_counted_and_secret_not_recorded(emulator, http):
    response = http.post(emulator.base_url + PARTNER + "/token", json=token_body(emulator), timeout=5)

    assert response.status_code == 200
    payload = response.json()
    assert payload["token_type"] == "bearer"
    assert payload["expires_in"] == 3600
    assert isinstance(payload["access_token"], str) and len(payload["access_token"]) >= 20
    assert emulator.token_requests == 1
    [call] = emulator.calls_to("POST", r"/token$")
    assert call["status"] == 200
    assert call["body"]["client_secret"] == "***"
    assert emulator.client_secret not in json.dumps(emulator.calls)


def test_token_wrong_secret_is_401(emulator, http):
    response = http.post(
        emulator.base_url + PARTNER + "/token", json=token_body(emulator, client_secret="nope"), timeout=5
    )

    assert response.status_code == 401
    assert emulator.token_requests == 0


def test_token_form_encoded_is_401_and_a_recorded_violation(emulator, http):
    # WHOOP documents 200 and 401 on the token route: no invented 400.
    response = http.post(emulator.base_url + PARTNER + "/token", data=token_body(emulator), timeout=5)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert emulator.token_requests == 0
    assert [v["problem"] for v in emulator.contract_violations()] == ["Content-Type must be application/json"]


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"grant_type": "authorization_code"}, "grant_type must be client_credentials"),
        ({"scope": "read:recovery"}, "scope must be whoop-partner/token"),
    ],
)
def test_token_wrong_grant_or_scope_is_401_and_a_recorded_violation(emulator, http, override, problem):
    response = http.post(emulator.base_url + PARTNER + "/token", json=token_body(emulator, **override), timeout=5)

    assert response.status_code == 401
    assert [v["problem"] for v in emulator.contract_violations()] == [problem]


def test_token_ttl_comes_from_constructor(http):
    with WhoopEmulator(token_ttl_seconds=120) as emu:
        response = http.post(emu.base_url + PARTNER + "/token", json=token_body(emu), timeout=5)
    assert response.json()["expires_in"] == 120


# ---------------------------------------------------------------- auth


def test_partner_call_without_token_is_401(emulator, http):
    req = emulator.create_requisition()

    response = http.get(f"{emulator.base_url}{PARTNER}/requisition/{req['id']}", timeout=5)

    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}


def test_expired_token_is_401_and_a_new_token_works(emulator, http, auth):
    req = emulator.create_requisition()
    url = f"{emulator.base_url}{PARTNER}/requisition/{req['id']}"
    assert http.get(url, headers=auth, timeout=5).status_code == 200

    emulator.expire_tokens()

    assert http.get(url, headers=auth, timeout=5).status_code == 401
    fresh = {"Authorization": f"Bearer {get_token(emulator, http)}"}
    assert http.get(url, headers=fresh, timeout=5).status_code == 200
    assert emulator.token_requests == 2


# ---------------------------------------------------------------- reads


def test_get_requisition_200_with_exact_shape_and_404(emulator, http, auth):
    created = emulator.create_requisition(["LIPID_PANEL", "CBC"])

    response = http.get(f"{emulator.base_url}{PARTNER}/requisition/{created['id']}", headers=auth, timeout=5)

    assert response.status_code == 200
    body = response.json()
    assert body == created
    assert set(body) == {"id", "created_at", "updated_at", "patient", "service_requests", "appointments"}
    assert set(body["patient"]) == {
        "id",
        "first_name",
        "last_name",
        "birth_date",
        "gender",
        "email",
        "phone",
        "nationality",
        "emirates_id",
        "passport_no",
    }
    assert body["created_at"].endswith("Z")
    srs = body["service_requests"]
    assert [sr["code"] for sr in srs] == ["LIPID_PANEL", "CBC"]
    # A new order has no task_business_status at all (absent, not null) and no references.
    assert srs[0] == {
        "id": srs[0]["id"],
        "status": "active",
        "intent": "order",
        "code": "LIPID_PANEL",
        "task_description": "Fasting lipid panel",
        "based_on": [],
    }
    assert srs[1]["task_description"] == "Complete blood count"
    [appointment] = body["appointments"]
    assert appointment["service_request_ids"] == [sr["id"] for sr in srs]
    assert set(appointment) == {"type", "service_request_ids", "start_time", "slot_id"}
    assert appointment["type"] == "IN_PERSON"

    missing = http.get(
        f"{emulator.base_url}{PARTNER}/requisition/00000000-0000-4000-8000-000000000000", headers=auth, timeout=5
    )
    assert missing.status_code == 404


def test_a_mobile_appointment_has_the_collection_address_and_based_on_is_kept(emulator):
    document = {"type": "DocumentReference", "id": "5d0f8a52-4c8e-4f1c-9a51-0c1f4a8d2b11"}

    requisition = emulator.create_requisition(["CBC", "HBA1C"], appointment_type="MOBILE", based_on={"CBC": [document]})

    [appointment] = requisition["appointments"]
    assert appointment["type"] == "MOBILE"
    assert {"building", "area", "emirate"} <= set(appointment["collection_address"])
    assert [sr["based_on"] for sr in requisition["service_requests"]] == [[document], []]
    with pytest.raises(ValueError):
        emulator.create_requisition(["CBC"], appointment_type="HOME")


def test_get_service_request_200_and_404(emulator, http, auth):
    sr = emulator.create_requisition(["HBA1C"])["service_requests"][0]

    ok = http.get(f"{emulator.base_url}{PARTNER}/service-request/{sr['id']}", headers=auth, timeout=5)
    missing = http.get(f"{emulator.base_url}{PARTNER}/service-request/nope", headers=auth, timeout=5)

    assert ok.status_code == 200
    assert ok.json() == sr
    assert ok.json()["task_description"] == "Hemoglobin A1c"
    assert missing.status_code == 404


# ---------------------------------------------------------------- status


def test_status_happy_path(emulator, http, auth):
    sr_id = emulator.create_requisition(["CBC"])["service_requests"][0]["id"]
    steps = [
        "ORDER_CONFIRMED",
        "APPOINTMENT_ATTENDED",
        "PARTIAL_RESULTS_READY",
        "PARTIAL_RESULTS_READY",
        "FULL_RESULTS_READY",
    ]

    for step in steps:
        response = patch_sr(emulator, http, auth, sr_id, step)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == sr_id
        assert response.json()["task_business_status"] == step

    assert emulator.service_request(sr_id)["task_business_status"] == "FULL_RESULTS_READY"
    history = emulator.status_history(sr_id)
    assert [h["status"] for h in history] == steps
    assert all(h["time"].endswith("Z") and h["reason"] is None for h in history)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (["APPOINTMENT_ATTENDED"], "ORDER_CONFIRMED"),  # backwards
        (["ORDER_CONFIRMED"], "ORDER_CONFIRMED"),  # only PARTIAL may repeat
        (["FULL_RESULTS_READY"], "RESULTS_ISSUE"),  # nothing after FULL
        (["FULL_RESULTS_READY"], "PARTIAL_RESULTS_READY"),
    ],
)
def test_forbidden_transition_changes_nothing_and_is_a_recorded_violation(emulator, http, auth, before, after):
    # WHOOP documents only 200 and 404 here: the documented answer, nothing changed, the violation recorded.
    sr_id = emulator.create_requisition(["CBC"])["service_requests"][0]["id"]
    for step in before:
        assert patch_sr(emulator, http, auth, sr_id, step).status_code == 200

    response = patch_sr(emulator, http, auth, sr_id, after, reason="x" if "ISSUE" in after else None)

    assert response.status_code == 200
    assert response.json()["task_business_status"] == before[-1]
    assert emulator.service_request(sr_id)["task_business_status"] == before[-1]
    assert len(emulator.status_history(sr_id)) == len(before)
    [violation] = emulator.contract_violations()
    assert violation["method"] == "PATCH" and violation["path"].endswith(f"/service-request/{sr_id}/status")
    assert "terminal" in violation["problem"] or "only moves forward" in violation["problem"]


def test_issue_status_requires_reason_and_is_terminal(emulator, http, auth):
    sr_id = emulator.create_requisition(["CBC"])["service_requests"][0]["id"]
    assert patch_sr(emulator, http, auth, sr_id, "ORDER_CONFIRMED").status_code == 200

    missing = patch_sr(emulator, http, auth, sr_id, "APPOINTMENT_ISSUE")
    blank = patch_sr(emulator, http, auth, sr_id, "APPOINTMENT_ISSUE", reason="  ")

    assert (missing.status_code, blank.status_code) == (200, 200)
    assert [v["problem"] for v in emulator.contract_violations()] == ["reason is required with APPOINTMENT_ISSUE"] * 2
    assert emulator.service_request(sr_id)["task_business_status"] == "ORDER_CONFIRMED"

    ok = patch_sr(emulator, http, auth, sr_id, "APPOINTMENT_ISSUE", reason="Member cancelled the appointment")
    assert ok.status_code == 200
    assert emulator.status_history(sr_id)[-1]["reason"] == "Member cancelled the appointment"
    assert patch_sr(emulator, http, auth, sr_id, "APPOINTMENT_ATTENDED").status_code == 200
    results = http.post(
        f"{emulator.base_url}{PARTNER}/service-request/{sr_id}/results", json=GOOD_REPORT, headers=auth, timeout=5
    )
    assert results.status_code == 201
    assert emulator.service_request(sr_id)["task_business_status"] == "APPOINTMENT_ISSUE"
    assert emulator.reports(sr_id) == []
    assert [v["problem"] for v in emulator.contract_violations()][2:] == [
        f"service request {sr_id}: APPOINTMENT_ISSUE is terminal; no status may follow it",
        f"service request {sr_id} is in APPOINTMENT_ISSUE; results are closed",
    ]


@pytest.mark.parametrize(
    "body",
    [{"task_business_status": "DONE"}, {"task_business_status": "ORDER_CONFIRMED", "note": "x"}, {}],
)
def test_invalid_status_body_changes_nothing_and_is_a_recorded_violation(emulator, http, auth, body):
    sr_id = emulator.create_requisition(["CBC"])["service_requests"][0]["id"]

    response = http.patch(
        f"{emulator.base_url}{PARTNER}/service-request/{sr_id}/status", json=body, headers=auth, timeout=5
    )

    assert response.status_code == 200
    assert "task_business_status" not in emulator.service_request(sr_id)
    assert emulator.contract_violations()


def test_requisition_status_applies_to_every_service_request(emulator, http, auth):
    req = emulator.create_requisition()
    url = f"{emulator.base_url}{PARTNER}/requisition/{req['id']}/status"

    response = http.patch(url, json={"task_business_status": "ORDER_CONFIRMED"}, headers=auth, timeout=5)

    assert response.status_code == 204
    assert response.content == b""
    stored = emulator.requisition(req["id"])
    assert [sr["task_business_status"] for sr in stored["service_requests"]] == ["ORDER_CONFIRMED"] * 3
    assert stored["updated_at"] >= req["updated_at"]


def test_requisition_status_conflict_on_one_changes_none(emulator, http, auth):
    req = emulator.create_requisition(["LIPID_PANEL", "CBC"])
    first, second = (sr["id"] for sr in req["service_requests"])
    assert patch_sr(emulator, http, auth, second, "APPOINTMENT_ATTENDED").status_code == 200

    response = http.patch(
        f"{emulator.base_url}{PARTNER}/requisition/{req['id']}/status",
        json={"task_business_status": "ORDER_CONFIRMED"},
        headers=auth,
        timeout=5,
    )

    assert response.status_code == 204
    assert "task_business_status" not in emulator.service_request(first)
    assert emulator.service_request(second)["task_business_status"] == "APPOINTMENT_ATTENDED"
    [violation] = emulator.contract_violations()
    assert (
        violation["problem"]
        == f"service request {second}: cannot move from APPOINTMENT_ATTENDED to ORDER_CONFIRMED; the happy path only moves forward"
    )


# ---------------------------------------------------------------- results


def test_results_observation_without_value_is_a_recorded_violation_and_not_stored(emulator, http, auth):
    sr_id = emulator.create_requisition(["LIPID_PANEL"])["service_requests"][0]["id"]
    bad = {"status": "final", "observations": [{"code": "LDL", "unit": "mg/dL", "status": "final"}]}

    response = http.post(
        f"{emulator.base_url}{PARTNER}/service-request/{sr_id}/results", json=bad, headers=auth, timeout=5
    )

    assert response.status_code == 201  # WHOOP documents 201 and 404 only
    assert [v["problem"] for v in emulator.contract_violations()] == [
        "observations[0]: at least one of value_numeric or value_text is required"
    ]
    assert emulator.reports(sr_id) == []


def test_results_accepts_what_whoops_schema_allows(emulator, http, auth):
    # Every field of WHOOP's report and observation is optional; bundle_id groups observations.
    sr_id = emulator.create_requisition(["LIPID_PANEL"])["service_requests"][0]["id"]
    url = f"{emulator.base_url}{PARTNER}/service-request/{sr_id}/results"
    no_status = {
        "status": "final",
        "observations": [
            {"code": "LDL", "value_numeric": 100, "unit": "mg/dL", "bundle_id": "1b7c2f0e-8f0b-4c6e-9d43-2a5e6f7a8b9c"}
        ],
    }
    cancelled = {"status": "cancelled"}

    assert http.post(url, json=no_status, headers=auth, timeout=5).status_code == 201
    assert http.post(url, json=cancelled, headers=auth, timeout=5).status_code == 201

    assert emulator.reports(sr_id) == [no_status, cancelled]
    assert emulator.contract_violations() == []


@pytest.mark.parametrize(
    ("report", "fragment"),
    [
        ({"status": "done", "observations": GOOD_REPORT["observations"]}, "status must be one of"),
        ({"status": "final", "observations": []}, "non-empty list"),
        ({"status": "final", "observations": GOOD_REPORT["observations"], "pdf": "x"}, "unknown fields: pdf"),
        (
            {"status": "final", "observations": [{"code": "LDL", "value_numeric": "100", "status": "final"}]},
            "value_numeric must be a number",
        ),
        (
            {"status": "final", "observations": [{"code": "", "value_numeric": 1, "status": "final"}]},
            "code must be a non-empty string",
        ),
        (
            {"status": "final", "observations": [{"code": "LDL", "value_numeric": 1, "status": "done"}]},
            "observations[0].status must be one of",
        ),
        (
            {
                "status": "final",
                "observations": [{"code": "LDL", "value_numeric": 1, "status": "final", "reference_range": "0-100"}],
            },
            "unknown fields: reference_range",
        ),
    ],
)
def test_results_strict_validation(emulator, http, auth, report, fragment):
    sr_id = emulator.create_requisition(["LIPID_PANEL"])["service_requests"][0]["id"]

    response = http.post(
        f"{emulator.base_url}{PARTNER}/service-request/{sr_id}/results", json=report, headers=auth, timeout=5
    )

    assert response.status_code == 201
    problems = [v["problem"] for v in emulator.contract_violations()]
    assert any(fragment in p for p in problems), problems
    assert emulator.reports(sr_id) == []


def test_good_report_is_201_empty_and_stored_in_order(emulator, http, auth):
    sr_id = emulator.create_requisition(["LIPID_PANEL"])["service_requests"][0]["id"]
    url = f"{emulator.base_url}{PARTNER}/service-request/{sr_id}/results"
    amended = {"status": "amended", "observations": [GOOD_REPORT["observations"][0]]}

    first = http.post(url, json=GOOD_REPORT, headers=auth, timeout=5)
    second = http.post(url, json=amended, headers=auth, timeout=5)

    assert first.status_code == 201
    assert first.content == b""
    assert second.status_code == 201
    assert emulator.reports(sr_id) == [GOOD_REPORT, amended]


def test_results_for_unknown_service_request_is_404(emulator, http, auth):
    response = http.post(
        f"{emulator.base_url}{PARTNER}/service-request/unknown/results", json=GOOD_REPORT, headers=auth, timeout=5
    )

    assert response.status_code == 404


# ---------------------------------------------------------------- test data and webhooks


@pytest.mark.parametrize(
    ("query", "appointment_type"),
    [("", "IN_PERSON"), ("?appointmentType=MOBILE", "MOBILE"), ("?appointmentType=VIRTUAL", "VIRTUAL")],
)
def test_add_test_data_answers_the_requisition_id_and_sends_no_webhook(http, receiver, query, appointment_type):
    with WhoopEmulator(partner_webhook_url=receiver.url) as emu:
        token = get_token(emu, http)
        response = http.post(
            f"{emu.base_url}{PARTNER}/development/add-test-data{query}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
        )

        assert response.status_code == 200
        requisition_id = response.json()["requisition_id"]
        assert set(response.json()) == {"requisition_id"}
        fetched = http.get(
            f"{emu.base_url}{PARTNER}/requisition/{requisition_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()
        [appointment] = fetched["appointments"]
        assert appointment["type"] == appointment_type
        assert ("collection_address" in appointment) == (appointment_type == "MOBILE")
        assert receiver.deliveries == [] and emu.webhook_deliveries == []


def test_partner_webhook_is_signed_compact_json(http, receiver):
    with WhoopEmulator(partner_webhook_url=receiver.url, webhook_secret="s3cret") as emu:
        token = get_token(emu, http)
        requisition_id = emu.create_requisition()["id"]
        assert emu.send_partner_webhook("lab_requisition.created", requisition_id) == 204

        [(headers, raw)] = receiver.deliveries
        expected = hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["WHOOP-Signed"], expected)
        assert headers["Content-Type"] == "application/json"
        event = json.loads(raw)
        assert event["event_type"] == "lab_requisition.created"
        assert raw == json.dumps(event, separators=(",", ":")).encode()

        requisition = emu.requisition(event["resource_id"])
        assert [sr["code"] for sr in requisition["service_requests"]] == ["LIPID_PANEL", "CBC", "HBA1C"]
        fetched = http.get(
            f"{emu.base_url}{PARTNER}/requisition/{event['resource_id']}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert fetched.status_code == 200
        assert emu.webhook_deliveries[0]["status"] == 204


def test_webhook_receiver_fetch_during_add_test_data_sorts_after_it(http):
    holder = {}

    def fetch(event):
        # What the bridge does: fetch the requisition while WHOOP waits for the 204.
        emu, token = holder["emu"], holder["token"]
        with requests.Session() as session:
            session.trust_env = False
            holder["fetch"] = session.get(
                f"{emu.base_url}{PARTNER}/requisition/{event['resource_id']}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            ).status_code

    rec = _Receiver(on_event=fetch)
    try:
        with WhoopEmulator(partner_webhook_url=rec.url) as emu:
            holder["emu"], holder["token"] = emu, get_token(emu, http)
            response = http.post(
                f"{emu.base_url}{PARTNER}/development/add-test-data",
                headers={"Authorization": f"Bearer {holder['token']}"},
                timeout=15,
            )
            assert response.status_code == 200
            assert emu.send_partner_webhook("lab_requisition.created", response.json()["requisition_id"]) == 204

            assert holder["fetch"] == 200
            lines = emu.timeline()
            assert lines[0] == "POST development/add-test-data → 200"
            assert lines[1].startswith("GET requisition ") and lines[1].endswith("→ 200")
            assert [c["seq"] for c in emu.calls] == sorted(c["seq"] for c in emu.calls)
    finally:
        rec.close()


def test_forged_signature_is_sent_as_given(emulator, receiver):
    status = emulator.send_partner_webhook("lab_requisition.created", "abc", url=receiver.url, signature="00" * 32)

    assert status == 204
    [(headers, raw)] = receiver.deliveries
    assert headers["WHOOP-Signed"] == "00" * 32
    assert raw == b'{"event_type":"lab_requisition.created","resource_id":"abc"}'
    assert emulator.webhook_deliveries[0]["signature"] == "00" * 32


def test_webhook_to_unreachable_url_returns_0(emulator):
    status = emulator.send_partner_webhook("lab_requisition.created", "abc", url="http://127.0.0.1:9/hook")

    assert status == 0
    assert emulator.webhook_deliveries[0]["error"]


def test_add_test_data_is_404_in_production(http):
    with WhoopEmulator(production=True) as emu:
        token = get_token(emu, http)
        response = http.post(
            f"{emu.base_url}{PARTNER}/development/add-test-data",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )

        assert response.status_code == 404
        assert emu.calls_to("POST", "add-test-data")[0]["status"] == 404


# ---------------------------------------------------------------- faults, routing, timeline


def test_injected_500_twice_then_success(emulator, http, auth):
    req = emulator.create_requisition()
    url = f"{emulator.base_url}{PARTNER}/requisition/{req['id']}"
    emulator.inject_fault("GET", r"/requisition/", status=500, count=2)

    statuses = [http.get(url, headers=auth, timeout=5).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    assert [c["status"] for c in emulator.calls_to("GET", "/requisition/")] == [500, 500, 200]
    lines = emulator.timeline()
    assert lines[0].endswith("→ 500 (injected)")
    assert lines[2] == f"GET requisition {req['id'][:8]}… → 200"


def test_injected_429_carries_rate_limit_headers(emulator, http, auth):
    emulator.inject_fault("*", r"/service-request/", status=429)

    response = http.get(f"{emulator.base_url}{PARTNER}/service-request/x", headers=auth, timeout=5)

    assert response.status_code == 429
    assert response.headers["X-RateLimit-Limit"] == "100, 100;window=60, 10000;window=86400"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Reset"] == "1"


def test_delay_only_fault_slows_the_real_answer(emulator, http, auth):
    sr_id = emulator.create_requisition(["CBC"])["service_requests"][0]["id"]
    emulator.inject_fault("GET", "/service-request/", status=None, delay=0.3)

    response = http.get(f"{emulator.base_url}{PARTNER}/service-request/{sr_id}", headers=auth, timeout=5)

    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.3


def test_a_fault_after_handling_takes_the_call_and_its_answer_is_lost(emulator, http, auth):
    sr_id = emulator.create_requisition(["CBC"])["service_requests"][0]["id"]
    patch_sr(emulator, http, auth, sr_id, "ORDER_CONFIRMED")
    url = f"{emulator.base_url}{PARTNER}/service-request/{sr_id}/results"
    emulator.inject_fault("POST", r"/results$", status=None, delay=1.0, after=True)

    with pytest.raises(requests.exceptions.ReadTimeout):
        http.post(url, json=GOOD_REPORT, headers=auth, timeout=0.3)

    assert emulator.reports(sr_id) == [GOOD_REPORT]  # WHOOP took it
    with pytest.raises(ValueError, match="after"):
        emulator.inject_fault("POST", r"/results$", status=503, after=True)


def test_unknown_path_404_wrong_method_405_bad_json_400(emulator, http, auth):
    sr_id = emulator.create_requisition(["CBC"])["service_requests"][0]["id"]

    unknown = http.get(f"{emulator.base_url}{PARTNER}/nothing-here", headers=auth, timeout=5)
    wrong_method = http.delete(f"{emulator.base_url}{PARTNER}/service-request/{sr_id}", headers=auth, timeout=5)
    bad_json = http.patch(
        f"{emulator.base_url}{PARTNER}/service-request/{sr_id}/status",
        data=b"{not json",
        headers={**auth, "Content-Type": "application/json"},
        timeout=5,
    )

    assert unknown.status_code == 404
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "GET"
    assert bad_json.status_code == 200  # the documented answer; the broken body is a recorded violation
    assert emulator.contract_violations()[0]["problem"].startswith("body is not valid JSON")


def test_timeline_is_readable_and_has_no_patient_data(emulator, http, auth):
    req = emulator.create_requisition()
    sr_id = req["service_requests"][0]["id"]
    http.get(f"{emulator.base_url}{PARTNER}/requisition/{req['id']}", headers=auth, timeout=5)
    patch_sr(emulator, http, auth, sr_id, "ORDER_CONFIRMED")
    http.post(
        f"{emulator.base_url}{PARTNER}/service-request/{sr_id}/results", json=GOOD_REPORT, headers=auth, timeout=5
    )

    lines = emulator.timeline()

    short = sr_id[:8] + "…"
    assert lines == [
        f"GET requisition {req['id'][:8]}… → 200",
        f"PATCH service-request {short} status ORDER_CONFIRMED → 200",
        f"POST service-request {short} results final (3 observations) → 201",
    ]
    text = "\n".join(lines)
    patient = req["patient"]
    for value in (patient["first_name"], patient["last_name"], patient["email"], patient["phone"], patient["id"]):
        assert value not in text


def test_control_api_over_http(emulator, http, receiver):
    base = emulator.base_url + "/_emulator"
    assert http.get(base + "/health", timeout=5).status_code == 200

    created = http.post(base + "/requisitions", json={"codes": ["CBC"]}, timeout=5)
    assert created.status_code == 201
    sr_id = created.json()["service_requests"][0]["id"]
    reference = {"type": "DocumentReference", "id": "5d0f8a52-4c8e-4f1c-9a51-0c1f4a8d2b11"}
    mobile = http.post(
        base + "/requisitions",
        json={"codes": ["CBC"], "appointment_type": "MOBILE", "based_on": {"CBC": [reference]}},
        timeout=5,
    ).json()
    assert mobile["appointments"][0]["type"] == "MOBILE" and mobile["service_requests"][0]["based_on"] == [reference]
    assert http.post(base + "/requisitions", json={"appointment_type": "HOME"}, timeout=5).status_code == 400

    fault = {"method": "GET", "path_regex": "/service-request/", "status": 503, "count": 1, "delay": 0}
    assert http.post(base + "/faults", json=fault, timeout=5).status_code == 204
    token = get_token(emulator, http)
    url = f"{emulator.base_url}{PARTNER}/service-request/{sr_id}"
    assert http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 503
    assert http.post(base + "/faults", json=fault, timeout=5).status_code == 204
    assert http.delete(base + "/faults", timeout=5).status_code == 204
    assert http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200

    view = http.get(f"{base}/service-requests/{sr_id}", timeout=5).json()
    assert view["service_request"]["id"] == sr_id
    assert view["reports"] == [] and view["history"] == []

    sent = http.post(
        base + "/webhooks/partner",
        json={"event_type": "lab_requisition.created", "resource_id": created.json()["id"], "url": receiver.url},
        timeout=15,
    )
    assert sent.json() == {"status": 204}
    assert len(receiver.deliveries) == 1

    calls = http.get(base + "/calls", timeout=5).json()["calls"]
    assert [c["status"] for c in calls if c["path"] == url.removeprefix(emulator.base_url)] == [503, 200]
    assert not any(c["path"].startswith("/_emulator") for c in calls)
    lines = http.get(base + "/timeline", timeout=5).json()["lines"]
    assert lines == [f"GET service-request {sr_id[:8]}… → 503 (injected)", f"GET service-request {sr_id[:8]}… → 200"]
