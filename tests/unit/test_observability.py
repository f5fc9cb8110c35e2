"""Logs never carry patient fields, tokens, secrets or raw bodies (docs/architecture.md#layers).

The redaction is checked on `redact` itself and on what actually reaches stdout (where
Lambda hands it to CloudWatch), for the handler's Logger and for the layer's own
`logging.getLogger("whoop_bridge....")` loggers.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from whoop_bridge.observability import REDACTED, get_logger, redact

SENSITIVE = [
    "patient",
    "first_name",
    "access_token",
    "client_secret",
    "webhook_secret",
    "task_token",
    "body",
    "observations",
    "reason",
]
KEPT = {
    "service_request_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "test_code": "LIPID_PANEL",
    "task_business_status": "APPOINTMENT_ISSUE",
}
SECRET_VALUE = "Jordan-Rivera-1988-04-17-tok_live_abc123"


@pytest.fixture
def package_logger_restored():
    """get_logger rewires the `whoop_bridge` logger; leave it as it was for other tests."""
    package = logging.getLogger("whoop_bridge")
    saved = (list(package.handlers), package.level, package.propagate)
    yield
    package.handlers, package.level, package.propagate = saved[0], saved[1], saved[2]


def fresh_logger():
    # Powertools reuses the handler of an existing logger with the same service name; a
    # new name per test makes the handler bind the stdout that capsys has just replaced.
    return get_logger(f"test-{uuid.uuid4().hex[:8]}")


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("key", SENSITIVE)
def test_sensitive_key_is_redacted_at_top_level(key):
    assert redact({key: SECRET_VALUE, **KEPT}) == {key: REDACTED, **KEPT}


@pytest.mark.parametrize("key", SENSITIVE)
def test_sensitive_key_is_redacted_at_any_depth(key):
    record = {"outer": {"items": [{"inner": ({key: {"deep": SECRET_VALUE}},)}, KEPT]}}
    redacted = redact(record)
    assert redacted == {"outer": {"items": [{"inner": [{key: REDACTED}]}, KEPT]}}
    assert SECRET_VALUE not in json.dumps(redacted)


@pytest.mark.parametrize("key", ["Patient", "ACCESS_TOKEN", "Client_Secret", "WHOOP-Signed", "Authorization"])
def test_key_match_ignores_case(key):
    assert redact({key: SECRET_VALUE}) == {key: REDACTED}


def test_whole_sensitive_subtrees_go_even_when_they_hold_safe_keys():
    record = {"patient": {"id": "p-1", "test_code": "CBC"}, "observations": [{"code": "LDL", "value_numeric": 100}]}
    assert redact(record) == {"patient": REDACTED, "observations": REDACTED}


def test_operational_fields_are_kept():
    record = {"details": {**KEPT, "status_code": 503, "error_code": "invalid_client", "count": 3, "ok": True}}
    assert redact(record) == record


def test_redact_does_not_change_its_input():
    record = {"patient": {"first_name": "Jordan"}, "service_request_id": "sr-1"}
    redact(record)
    assert record == {"patient": {"first_name": "Jordan"}, "service_request_id": "sr-1"}


def test_handler_logger_writes_json_without_the_sensitive_values(capsys, package_logger_restored):
    logger = fresh_logger()
    logger.info(
        "requisition received",
        extra={
            "patient": {"first_name": "Jordan", "last_name": "Rivera", "birth_date": "1988-04-17"},
            "access_token": "tok_live_abc123",
            "service_request_id": KEPT["service_request_id"],
            "test_code": "LIPID_PANEL",
        },
    )
    out = capsys.readouterr().out
    for value in ("Jordan", "Rivera", "1988-04-17", "tok_live_abc123"):
        assert value not in out
    (line,) = json_lines(out)
    assert line["message"] == "requisition received"
    assert line["level"] == "INFO"
    assert line["patient"] == REDACTED
    assert line["access_token"] == REDACTED
    assert line["service_request_id"] == KEPT["service_request_id"]
    assert line["test_code"] == "LIPID_PANEL"


def test_a_dict_message_is_redacted_too(capsys, package_logger_restored):
    logger = fresh_logger()
    logger.info({"event": "token issued", "access_token": "tok_live_abc123", "expires_in": 3600})
    out = capsys.readouterr().out
    assert "tok_live_abc123" not in out
    (line,) = json_lines(out)
    assert line["message"] == {"event": "token issued", "access_token": REDACTED, "expires_in": 3600}


def test_package_loggers_share_the_json_format_and_redaction(capsys, package_logger_restored):
    logger = fresh_logger()
    logger.info("from the handler")
    logging.getLogger("whoop_bridge.something").warning(
        "from the layer",
        extra={
            "client_secret": "cs_live_123",
            "reason": "Jordan missed the draw",
            "task_business_status": "APPOINTMENT_ISSUE",
        },
    )
    out = capsys.readouterr().out
    assert "cs_live_123" not in out
    assert "Jordan" not in out
    handler_line, layer_line = json_lines(out)
    assert layer_line["message"] == "from the layer"
    assert layer_line["level"] == "WARNING"
    assert layer_line["service"] == handler_line["service"]
    assert layer_line["client_secret"] == REDACTED
    assert layer_line["reason"] == REDACTED
    assert layer_line["task_business_status"] == "APPOINTMENT_ISSUE"
    # The same structured record shape as the handler's own lines.
    assert {"level", "location", "message", "timestamp", "service"} <= set(layer_line)
