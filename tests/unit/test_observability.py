"""Logs never carry patient fields, tokens, secrets or raw bodies (docs/architecture.md#logs).

The redaction is an allow-list: checked on `redact`/`redact_record` themselves and on what
actually reaches stdout (where Lambda hands it to CloudWatch), for the handler's Logger and
for the layer's own `logging.getLogger("whoop_bridge....")` loggers. Errors from outside the
bridge are logged by type and a safe summary; the SDK's loggers stay capped.
"""

from __future__ import annotations

import json
import logging
import uuid
from json import JSONDecodeError

import pytest
import requests
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from whoop_bridge.config import ConfigurationError
from whoop_bridge.observability import (
    LOGGABLE_KEYS,
    REDACTED,
    SDK_LOGGERS,
    cap_sdk_loggers,
    error_summary,
    get_logger,
    redact,
    redact_record,
)

# Keys the old deny-list named, and the ones it missed (issue 11): none is loggable.
NOT_LOGGABLE = [
    "patient",
    "first_name",
    "birth_date",
    "emirates_id",
    "passport_no",
    "nationality",
    "task_description",
    "record_json",
    "profile_json",
    "score",
    "recovery_score",
    "state",
    "session_token",
    "access_token",
    "client_secret",
    "webhook_secret",
    "task_token",
    "body",
    "observations",
    "reason",
    "value",
    "anything_new",
]
KEPT = {
    "service_request_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "requisition_id": "9c1d0f9e-8a7b-4c5d-9e0f-1a2b3c4d5e6f",
    "client_user_id": "member-1",
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


def raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:  # noqa: BLE001 - the test's own error
        return caught


def client_error() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ValidationException", "Message": f"item {SECRET_VALUE} too large"}}, "PutItem"
    )


def validation_error() -> ValidationError:
    class Patient(BaseModel):
        birth_date: int

    try:
        Patient(birth_date=SECRET_VALUE)
    except ValidationError as error:
        return error
    raise AssertionError("pydantic accepted a text as a number")


def http_error() -> requests.HTTPError:
    answer = requests.Response()
    answer.status_code = 400
    answer._content = json.dumps({"access_token": SECRET_VALUE}).encode()
    return requests.HTTPError(f"400 Client Error: {answer.text}", response=answer)


@pytest.mark.parametrize("key", NOT_LOGGABLE)
def test_a_key_not_on_the_allow_list_is_redacted_at_top_level(key):
    assert key not in LOGGABLE_KEYS
    assert redact({key: SECRET_VALUE, **KEPT}) == {key: REDACTED, **KEPT}


@pytest.mark.parametrize("key", NOT_LOGGABLE)
def test_a_key_not_on_the_allow_list_is_redacted_at_any_depth(key):
    record = {"fields": [{"problem_fields": ({key: {"deep": SECRET_VALUE}},)}, KEPT]}
    redacted = redact(record)
    assert redacted == {"fields": [{"problem_fields": [{key: REDACTED}]}, KEPT]}
    assert SECRET_VALUE not in json.dumps(redacted)


def test_an_allowed_key_holding_unknown_keys_keeps_only_the_allowed_ones():
    record = {"detail": {"client_user_id": "m-1", "access_token": SECRET_VALUE}}
    assert redact(record) == {"detail": {"client_user_id": "m-1", "access_token": REDACTED}}


@pytest.mark.parametrize("key", ["Service_Request_ID", "CLIENT_USER_ID"])
def test_the_allow_list_ignores_case(key):
    assert redact({key: "x-1"}) == {key: "x-1"}


def test_ids_statuses_counts_and_field_names_are_kept():
    record = {
        **KEPT,
        "status_code": 503,
        "error_code": "invalid_client",
        "attempt": 3,
        "revoke_pending": True,
        "problem_fields": ["patient.birth_date"],
    }
    assert redact(record) == record


def test_redact_does_not_change_its_input():
    record = {"patient": {"first_name": "Jordan"}, "service_request_id": "sr-1"}
    redact(record)
    assert record == {"patient": {"first_name": "Jordan"}, "service_request_id": "sr-1"}


def test_a_records_own_fields_are_kept_and_its_extras_go_through_the_allow_list():
    record = {
        "level": "INFO",
        "location": "handler:12",
        "message": "requisition received",
        "timestamp": "2026-01-01 00:00:00,000+0000",
        "service": "lab_api",
        "correlation_id": "req-1",
        "emirates_id": "784-1988-0000000-1",
        "requisition_id": KEPT["requisition_id"],
    }
    assert redact_record(record) == {**record, "emirates_id": REDACTED}


@pytest.mark.parametrize(
    ("make", "summary"),
    [
        (client_error, "ClientError (ValidationException)"),
        (http_error, "HTTPError (HTTP 400)"),
        (validation_error, "ValidationError at birth_date"),
        (lambda: JSONDecodeError(f"Expecting value near {SECRET_VALUE}", SECRET_VALUE, 0), "JSONDecodeError"),
        (lambda: ValueError(SECRET_VALUE), "ValueError"),
        (lambda: KeyError(SECRET_VALUE), "KeyError"),
    ],
)
def test_an_error_from_outside_the_bridge_is_summarised_without_its_text(make, summary):
    assert error_summary(make()) == summary


def test_the_bridges_own_error_keeps_its_text():
    assert error_summary(ConfigurationError("LAB_TABLE_NAME is not set")) == (
        "ConfigurationError: LAB_TABLE_NAME is not set"
    )


def test_an_error_as_an_extra_value_is_summarised():
    assert redact({"detail": ValueError(SECRET_VALUE)}) == {"detail": "ValueError"}


def test_handler_logger_writes_json_without_the_sensitive_values(capsys, package_logger_restored):
    logger = fresh_logger()
    logger.info(
        "requisition received",
        extra={
            "patient": {"first_name": "Jordan", "last_name": "Rivera", "birth_date": "1988-04-17"},
            "passport_no": "XX0000001",
            "access_token": "tok_live_abc123",
            "service_request_id": KEPT["service_request_id"],
            "test_code": "LIPID_PANEL",
        },
    )
    out = capsys.readouterr().out
    for value in ("Jordan", "Rivera", "1988-04-17", "XX0000001", "tok_live_abc123"):
        assert value not in out
    (line,) = json_lines(out)
    assert line["message"] == "requisition received"
    assert line["level"] == "INFO"
    assert line["patient"] == REDACTED
    assert line["passport_no"] == REDACTED
    assert line["access_token"] == REDACTED
    assert line["service_request_id"] == KEPT["service_request_id"]
    assert line["test_code"] == "LIPID_PANEL"


def test_a_dict_message_is_redacted_too(capsys, package_logger_restored):
    logger = fresh_logger()
    logger.info({"outcome": "token issued", "access_token": "tok_live_abc123", "expires_in": 3600})
    out = capsys.readouterr().out
    assert "tok_live_abc123" not in out
    (line,) = json_lines(out)
    assert line["message"] == {"outcome": "token issued", "access_token": REDACTED, "expires_in": 3600}


@pytest.mark.parametrize("make", [client_error, http_error, validation_error, lambda: ValueError(SECRET_VALUE)])
def test_logger_exception_keeps_the_traceback_but_not_the_errors_text(capsys, package_logger_restored, make):
    logger = fresh_logger()
    try:
        try:
            raise make()
        except Exception as inner:
            raise RuntimeError(f"wrapped: {SECRET_VALUE}") from inner
    except RuntimeError:
        logger.exception("member message failed", extra={"kind": "sync"})
    out = capsys.readouterr().out
    assert SECRET_VALUE not in out
    assert "Jordan" not in out
    (line,) = json_lines(out)
    assert line["exception_name"] == "RuntimeError"
    assert "Traceback (most recent call last)" in line["exception"]
    assert "test_observability.py" in line["exception"]
    assert line["exception"].endswith("RuntimeError")
    assert error_summary(raised(make())) in line["exception"]
    assert line["stack_trace"]["value"] == "RuntimeError"
    assert line["kind"] == "sync"


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


@pytest.fixture
def sdk_levels_restored():
    saved = {name: logging.getLogger(name).level for name in SDK_LOGGERS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("name", SDK_LOGGERS)
def test_the_sdk_loggers_stay_at_warning_when_the_bridge_logs_at_debug(
    name, monkeypatch, package_logger_restored, sdk_levels_restored
):
    logging.getLogger(name).setLevel(logging.DEBUG)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    logger = fresh_logger()
    assert logger.log_level == logging.DEBUG
    assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    assert not logging.getLogger(f"{name}.endpoint").isEnabledFor(logging.INFO)


def test_the_sdk_cap_follows_a_higher_bridge_level(sdk_levels_restored):
    cap_sdk_loggers("ERROR")
    assert all(logging.getLogger(name).level == logging.ERROR for name in SDK_LOGGERS)
    cap_sdk_loggers(logging.DEBUG)
    assert all(logging.getLogger(name).level == logging.WARNING for name in SDK_LOGGERS)


# Errors that reach the Lambda runtime ---------------------------------------------------------


def test_an_escaping_sdk_error_keeps_its_type_name_and_loses_its_text():
    from botocore.exceptions import ClientError

    from whoop_bridge.observability import raising_safely

    @raising_safely
    def handler(event, context):
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": "One or more values: Jane Doe, 1988-04-17"}},
            "PutItem",
        )

    with pytest.raises(Exception) as caught:
        handler({}, None)
    # Step Functions' Retry and Catch match the name; the runtime logs the text.
    assert type(caught.value).__name__ == "ClientError"
    assert str(caught.value) == "ClientError (ValidationException)"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_the_bridges_own_errors_escape_unchanged():
    from whoop_bridge.observability import raising_safely
    from whoop_bridge.whoop.http import WhoopTransientError

    error = WhoopTransientError("WHOOP answered 503 after 3 attempts")

    @raising_safely
    def handler(event, context):
        raise error

    with pytest.raises(WhoopTransientError) as caught:
        handler({}, None)
    assert caught.value is error


def test_a_handler_that_returns_is_untouched():
    from whoop_bridge.observability import raising_safely

    assert raising_safely(lambda event, context: {"ok": event})(1, None) == {"ok": 1}
