"""The order pushed on the bus (OrderPushFormat) on the local stack: requisition.received as
a rule copies it off the stack's bus carries the order as FHIR R4 (parsed by fhir.resources)
or HL7 v2 ORM^O01 (parsed by hl7), its test codes mapped by the operator's code map in SSM,
equal to what GET /lab/requisitions/{id} answers in the same language; with `none` (the
default) it carries no patient field."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle

from integration_harness import SAMPLE_REQUISITION_ID, Bridge, load_event, start_bridge
from local.stack import wait_until

CODE_MAP_NAME = "/whoop-bridge-local/lis-code-map"
CODE_MAP = {"tests": {"LIPID_PANEL": {"code": "57698-3", "system": "http://loinc.org", "display": "Lipid panel"}}}
MEDIA = {"fhir": "application/fhir+json", "hl7": "x-application/hl7-v2+er7"}


@pytest.fixture(scope="module", params=["none", "fhir", "hl7"])
def pushing(request) -> Iterator[tuple[str, Bridge]]:
    """A stack whose OrderPushFormat is the parameter, with a code map in SSM."""
    stack, emulator = start_bridge(parameters={"OrderPushFormat": request.param, "LisCodeMapParameter": CODE_MAP_NAME})
    try:
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name=CODE_MAP_NAME, Type="String", Value=json.dumps(CODE_MAP), Overwrite=True
        )
        yield request.param, Bridge(stack, emulator)
    finally:
        stack.stop()
        emulator.stop()


def received_on_the_bus(bridge: Bridge) -> tuple[dict, dict]:
    requisition = bridge.process_requisition(["LIPID_PANEL", "CBC"])
    [detail] = wait_until(
        lambda: bridge.published("requisition.received", requisition_id=requisition["id"]),
        what="requisition.received on the bus",
    )
    return requisition, detail


def get_order(bridge: Bridge, requisition_id: str, accept: str) -> str:
    event = load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: requisition_id})
    event["headers"]["Accept"] = accept
    event["multiValueHeaders"]["Accept"] = [accept]
    answer = bridge.invoke("LabApiFunction", event)
    assert answer["statusCode"] == 200
    return answer["body"]


def test_requisition_received_carries_the_order_only_when_pushed(pushing):
    fmt, bridge = pushing
    requisition, detail = received_on_the_bus(bridge)
    by_code = {sr["code"]: sr["id"] for sr in requisition["service_requests"]}
    assert {entry["service_request_id"] for entry in detail["service_requests"]} == set(by_code.values())
    patient = requisition["patient"]
    if fmt == "none":
        assert set(detail) == {"version", "requisition_id", "service_requests"}
        written = json.dumps(detail)
        assert not any(str(value) in written for value in patient.values())
        return
    order = detail["order"]
    assert order["content_type"] == MEDIA[fmt] and "order_omitted" not in detail
    if fmt == "fhir":
        bundle = Bundle.model_validate(order["body"])
        [person] = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "Patient"]
        assert person.name[0].family == patient["last_name"] and str(person.birthDate) == patient["birth_date"]
        codes = {
            e.resource.id: e.resource.code.coding[0].code
            for e in bundle.entry
            if e.resource.get_resource_type() == "ServiceRequest"
        }
        assert codes == {by_code["LIPID_PANEL"]: "57698-3", by_code["CBC"]: "CBC"}
        # What GET answers in FHIR, but for the Bundle's own timestamps (none are set).
        assert json.loads(get_order(bridge, requisition["id"], MEDIA[fmt])) == order["body"]
    else:
        message = hl7.parse(order["body"])
        assert str(message.segment("PID")[5]) == f"{patient['last_name']}^{patient['first_name']}"
        codes = {str(obr[2][0][0]): str(obr[4][0][0]) for obr in message.segments("OBR")}
        assert codes == {by_code["LIPID_PANEL"]: "57698-3", by_code["CBC"]: "CBC"}
        # What GET answers in HL7, but for MSH-7 (time) and MSH-10 (control id) of each message.
        got = hl7.parse(get_order(bridge, requisition["id"], MEDIA[fmt]))
        assert [str(segment) for segment in got[1:]] == [str(segment) for segment in message[1:]]
