"""Unit tests for the emulator's WHOOP standard-API OAuth and member endpoints (local/emulator/)."""

from __future__ import annotations

import json
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
import requests

# The repo root holds the `local` package; make it importable however pytest is invoked.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from local.emulator import WhoopEmulator

AUTHORIZE = "/oauth/oauth2/auth"
TOKEN = "/oauth/oauth2/token"
PROFILE = "/developer/v2/user/profile/basic"
BODY = "/developer/v2/user/measurement/body"
ACCESS = "/developer/v2/user/access"
# Port 9 (discard) on loopback: never contacted, the tests only read the Location header.
REDIRECT = "http://127.0.0.1:9/whoop/callback"
OTHER_REDIRECT = "http://127.0.0.1:9/other/callback"
STATE = "state-0123456789"
SCOPES = "offline read:profile read:body_measurement"
LIMIT_ERROR = "This application has reached its user limit"


@pytest.fixture
def emulator():
    with WhoopEmulator(redirect_uris=[REDIRECT]) as emu:
        yield emu


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False  # never route loopback calls through a proxy from the environment
        yield session


def authorize(emu: WhoopEmulator, http: requests.Session, **overrides: str | None) -> requests.Response:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": emu.member_client_id,
        "redirect_uri": REDIRECT,
        "scope": SCOPES,
        "state": STATE,
    }
    params.update(overrides)
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}, quote_via=urllib.parse.quote)
    return http.get(f"{emu.base_url}{AUTHORIZE}?{query}", allow_redirects=False, timeout=5)


def redirected(response: requests.Response, redirect_uri: str = REDIRECT) -> dict[str, str]:
    """The query WHOOP put on the redirect URI, as a dict (each parameter exactly once)."""
    assert response.status_code == 302, response.text
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    location = response.headers["Location"]
    base, _, query = location.partition("?")
    assert base == redirect_uri.partition("?")[0]
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    assert len({k for k, _ in pairs}) == len(pairs)
    return dict(pairs)


def get_code(emu: WhoopEmulator, http: requests.Session, **overrides: str | None) -> str:
    params = redirected(authorize(emu, http, **overrides), overrides.get("redirect_uri") or REDIRECT)
    assert set(params) == {"code", "state"}, params
    return params["code"]


def token_call(emu: WhoopEmulator, http: requests.Session, **form: str | None) -> requests.Response:
    body = {"client_id": emu.member_client_id, "client_secret": emu.member_client_secret}
    body.update(form)
    return http.post(emu.base_url + TOKEN, data={k: v for k, v in body.items() if v is not None}, timeout=5)


def exchange(
    emu: WhoopEmulator, http: requests.Session, code: str, redirect_uri: str = REDIRECT, **form: str | None
) -> requests.Response:
    return token_call(emu, http, grant_type="authorization_code", code=code, redirect_uri=redirect_uri, **form)


def refresh(emu: WhoopEmulator, http: requests.Session, refresh_token: str, **form: str | None) -> requests.Response:
    form.setdefault("scope", "offline")
    return token_call(emu, http, grant_type="refresh_token", refresh_token=refresh_token, **form)


def connect(emu: WhoopEmulator, http: requests.Session, scope: str = SCOPES) -> dict:
    response = exchange(emu, http, get_code(emu, http, scope=scope))
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_profile(emu: WhoopEmulator, http: requests.Session, token: str) -> requests.Response:
    return http.get(emu.base_url + PROFILE, headers=bearer(token), timeout=5)


def partner_token(emu: WhoopEmulator, http: requests.Session) -> str:
    response = http.post(
        emu.base_url + "/developer/v2/partner/token",
        json={
            "grant_type": "client_credentials",
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "scope": "whoop-partner/token",
        },
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


# ---------------------------------------------------------------- authorize and exchange


def test_approve_redirects_with_code_and_state_and_exchange_gives_tokens(emulator, http):
    params = redirected(authorize(emulator, http))

    assert set(params) == {"code", "state"}
    assert params["state"] == STATE
    assert emulator.authorized_members() == [10001]

    response = exchange(emulator, http, params["code"])

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    tokens = response.json()
    assert set(tokens) == {"access_token", "expires_in", "refresh_token", "scope", "token_type"}
    assert tokens["expires_in"] == 3600
    assert tokens["token_type"] == "bearer"
    assert tokens["scope"].split() == SCOPES.split()
    assert tokens["access_token"] != tokens["refresh_token"]
    assert emulator.member_code_exchanges == 1
    profile = get_profile(emulator, http, tokens["access_token"])
    assert profile.status_code == 200
    assert profile.json() == emulator.member(10001)
    assert set(profile.json()) == {"user_id", "email", "first_name", "last_name"}
    assert profile.json()["email"].endswith("@example.com")


def test_without_offline_there_is_no_refresh_token(emulator, http):
    tokens = connect(emulator, http, scope="read:profile")

    assert "refresh_token" not in tokens
    assert tokens["scope"] == "read:profile"
    assert get_profile(emulator, http, tokens["access_token"]).status_code == 200


def test_state_is_echoed_unchanged_and_the_redirect_query_is_kept(emulator, http):
    uri = "http://127.0.0.1:9/cb?tenant=a%20b&x=1"
    emulator.redirect_uris.append(uri)
    state = "a b&c=d/é+%~ long enough"

    response = authorize(emulator, http, redirect_uri=uri, state=state)

    params = redirected(response, uri)
    assert params["tenant"] == "a b" and params["x"] == "1"
    assert params["state"] == state
    assert response.headers["Location"].startswith(uri + "&code=")
    assert exchange(emulator, http, params["code"], redirect_uri=uri).status_code == 200


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:9/whoop/callback/",  # trailing slash
        "http://127.0.0.1:9/whoop/callback?x=1",  # extra query
        "http://127.0.0.1:8/whoop/callback",  # other port
        "https://evil.example.com/whoop/callback",
    ],
)
def test_redirect_uri_mismatch_is_400_and_never_redirects(emulator, http, redirect_uri):
    before = emulator.issued_credentials()

    response = authorize(emulator, http, redirect_uri=redirect_uri)

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json()["error"] == "invalid_redirect_uri"
    assert emulator.issued_credentials() == before
    assert emulator.authorized_members() == []


def test_unknown_client_id_is_400_and_never_redirects(emulator, http):
    response = authorize(emulator, http, client_id="someone-else")

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "invalid_request"),
        ({"response_type": None}, "invalid_request"),
        ({"state": "short"}, "invalid_request"),
        ({"state": None}, "invalid_request"),
        ({"scope": "read:everything offline"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
    ],
)
def test_bad_authorize_request_redirects_with_error(emulator, http, overrides, error):
    params = redirected(authorize(emulator, http, **overrides))

    assert params["error"] == error
    assert params["error_description"]
    assert "code" not in params
    assert params.get("state") == overrides.get("state", STATE)
    assert emulator.authorized_members() == []


def test_repeated_authorize_parameter_is_invalid_request(emulator, http):
    query = urllib.parse.urlencode(
        [
            ("response_type", "code"),
            ("client_id", emulator.member_client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "offline"),
            ("scope", "read:profile"),
            ("state", STATE),
        ]
    )

    response = http.get(f"{emulator.base_url}{AUTHORIZE}?{query}", allow_redirects=False, timeout=5)

    params = redirected(response)
    assert params["error"] == "invalid_request"
    assert "scope" in params["error_description"]


def test_declined_consent_redirects_with_access_denied_and_state(emulator, http):
    emulator.decline_consent = True

    params = redirected(authorize(emulator, http))

    assert params == {"error": "access_denied", "error_description": "The user denied the request", "state": STATE}
    assert emulator.authorized_members() == []


def test_signed_in_member_is_created_and_approves(emulator, http):
    emulator.signed_in_user_id = 777

    tokens = connect(emulator, http)

    assert get_profile(emulator, http, tokens["access_token"]).json()["user_id"] == 777
    assert emulator.member(777)["user_id"] == 777
    assert emulator.authorized_members() == [777]
    with pytest.raises(KeyError):
        emulator.member(778)


def test_user_limit_reached_and_revoking_a_member_frees_the_slot(emulator, http):
    emulator.user_limit = 1
    first = connect(emulator, http)  # member 10001 takes the only slot

    denied = redirected(authorize(emulator, http))  # a brand-new member
    assert denied == {"error": "access_denied", "error_description": LIMIT_ERROR, "state": STATE}

    emulator.signed_in_user_id = 10001  # an authorized member may authorize again at the limit
    assert "code" in redirected(authorize(emulator, http))
    assert emulator.authorized_members() == [10001]

    revoked = http.delete(emulator.base_url + ACCESS, headers=bearer(first["access_token"]), timeout=5)
    assert revoked.status_code == 204
    assert emulator.authorized_members() == []

    emulator.signed_in_user_id = None
    params = redirected(authorize(emulator, http))
    assert "code" in params and "error" not in params
    assert len(emulator.authorized_members()) == 1
    assert emulator.authorized_members() != [10001]


def test_code_is_single_use(emulator, http):
    code = get_code(emulator, http)

    first = exchange(emulator, http, code)
    second = exchange(emulator, http, code)

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert second.json()["error_description"]
    assert emulator.member_code_exchanges == 1


def test_code_is_bound_to_its_redirect_uri(emulator, http):
    emulator.redirect_uris.append(OTHER_REDIRECT)
    code = get_code(emulator, http)

    wrong = exchange(emulator, http, code, redirect_uri=OTHER_REDIRECT)
    right = exchange(emulator, http, code, redirect_uri=REDIRECT)

    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert right.status_code == 200


def test_unknown_code_is_invalid_grant_and_missing_fields_invalid_request(emulator, http):
    unknown = exchange(emulator, http, "no-such-code")
    missing = token_call(emulator, http, grant_type="authorization_code", code=get_code(emulator, http))

    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_grant"
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


# ---------------------------------------------------------------- client authentication and form


@pytest.mark.parametrize(
    "credentials",
    [
        {"client_secret": "wrong"},
        {"client_secret": None},
        {"client_id": "local-partner-client", "client_secret": "local-partner-secret"},
    ],
)
def test_bad_client_credentials_are_401_and_do_not_consume_the_code(emulator, http, credentials):
    code = get_code(emulator, http)

    response = exchange(emulator, http, code, **credentials)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert exchange(emulator, http, code).status_code == 200


def test_json_body_on_token_endpoint_is_400(emulator, http):
    code = get_code(emulator, http)
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": emulator.member_client_id,
        "client_secret": emulator.member_client_secret,
    }

    response = http.post(emulator.base_url + TOKEN, json=body, timeout=5)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    [call] = emulator.calls_to("POST", TOKEN)
    assert call["body"]["client_secret"] == "***" and call["body"]["code"] == "***"
    assert exchange(emulator, http, code).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        "grant_type=authorization_code&grant_type=refresh_token",
        "grant_type=authorization_code&&code=x",
        "grant_type",
    ],
)
def test_repeated_or_malformed_form_is_400(emulator, http, raw):
    body = f"{raw}&client_id={emulator.member_client_id}&client_secret={emulator.member_client_secret}"

    response = http.post(
        emulator.base_url + TOKEN, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_unsupported_grant_type(emulator, http):
    response = token_call(emulator, http, grant_type="client_credentials", scope="offline")

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# ---------------------------------------------------------------- refresh


def test_refresh_rotates_both_tokens(emulator, http):
    old = connect(emulator, http)

    response = refresh(emulator, http, old["refresh_token"])

    assert response.status_code == 200, response.text
    new = response.json()
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert new["scope"] == old["scope"]
    assert new["expires_in"] == 3600
    assert emulator.member_refreshes == 1

    reused = refresh(emulator, http, old["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert get_profile(emulator, http, old["access_token"]).status_code == 401
    assert get_profile(emulator, http, new["access_token"]).status_code == 200
    assert refresh(emulator, http, new["refresh_token"]).status_code == 200
    assert emulator.member_refreshes == 2


def test_concurrent_refreshes_with_the_same_token_exactly_one_wins(emulator, http):
    refresh_token = connect(emulator, http)["refresh_token"]

    for _ in range(5):
        barrier = threading.Barrier(2)
        results: list[requests.Response] = []
        lock = threading.Lock()

        def race(
            token: str = refresh_token,
            barrier: threading.Barrier = barrier,
            results: list = results,
            lock: threading.Lock = lock,
        ) -> None:
            with requests.Session() as session:
                session.trust_env = False
                barrier.wait(timeout=5)
                response = refresh(emulator, session, token)
            with lock:
                results.append(response)

        threads = [threading.Thread(target=race) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

        assert sorted(r.status_code for r in results) == [200, 400]
        [winner] = [r for r in results if r.status_code == 200]
        [loser] = [r for r in results if r.status_code == 400]
        assert loser.json()["error"] == "invalid_grant"
        refresh_token = winner.json()["refresh_token"]

    assert emulator.member_refreshes == 5
    assert refresh(emulator, http, refresh_token).status_code == 200


@pytest.mark.parametrize(
    ("scope", "error"),
    [(None, "invalid_request"), ("read:profile", "invalid_scope"), ("offline read:profile", "invalid_scope")],
)
def test_refresh_without_scope_offline_is_400_and_keeps_the_token(emulator, http, scope, error):
    tokens = connect(emulator, http)

    response = token_call(
        emulator,
        http,
        grant_type="refresh_token",
        refresh_token=tokens["refresh_token"],
        **({"scope": scope} if scope is not None else {}),
    )

    assert response.status_code == 400
    assert response.json()["error"] == error
    assert emulator.member_refreshes == 0
    assert refresh(emulator, http, tokens["refresh_token"]).status_code == 200


def test_refresh_with_unknown_token_is_invalid_grant(emulator, http):
    response = refresh(emulator, http, "not-a-refresh-token")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_withheld_offline_scope_means_no_refresh_token(emulator, http):
    emulator.withhold_scopes = {"offline"}

    tokens = connect(emulator, http)

    assert "refresh_token" not in tokens
    assert tokens["scope"].split() == ["read:profile", "read:body_measurement"]


def test_expired_member_access_token_is_401_and_refresh_still_works(emulator, http):
    tokens = connect(emulator, http)

    emulator.expire_member_tokens()

    assert get_profile(emulator, http, tokens["access_token"]).status_code == 401
    fresh = refresh(emulator, http, tokens["refresh_token"])
    assert fresh.status_code == 200
    assert get_profile(emulator, http, fresh.json()["access_token"]).status_code == 200


def test_member_token_ttl_comes_from_constructor(http):
    with WhoopEmulator(redirect_uris=[REDIRECT], member_token_ttl_seconds=120) as emu:
        tokens = connect(emu, http)
        assert tokens["expires_in"] == 120
        assert refresh(emu, http, tokens["refresh_token"]).json()["expires_in"] == 120


# ---------------------------------------------------------------- member endpoints and revocation


def test_profile_takes_member_tokens_only_and_partner_routes_take_partner_tokens_only(emulator, http):
    member = connect(emulator, http)["access_token"]
    partner = partner_token(emulator, http)
    requisition = emulator.create_requisition(["CBC"])
    requisition_url = f"{emulator.base_url}/developer/v2/partner/requisition/{requisition['id']}"

    assert get_profile(emulator, http, member).status_code == 200
    partner_on_member = get_profile(emulator, http, partner)
    assert partner_on_member.status_code == 401
    assert partner_on_member.json() == {"error": "unauthorized"}
    assert http.get(requisition_url, headers=bearer(member), timeout=5).status_code == 401
    assert http.get(requisition_url, headers=bearer(partner), timeout=5).status_code == 200
    assert http.get(emulator.base_url + PROFILE, timeout=5).status_code == 401


def test_missing_scope_is_403_insufficient_scope(emulator, http):
    tokens = connect(emulator, http, scope="read:body_measurement")

    profile = get_profile(emulator, http, tokens["access_token"])
    body = http.get(emulator.base_url + BODY, headers=bearer(tokens["access_token"]), timeout=5)

    assert profile.status_code == 403
    assert profile.json() == {"error": "insufficient_scope"}
    assert body.status_code == 200
    assert set(body.json()) == {"height_meter", "weight_kilogram", "max_heart_rate"}


def test_body_measurement_is_deterministic_per_member(emulator, http):
    first = connect(emulator, http)["access_token"]
    second = connect(emulator, http)["access_token"]

    def body(token: str) -> dict:
        response = http.get(emulator.base_url + BODY, headers=bearer(token), timeout=5)
        assert response.status_code == 200
        return response.json()

    assert body(first) == {"height_meter": 1.8288, "weight_kilogram": 90.7185, "max_heart_rate": 200}
    assert body(second) != body(first)
    assert body(second) == body(second)


def test_revoke_access_kills_every_token_of_the_member(emulator, http):
    tokens = connect(emulator, http)
    other = connect(emulator, http)  # another member stays connected

    response = http.delete(emulator.base_url + ACCESS, headers=bearer(tokens["access_token"]), timeout=5)

    assert response.status_code == 204
    assert response.content == b""
    assert emulator.revocations == 1
    assert get_profile(emulator, http, tokens["access_token"]).status_code == 401
    dead = refresh(emulator, http, tokens["refresh_token"])
    assert dead.status_code == 400
    assert dead.json()["error"] == "invalid_grant"
    again = http.delete(emulator.base_url + ACCESS, headers=bearer(tokens["access_token"]), timeout=5)
    assert again.status_code == 401
    assert emulator.revocations == 1
    assert emulator.authorized_members() == [10002]
    assert get_profile(emulator, http, other["access_token"]).status_code == 200


def test_revoke_member_from_python_makes_the_next_refresh_invalid_grant(emulator, http):
    tokens = connect(emulator, http)
    pending_code = get_code(emulator, http)  # a brand-new member (10002), code not yet exchanged
    assert emulator.authorized_members() == [10001, 10002]

    emulator.revoke_member(10001)

    response = refresh(emulator, http, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert get_profile(emulator, http, tokens["access_token"]).status_code == 401
    assert emulator.authorized_members() == [10002]
    assert exchange(emulator, http, pending_code).status_code == 200  # 10002's code is untouched
    assert emulator.revocations == 0
    with pytest.raises(KeyError):
        emulator.revoke_member(99999)


def test_revoked_member_pending_code_dies(emulator, http):
    emulator.signed_in_user_id = 10001
    code = get_code(emulator, http)

    emulator.revoke_member(10001)

    response = exchange(emulator, http, code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# ---------------------------------------------------------------- recording, timeline, credentials


def test_recorded_token_bodies_hide_secrets_codes_and_refresh_tokens(emulator, http):
    tokens = connect(emulator, http)
    rotated = refresh(emulator, http, tokens["refresh_token"]).json()
    get_profile(emulator, http, rotated["access_token"])
    http.delete(emulator.base_url + ACCESS, headers=bearer(rotated["access_token"]), timeout=5)

    exchange_call, refresh_call = emulator.calls_to("POST", TOKEN)
    assert exchange_call["body"] == {
        "grant_type": "authorization_code",
        "code": "***",
        "redirect_uri": REDIRECT,
        "client_id": emulator.member_client_id,
        "client_secret": "***",
    }
    assert refresh_call["body"] == {
        "grant_type": "refresh_token",
        "refresh_token": "***",
        "scope": "offline",
        "client_id": emulator.member_client_id,
        "client_secret": "***",
    }
    [authorize_call] = emulator.calls_to("GET", AUTHORIZE)
    assert authorize_call["path"] == AUTHORIZE and authorize_call["body"] is None

    recorded = json.dumps(emulator.calls) + "\n".join(emulator.timeline())
    assert STATE not in recorded
    for credential in emulator.issued_credentials():
        assert credential not in recorded
    assert emulator.timeline() == [
        "GET oauth authorize → 302",
        "POST oauth token authorization_code → 200",
        "POST oauth token refresh_token → 200",
        "GET user/profile/basic → 200",
        "DELETE user/access → 204",
    ]


def test_issued_credentials_contains_everything_just_issued(emulator, http):
    code = get_code(emulator, http)
    tokens = exchange(emulator, http, code).json()
    rotated = refresh(emulator, http, tokens["refresh_token"]).json()
    partner = partner_token(emulator, http)

    issued = emulator.issued_credentials()

    for value in (
        code,
        tokens["access_token"],
        tokens["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
        partner,
        emulator.client_secret,
        emulator.member_client_secret,
        emulator.webhook_secret,
    ):
        assert value in issued
    assert emulator.member_client_id not in issued


def test_injected_fault_on_token_endpoint_is_served_then_the_real_answer(emulator, http):
    emulator.inject_fault("POST", r"^/oauth/oauth2/token$", status=503)
    code = get_code(emulator, http)

    faulted = exchange(emulator, http, code)
    real = exchange(emulator, http, code)

    assert faulted.status_code == 503
    assert faulted.json()["error"] == "injected_fault"
    assert real.status_code == 200
    assert emulator.member_code_exchanges == 1
    assert emulator.timeline() == [
        "GET oauth authorize → 302",
        "POST oauth token authorization_code → 503 (injected)",
        "POST oauth token authorization_code → 200",
    ]


# ---------------------------------------------------------------- control API


def test_control_api_members_and_revoke(emulator, http):
    base = emulator.base_url + "/_emulator"

    created = http.post(base + "/members", timeout=5)
    chosen = http.post(base + "/members", json={"user_id": 42}, timeout=5)
    duplicate = http.post(base + "/members", json={"user_id": 42}, timeout=5)
    bad = http.post(base + "/members", json={"user_id": "42"}, timeout=5)

    assert created.status_code == 201
    assert created.json() == emulator.member(10001)
    assert chosen.status_code == 201 and chosen.json()["user_id"] == 42
    assert duplicate.status_code == 409
    assert bad.status_code == 400

    emulator.signed_in_user_id = 42
    tokens = connect(emulator, http)
    assert http.post(base + "/members/42/revoke", timeout=5).status_code == 204
    assert refresh(emulator, http, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert http.post(base + "/members/31337/revoke", timeout=5).status_code == 404
    assert not any(c["path"].startswith("/_emulator") for c in emulator.calls)


def test_control_api_oauth_switches(emulator, http):
    base = emulator.base_url + "/_emulator"
    uris = emulator.redirect_uris

    assert http.post(base + "/oauth", json={"decline_consent": True}, timeout=5).status_code == 204
    assert redirected(authorize(emulator, http))["error"] == "access_denied"

    switches = {
        "decline_consent": False,
        "withhold_scopes": ["offline"],
        "user_limit": 5,
        "signed_in_user_id": 42,
        "member_token_ttl_seconds": 60,
        "redirect_uris": [REDIRECT, OTHER_REDIRECT],
    }
    assert http.post(base + "/oauth", json=switches, timeout=5).status_code == 204
    assert emulator.redirect_uris is uris and uris == [REDIRECT, OTHER_REDIRECT]
    tokens = exchange(emulator, http, get_code(emulator, http, redirect_uri=OTHER_REDIRECT), OTHER_REDIRECT).json()
    assert tokens["expires_in"] == 60
    assert "refresh_token" not in tokens
    assert get_profile(emulator, http, tokens["access_token"]).json()["user_id"] == 42

    view = http.get(base + "/oauth", timeout=5)
    assert view.status_code == 200
    state = view.json()
    assert {k: state[k] for k in switches} == switches
    assert state["authorized_members"] == [42]
    assert state["member_code_exchanges"] == 1
    assert state["member_refreshes"] == 0 and state["revocations"] == 0
    for credential in emulator.issued_credentials():
        assert credential not in view.text

    assert (
        http.post(base + "/oauth", json={"user_limit": None, "signed_in_user_id": None}, timeout=5).status_code == 204
    )
    assert emulator.user_limit is None and emulator.signed_in_user_id is None


@pytest.mark.parametrize(
    "body",
    [
        {"decline_consent": "yes"},
        {"withhold_scopes": "offline"},
        {"withhold_scopes": ["read:everything"]},
        {"user_limit": "10"},
        {"user_limit": True},
        {"signed_in_user_id": 0},
        {"member_token_ttl_seconds": 1.5},
        {"redirect_uris": REDIRECT},
        {"unknown_switch": 1},
        [],
    ],
)
def test_control_api_oauth_rejects_wrong_types_and_changes_nothing(emulator, http, body):
    response = http.post(emulator.base_url + "/_emulator/oauth", json=body, timeout=5)

    assert response.status_code == 400
    assert emulator.decline_consent is False
    assert emulator.withhold_scopes == set()
    assert emulator.user_limit is None
    assert emulator.redirect_uris == [REDIRECT]
