"""The timeline routes as API Gateway hands them to lab_api and member_api: the proxy answer
carries the SVG as plain text (no base64; the API has no binary media types), the JSON by
default, and the served OpenAPI documents list both media types and the 406."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET  # nosec B405 - parses the bridge's own picture

from integration_harness import SAMPLE_REQUISITION_ID, load_event

SVG = "image/svg+xml"


def _with_accept(event: dict, path: str, resource: str, parameters: dict[str, str], accept: str | None) -> dict:
    event = copy.deepcopy(event)
    event.update({"path": path, "resource": resource, "pathParameters": parameters})
    event["requestContext"].update({"resourcePath": resource, "path": f"/v1{path}"})
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Accept", None)
    if accept is not None:
        event["headers"]["Accept"], event["multiValueHeaders"]["Accept"] = accept, [accept]
    return event


def _order_timeline(requisition_id: str, accept: str | None) -> dict:
    event = load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: requisition_id})
    path = f"/lab/requisitions/{requisition_id}/timeline"
    resource = "/lab/requisitions/{requisition_id}/timeline"
    return _with_accept(event, path, resource, {"requisition_id": requisition_id}, accept)


def _content_type(answer: dict) -> str:
    return answer["multiValueHeaders"]["Content-Type"][0]


def test_the_svg_reaches_api_gateway_as_plain_text_and_json_is_the_default(bridge):
    requisition = bridge.store_order(["CBC"])
    (service_request,) = requisition["service_requests"]

    picture = bridge.invoke("LabApiFunction", _order_timeline(requisition["id"], "text/html;q=0.9, image/svg+xml"))
    default = bridge.invoke("LabApiFunction", _order_timeline(requisition["id"], None))

    assert (picture["statusCode"], _content_type(picture), picture.get("isBase64Encoded")) == (200, SVG, False)
    root = ET.fromstring(picture["body"].encode())  # nosec B314 - the bridge's own picture
    lanes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "lane"]
    assert [(g.get("data-service-request-id"), g.get("data-code")) for g in lanes] == [(service_request["id"], "CBC")]
    assert picture["multiValueHeaders"]["Vary"] == ["Accept"]
    assert (default["statusCode"], _content_type(default)) == (200, "application/json")
    body = json.loads(default["body"])
    assert body["service_requests"][0]["workflow"] == "starting"
    assert body["service_requests"][0]["entries"] == []


def test_a_repeated_accept_header_is_read_whole(bridge):
    requisition = bridge.store_order(["CBC"])
    event = _order_timeline(requisition["id"], "text/html")
    event["multiValueHeaders"]["Accept"] = ["text/html", "image/svg+xml"]

    answer = bridge.invoke("LabApiFunction", event)

    assert (answer["statusCode"], _content_type(answer)) == (200, SVG)


def test_both_documents_list_the_timeline_routes_with_json_svg_and_406(bridge):
    for function, name, path in (
        ("LabApiFunction", "lab_api_openapi.json", "/lab/requisitions/{requisition_id}/timeline"),
        ("MemberApiFunction", "lab_api_openapi.json", "/connections/{client_user_id}/timeline"),
    ):
        event = load_event(name)
        if function == "MemberApiFunction":
            event = _with_accept(event, "/members/openapi.json", "/members/openapi.json", {}, "application/json")
        document = json.loads(bridge.invoke(function, event)["body"])

        operation = document["paths"][path]["get"]
        assert set(operation["responses"]["200"]["content"]) == {"application/json", SVG}
        assert {"404", "406"} <= set(operation["responses"])
        assert document["components"]["schemas"]["NotAcceptableBody"]["required"] == ["error", "message", "offered"]
