"""Deployment settings from the environment (whoop_bridge.config).

A bad value must stop the function with a message that names the variable, so an
operator can fix the stack rather than hunt through a stack trace.
"""

from __future__ import annotations

import pytest

from whoop_bridge.config import ConfigurationError, settings

VARIABLES = (
    "ENVIRONMENT",
    "WHOOP_API_BASE_URL",
    "LAB_TABLE_NAME",
    "IDEMPOTENCY_TABLE_NAME",
    "EVENT_BUS_NAME",
    "PARTNER_SECRET_ARN",
    "PARTNER_EVENTS_QUEUE_URL",
    "STATE_MACHINE_ARN",
    "ACCEPTED_TEST_CODES",
    "LAB_EVENT_TIMEOUT_DAYS",
    "CORRECTION_WINDOW_DAYS",
    "CLINICAL_REPORT_REVIEW_PATH",
    "WHOOP_TIMEOUT_SECONDS",
    "WHOOP_MAX_RETRIES",
    "WHOOP_BACKOFF_SECONDS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings.cache_clear()
    yield monkeypatch
    settings.cache_clear()


def configured(monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    return settings()


def refused(monkeypatch, **env) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    with pytest.raises(ConfigurationError) as caught:
        settings()
    return str(caught.value)


def test_defaults_suit_a_sandbox():
    config = settings()
    assert config.environment == "sandbox"
    assert config.whoop_api_base_url == "https://api.prod.whoop.com"
    assert config.accepted_test_codes == frozenset()
    assert config.lab_event_timeout_days == 30
    assert config.correction_window_days == 30
    assert config.whoop_timeout_seconds == 10.0
    assert config.whoop_max_retries == 3
    assert config.whoop_backoff_seconds == 0.5
    assert config.clinical_report_review_path == ""
    assert config.lab_table_name == "" and config.partner_secret_arn == "" and config.state_machine_arn == ""


def test_values_are_read_and_trimmed(monkeypatch):
    config = configured(
        monkeypatch,
        ENVIRONMENT=" production ",
        WHOOP_API_BASE_URL="http://127.0.0.1:8080/",
        LAB_TABLE_NAME="lab",
        LAB_EVENT_TIMEOUT_DAYS=" 7 ",
        CORRECTION_WINDOW_DAYS="0",
        WHOOP_TIMEOUT_SECONDS="2.5",
        WHOOP_MAX_RETRIES="0",
        WHOOP_BACKOFF_SECONDS="0.01",
        CLINICAL_REPORT_REVIEW_PATH=" /v2/partner/clinical-report-review ",
    )
    assert config.environment == "production"
    assert config.whoop_api_base_url == "http://127.0.0.1:8080"  # no trailing slash: paths are appended
    assert config.lab_table_name == "lab"
    assert config.lab_event_timeout_days == 7
    assert config.correction_window_days == 0
    assert config.whoop_timeout_seconds == 2.5
    assert config.whoop_max_retries == 0
    assert config.whoop_backoff_seconds == 0.01
    assert config.clinical_report_review_path == "/v2/partner/clinical-report-review"


def test_blank_values_fall_back_to_defaults(monkeypatch):
    config = configured(monkeypatch, ENVIRONMENT="  ", LAB_EVENT_TIMEOUT_DAYS="", WHOOP_TIMEOUT_SECONDS=" ")
    assert config.environment == "sandbox"
    assert config.lab_event_timeout_days == 30
    assert config.whoop_timeout_seconds == 10.0


def test_settings_are_read_once(monkeypatch):
    first = configured(monkeypatch, LAB_TABLE_NAME="one")
    monkeypatch.setenv("LAB_TABLE_NAME", "two")
    assert settings() is first
    assert settings().lab_table_name == "one"


def test_accepted_test_codes_ignore_spaces_case_and_empty_items(monkeypatch):
    config = configured(monkeypatch, ACCEPTED_TEST_CODES=" lipid_panel , CBC,,  HbA1c ,")
    assert config.accepted_test_codes == frozenset({"LIPID_PANEL", "CBC", "HBA1C"})
    assert config.accepts("LIPID_PANEL")
    assert config.accepts("lipid_panel")
    assert config.accepts("Cbc")
    assert config.accepts("HBA1C")
    assert not config.accepts("TSH")
    assert not config.accepts("LIPID")


@pytest.mark.parametrize("raw", ["", " ", ",", " , "])
def test_empty_accepted_list_accepts_every_code(monkeypatch, raw):
    config = configured(monkeypatch, ACCEPTED_TEST_CODES=raw)
    assert config.accepted_test_codes == frozenset()
    assert config.accepts("ANY_TEST")
    assert config.accepts("TSH")


@pytest.mark.parametrize("value", ["prod", "Production", "staging", "SANDBOX"])
def test_unknown_environment_is_refused(monkeypatch, value):
    message = refused(monkeypatch, ENVIRONMENT=value)
    assert "ENVIRONMENT" in message
    assert "sandbox or production" in message


@pytest.mark.parametrize("value", ["api.prod.whoop.com", "ftp://api.prod.whoop.com", "//api"])
def test_base_url_must_be_http(monkeypatch, value):
    assert "WHOOP_API_BASE_URL" in refused(monkeypatch, WHOOP_API_BASE_URL=value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAB_EVENT_TIMEOUT_DAYS", "thirty"),
        ("LAB_EVENT_TIMEOUT_DAYS", "1.5"),
        ("CORRECTION_WINDOW_DAYS", "30d"),
        ("WHOOP_MAX_RETRIES", "three"),
        ("WHOOP_TIMEOUT_SECONDS", "ten"),
        ("WHOOP_BACKOFF_SECONDS", "0,5"),
    ],
)
def test_malformed_number_names_the_variable(monkeypatch, name, value):
    message = refused(monkeypatch, **{name: value})
    assert name in message
    assert "number" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAB_EVENT_TIMEOUT_DAYS", "0"),
        ("LAB_EVENT_TIMEOUT_DAYS", "366"),
        ("CORRECTION_WINDOW_DAYS", "-1"),
        ("CORRECTION_WINDOW_DAYS", "366"),
        ("WHOOP_MAX_RETRIES", "-1"),
        ("WHOOP_MAX_RETRIES", "11"),
    ],
)
def test_out_of_range_number_names_the_variable(monkeypatch, name, value):
    message = refused(monkeypatch, **{name: value})
    assert name in message
    assert "between" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAB_EVENT_TIMEOUT_DAYS", "1"),
        ("LAB_EVENT_TIMEOUT_DAYS", "365"),
        ("CORRECTION_WINDOW_DAYS", "0"),
        ("WHOOP_MAX_RETRIES", "10"),
    ],
)
def test_range_bounds_are_inclusive(monkeypatch, name, value):
    assert getattr(configured(monkeypatch, **{name: value}), name.lower()) == int(value)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_non_positive_whoop_timeout_is_refused(monkeypatch, value):
    assert "WHOOP_TIMEOUT_SECONDS" in refused(monkeypatch, WHOOP_TIMEOUT_SECONDS=value)


def test_require_names_every_missing_variable(monkeypatch):
    config = configured(monkeypatch, LAB_TABLE_NAME="lab")
    with pytest.raises(ConfigurationError) as caught:
        config.require("lab_table_name", "state_machine_arn", "partner_secret_arn")
    message = str(caught.value)
    assert "STATE_MACHINE_ARN" in message
    assert "PARTNER_SECRET_ARN" in message
    assert "LAB_TABLE_NAME" not in message


def test_require_passes_when_everything_is_set(monkeypatch):
    config = configured(
        monkeypatch,
        LAB_TABLE_NAME="lab",
        STATE_MACHINE_ARN="arn:aws:states:us-east-1:123456789012:stateMachine:sr",
    )
    config.require("lab_table_name", "state_machine_arn")
