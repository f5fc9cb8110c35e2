"""The audit trail on the local stack (moto from template.yaml): each call of a lab or
member API route writes exactly one record to the stack's audit log group (AuditLogGroup),
naming the caller's IAM ARN, the route template, the path's id, the outcome and the time,
and nothing of the data: no patient or member field, no result value, no token, no body."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from integration_harness import (
    SAMPLE_CLIENT_USER_ID,
    SAMPLE_REQUISITION_ID,
    SAMPLE_SERVICE_REQUEST_ID,
    load_event,
)

CODES = ["LIPID_PANEL", "CBC"]
RECORD_FIELDS = {
    "kind",
    "time",
    "request_id",
    "caller_arn",
    "caller_account",
    "route",
    "resource_type",
    "resource_id",
    "status",
}
PATH_IDS = {
    "requisition_id": "requisition",
    "service_request_id": "service_request",
    "document_id": "document",
    "client_user_id": "member",
}


def _audit_records(bridge) -> list[dict[str, Any]]:
    """Every record of the audit log group, as CloudWatch Logs holds them."""
    logs = boto3.client("logs", region_name="us-east-1")
    group = bridge.stack.output("AuditLogGroup")
    messages = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        messages.extend(event["message"] for event in page["events"])
    return [json.loads(message) for message in messages]


def _leaves(value: Any) -> set[str]:
    """Every string and number in a JSON value, as text."""
    if isinstance(value, dict):
        return {text for item in value.values() for text in _leaves(item)}
    if isinstance(value, list):
        return {text for item in value for text in _leaves(item)}
    if value is None or isinstance(value, bool):
        return set()
    return {str(value)}


def _call(bridge, function: str, event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Invoke `function` with `event`; its answer and the one audit record it wrote."""
    before = len(_audit_records(bridge))
    started = datetime.now(UTC) - timedelta(seconds=1)
    answer = bridge.invoke(function, json.loads(json.dumps(event)))
    records = _audit_records(bridge)
    new = records[before:]
    assert len(new) == 1, f"{event['httpMethod']} {event['resource']}: {len(new)} audit records"
    record = new[0]
    assert set(record) == RECORD_FIELDS
    assert record["kind"] == "api_call"
    assert started <= datetime.fromisoformat(record["time"].replace("Z", "+00:00")) <= datetime.now(UTC)
    context = event["requestContext"]
    assert record["caller_arn"] == context["identity"]["userArn"]
    assert record["caller_account"] == context["identity"]["accountId"]
    assert record["request_id"] == context["requestId"]
    assert record["route"] == f"{event['httpMethod']} {event['resource']}"
    assert record["status"] == answer["statusCode"]
    parameters = event.get("pathParameters") or {}
    named = [(kind, parameters[name]) for name, kind in PATH_IDS.items() if name in parameters]
    assert (record["resource_type"], record["resource_id"]) == (named[0] if named else (None, None))
    # No data: no value of the request's or the answer's body, nor of the query, is in it.
    data = _leaves(json.loads(event["body"]) if event.get("body") else None)
    data |= _leaves(json.loads(answer["body"]) if answer.get("body") else None)
    data |= _leaves(event.get("queryStringParameters"))
    allowed = {record["resource_id"], record["status"], str(record["status"]), record["request_id"]}
    # (The time and the route were checked above: the clock's and the template's own text.)
    message = " ".join(
        str(value) for key, value in record.items() if key not in ("time", "route") and value is not None
    )
    leaked = {text for text in data - {str(value) for value in allowed} if len(text) >= 4 and text in message}
    assert not leaked, f"{record['route']}: {leaked}"
    return answer, record


def _event(name: str, **replace: str) -> dict[str, Any]:
    event = load_event(name, **replace)
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


@pytest.fixture(scope="module")
def order(bridge) -> dict[str, Any]:
    return bridge.process_requisition(CODES)


def test_every_lab_route_writes_one_record_without_the_data(bridge, order):
    requisition_id = order["id"]
    service_request_id = order["service_requests"][0]["id"]
    on_order = {SAMPLE_REQUISITION_ID: requisition_id, SAMPLE_SERVICE_REQUEST_ID: service_request_id}
    answer, record = _call(bridge, "LabApiFunction", _event("lab_api_get_requisition.json", **on_order))
    assert answer["statusCode"] == 200
    # The answer holds the patient; the record only the requisition's id.
    patient = json.loads(answer["body"])
    assert record["resource_id"] == requisition_id and len(_leaves(patient)) > 10

    for name in (
        "lab_api_list_requisitions.json",
        "lab_api_requisition_event_attended.json",
        "lab_api_service_request_event_attended.json",
        "lab_api_results_final.json",
        "lab_api_results_invalid.json",
        "lab_api_get_document.json",
        "lab_api_test_data.json",
        "lab_api_clinical_report_reviews.json",
        "lab_api_openapi.json",
    ):
        _call(bridge, "LabApiFunction", _event(name, **on_order))


def test_every_member_route_writes_one_record_without_the_data(bridge):
    from whoop_bridge.models.connection import Connection, ConnectionStatus
    from whoop_bridge.store import connection_store
    from whoop_bridge.times import now_iso

    member = "audit-member-1"
    profile = {"user_id": 5512, "email": "jane.roe@example.com", "first_name": "Jane", "last_name": "Roe"}
    connection = Connection(member, ConnectionStatus.CONNECTED, 1, 5512, connected_at=now_iso())
    connection_store.save(connection, profile, moved_from=None, released_user_id=None, messages=[])
    on_member = {SAMPLE_CLIENT_USER_ID: member}

    answer, _ = _call(bridge, "MemberApiFunction", _event("member_api_get_profile.json", **on_member))
    assert answer["statusCode"] == 200 and "jane.roe@example.com" in answer["body"]
    for record_type in ("sleep", "cycle", "recovery", "workout"):
        event = _event("member_api_get_sleep.json", **on_member, **{"/sleep": f"/{record_type}"})
        answer, record = _call(bridge, "MemberApiFunction", event)
        assert answer["statusCode"] == 200
        assert (record["route"], record["resource_id"]) == (f"GET /members/{{client_user_id}}/{record_type}", member)
    for name in (
        "member_api_get_connection.json",
        "member_api_create_connection.json",
        "member_api_delete_connection.json",
        "member_api_get_connection.json",
    ):
        _call(bridge, "MemberApiFunction", _event(name, **on_member))


def test_refused_calls_are_recorded_too(bridge):
    event = _event("lab_api_results_final.json")
    event["body"] = json.dumps({"padding": "x" * (300 * 1024)})
    answer, record = _call(bridge, "LabApiFunction", event)
    assert answer["statusCode"] == record["status"] == 413
    assert "262144 bytes" in json.loads(answer["body"])["problems"][0]["problem"]

    event = _event("member_api_get_sleep.json", **{SAMPLE_CLIENT_USER_ID: "audit-nobody"})
    answer, record = _call(bridge, "MemberApiFunction", event)
    assert answer["statusCode"] == record["status"] == 404


def test_the_audit_group_keeps_records_for_the_audit_period(bridge):
    logs = boto3.client("logs", region_name="us-east-1")
    group = bridge.stack.output("AuditLogGroup")
    (described,) = [
        g for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] if g["logGroupName"] == group
    ]
    assert described["retentionInDays"] == 2192


def test_a_fault_answers_a_fixed_500_without_its_text_and_is_recorded(bridge, order, monkeypatch):
    from whoop_bridge.lab import views

    secret = "KeyError: 'Jane Roe' at /var/task/whoop_bridge/lab/views.py line 42"

    def broken(_requisition_id: str) -> dict:
        raise KeyError(secret)

    monkeypatch.setattr(views, "get_requisition", broken)
    event = _event("lab_api_get_requisition.json", **{SAMPLE_REQUISITION_ID: order["id"]})
    answer, record = _call(bridge, "LabApiFunction", event)
    assert answer["statusCode"] == record["status"] == 500
    assert json.loads(answer["body"]) == {
        "error": "internal_error",
        "message": "the bridge failed to answer; the function's log names the error type",
    }
    for fragment in ("Jane", "KeyError", "/var/task", "Traceback", "line 42"):
        assert fragment not in json.dumps(answer)
