"""Which language a lab API request speaks, the translation around the one results path,
and that nothing of FHIR or HL7 is loaded for a JSON request."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from whoop_bridge.lis import negotiation

ROOT = Path(__file__).resolve().parents[3]
SR = "6f1c2f44-1d1a-4d6f-9a57-1a2b3c4d5e6f"
ORU = "\r".join(
    [
        "MSH|^~\\&|LIS|LAB|WHOOP_BRIDGE|WHOOP|20261201120000||ORU^R01|CTRL-7|P|2.5.1",
        f"OBR|1|{SR}||LIPID" + "|" * 21 + "F",
        "OBX|1|NM|2093-3^Chol^LN||185|mg/dL|||||F",
    ]
)
FHIR_REPORT = {
    "resourceType": "DiagnosticReport",
    "status": "final",
    "code": {"text": "Lipid panel"},
    "basedOn": [{"reference": f"ServiceRequest/{SR}"}],
    "contained": [
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "code": {"coding": [{"code": "LDL"}]},
            "valueString": "high",
        }
    ],
}


def event(resource, content_type, body, method="POST", **headers):
    return {
        "resource": resource,
        "path": resource.replace("{service_request_id}", SR),
        "httpMethod": method,
        "headers": {"Content-Type": content_type, **headers},
        "multiValueHeaders": {"Content-Type": [content_type], **{k: [v] for k, v in headers.items()}},
        "pathParameters": {"service_request_id": SR} if "{" in resource else None,
        "body": body,
        "isBase64Encoded": False,
    }


class Route:
    """The guarded event handler, as negotiation sees it: records what reached it."""

    def __init__(self, status=202, body=None, headers=None):
        self.seen = []
        self.answer = {
            "statusCode": status,
            "multiValueHeaders": {"Content-Type": ["application/json"], **{k: [v] for k, v in (headers or {}).items()}},
            "body": json.dumps(
                body
                if body is not None
                else {"service_request_id": SR, "event_id": "e", "accepted": "report", "report_id": "r-9"}
            ),
        }

    def __call__(self, event, context):
        self.seen.append(event)
        return self.answer


@pytest.mark.parametrize(
    "accept, language",
    [
        ("", None),
        ("application/json", None),
        ("*/*", None),
        ("application/fhir+json", negotiation.FHIR),
        ("application/json+fhir", negotiation.FHIR),
        ("x-application/hl7-v2+er7", negotiation.HL7),
        ("application/json;q=0.5, x-application/hl7-v2+er7", negotiation.HL7),
        ("application/fhir+json;q=0.4, application/json;q=0.9", None),
        ("text/html, application/fhir+json;q=0.1", negotiation.FHIR),
        ("application/fhir+json;q=0", None),
    ],
)
def test_accept(accept, language):
    assert negotiation.accepted_language(accept) == language


def test_a_json_request_passes_untouched():
    route = Route()
    request = event(negotiation.RESULTS, "application/json", '{"status": "final"}')
    answer = negotiation.negotiate(request, None, route)
    assert route.seen == [request] and answer is route.answer


def test_hl7_results_reach_the_one_results_path_as_whoop_json_and_are_acknowledged():
    route = Route(headers={"Idempotent-Replayed": "true"})
    request = event(
        negotiation.SELF_IDENTIFYING_RESULTS,
        "x-application/hl7-v2+er7; charset=utf-8",
        ORU,
        **{"Idempotency-Key": "k-1"},
    )
    answer = negotiation.negotiate(request, None, route)
    (seen,) = route.seen
    assert seen["resource"] == negotiation.RESULTS and seen["pathParameters"] == {"service_request_id": SR}
    assert seen["path"] == f"/lab/service-requests/{SR}/results"
    assert seen["headers"]["Content-Type"] == "application/json" and seen["headers"]["Idempotency-Key"] == "k-1"
    assert json.loads(seen["body"]) == {
        "status": "final",
        "observations": [{"code": "2093-3", "value_numeric": 185.0, "unit": "mg/dL", "status": "final"}],
    }
    assert answer["statusCode"] == 202
    assert answer["multiValueHeaders"]["Content-Type"] == [negotiation.HL7]
    assert answer["multiValueHeaders"]["Idempotent-Replayed"] == ["true"]
    assert "MSA|AA|CTRL-7" in answer["body"]


def test_fhir_results_and_the_routes_problems_in_fhir():
    invalid = {
        "error": "invalid_request",
        "problems": [{"field": "observations.0.value_text", "problem": "too long"}],
    }
    route = Route(400, invalid)
    answer = negotiation.negotiate(
        event(negotiation.RESULTS, "application/fhir+json", json.dumps(FHIR_REPORT)), None, route
    )
    assert json.loads(route.seen[0]["body"])["observations"][0] == {
        "code": "LDL",
        "value_text": "high",
        "status": "final",
    }
    outcome = json.loads(answer["body"])
    assert answer["statusCode"] == 400 and answer["multiValueHeaders"]["Content-Type"] == [negotiation.FHIR]
    assert outcome["issue"][0]["expression"] == ["DiagnosticReport.contained[0].valueString"]


@pytest.mark.parametrize(
    "content_type, body, status, expected",
    [
        ("application/fhir+json", "{not json", 400, '"resourceType": "OperationOutcome"'),
        ("application/fhir+json", '{"a": 1, "a": 2}', 400, "appears twice"),
        ("application/fhir+json", json.dumps({**FHIR_REPORT, "basedOn": []}), 400, "DiagnosticReport.basedOn"),
        (
            "application/fhir+json",
            json.dumps({**FHIR_REPORT, "basedOn": [{"reference": "ServiceRequest/other"}]}),
            400,
            "another service request",
        ),
        ("x-application/hl7-v2+er7", "hello", 400, "MSA|AR"),
        ("x-application/hl7-v2+er7", ORU.replace("|F\r", "|Z\r"), 400, "ERR||OBR^1^25|103^Table value not found"),
        ("x-application/hl7-v2+er7", ORU.replace("ORU^R01", "ADT^A01"), 400, "MSA|AR|CTRL-7"),
        ("x-application/hl7-v2+er7", "MSH|^~\\&|" + "x" * 300_000, 413, "MSA|AR"),
    ],
)
def test_a_message_that_cannot_be_mapped_never_reaches_the_route(content_type, body, status, expected):
    route = Route()
    answer = negotiation.negotiate(event(negotiation.RESULTS, content_type, body), None, route)
    assert route.seen == []
    assert answer["statusCode"] == status and expected in answer["body"]
    assert answer["multiValueHeaders"]["Content-Type"] == [negotiation.language_of(content_type)]


def test_an_unreadable_code_map_is_a_503_in_the_senders_language(monkeypatch):
    monkeypatch.setenv("LIS_CODE_MAP_PARAMETER", "/bridge/code-map")
    monkeypatch.setattr("whoop_bridge.lis.codes._from_ssm", lambda name: (_ for _ in ()).throw(RuntimeError("denied")))
    route = Route()
    answer = negotiation.negotiate(event(negotiation.RESULTS, "x-application/hl7-v2+er7", ORU), None, route)
    assert route.seen == [] and answer["statusCode"] == 503 and "MSA|AR|CTRL-7" in answer["body"]


VIEW = {
    "id": "req-1",
    "patient": {"id": "p-1"},
    "appointments": [],
    "service_requests": [{"id": SR, "code": "LIPID_PANEL", "status": "active"}],
}


@pytest.mark.parametrize(
    "accept, media, marker",
    [
        ("application/fhir+json", negotiation.FHIR, '"resourceType": "Bundle"'),
        ("x-application/hl7-v2+er7", negotiation.HL7, "ORM^O01"),
    ],
)
def test_the_order_in_the_accepted_language(accept, media, marker):
    route = Route(200, VIEW)
    request = event(negotiation.ORDER, "application/json", None, method="GET", Accept=accept)
    answer = negotiation.negotiate(request, None, route)
    assert answer["statusCode"] == 200 and answer["multiValueHeaders"]["Content-Type"] == [media]
    assert marker in answer["body"] and SR in answer["body"] and answer["multiValueHeaders"]["Vary"] == ["Accept"]


def test_an_unknown_order_in_fhir_is_an_operation_outcome():
    route = Route(404, {"error": "not_found", "message": "no requisition x"})
    answer = negotiation.negotiate(
        event(negotiation.ORDER, "application/json", None, method="GET", Accept="application/fhir+json"), None, route
    )
    assert answer["statusCode"] == 404 and json.loads(answer["body"])["issue"][0]["code"] == "not-found"


LAZY = """
import importlib.util, json, sys
sys.path.insert(0, "layers/bridge")
def load(name):
    spec = importlib.util.spec_from_file_location(name, f"functions/{name}/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
load("webhook_intake")
lab_api = load("lab_api")
event = {"resource": "/lab/service-requests/{service_request_id}/results", "httpMethod": "POST",
         "headers": {"Content-Type": "application/json"}, "body": "{}"}
lab_api.negotiation.negotiate(event, None, lambda event, context: {"statusCode": 202, "body": "{}"})
get = {"resource": "/lab/requisitions/{requisition_id}", "httpMethod": "GET", "headers": {"Accept": "application/json"}}
lab_api.negotiation.negotiate(get, None, lambda event, context: {"statusCode": 200, "body": "{}"})
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("fhir", "fhir_core", "hl7", "hl7apy") or m.startswith("whoop_bridge.lis."))))
"""


def test_json_requests_and_the_intake_load_neither_library():
    environment = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "lazy"}
    result = subprocess.run(
        [sys.executable, "-c", LAZY], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["whoop_bridge.lis.negotiation"]


# rev3: a body that is not UTF-8 (API Gateway hands it over base64-encoded).
LATIN_ORU = "\r".join(
    [
        "MSH|^~\\&|LIS|LAB|WHOOP_BRIDGE|WHOOP|20261201120000||ORU^R01|CTRL-8|P|2.5.1||||||8859/1",
        f"OBR|1|{SR}||LIPID" + "|" * 21 + "F",
        "OBX|1|ST|NOTE^Note^L||Blutprobe hämolysiert|||||F",
    ]
)


def encoded(content_type, data):
    request = event(negotiation.SELF_IDENTIFYING_RESULTS, content_type, base64.b64encode(data).decode())
    return {**request, "isBase64Encoded": True}


@pytest.mark.parametrize(
    "content_type, text",
    [
        ("x-application/hl7-v2+er7", LATIN_ORU),  # MSH-18 names it
        ("x-application/hl7-v2+er7; charset=ISO-8859-1", LATIN_ORU.replace("||||||8859/1", "")),
        ("x-application/hl7-v2+er7", "\x0b" + LATIN_ORU + "\x1c\r"),  # in MLLP's framing
    ],
)
def test_a_latin_1_hl7_message_is_read_in_the_charset_msh_18_or_its_content_type_names(content_type, text):
    route = Route()
    answer = negotiation.negotiate(encoded(content_type, text.encode("latin-1")), None, route)
    (seen,) = route.seen
    assert json.loads(seen["body"])["observations"][0]["value_text"] == "Blutprobe hämolysiert"
    assert answer["statusCode"] == 202 and "MSA|AA|CTRL-8" in answer["body"]


@pytest.mark.parametrize(
    "content_type, data, expected",
    [
        ("x-application/hl7-v2+er7", ORU.replace("LIPID", "LIPID\xe4").encode("latin-1"), "ERR||body|"),
        ("application/fhir+json", json.dumps(FHIR_REPORT).replace("high", "h\xf6h").encode("latin-1"), '"body"'),
    ],
)
def test_a_body_that_is_not_utf_8_is_named_so_in_the_senders_language(content_type, data, expected):
    route = Route()
    answer = negotiation.negotiate(encoded(content_type, data), None, route)
    assert route.seen == []
    assert answer["statusCode"] == 400 and expected in answer["body"] and "UTF-8" in answer["body"]
