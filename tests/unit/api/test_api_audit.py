"""The APIs' audit trail (whoop_bridge.api.audit) and their answers to faults, through the
shared Lambda handler (whoop_bridge.api.guard.lambda_handler), without a stack: the
CloudWatch Logs client is an in-memory fake."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from whoop_bridge import aws
from whoop_bridge.api import audit
from whoop_bridge.api.guard import lambda_handler
from whoop_bridge.api.openapi import configure
from whoop_bridge.config import settings
from whoop_bridge.observability import get_logger

GROUP = "audit-group"
CALLER = "arn:aws:sts::210987654321:assumed-role/lab-lis/lis"
FAULT_TEXT = "Traceback: patient Jane Roe 1985-02-03 at /var/task/app.py line 12"


class FakeLogs:
    """CloudWatch Logs' CreateLogStream and PutLogEvents, kept in memory."""

    def __init__(self) -> None:
        self.streams: dict[str, list[dict[str, Any]]] = {}
        self.fail = False

    def create_log_stream(self, logGroupName: str, logStreamName: str) -> None:
        assert logGroupName == GROUP
        self.streams[logStreamName] = []

    def put_log_events(self, logGroupName: str, logStreamName: str, logEvents: list[dict[str, Any]]) -> None:
        if self.fail:
            raise RuntimeError("service unavailable")
        assert logGroupName == GROUP
        self.streams[logStreamName].extend(logEvents)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(event["message"]) for events in self.streams.values() for event in events]


class Context:
    function_name = "s-lab-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:s-lab-api"
    memory_limit_in_mb = 512
    aws_request_id = "c0ffee00-0000-4000-8000-000000000001"


@pytest.fixture
def logs(monkeypatch) -> FakeLogs:
    fake = FakeLogs()
    monkeypatch.setenv(audit.AUDIT_LOG_GROUP, GROUP)
    monkeypatch.setattr(aws, "client", lambda service: fake if service == "logs" else pytest.fail(service))
    audit._writers.clear()
    yield fake
    audit._writers.clear()


def _app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    configure(app, "t", "t", "/t/openapi.json", links={}, errors={})

    @app.get("/t/records/<requisition_id>")
    def read(requisition_id: str) -> dict:
        return {"id": requisition_id, "patient": {"name": "Jane Roe"}}

    @app.get("/t/faults/<document_id>")
    def fault(document_id: str) -> dict:
        raise RuntimeError(FAULT_TEXT)

    @app.post("/t/results/<service_request_id>")
    def post(service_request_id: str) -> dict:
        return {"ok": True}

    return app


def _event(method: str, resource: str, path: str, parameters: dict | None = None, body: str | None = None) -> dict:
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": {"name": "Jane Roe"},
        "multiValueQueryStringParameters": {"name": ["Jane Roe"]},
        "pathParameters": parameters,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "requestId": "req-1",
            "stage": "v1",
            "path": f"/v1{path}",
            "identity": {"userArn": CALLER, "accountId": "210987654321", "sourceIp": "203.0.113.9"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


@pytest.fixture
def handler():
    return lambda_handler(_app(), get_logger("audit_test"))


def test_a_read_writes_one_record_of_who_what_which_id_when_and_the_outcome(logs, handler):
    answer = handler(
        _event("GET", "/t/records/{requisition_id}", "/t/records/r-1", {"requisition_id": "r-1"}), Context()
    )
    assert answer["statusCode"] == 200
    (record,) = logs.records()
    time = record.pop("time")
    assert time.endswith("Z") or "+00:00" in time
    assert record == {
        "kind": "api_call",
        "request_id": "req-1",
        "caller_arn": CALLER,
        "caller_account": "210987654321",
        "route": "GET /t/records/{requisition_id}",
        "resource_type": "requisition",
        "resource_id": "r-1",
        "status": 200,
    }
    # One stream per execution environment, named after the function.
    (stream,) = logs.streams
    assert stream.startswith("s-lab-api/")


def test_refused_and_failed_calls_are_recorded_with_their_status_and_never_their_data(logs, handler):
    big = json.dumps({"observations": [{"code": "LDL", "value_text": "Jane Roe " * 40_000}]})
    for event in (
        _event("POST", "/t/results/{service_request_id}", "/t/results/s-1", {"service_request_id": "s-1"}, big),
        _event("POST", "/t/results/{service_request_id}", "/t/results/s-1", {"service_request_id": "s-1"}, "[1]"),
        _event("GET", "/t/faults/{document_id}", "/t/faults/d-1", {"document_id": "d-1"}),
    ):
        handler(event, Context())
    records = logs.records()
    assert [(r["route"], r["resource_type"], r["resource_id"], r["status"]) for r in records] == [
        ("POST /t/results/{service_request_id}", "service_request", "s-1", 413),
        ("POST /t/results/{service_request_id}", "service_request", "s-1", 400),
        ("GET /t/faults/{document_id}", "document", "d-1", 500),
    ]
    text = json.dumps(records)
    for value in ("Jane", "Roe", "LDL", "observations", "203.0.113.9", "Traceback"):
        assert value not in text


def test_an_id_that_is_not_an_id_is_not_recorded(logs, handler):
    event = _event("GET", "/t/records/{requisition_id}", "/t/records/x", {"requisition_id": "Jane Roe, 1985-02-03"})
    handler(event, Context())
    (record,) = logs.records()
    assert (record["resource_type"], record["resource_id"]) == ("requisition", None)


def _not_written_metrics(text: str) -> list[dict[str, Any]]:
    """The EMF lines of the AuditRecordNotWritten metric in captured stdout."""
    return [json.loads(line) for line in text.splitlines() if audit.NOT_WRITTEN_METRIC in line]


def test_a_failed_audit_write_is_counted_and_the_answer_still_given(logs, handler, capsys, monkeypatch):
    # The stack sets the namespace; without it the metric still goes to the bridge's one.
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "lab_api")
    capsys.readouterr()
    logs.fail = True
    answer = handler(
        _event("GET", "/t/records/{requisition_id}", "/t/records/r-1", {"requisition_id": "r-1"}), Context()
    )
    assert answer["statusCode"] == 200
    (line,) = _not_written_metrics(capsys.readouterr().out)
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "WhoopBridge"
    assert directive["Dimensions"] == [["service"]]
    assert (line["service"], line[audit.NOT_WRITTEN_METRIC]) == ("lab_api", [1.0])
    assert "r-1" not in json.dumps(line)  # a count, never the record
    logs.fail = False
    handler(_event("GET", "/t/records/{requisition_id}", "/t/records/r-2", {"requisition_id": "r-2"}), Context())
    assert [r["resource_id"] for r in logs.records()] == ["r-2"]  # a new stream after the failure
    assert _not_written_metrics(capsys.readouterr().out) == []  # a written record is not counted


def test_without_an_audit_group_nothing_is_written(monkeypatch):
    monkeypatch.delenv(audit.AUDIT_LOG_GROUP, raising=False)
    assert audit.record_call(_event("GET", "/x", "/x"), 200, "f") is None


def test_a_fault_answers_500_with_a_fixed_message_and_none_of_the_error_text(logs, handler):
    answer = handler(_event("GET", "/t/faults/{document_id}", "/t/faults/d-1", {"document_id": "d-1"}), Context())
    assert answer["statusCode"] == 500
    body = json.loads(answer["body"])
    assert body == {
        "error": "internal_error",
        "message": "the bridge failed to answer; the function's log names the error type",
    }
    text = json.dumps(answer)
    for fragment in ("Traceback", "Jane", "RuntimeError", "/var/task", "app.py"):
        assert fragment not in text


def test_a_body_over_the_limit_is_413_naming_the_limit(monkeypatch, logs, handler):
    monkeypatch.setenv("API_MAX_BODY_BYTES", "2048")
    settings.cache_clear()
    body = json.dumps({"value_text": "x" * 2100})
    answer = handler(
        _event("POST", "/t/results/{service_request_id}", "/t/results/s-1", {"service_request_id": "s-1"}, body),
        Context(),
    )
    assert answer["statusCode"] == 413
    assert json.loads(answer["body"]) == {
        "error": "payload_too_large",
        "problems": [{"field": "body", "problem": f"the body is {len(body)} bytes; the limit is 2048 bytes (2 KiB)"}],
    }
    monkeypatch.delenv("API_MAX_BODY_BYTES")
    settings.cache_clear()
