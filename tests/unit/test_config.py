"""Deployment settings from the environment (whoop_bridge.config).

A bad value must stop the function with a message that names the variable, so an
operator can fix the stack rather than hunt through a stack trace.
"""

from __future__ import annotations

import pytest

from whoop_bridge import caches
from whoop_bridge.config import DEFAULT_OAUTH_SCOPES, ConfigurationError, settings

VARIABLES = (
    "ENVIRONMENT",
    "WHOOP_API_BASE_URL",
    "LAB_TABLE_NAME",
    "IDEMPOTENCY_TABLE_NAME",
    "EVENT_BUS_NAME",
    "PARTNER_SECRET_ARN",
    "PARTNER_WEBHOOK_SECRET_ARN",
    "PARTNER_EVENTS_QUEUE_URL",
    "STATE_MACHINE_ARN",
    "ACCEPTED_TEST_CODES",
    "LAB_EVENT_TIMEOUT_DAYS",
    "CORRECTION_WINDOW_DAYS",
    "CLINICAL_REPORT_REVIEW_PATH",
    "WHOOP_TIMEOUT_SECONDS",
    "WHOOP_MAX_RETRIES",
    "WHOOP_BACKOFF_SECONDS",
    "MEMBER_TABLE_NAME",
    "MEMBER_SECRET_ARN",
    "BRIDGE_KEY_ARN",
    "OAUTH_SCOPES",
    "ALLOWED_RETURN_URLS",
    "OAUTH_REDIRECT_URL",
    "DELETE_DATA_ON_DISCONNECT",
    "CONNECT_PAGE_NAME",
    "CONNECT_PAGE_COLOR",
    "CONNECT_PAGE_BACKGROUND_COLOR",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    caches.reset_all()
    yield monkeypatch
    caches.reset_all()


def configured(monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caches.reset_all()
    return settings()


def refused(monkeypatch, **env) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caches.reset_all()
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
    assert config.member_table_name == "" and config.member_secret_arn == "" and config.bridge_key_arn == ""
    assert config.allowed_return_urls == ()
    assert config.oauth_redirect_url == ""
    assert config.delete_data_on_disconnect is True


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


def test_member_settings_are_read_and_trimmed(monkeypatch):
    config = configured(
        monkeypatch,
        MEMBER_TABLE_NAME="members",
        MEMBER_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:bridge/whoop-member-app",
        BRIDGE_KEY_ARN="arn:aws:kms:us-east-1:123456789012:key/1234",
        OAUTH_REDIRECT_URL=" https://whoop.example.com/oauth/whoop/callback ",
    )
    assert config.member_table_name == "members"
    assert config.member_secret_arn.endswith(":secret:bridge/whoop-member-app")
    assert config.bridge_key_arn.endswith(":key/1234")
    assert config.oauth_redirect_url == "https://whoop.example.com/oauth/whoop/callback"


# OAUTH_SCOPES --------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "   "])
def test_empty_oauth_scopes_ask_for_offline_and_every_read_scope(monkeypatch, raw):
    config = configured(monkeypatch, OAUTH_SCOPES=raw)
    assert config.oauth_scopes == DEFAULT_OAUTH_SCOPES
    assert set(config.oauth_scopes) == {
        "offline",
        "read:recovery",
        "read:cycles",
        "read:workout",
        "read:sleep",
        "read:profile",
        "read:body_measurement",
    }


def test_oauth_scopes_are_space_separated_in_the_given_order(monkeypatch):
    config = configured(monkeypatch, OAUTH_SCOPES="  read:profile   offline\tread:sleep ")
    assert config.oauth_scopes == ("read:profile", "offline", "read:sleep")


def test_duplicate_oauth_scopes_are_asked_for_once_keeping_their_order(monkeypatch):
    config = configured(monkeypatch, OAUTH_SCOPES="read:sleep read:profile read:sleep offline read:profile")
    assert config.oauth_scopes == ("read:sleep", "read:profile", "offline")


@pytest.mark.parametrize(
    ("raw", "unknown"),
    [
        ("read:profile read:everything", "read:everything"),
        ("read:profile read:heart_rate", "read:heart_rate"),
        ("read:profile READ:SLEEP", "READ:SLEEP"),
        # A comma is not a separator: the whole text is one unknown scope.
        ("read:profile,offline", "read:profile,offline"),
    ],
)
def test_unknown_oauth_scope_is_refused_by_name(monkeypatch, raw, unknown):
    message = refused(monkeypatch, OAUTH_SCOPES=raw)
    assert "OAUTH_SCOPES" in message
    assert unknown in message


@pytest.mark.parametrize(
    "raw", ["offline", "offline read:recovery read:cycles read:workout read:sleep read:body_measurement"]
)
def test_oauth_scopes_without_read_profile_are_refused(monkeypatch, raw):
    message = refused(monkeypatch, OAUTH_SCOPES=raw)
    assert "OAUTH_SCOPES" in message
    assert "read:profile" in message


# ALLOWED_RETURN_URLS -------------------------------------------------------------------


def test_allowed_return_urls_are_split_on_commas_and_trimmed(monkeypatch):
    config = configured(
        monkeypatch,
        ALLOWED_RETURN_URLS=" https://platform.example/whoop/done ,http://localhost:3000/cb,, https://app.example/x?y=1 ,",
    )
    assert config.allowed_return_urls == (
        "https://platform.example/whoop/done",
        "http://localhost:3000/cb",
        "https://app.example/x?y=1",
    )


@pytest.mark.parametrize("raw", ["", " ", " , "])
def test_empty_allowed_return_urls_allow_none(monkeypatch, raw):
    assert configured(monkeypatch, ALLOWED_RETURN_URLS=raw).allowed_return_urls == ()


@pytest.mark.parametrize(
    ("raw", "bad"),
    [
        ("platform.example/whoop/done", "platform.example/whoop/done"),
        ("https://platform.example/whoop/done, //evil.example/done", "//evil.example/done"),
        ("javascript:alert(1)", "javascript:alert(1)"),
        ("ftp://platform.example/done", "ftp://platform.example/done"),
    ],
)
def test_allowed_return_url_that_is_not_absolute_http_is_refused(monkeypatch, raw, bad):
    message = refused(monkeypatch, ALLOWED_RETURN_URLS=raw)
    assert "ALLOWED_RETURN_URLS" in message
    assert bad in message


# DELETE_DATA_ON_DISCONNECT -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("false", False), (" TRUE ", True), ("False", False), ("", True), ("  ", True)],
)
def test_delete_data_on_disconnect_reads_true_or_false_and_defaults_to_true(monkeypatch, raw, expected):
    assert configured(monkeypatch, DELETE_DATA_ON_DISCONNECT=raw).delete_data_on_disconnect is expected


@pytest.mark.parametrize("raw", ["yes", "no", "1", "0", "truthy", "t"])
def test_delete_data_on_disconnect_refuses_anything_but_true_or_false(monkeypatch, raw):
    message = refused(monkeypatch, DELETE_DATA_ON_DISCONNECT=raw)
    assert "DELETE_DATA_ON_DISCONNECT" in message
    assert "true or false" in message


@pytest.mark.parametrize(
    "entry",
    [
        "https://platform.example:abc/done",
        "https://platform.example/a https://platform.example/b",
        "https://platform.example/done#x",
        "https://user@platform.example/done",
        "https:///done",
    ],
)
def test_a_malformed_allowed_return_url_is_refused_at_start(monkeypatch, entry):
    monkeypatch.setenv("ALLOWED_RETURN_URLS", entry)
    caches.reset_all()

    with pytest.raises(ConfigurationError, match="ALLOWED_RETURN_URLS"):
        settings()


def test_the_connect_pages_look_defaults_and_takes_rrggbb_colours(monkeypatch):
    assert (settings().connect_page_name, settings().connect_page_color) == ("", "#1f2937")
    found = configured(monkeypatch, CONNECT_PAGE_NAME=" Acme ", CONNECT_PAGE_BACKGROUND_COLOR="#F5F5F5")
    assert (found.connect_page_name, found.connect_page_background_color) == ("Acme", "#f5f5f5")


@pytest.mark.parametrize("colour", ["red", "#fff", "#12345g", "#123456; background:url(x)", "#1234567"])
@pytest.mark.parametrize("name", ["CONNECT_PAGE_COLOR", "CONNECT_PAGE_BACKGROUND_COLOR"])
def test_a_connect_page_colour_other_than_rrggbb_is_refused(monkeypatch, name, colour):
    with pytest.raises(ConfigurationError, match=name):
        configured(monkeypatch, **{name: colour})
