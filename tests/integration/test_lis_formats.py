"""FHIR R4 and HL7 v2 through the lab API on the local stack, end to end: results in (to
WHOOP's emulator exactly as the JSON path sends them), answers in the sender's language,
malformed messages refused with nothing sent to WHOOP, Idempotency-Key replay, the
workflow's 409, and the order out as a FHIR Bundle and an ORM^O01."""

from __future__ import annotations

import json

import hl7 as hl7_package
import pytest

from integration_harness import SAMPLE_REQUISITION_ID, SAMPLE_SERVICE_REQUEST_ID, load_event
from local.stack import wait_until

FHIR = "application/fhir+json"
HL7 = "x-application/hl7-v2+er7"


@pytest.fixture
def order(bridge) -> dict:
    requisition = bridge.process_requisition(["LIPID_PANEL", "CBC"])
    requisition["by_code"] = {sr["code"]: sr["id"] for sr in requisition["service_requests"]}
    return requisition


def results_event(content_type: str, body: str, service_request_id: str | None = None, key: str | None = None) -> dict:
    """A POST of results: to /lab/service-requests/{id}/results, or /lab/results without an id."""
    event = load_event("lab_api_results_final.json", **{SAMPLE_SERVICE_REQUEST_ID: service_request_id or "x"})
    if service_request_id is None:
        event.update(resource="/lab/results", path="/lab/results", pathParameters=None)
        event["requestContext"]["resourcePath"] = "/lab/results"
    extra = {"Content-Type": content_type, **({"Idempotency-Key": key} if key else {})}
    event["headers"].update(extra)
    event["multiValueHeaders"].update({name: [value] for name, value in extra.items()})
    event["body"] = body
    return event


def order_event(requisition_id: str, accept: str) -> dict:
    event = load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: requisition_id})
    event["headers"]["Accept"] = accept
    event["multiValueHeaders"]["Accept"] = [accept]
    return event


def answer(bridge, event: dict) -> tuple[int, str, dict]:
    raw = bridge.invoke("LabApiFunction", event)
    headers = {name: values[-1] for name, values in (raw.get("multiValueHeaders") or {}).items()}
    return raw["statusCode"], raw.get("body") or "", headers


def fhir_report(service_request_id: str, status: str = "final", value: dict | None = None) -> str:
    return json.dumps(
        {
            "resourceType": "DiagnosticReport",
            "status": status,
            "code": {"coding": [{"system": "http://loinc.org", "code": "57698-3"}]},
            "basedOn": [{"reference": f"ServiceRequest/{service_request_id}"}],
            "contained": [
                {
                    "resourceType": "Observation",
                    "id": "ldl",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "LDL"}]},
                    **(value if value is not None else {"valueQuantity": {"value": 96, "unit": "mg/dL"}}),
                },
                {
                    "resourceType": "Observation",
                    "id": "note",
                    "status": "final",
                    "code": {"coding": [{"code": "COMMENT"}]},
                    "valueString": "Fasting | 12 h",
                },
            ],
            "result": [{"reference": "#ldl"}, {"reference": "#note"}],
        }
    )


def oru(service_request_id: str, status: str = "F", control: str = "CTRL-1") -> str:
    return "\r".join(
        [
            f"MSH|^~\\&|LIS|ACME LAB|WHOOP_BRIDGE|WHOOP|20261201120000||ORU^R01^ORU_R01|{control}|P|2.5.1",
            "PID|1||P-1",
            f"OBR|1|{service_request_id}^ACME||CBC^Blood count^L" + "|" * 21 + status,
            "OBX|1|NM|HGB^Hemoglobin^L||13.9|g/dL^^UCUM|||||F",
            "OBX|2|TX|COMMENT^Comment^L||Lipemic \\T\\ hemolysed~Redrawn||||||C",
        ]
    )


def test_fhir_results_reach_whoop_as_its_json_and_are_answered_in_fhir(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]

    status, body, headers = answer(bridge, results_event(FHIR, fhir_report(lipid), lipid))

    assert status == 202 and headers["Content-Type"] == FHIR
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "information"
    (received,) = wait_until(lambda: bridge.emulator.reports(lipid), 20, what="the report at WHOOP")
    assert received == {
        "status": "final",
        "observations": [
            {"code": "LDL", "value_numeric": 96.0, "unit": "mg/dL", "status": "final"},
            {"code": "COMMENT", "value_text": "Fasting | 12 h", "status": "final"},
        ],
    }

    # The workflow's rules, answered in FHIR: a second final report is a 409.
    status, body, _ = answer(bridge, results_event(FHIR, fhir_report(lipid), lipid))
    assert status == 409
    (issue,) = json.loads(body)["issue"]
    assert issue["code"] == "business-rule" and "allowed next" in issue["diagnostics"]
    assert len(bridge.emulator.reports(lipid)) == 1


def test_hl7_results_naming_their_test_are_acknowledged_once_per_idempotency_key(bridge, order):
    cbc = order["by_code"]["CBC"]
    event = results_event(HL7, oru(cbc), key="lis-run-77")

    status, body, headers = answer(bridge, event)

    assert status == 202 and headers["Content-Type"] == HL7
    ack = hl7_package.parse(body.replace("\r", "\r"))
    assert str(ack.segment("MSA")) == "MSA|AA|CTRL-1"
    (received,) = wait_until(lambda: bridge.emulator.reports(cbc), 20, what="the report at WHOOP")
    assert received["observations"] == [
        {"code": "HGB", "value_numeric": 13.9, "unit": "g/dL", "status": "final"},
        {"code": "COMMENT", "value_text": "Lipemic & hemolysed\nRedrawn", "status": "corrected"},
    ]

    status, body, headers = answer(bridge, event)

    assert status == 202 and headers.get("Idempotent-Replayed") == "true"
    assert "MSA|AA|CTRL-1" in body
    assert len(bridge.emulator.reports(cbc)) == 1

    # Without the key, the same results again: the workflow's 409 as an ACK AE.
    status, body, _ = answer(bridge, results_event(HL7, oru(cbc, control="CTRL-2")))
    assert status == 409 and "MSA|AE|CTRL-2" in body and "ERR|" in body
    assert len(bridge.emulator.reports(cbc)) == 1


@pytest.mark.parametrize(
    "content_type, body, status, expected",
    [
        (FHIR, "{", 400, '"resourceType": "OperationOutcome"'),
        (FHIR, json.dumps({"resourceType": "Patient"}), 400, '"expression": ["resourceType"]'),
        (HL7, "not a message", 400, "MSA|AR"),
        (HL7, "MSH|^~\\&|LIS|LAB|||2026||ADT^A01|C9|P|2.5.1\rPID|1", 400, "MSA|AR|C9"),
    ],
)
def test_what_is_no_message_of_the_kind_is_rejected_in_the_senders_language(
    bridge, order, content_type, body, status, expected
):
    lipid = order["by_code"]["LIPID_PANEL"]

    got, text, headers = answer(bridge, results_event(content_type, body, lipid))

    assert (got, headers["Content-Type"]) == (status, content_type) and expected in text
    assert bridge.emulator.reports(lipid) == []


def test_every_problem_of_a_malformed_message_is_named_and_nothing_reaches_whoop(bridge, order):
    lipid, cbc = order["by_code"]["LIPID_PANEL"], order["by_code"]["CBC"]

    # Mapped, then refused by the one results path's own validation: named in FHIRPath.
    status, body, _ = answer(bridge, results_event(FHIR, fhir_report(lipid, value={}), lipid))
    assert status == 400
    assert [issue.get("expression") for issue in json.loads(body)["issue"]] == [["DiagnosticReport.contained[0]"]]

    status, body, _ = answer(bridge, results_event(FHIR, fhir_report(lipid, status="registered"), None))
    assert status == 400 and '"expression": ["DiagnosticReport.status"]' in body

    broken = oru(cbc, status="Z").replace("|13.9|", "|13,9|")
    status, body, _ = answer(bridge, results_event(HL7, broken, cbc))
    assert status == 400 and "MSA|AE|CTRL-1" in body
    assert "ERR||OBR^1^25|103^" in body and "ERR||OBX^1^5|102^" in body

    status, body, _ = answer(bridge, results_event(HL7, oru(lipid), cbc))
    assert status == 400 and "ERR||OBR^1^2|204^" in body

    assert bridge.emulator.reports(lipid) == [] and bridge.emulator.reports(cbc) == []
    status, view, _ = bridge.lab_api(order_event(order["id"], "application/json"))
    assert all(sr["diagnostic_reports"] == [] for sr in view["service_requests"])


def test_the_order_as_a_fhir_bundle_and_as_an_hl7_order(bridge, order):
    status, body, headers = answer(bridge, order_event(order["id"], FHIR))

    assert status == 200 and headers["Content-Type"] == FHIR and headers["Vary"] == "Accept"
    bundle = json.loads(body)
    requests = {
        e["resource"]["id"]: e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    }
    assert set(requests) == set(order["by_code"].values())
    lipid = requests[order["by_code"]["LIPID_PANEL"]]
    assert lipid["requisition"]["value"] == order["id"] and lipid["code"]["coding"][0]["code"] == "LIPID_PANEL"
    assert [e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"] == [
        order["patient"]["id"]
    ]

    status, body, headers = answer(bridge, order_event(order["id"], HL7))

    assert status == 200 and headers["Content-Type"] == HL7
    message = hl7_package.parse(body)
    assert str(message.segment("MSH")(9)) == "ORM^O01^ORM_O01"
    placers = [message.extract_field("OBR", n, 2, 1, 1) for n in range(1, len(message.segments("OBR")) + 1)]
    assert sorted(placers) == sorted(order["by_code"].values())

    status, body, _ = answer(bridge, order_event("00000000-0000-4000-8000-000000000000", FHIR))
    assert status == 404 and json.loads(body)["issue"][0]["code"] == "not-found"
