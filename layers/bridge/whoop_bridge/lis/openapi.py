"""The lab API document's FHIR and HL7 v2 media types (README "Connect your LIS"): the
results routes take `application/fhir+json` and `x-application/hl7-v2+er7` bodies and
answer in them (OperationOutcome, ACK); `GET /lab/requisitions/{id}` answers a Bundle or
an ORM^O01 by `Accept`. Plain dicts: the document is served without the libraries."""

from __future__ import annotations

from typing import Any

from whoop_bridge.lis.negotiation import FHIR, HL7, ORDER, RESULTS, SELF_IDENTIFYING_RESULTS

_RESOURCE = {"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"type": "string"}}}
OPERATION_OUTCOME = {
    **_RESOURCE,
    "description": "FHIR R4 OperationOutcome: one issue per problem (expression: its FHIRPath), or one information issue on 202",
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {"type": "array", "minItems": 1, "items": {"type": "object"}},
    },
    "required": ["resourceType", "issue"],
}
ACK = {"type": "string", "description": "HL7 v2.5.1 ACK (segments end with CR): MSA AA, AE or AR; one ERR per problem"}
REPORT_IN = {
    **_RESOURCE,
    "description": "FHIR R4 DiagnosticReport (Observations contained) or a Bundle holding one; basedOn names the service request",
}
ORU_IN = {
    "type": "string",
    "description": "HL7 v2 ORU^R01 (ER7, segments end with CR): OBR-2 names the service request",
}
BUNDLE_OUT = {
    **_RESOURCE,
    "description": "FHIR R4 Bundle (collection): Patient, a ServiceRequest per test, Appointments",
}
ORM_OUT = {
    "type": "string",
    "description": "HL7 v2.5.1 ORM^O01: PID, then ORC, TQ1, OBR per test (placer order number = service request id)",
}


def _paths(document: dict[str, Any], template: str) -> dict[str, Any]:
    return document.get("paths", {}).get(template.replace("<", "{").replace(">", "}"), {})


def amend(document: dict[str, Any]) -> None:
    """Add the FHIR and HL7 media types to the lab API's OpenAPI `document`, in place."""
    for path in (RESULTS, SELF_IDENTIFYING_RESULTS):
        operation = _paths(document, path).get("post")
        if operation is None:
            continue
        body = operation.setdefault("requestBody", {"required": True, "content": {}})
        if path == SELF_IDENTIFYING_RESULTS:
            body["description"] = (
                "Results naming their test; WHOOP's JSON goes to /lab/service-requests/{id}/results (415 here)"
            )
            body["content"].update({FHIR: {"schema": REPORT_IN}, HL7: {"schema": ORU_IN}})
        else:
            # Listed as bodies on /lab/results only: no JSON Schema holds FHIR's and HL7's own
            # rules, and a schema-valid JSON report here must stay accepted (tests/contract).
            body["description"] = (
                f"WHOOP's JSON report; or, by Content-Type, {FHIR} or {HL7} as on POST /lab/results (naming this test)"
            )
        unavailable = {"description": "The code map (LisCodeMapParameter) cannot be read; the log says why"}
        operation.setdefault("responses", {}).setdefault("503", unavailable)
        for status, response in operation["responses"].items():
            if status != "403":  # API Gateway's own answer, before the function
                response.setdefault("content", {}).update({FHIR: {"schema": OPERATION_OUTCOME}, HL7: {"schema": ACK}})
    operation = _paths(document, ORDER).get("get")
    if operation is not None:
        for status, response in operation.get("responses", {}).items():
            if status == "200":
                response.setdefault("content", {}).update({FHIR: {"schema": BUNDLE_OUT}, HL7: {"schema": ORM_OUT}})
            elif status != "403":
                response.setdefault("content", {})[FHIR] = {"schema": OPERATION_OUTCOME}
