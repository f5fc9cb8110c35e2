"""The front both API handlers share (whoop_bridge.api), through the real lab_api and
member_api handlers on the local stack: `Idempotency-Key` on every POST, and the guard that
makes bad input of any shape a 4xx problem, never a 5xx or a Lambda error."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any

import pytest

from integration_harness import SAMPLE_REQUISITION_ID, SAMPLE_SERVICE_REQUEST_ID, load_event
from local.stack import wait_until
from whoop_bridge.api import bodies, idempotency

CODES = ["LIPID_PANEL", "CBC"]
POST_EVENTS = (
    ("LabApiFunction", "lab_api_results_final.json"),
    ("LabApiFunction", "lab_api_service_request_event_attended.json"),
    ("LabApiFunction", "lab_api_requisition_event_attended.json"),
    ("LabApiFunction", "lab_api_test_data.json"),
    ("MemberApiFunction", "member_api_create_connection.json"),
)


def _answer(bridge, function: str, event: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    answer = bridge.invoke(function, event)
    headers = {name: values[-1] for name, values in (answer.get("multiValueHeaders") or {}).items()} | (
        answer.get("headers") or {}
    )
    text = answer.get("body") or ""
    return answer["statusCode"], json.loads(text) if text else None, headers


def _with(
    event: dict[str, Any], *, body: str | None = None, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """A copy of an API event with another body, more headers (in both header maps) or fields."""
    changed = copy.deepcopy(event)
    if body is not None:
        changed["body"] = body
    for name, value in (headers or {}).items():
        for key in [key for key in changed["headers"] if key.lower() == name.lower()]:
            del changed["headers"][key]
            changed["multiValueHeaders"].pop(key, None)
        changed["headers"][name] = value
        changed["multiValueHeaders"][name] = [value]
    changed.update(fields)
    return changed


@pytest.fixture
def order(bridge) -> dict:
    requisition = bridge.process_requisition(CODES)
    requisition["by_code"] = {sr["code"]: sr["id"] for sr in requisition["service_requests"]}
    return requisition


def _results(service_request_id: str, key: str | None = None, body: dict | None = None) -> dict[str, Any]:
    event = load_event("lab_api_results_final.json", **{SAMPLE_SERVICE_REQUEST_ID: service_request_id})
    return _with(
        event, headers={"Idempotency-Key": key} if key else None, body=json.dumps(body) if body is not None else None
    )


# Idempotency-Key ---------------------------------------------------------------------------


def test_results_posted_twice_with_one_key_are_one_report_and_the_same_answer(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    key = str(uuid.uuid4())

    first = _answer(bridge, "LabApiFunction", _results(lipid, key))
    wait_until(lambda: bridge.emulator.reports(lipid), 20, what="the report at WHOOP")
    again = _answer(bridge, "LabApiFunction", _results(lipid, key))

    assert first[0] == again[0] == 202
    assert again[1] == first[1]  # the same report_id and event_id: nothing new was made
    assert again[2]["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first[2]
    wait_until(
        lambda: bridge.service_request_item(lipid).get("workflow") != "processing", 20, what="the workflow settled"
    )
    assert len(bridge.emulator.reports(lipid)) == 1
    _, view, _ = _answer(
        bridge, "LabApiFunction", load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: order["id"]})
    )
    stored = next(sr for sr in view["service_requests"] if sr["id"] == lipid)["diagnostic_reports"]
    assert [report["report_id"] for report in stored] == [first[1]["report_id"]]


def test_without_a_key_a_repeat_is_judged_again(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    assert _answer(bridge, "LabApiFunction", _results(lipid))[0] == 202
    bridge.wait_for_workflow(lipid, "awaiting_correction", "closed", "awaiting_lab_event")
    status, body, _ = _answer(bridge, "LabApiFunction", _results(lipid))
    # The first final report closed the way for a second one: the rules, not a replay, answer.
    assert status == 409 and body["error"] == "transition_forbidden"


def test_one_key_with_another_body_is_422_and_changes_nothing(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    key = str(uuid.uuid4())
    first = _answer(bridge, "LabApiFunction", _results(lipid, key))
    wait_until(lambda: bridge.emulator.reports(lipid), 20, what="the report at WHOOP")
    other = {"status": "preliminary", "observations": [{"code": "LDL", "value_numeric": 1.0, "status": "preliminary"}]}

    status, body, _ = _answer(bridge, "LabApiFunction", _results(lipid, key, other))

    assert first[0] == 202
    assert status == 422
    assert body == {
        "error": "idempotency_key_reused",
        "problems": [{"field": "header.Idempotency-Key", "problem": body["problems"][0]["problem"]}],
    }
    assert "another body" in body["problems"][0]["problem"]
    assert len(bridge.emulator.reports(lipid)) == 1


def test_one_key_on_two_tests_is_two_requests(bridge, order):
    key = str(uuid.uuid4())
    answers = [_answer(bridge, "LabApiFunction", _results(order["by_code"][code], key)) for code in CODES]

    assert [status for status, _, _ in answers] == [202, 202]
    assert answers[0][1]["service_request_id"] != answers[1][1]["service_request_id"]


def test_a_repeat_while_the_first_is_running_is_409_busy_with_retry_after(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    key = str(uuid.uuid4())
    event = _results(lipid, key)
    # The first request holds the key: what Powertools writes when it starts one.
    identity = event["requestContext"]["identity"]
    running = {
        "key": key,
        "method": "POST",
        "route": event["resource"],
        "path": {"service_request_id": lipid},
        "caller": identity.get("userArn") or identity.get("caller"),
        "payload": json.loads(event["body"]),
    }
    persistence = idempotency.persistence()
    # The name Powertools keys records on, as it was before the api package (keys stored then still match).
    persistence.configure(idempotency.CONFIG, "whoop_bridge.api.idempotency_middleware.<locals>.run")
    persistence.save_inprogress(data=running, remaining_time_in_millis=60_000)

    status, body, headers = _answer(bridge, "LabApiFunction", event)

    assert status == 409 and body["error"] == "busy" and body["retryable"] is True
    assert headers["Retry-After"] == str(bodies.RETRY_AFTER_SECONDS)
    assert bridge.emulator.reports(lipid) == []


def test_an_answer_that_depends_on_state_is_not_kept(bridge):
    unknown = str(uuid.uuid4())
    key = str(uuid.uuid4())
    first = _answer(bridge, "LabApiFunction", _results(unknown, key))
    again = _answer(bridge, "LabApiFunction", _results(unknown, key))

    assert first[0] == again[0] == 404
    assert "Idempotent-Replayed" not in again[2]


def test_create_connection_twice_with_one_key_is_one_link(bridge):
    event = _with(load_event("member_api_create_connection.json"), headers={"Idempotency-Key": str(uuid.uuid4())})

    first = _answer(bridge, "MemberApiFunction", event)
    again = _answer(bridge, "MemberApiFunction", event)

    assert first[0] == again[0] == 201
    assert again[1]["authorization_url"] == first[1]["authorization_url"]  # one OAuth state, not two
    assert again[2]["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "two words"])
def test_a_malformed_key_is_400(bridge, key):
    event = _with(load_event("member_api_create_connection.json"), headers={"Idempotency-Key": key})
    status, body, _ = _answer(bridge, "MemberApiFunction", event)

    assert status == 400 and body["error"] == "invalid_request"
    assert [problem["field"].lower() for problem in body["problems"]] == ["header.idempotency-key"]


# The guard: bad input of any shape ----------------------------------------------------------


def _post_event(function: str, name: str) -> dict[str, Any]:
    return load_event(name)


@pytest.mark.parametrize(("function", "name"), POST_EVENTS)
@pytest.mark.parametrize(
    ("content_type", "body", "field"),
    [
        ("multipart/form-data", "--x\r\n", "header.Content-Type"),
        ("text/plain", '{"status": "APPOINTMENT_ATTENDED"}', "header.Content-Type"),
        ("application/json; charset=latin-1", "{}", "header.Content-Type"),
        ("application/x-www-form-urlencoded", "a=b", "header.Content-Type"),
    ],
)
def test_a_body_that_is_not_json_is_415_naming_the_allowed_type(bridge, function, name, content_type, body, field):
    status, answer, _ = _answer(
        bridge, function, _with(_post_event(function, name), body=body, headers={"Content-Type": content_type})
    )

    assert status == 415
    assert answer == {
        "error": "unsupported_media_type",
        "problems": [{"field": field, "problem": "must be application/json (UTF-8)"}],
    }


HUGE = "1" + "0" * 5000
DEEP = "[" * 100_000 + "]" * 100_000
FINITE = "must be a finite number (NaN and Infinity are not JSON; 1e999 is beyond a double)"


@pytest.mark.parametrize(("function", "name"), POST_EVENTS)
@pytest.mark.parametrize(
    ("body", "encoded", "field", "problem"),
    [
        ("", False, "body", "a JSON object is required"),
        (base64.b64encode(b'{"status": "\xff\xfe"}').decode(), True, "body", "not UTF-8 text"),
        ("[1, 2]", False, "body", "must be a JSON object"),
        ('"text"', False, "body", "must be a JSON object"),
        ("{", False, "body", "not valid JSON"),
        ('{"status": ' + HUGE + "}", False, "body", "not valid JSON"),
        ('{"status": 9007199254740993}', False, "status", "an integer beyond ±9007199254740991 (I-JSON, RFC 7493)"),
        ('{"a": [{"b": 1e999}]}', False, "a.0.b", FINITE),
        ('{"status": NaN}', False, "status", FINITE),
        ('{"status": -Infinity}', False, "status", FINITE),
        ('{"a": ' + DEEP + "}", False, "body", "nested deeper than 32 levels"),
        ('{"a": ' + "[" * 40 + "]" * 40 + "}", False, "body", "nested deeper than 32 levels"),
        ('{"status": "\\ud800"}', False, "status", "a string holds an unpaired surrogate (\\ud800-\\udfff)"),
        ('{"status": 1, "status": 2}', False, "body", "a member name appears twice in one object"),
    ],
)
def test_a_body_no_route_can_read_is_400_naming_the_problem(bridge, function, name, body, encoded, field, problem):
    event = _with(_post_event(function, name), body=body, isBase64Encoded=encoded)

    status, answer, _ = _answer(bridge, function, event)

    assert status == 400
    assert answer == {"error": "invalid_request", "problems": [{"field": field, "problem": problem}]}


def test_a_base64_utf8_body_is_read_as_its_text(bridge):
    event = load_event("member_api_create_connection.json")
    event = _with(event, body=base64.b64encode(event["body"].encode()).decode(), isBase64Encoded=True)

    assert _answer(bridge, "MemberApiFunction", event)[0] == 201


def test_a_query_parameter_given_twice_is_400(bridge):
    event = load_event("lab_api_list_requisitions.json")
    event["queryStringParameters"] = {"limit": "2"}
    event["multiValueQueryStringParameters"] = {"limit": ["1", "2"]}

    status, answer, _ = _answer(bridge, "LabApiFunction", event)

    assert status == 400
    assert answer == {
        "error": "invalid_request",
        "problems": [{"field": "query.limit", "problem": "given more than once"}],
    }


def test_an_unknown_status_filter_is_400_not_an_empty_page(bridge):
    event = load_event("lab_api_list_requisitions.json")
    event["queryStringParameters"] = {"status": "Specimen collected"}
    event["multiValueQueryStringParameters"] = {"status": ["Specimen collected"]}

    status, answer, _ = _answer(bridge, "LabApiFunction", event)

    assert status == 400 and answer["problems"][0]["field"] == "query.status"


@pytest.mark.parametrize("odd", ["%00", "a/b", "\u0084", "x" * 3000, " "])
def test_odd_path_parameters_are_a_4xx_problem(bridge, odd):
    event = load_event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: "PLACEHOLDER"})
    event["path"] = event["path"].replace("PLACEHOLDER", odd)
    event["pathParameters"] = {"requisition_id": odd}

    status, answer, _ = _answer(bridge, "LabApiFunction", event)

    assert status in (400, 404)
    assert answer["error"] in ("invalid_request", "not_found")


@pytest.mark.parametrize("odd", ["%00", "\u0084", "a" * 200, "-lead"])
def test_odd_member_ids_are_a_4xx_problem(bridge, odd):
    event = load_event("member_api_get_connection.json")
    old = event["pathParameters"]["client_user_id"]
    event["path"] = event["path"].replace(old, odd)
    event["pathParameters"] = {"client_user_id": odd}

    status, answer, _ = _answer(bridge, "MemberApiFunction", event)

    assert status in (400, 404)
    assert answer["error"] in ("invalid_request", "not_found")
