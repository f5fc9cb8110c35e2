"""The sample events in events/: each is used by a test, and each still has the shape its
trigger produces (a route of the template, or the payload of a state of the ASL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration_harness import EVENTS, ROOT
from local.cfn import load_template

THIS_FILE = Path(__file__).resolve()
EVENT_FILES = sorted(EVENTS.glob("*.json"))
ASL = json.loads((ROOT / "statemachines" / "service_request.asl.json").read_text())


def _task_payloads() -> list[dict]:
    """Every Lambda payload the ASL passes (Parameters, or Parameters.Payload for callbacks)."""
    payloads = []
    for state in ASL["States"].values():
        parameters = state.get("Parameters") or {}
        payload = parameters.get("Payload", parameters)
        if "action" in payload:
            payloads.append(payload)
    return payloads


API_EVENT_FUNCTIONS = {
    "webhook_": "WebhookIntakeFunction",
    "lab_api_": "LabApiFunction",
    "member_api_": "MemberApiFunction",
    "oauth_callback_": "OAuthCallbackFunction",
}


def _schedule_inputs() -> list[dict]:
    inputs = []
    for spec in load_template()["Resources"].values():
        for event in (
            (spec.get("Properties") or {}).get("Events", {}).values()
            if spec.get("Type") == "AWS::Serverless::Function"
            else []
        ):
            if event["Type"] in ("Schedule", "ScheduleV2"):
                inputs.append(json.loads(event["Properties"]["Input"]))
    return inputs


def _routes(logical_id: str) -> set[tuple[str, str]]:
    events = load_template()["Resources"][logical_id]["Properties"]["Events"]
    return {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for event in events.values()
        if event["Type"] == "Api"
    }


def test_there_are_sample_events():
    assert len(EVENT_FILES) >= 18


def test_every_sample_event_is_used_by_a_test():
    tests_text = "\n".join(path.read_text() for path in (ROOT / "tests").rglob("*.py") if path.resolve() != THIS_FILE)
    unused = [path.name for path in EVENT_FILES if path.name not in tests_text]
    assert unused == [], f"events/ files no test uses: {unused}"


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda path: path.name)
def test_sample_event_has_the_shape_of_its_trigger(path):
    event = json.loads(path.read_text())
    name = path.name
    prefix = next((prefix for prefix in API_EVENT_FUNCTIONS if name.startswith(prefix)), None)
    if prefix:
        function = API_EVENT_FUNCTIONS[prefix]
        assert (event["httpMethod"], event["resource"]) in _routes(function)
        assert event["requestContext"]["resourcePath"] == event["resource"]
        assert event["requestContext"]["path"] == f"/v1{event['path']}"
        for key, value in (event["pathParameters"] or {}).items():
            assert "{" + key + "}" in event["resource"] and value in event["path"]
        assert set(event["headers"]) == set(event["multiValueHeaders"])
        if event["body"] is not None:
            json.loads(event["body"])
    elif name.startswith("sqs_member_"):
        (record,) = event["Records"]
        assert record["eventSource"] == "aws:sqs"
        body = json.loads(record["body"])
        # A data webhook as the intake enqueues it, a sync job, or member.connected from the bus.
        assert (
            body.keys()
            in (
                {"user_id", "id", "type", "trace_id"},
                {"job", "client_user_id", "cause", "start", "end", "steps", "next_token"},
            )
            or body.get("detail-type") == "member.connected"
        )
    elif name.startswith("sqs_"):
        (record,) = event["Records"]
        assert record["eventSource"] == "aws:sqs"
        assert set(json.loads(record["body"])) == {"event_type", "resource_id"}
    elif name.startswith("sfn_"):
        shapes = [
            payload
            for payload in _task_payloads()
            if payload["action"] == event["action"] and {key.removesuffix(".$") for key in payload} == set(event)
        ]
        assert shapes, f"no state of the ASL passes {sorted(event)} for {event['action']}"
        # Constant parameters (no .$) are what the ASL writes literally.
        assert any(
            all(event[key] == value for key, value in shape.items() if not key.endswith(".$")) for shape in shapes
        )
    elif name.startswith("schedule_"):
        assert event in _schedule_inputs()
    else:
        pytest.fail(f"{name}: unknown kind of sample event")
