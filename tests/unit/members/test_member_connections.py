"""The pure parts of member connect: where a member may be sent back to, the callback URL
WHOOP is given, the link WHOOP's consent page opens with, and what never shows a token.
"""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from pydantic import ValidationError

from whoop_bridge import caches
from whoop_bridge.members.connections import CALLBACK_PATH, redirect_uri, return_url_allowed
from whoop_bridge.members.vault import TokenPair
from whoop_bridge.models.connect_request import ConnectRequest
from whoop_bridge.models.connection import CLIENT_USER_ID
from whoop_bridge.models.oauth_state import CallbackOutcome as Outcome
from whoop_bridge.whoop.member import MemberApi, TokenGrant, is_user_limit

ALLOWED = "https://platform.example/whoop/done,http://localhost:3000/whoop/done"
VARIABLES = ("ALLOWED_RETURN_URLS", "OAUTH_REDIRECT_URL", "OAUTH_SCOPES")
API_CONTEXT = {"domainName": "abc123.execute-api.us-east-1.amazonaws.com", "stage": "v1"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    caches.reset_all()
    yield monkeypatch
    caches.reset_all()


def configure(monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caches.reset_all()


# return_url_allowed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "return_url",
    [
        "https://platform.example/whoop/done",
        "https://platform.example/whoop/done?session=abc&lang=en",
        "https://platform.example/whoop/done?",
        "http://localhost:3000/whoop/done",
        "http://localhost:3000/whoop/done?session=abc",
    ],
)
def test_return_url_with_an_allowed_scheme_host_port_and_path_is_accepted(monkeypatch, return_url):
    configure(monkeypatch, ALLOWED_RETURN_URLS=ALLOWED)
    assert return_url_allowed(return_url) is True


@pytest.mark.parametrize(
    "return_url",
    [
        # another host, or one that merely contains the allowed one
        "https://evil.example/whoop/done",
        "https://platform.example.evil.example/whoop/done",
        "https://evilplatform.example/whoop/done",
        "https://www.platform.example/whoop/done",
        # another path, or a path that only starts like the allowed one
        "https://platform.example/other",
        "https://platform.example/",
        "https://platform.example",
        "https://platform.example/whoop/done/x",
        "https://platform.example/whoop/don",
        "https://platform.example/whoop/done.evil",
        # another port
        "https://platform.example:8443/whoop/done",
        "http://localhost:3001/whoop/done",
        # http is for this machine only, and only when listed
        "http://platform.example/whoop/done",
        "http://127.0.0.1:3000/whoop/done",
        # a fragment, or credentials that make the browser go elsewhere
        "https://platform.example/whoop/done#status=connected",
        "https://platform.example@evil.example/whoop/done",
        "https://user:password@platform.example/whoop/done",
        # not an absolute URL, or not a web URL at all
        "",
        "/whoop/done",
        "//platform.example/whoop/done",
        "javascript:alert(1)//platform.example/whoop/done",
        "ftp://platform.example/whoop/done",
    ],
)
def test_return_url_that_could_send_the_member_elsewhere_is_refused(monkeypatch, return_url):
    configure(monkeypatch, ALLOWED_RETURN_URLS=ALLOWED)
    assert return_url_allowed(return_url) is False


@pytest.mark.parametrize(
    "return_url",
    ["https://platform.example:abc/whoop/done", "https://platform.example:99999/whoop/done", "https://[::1/whoop/done"],
)
def test_unparsable_return_url_is_refused_not_raised(monkeypatch, return_url):
    configure(monkeypatch, ALLOWED_RETURN_URLS=ALLOWED)
    assert return_url_allowed(return_url) is False


def test_http_is_refused_for_a_non_local_host_even_when_listed(monkeypatch):
    configure(monkeypatch, ALLOWED_RETURN_URLS="http://platform.example/whoop/done")
    assert return_url_allowed("http://platform.example/whoop/done") is False


def test_http_localhost_is_refused_unless_listed(monkeypatch):
    configure(monkeypatch, ALLOWED_RETURN_URLS="https://platform.example/whoop/done")
    assert return_url_allowed("http://localhost:3000/whoop/done") is False


@pytest.mark.parametrize("raw", ["", " , "])
def test_empty_allowed_list_refuses_every_return_url(monkeypatch, raw):
    configure(monkeypatch, ALLOWED_RETURN_URLS=raw)
    for return_url in (
        "https://platform.example/whoop/done",
        "http://localhost:3000/whoop/done",
        "https://evil.example/",
    ):
        assert return_url_allowed(return_url) is False, return_url


# redirect_uri ----------------------------------------------------------------------------


def test_redirect_uri_is_the_configured_custom_domain_url_when_set(monkeypatch):
    configure(monkeypatch, OAUTH_REDIRECT_URL="https://whoop.example.com/oauth/whoop/callback")
    assert redirect_uri(API_CONTEXT, {"X-Forwarded-Proto": "http"}) == "https://whoop.example.com/oauth/whoop/callback"


@pytest.mark.parametrize(
    ("headers", "expected_scheme"),
    [
        ({"X-Forwarded-Proto": "https"}, "https"),
        ({"x-forwarded-proto": "http"}, "http"),
        ({"Host": "abc123.execute-api.us-east-1.amazonaws.com"}, "https"),
        ({}, "https"),
        (None, "https"),
    ],
)
def test_redirect_uri_is_derived_from_the_api_request_without_a_custom_domain(headers, expected_scheme):
    expected = f"{expected_scheme}://abc123.execute-api.us-east-1.amazonaws.com/v1/oauth/whoop/callback"
    assert redirect_uri(API_CONTEXT, headers) == expected
    assert expected.endswith(CALLBACK_PATH)


def test_redirect_uri_follows_the_requests_host_and_stage():
    context = {"domainName": "localhost:3000", "stage": "local"}
    assert redirect_uri(context, {"X-Forwarded-Proto": "http"}) == "http://localhost:3000/local/oauth/whoop/callback"


# Outcome.location ------------------------------------------------------------------------


def test_location_adds_the_status_to_the_return_url():
    assert (
        Outcome("connected", "https://platform.example/whoop/done").location
        == "https://platform.example/whoop/done?status=connected"
    )


def test_location_keeps_the_return_urls_own_query():
    location = Outcome("denied", "https://platform.example/whoop/done?session=abc&lang=en").location
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", "platform.example", "/whoop/done", "")
    assert parse_qsl(parts.query) == [("session", "abc"), ("lang", "en"), ("status", "denied")]


@pytest.mark.parametrize(
    "query", ["status=connected", "status=connected&session=abc", "session=abc&status=connected&status=x"]
)
def test_location_replaces_a_status_the_return_url_already_had(query):
    location = Outcome("user_limit", f"https://platform.example/whoop/done?{query}").location
    values = parse_qs(urlsplit(location).query)
    assert values["status"] == ["user_limit"]
    if "session" in query:
        assert values["session"] == ["abc"]


def test_location_is_none_without_a_return_url():
    assert Outcome("connected").location is None
    assert Outcome("invalid_state", None, "platform-user-8841").location is None


# CLIENT_USER_ID --------------------------------------------------------------------------


@pytest.mark.parametrize("client_user_id", ["platform-user-8841", "u", "7", "org:42.user_9", "a" * 128])
def test_opaque_client_user_ids_are_accepted(client_user_id):
    assert CLIENT_USER_ID.fullmatch(client_user_id)
    assert ConnectRequest(client_user_id=client_user_id).client_user_id == client_user_id


@pytest.mark.parametrize(
    "client_user_id",
    ["member@example.com", "", "a" * 129, "team/member", "member one", "-leading-dash", "member\n", "membré"],
)
def test_client_user_ids_that_are_not_opaque_url_safe_ids_are_refused(client_user_id):
    assert CLIENT_USER_ID.fullmatch(client_user_id) is None
    with pytest.raises(ValidationError):
        ConnectRequest(client_user_id=client_user_id)


# is_user_limit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "description",
    ["This application has reached its user limit", "USER LIMIT reached", "The app has reached its User Limit."],
)
def test_whoop_user_limit_phrase_is_recognised_in_any_case(description):
    assert is_user_limit(description) is True


@pytest.mark.parametrize(
    "description", [None, "", "The user denied access", "access_denied", "rate limit exceeded", "user-limit"]
)
def test_other_error_descriptions_are_not_the_user_limit(description):
    assert is_user_limit(description) is False


# Tokens never printed --------------------------------------------------------------------


ACCESS = "access-token-4f9c2e"
REFRESH = "refresh-token-8b1d7a"


@pytest.mark.parametrize(
    "value",
    [
        TokenGrant(access_token=ACCESS, expires_in=3600, refresh_token=REFRESH, scopes=("offline", "read:profile")),
        TokenGrant(access_token=ACCESS, expires_in=3600, refresh_token=None, scopes=("read:profile",)),
        TokenPair(access_token=ACCESS, refresh_token=REFRESH),
        TokenPair(access_token=ACCESS, refresh_token=None),
    ],
)
def test_repr_of_a_grant_or_pair_never_shows_a_token(value):
    for text in (repr(value), str(value), f"{value}", repr([value]), repr({"pair": value})):
        assert ACCESS not in text
        assert REFRESH not in text
    assert type(value).__name__ in repr(value)


def test_repr_still_tells_whether_a_refresh_token_is_held():
    assert "refresh_token=yes" in repr(TokenPair(ACCESS, REFRESH))
    assert "refresh_token=no" in repr(TokenPair(ACCESS, None))
    assert "refresh_token=no" in repr(TokenGrant(ACCESS, 3600, None, ("read:profile",)))


# MemberApi.authorization_url -------------------------------------------------------------


def test_authorization_url_opens_whoops_consent_page_with_the_exact_redirect_uri_scopes_and_state():
    callback = "https://abc123.execute-api.us-east-1.amazonaws.com/v1/oauth/whoop/callback"
    state = "Zq3-x_Y9kL0pQ2rS4tU6vW8yA1bC3dE5fG7hJ9kL0mN"
    api = MemberApi("https://api.prod.whoop.com/", "client-123", "client-secret-9f8e7d")
    url = api.authorization_url(callback, ("offline", "read:profile", "read:recovery"), state)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "api.prod.whoop.com", "/oauth/oauth2/auth")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert query == {
        "response_type": ["code"],
        "client_id": ["client-123"],
        "redirect_uri": [callback],
        "scope": ["offline read:profile read:recovery"],
        "state": [state],
    }
    # The app's secret goes only to the token endpoint, never into the member's browser.
    assert "client-secret-9f8e7d" not in url


def test_authorization_url_encodes_a_redirect_uri_that_carries_its_own_query():
    callback = "https://whoop.example.com/oauth/whoop/callback?tenant=a&b=c d"
    url = MemberApi("https://api.prod.whoop.com", "client-123", "s").authorization_url(
        callback, ("read:profile",), "s1"
    )
    query = parse_qs(urlsplit(url).query)
    assert query["redirect_uri"] == [callback]
    assert set(query) == {"response_type", "client_id", "redirect_uri", "scope", "state"}
