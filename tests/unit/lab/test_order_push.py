"""`requisition.received` with the order itself (ORDER_PUSH_FORMAT, lab/order_push.py):
exactly today's ids and decisions with `none`; the order as GET shows it in json, fhir and
hl7 (the one builder, the code map applied); `order_omitted` past EventBridge's 256 KB; and
neither FHIR's nor HL7's modules loaded unless the format needs them. No AWS: tests/fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hl7
import pytest
from fakes.lab import FakePartnerClient, fake_ports
from fhir.resources.R4B.bundle import Bundle

from whoop_bridge import bus, caches
from whoop_bridge.config import ConfigurationError, settings
from whoop_bridge.lab import views
from whoop_bridge.lab.intake import receive_requisition
from whoop_bridge.lis import codes
from whoop_bridge.lis.orders import order_in

ROOT = Path(__file__).resolve().parents[3]
REQ = "req-push-1"
PATIENT = {
    "id": "pat-9",
    "first_name": "Jordan",
    "last_name": "Rivera",
    "birth_date": "1990-04-02",
    "gender": "female",
    "email": "jordan@example.com",
}
CODE_MAP = {"tests": {"LIPID_PANEL": {"code": "57698-3", "system": "http://loinc.org", "display": "Lipid panel"}}}


@pytest.fixture(autouse=True)
def lab_settings(monkeypatch):
    monkeypatch.setenv("ACCEPTED_TEST_CODES", "LIPID_PANEL,CBC")
    monkeypatch.delenv("ORDER_PUSH_FORMAT", raising=False)
    caches.reset_all()
    yield
    caches.reset_all()


@pytest.fixture
def mapped(monkeypatch):
    """The operator's code map, as lis/codes.py reads it from SSM."""
    reads = []

    def read():
        reads.append(1)
        return codes.parse(CODE_MAP)

    monkeypatch.setattr(codes, "code_map", read)
    return reads


def push(monkeypatch, fmt):
    monkeypatch.setenv("ORDER_PUSH_FORMAT", fmt)
    settings.cache_clear()


def client_with(*service_requests, **fields):
    client = FakePartnerClient()
    client.requisitions[REQ] = {
        "id": REQ,
        "patient": PATIENT,
        "appointments": [
            {"id": "apt-1", "start_time": "2026-12-03T09:30:00Z", "service_request_ids": ["sr-1", "sr-2"]}
        ],
        "service_requests": list(service_requests)
        or [
            {"id": "sr-1", "code": "LIPID_PANEL", "status": "active", "intent": "order"},
            {"id": "sr-2", "code": "CBC", "status": "active", "intent": "order"},
        ],
        "created_at": "2026-11-30T12:00:00Z",
        **fields,
    }
    return client


def received(ports):
    [detail] = ports.bus.of("requisition.received")
    return detail


def test_none_publishes_exactly_ids_and_decisions(monkeypatch, mapped):
    ports = fake_ports()
    receive_requisition(REQ, client_with(), ports=ports)
    detail = received(ports)
    assert detail == {
        "requisition_id": REQ,
        "service_requests": [
            {"service_request_id": "sr-1", "code": "LIPID_PANEL", "decision": "confirm"},
            {"service_request_id": "sr-2", "code": "CBC", "decision": "confirm"},
        ],
    }
    written = json.dumps(detail, default=str)
    assert all(value not in written for value in PATIENT.values())
    assert mapped == []  # no code map read without push


def test_unknown_format_is_a_configuration_error(monkeypatch):
    push(monkeypatch, "xml")
    with pytest.raises(ConfigurationError, match="ORDER_PUSH_FORMAT must be one of none, json, fhir, hl7"):
        settings()


def test_json_pushes_the_view_get_answers(monkeypatch, mapped):
    push(monkeypatch, "json")
    ports = fake_ports()
    receive_requisition(REQ, client_with(), ports=ports)
    detail = received(ports)
    assert detail["order"]["content_type"] == "application/json"
    view = views.get_requisition(REQ, ports)
    assert detail["order"]["body"] == json.loads(json.dumps(view, default=str))
    assert detail["order"]["body"]["patient"] == PATIENT
    assert [sr["decision"] for sr in detail["service_requests"]] == ["confirm", "confirm"]
    assert mapped == []  # WHOOP's codes as GET shows them


def pushed(monkeypatch, fmt, client=None):
    """The ports and the requisition.received published for one order, pushed as `fmt`."""
    push(monkeypatch, fmt)
    ports = fake_ports()
    receive_requisition(REQ, client or client_with(), ports=ports)
    return ports, received(ports)


def test_fhir_pushes_the_bundle_with_test_codes_mapped(monkeypatch, mapped):
    ports, detail = pushed(monkeypatch, "fhir")
    order = detail["order"]
    assert order["content_type"] == "application/fhir+json"
    bundle = Bundle.model_validate(order["body"])
    resources = {entry.resource.get_resource_type(): entry.resource for entry in bundle.entry}
    assert resources["Patient"].name[0].family == "Rivera"
    requests = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "ServiceRequest"]
    assert [r.id for r in requests] == ["sr-1", "sr-2"]
    assert requests[0].code.coding[0].code == "57698-3" and requests[0].code.coding[0].system == "http://loinc.org"
    assert requests[1].code.coding[0].code == "CBC"  # unmapped: passes through
    # The same builder as GET /lab/requisitions/{id} with Accept: application/fhir+json.
    assert order["body"] == order_in("application/fhir+json", views.get_requisition(REQ, ports))


def test_hl7_pushes_the_orm_message_with_test_codes_mapped(monkeypatch, mapped):
    order = pushed(monkeypatch, "hl7")[1]["order"]
    assert order["content_type"] == "x-application/hl7-v2+er7"
    message = hl7.parse(order["body"])
    assert str(message.segment("MSH")[9]) == "ORM^O01^ORM_O01"
    assert str(message.segment("PID")[5]) == "Rivera^Jordan"
    placers = [str(obr[2][0][0]) for obr in message.segments("OBR")]
    assert placers == ["sr-1", "sr-2"]
    assert [str(obr[4][0][0]) for obr in message.segments("OBR")] == ["57698-3", "CBC"]


def pushed_fhir_order_of(monkeypatch, count):
    """requisition.received for an order of `count` tests, each with a 400-character description."""
    tests = [
        {"id": f"sr-{n}", "code": "CBC", "status": "active", "intent": "order", "task_description": "x" * 400}
        for n in range(count)
    ]
    return pushed(monkeypatch, "fhir", client_with(*tests))[1]


def test_an_order_past_eventbridges_limit_is_published_without_it(monkeypatch, mapped):
    detail = pushed_fhir_order_of(monkeypatch, 600)
    assert detail["order_omitted"] == "too_large" and "order" not in detail
    assert len(detail["service_requests"]) == 600
    assert bus.entry_bytes("requisition.received", detail) <= bus.MAX_ENTRY_BYTES
    written = json.dumps(detail, default=str)
    assert all(value not in written for value in PATIENT.values())


def test_an_order_of_200_tests_is_within_the_limit(monkeypatch, mapped):
    detail = pushed_fhir_order_of(monkeypatch, 200)
    assert "order_omitted" not in detail and len(Bundle.model_validate(detail["order"]["body"]).entry) == 202
    assert 150_000 < bus.entry_bytes("requisition.received", detail) <= bus.MAX_ENTRY_BYTES


@pytest.mark.parametrize("spare, omitted", [(0, False), (-1, True)])
def test_the_limit_is_the_entry_size_eventbridge_counts(monkeypatch, mapped, spare, omitted):
    push(monkeypatch, "fhir")
    first = fake_ports()
    receive_requisition(REQ, client_with(), ports=first)
    size = bus.entry_bytes("requisition.received", received(first))
    monkeypatch.setattr(bus, "MAX_ENTRY_BYTES", size + spare)
    ports = fake_ports()
    receive_requisition(REQ, client_with(), ports=ports)
    assert ("order_omitted" in received(ports)) is omitted


def test_entry_bytes_counts_utf8_source_detail_type_and_detail():
    detail = {"name": "é"}
    expected = len("whoop-bridge") + len("a.b") + len(json.dumps({"version": "1", "name": "é"}).encode("utf-8"))
    assert bus.entry_bytes("a.b", detail) == expected
    assert bus.entry_bytes("a.b", detail) == bus.entry_bytes("a.b", {"name": "e"}) + len("\\u00e9") - 1


def test_an_unreadable_code_map_publishes_nothing_and_the_retry_does(monkeypatch):
    push(monkeypatch, "hl7")

    def unavailable():
        raise codes.CodeMapUnavailable("no")

    monkeypatch.setattr(codes, "code_map", unavailable)
    ports = fake_ports()
    with pytest.raises(codes.CodeMapUnavailable):
        receive_requisition(REQ, client_with(), ports=ports)
    assert ports.bus.of("requisition.received") == [] and not ports.requisitions.get(REQ).published
    monkeypatch.setattr(codes, "code_map", lambda: codes.parse(CODE_MAP))
    receive_requisition(REQ, client_with(), ports=ports)
    assert received(ports)["order"]["body"].startswith("MSH|")


def test_a_published_order_is_not_built_again(monkeypatch, mapped):
    push(monkeypatch, "fhir")
    ports = fake_ports()
    receive_requisition(REQ, client_with(), ports=ports)
    receive_requisition(REQ, client_with(), ports=ports)
    assert len(ports.bus.of("requisition.received")) == 1 and mapped == [1]


LAZY = """
import importlib.util, json, sys
sys.path[:0] = ["layers/bridge", "tests"]
spec = importlib.util.spec_from_file_location("requisition_processor", "functions/requisition_processor/app.py")
spec.loader.exec_module(importlib.util.module_from_spec(spec))
from fakes.lab import FakePartnerClient, fake_ports
from whoop_bridge.lab.intake import receive_requisition
client = FakePartnerClient()
client.requisitions["r"] = {"id": "r", "patient": {"id": "p"}, "service_requests": [
    {"id": "s", "code": "CBC", "status": "active", "intent": "order"}]}
ports = fake_ports()
receive_requisition("r", client, ports=ports)
assert ports.bus.of("requisition.received"), "nothing published"
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("fhir", "fhir_core", "hl7", "hl7apy")
                        or m.startswith("whoop_bridge.lis."))))
"""


def loaded_by_the_processor(fmt):
    environment = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "lazy",
        "PARTNER_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:partner",
        "IDEMPOTENCY_TABLE_NAME": "idempotency",
        "ORDER_PUSH_FORMAT": fmt,
        "LIS_CODE_MAP_PARAMETER": "",
    }
    result = subprocess.run(
        [sys.executable, "-c", LAZY], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_none_loads_nothing_of_the_lis():
    assert loaded_by_the_processor("none") == set()


def test_json_loads_neither_fhir_nor_hl7():
    assert loaded_by_the_processor("json") == {"whoop_bridge.lis.negotiation", "whoop_bridge.lis.orders"}


@pytest.mark.parametrize(
    "fmt, module, library",
    [("fhir", "whoop_bridge.lis.fhir", "fhir.resources.R4B.bundle"), ("hl7", "whoop_bridge.lis.hl7", "hl7")],
)
def test_fhir_and_hl7_load_their_own_library_only(fmt, module, library):
    loaded = loaded_by_the_processor(fmt)
    other = "hl7" if fmt == "fhir" else "fhir"
    assert {module, library} <= loaded and not any(m.split(".")[0] == other for m in loaded)
