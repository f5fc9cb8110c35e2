"""The demo lab's LIS messages: a WHOOP-shaped report written as a FHIR R4 DiagnosticReport
or an HL7 v2.5.1 ORU^R01, as a lab's own system would send them (README "Connect your LIS").
Built with the same libraries the bridge reads them with (fhir.resources, hl7)."""

from __future__ import annotations

import json
from typing import Any

FHIR = "application/fhir+json"
HL7 = "x-application/hl7-v2+er7"
# WHOOP report status -> DiagnosticReport.status is the same word; -> OBR-25 (HL7 table 0123).
OBR_STATUS = {"partial": "A", "preliminary": "P", "final": "F", "corrected": "C", "amended": "C", "cancelled": "X"}
OBX_STATUS = {"final": "F", "preliminary": "P", "corrected": "C", "amended": "A", "cancelled": "X"}


def fhir_report(service_request_id: str, report: dict[str, Any]) -> str:
    """`report` (WHOOP's shape) as a DiagnosticReport with its Observations contained."""
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    contained = []
    for n, observation in enumerate(report.get("observations", []), start=1):
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": f"obs{n}",
            "status": observation.get("status", "final"),
            "code": {"coding": [{"system": "urn:demo-lab:codes", "code": observation["code"]}]},
        }
        if "value_numeric" in observation:
            resource["valueQuantity"] = {"value": observation["value_numeric"], "unit": observation.get("unit")}
        else:
            resource["valueString"] = observation["value_text"]
        contained.append(resource)
    written = {
        "resourceType": "DiagnosticReport",
        "status": report["status"],
        "code": {"text": "results"},
        "basedOn": [{"reference": f"ServiceRequest/{service_request_id}"}],
        "contained": contained,
        "result": [{"reference": f"#{resource['id']}"} for resource in contained],
    }
    DiagnosticReport.model_validate(written)  # the demo lab sends valid FHIR
    return json.dumps(written)


def oru(service_request_id: str, report: dict[str, Any], control_id: str) -> str:
    """`report` (WHOOP's shape) as an ORU^R01 v2.5.1 naming its test in OBR-2."""
    import hl7

    header = f"MSH|^~\\&|DEMO_LIS|DEMO LAB|WHOOP_BRIDGE|WHOOP|20261201120000||ORU^R01^ORU_R01|{control_id}|P|2.5.1"
    escape = hl7.parse(header).escape
    segments = [header, f"OBR|1|{service_request_id}^DEMO_LIS||RESULTS" + "|" * 21 + OBR_STATUS[report["status"]]]
    for n, observation in enumerate(report.get("observations", []), start=1):
        numeric = "value_numeric" in observation
        value = observation["value_numeric"] if numeric else observation["value_text"]
        status = OBX_STATUS.get(observation.get("status", "final"), "F")
        fields = [str(n), "NM" if numeric else "ST", escape(observation["code"]), "", escape(str(value))]
        fields += [escape(observation.get("unit", "")), "", "", "", "", status]
        segments.append("OBX|" + "|".join(fields))
    text = "\r".join(segments) + "\r"
    hl7.parse(text)  # the demo lab sends valid HL7
    return text
