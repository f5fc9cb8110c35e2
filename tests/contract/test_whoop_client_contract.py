"""Every request the bridge's WHOOP clients send, validated against WHOOP's contract before it goes out.

The clients get their real session (`whoop.http.new_session`, with its retries and
`User-Agent`) with one transport in front of it that checks each prepared request: on a
route of WHOOP's document with openapi-core (path, method, query, body; undocumented fields
refused); on OAuth's token route, which the document leaves out, with WHOOP's prose rules
(form-encoded, the fields of each grant). Every client method is called; the operations
the clients reach must be every operation the bridge uses.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
import requests
from member_consent import ALL_SCOPES, REDIRECT
from requests.adapters import BaseAdapter
from whoop_openapi import document, operation_id, operations, request_errors, whoop_url

from local.emulator import WhoopEmulator
from whoop_bridge import __version__, caches
from whoop_bridge.whoop import http as whoop_http
from whoop_bridge.whoop.http import ClientOptions
from whoop_bridge.whoop.member import MemberApi
from whoop_bridge.whoop.partner import PartnerClient

OAUTH_TOKEN = "/oauth/oauth2/token"
FORM = "application/x-www-form-urlencoded"
# WHOOP's prose: the fields of each OAuth grant (the document does not describe OAuth's token route).
GRANT_FIELDS = {
    "authorization_code": {"grant_type", "code", "redirect_uri", "client_id", "client_secret"},
    "refresh_token": {"grant_type", "refresh_token", "client_id", "client_secret", "scope"},
}
REPORT = {
    "status": "final",
    "observations": [
        {"code": "TOTAL_CHOLESTEROL", "value_numeric": 185, "unit": "mg/dL", "status": "final"},
        {"code": "BLOOD_TYPE", "value_text": "A+", "status": "final"},
    ],
}


class ContractChecked(BaseAdapter):
    """A transport in front of the client's own: checks each request, then sends it on."""

    def __init__(self, inner: BaseAdapter, emulator_base: str) -> None:
        super().__init__()
        self.inner = inner
        self.base = emulator_base
        self.operations: list[str] = []
        self.problems: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.check(request)
        return self.inner.send(request, **kwargs)

    def close(self) -> None:
        self.inner.close()

    def check(self, request: requests.PreparedRequest) -> None:
        where = f"{request.method} {urllib.parse.urlsplit(request.url).path}"
        if request.headers.get("User-Agent") != f"whoop-bridge/{__version__}":
            self.problems.append(f"{where}: User-Agent {request.headers.get('User-Agent')!r}")
        if urllib.parse.urlsplit(request.url).path == OAUTH_TOKEN:
            self.operations.append("oauth token")
            self.problems += [f"{where}: {problem}" for problem in oauth_token_problems(request)]
            return
        url = whoop_url(request.url, self.base)
        operation = operation_id(request.method, url)
        if operation is None:
            self.problems.append(f"{where}: not an operation of WHOOP's document")
            return
        self.operations.append(operation)
        self.problems += [f"{where}: {problem}" for problem in request_errors(request, self.base)]


def oauth_token_problems(request: requests.PreparedRequest) -> list[str]:
    """WHOOP's prose rules for `POST /oauth/oauth2/token`."""
    if request.method != "POST" or (request.headers.get("Content-Type") or "").split(";")[0] != FORM:
        return [f"must be a form-encoded POST, not {request.method} {request.headers.get('Content-Type')}"]
    body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
    form = urllib.parse.parse_qs(body, keep_blank_values=True)
    expected = GRANT_FIELDS.get(form.get("grant_type", [""])[0])
    if expected is None:
        return [f"unknown grant_type {form.get('grant_type')}"]
    problems = [f"fields {sorted(set(form))} are not {sorted(expected)}"] if set(form) != expected else []
    problems += [f"{name} is repeated or blank" for name, values in form.items() if len(values) != 1 or not values[0]]
    if "scope" in form and form["scope"] != ["offline"]:
        problems.append("a refresh asks for scope=offline")
    return problems


def checked_session(emu: WhoopEmulator, **options: Any) -> tuple[requests.Session, ContractChecked]:
    """The clients' real session with the checking transport in front of its own."""
    session = whoop_http.new_session(0, 0.01, **options)
    checker = ContractChecked(session.get_adapter("http://"), emu.base_url)
    session.mount("http://", checker)
    return session, checker


@pytest.fixture(autouse=True)
def no_cached_tokens():
    caches.reset_all()
    yield
    caches.reset_all()


# Every partner operation of WHOOP's document: the bridge's client speaks them all.
PARTNER_OPERATIONS = {
    "requestToken",
    "getLabRequisitionById",
    "getServiceRequestById",
    "updateLabRequisitionStatus",
    "updateServiceRequestStatus",
    "uploadDiagnosticReportResults",
    "addTestData",
    "getDocumentById",
    "downloadDocument",
}


def test_every_partner_client_request_keeps_whoops_contract(emulator):
    session, checker = checked_session(emulator)
    client = PartnerClient(
        emulator.base_url,
        lambda: {"client_id": emulator.client_id, "client_secret": emulator.client_secret},
        ClientOptions(max_retries=0, session=session),
    )

    requisition_id = client.add_test_data()
    mobile_id = client.add_test_data("MOBILE")
    requisition = client.get_requisition(requisition_id)
    first, *_ = (sr["id"] for sr in requisition["service_requests"])
    client.get_service_request(first)
    client.update_requisition_status(requisition_id, "ORDER_CONFIRMED")
    client.update_service_request_status(first, "APPOINTMENT_ATTENDED")
    client.submit_diagnostic_report(first, REPORT)
    client.update_service_request_status(first, "FULL_RESULTS_READY")
    emulator.expire_tokens()  # a 401, one new token, the same call again
    client.update_requisition_status(mobile_id, "APPOINTMENT_ISSUE", "Member cancelled")
    document_id = emulator.add_document(content=b"%PDF-1.4 order form")["id"]
    assert client.get_document(document_id)["id"] == document_id
    assert client.get_document_content(document_id) == b"%PDF-1.4 order form"

    assert checker.problems == []
    assert (
        set(checker.operations)
        == PARTNER_OPERATIONS
        == {op for op, (_, path) in operations().items() if path.startswith("/v2/partner/")}
    )
    assert emulator.contract_violations() == []
    assert {call["user_agent"] for call in emulator.calls} == {f"whoop-bridge/{__version__}"}


def test_every_member_client_request_keeps_whoops_contract(emulator, http):
    session, checker = checked_session(emulator, retry_statuses=False)
    api = MemberApi(
        emulator.base_url,
        emulator.member_client_id,
        emulator.member_client_secret,
        ClientOptions(max_retries=0, session=session),
    )

    link = api.authorization_url(REDIRECT, ALL_SCOPES, "state-0123456789")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    # WHOOP's prose for the authorize link: response_type=code, a known scope list, state of 8+ characters.
    scopes = set(document()["components"]["securitySchemes"]["OAuth"]["flows"]["authorizationCode"]["scopes"]) | {
        "offline"
    }
    assert (
        query["response_type"] == ["code"] and set(query["scope"][0].split()) <= scopes and len(query["state"][0]) >= 8
    )
    redirect = http.get(link, allow_redirects=False, timeout=5)
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect.headers["Location"]).query))["code"]

    grant = api.exchange_code(code, REDIRECT)
    user_id = api.basic_profile(grant.access_token)["user_id"]
    emulator.generate_history(user_id, 4)
    api.body_measurement(grant.access_token, priority="interactive")
    cycles, next_token = api.page(
        grant.access_token,
        "cycle",
        start="2020-01-01T00:00:00.000Z",
        end="2099-01-01T00:00:00.000Z",
        next_token=None,
        priority="background",
    )
    api.record(grant.access_token, "cycle", str(cycles[0]["id"]), priority="webhook")
    api.cycle_recovery(grant.access_token, cycles[1]["id"], priority="webhook")
    for record_type in ("sleep", "recovery", "workout"):
        records, _ = api.page(
            grant.access_token,
            record_type,
            start="2020-01-01T00:00:00.000Z",
            end="2099-01-01T00:00:00.000Z",
            next_token=None,
            priority="background",
        )
        if record_type != "recovery" and records:
            api.record(grant.access_token, record_type, records[0]["id"], priority="webhook")
    emulator.add_record(user_id, "cycle")
    page_one, token = api.page(
        grant.access_token,
        "cycle",
        start="2020-01-01T00:00:00+00:00",
        end="2099-01-01T00:00:00Z",
        next_token=None,
        priority="background",
    )
    while token:
        _, token = api.page(
            grant.access_token,
            "cycle",
            start="2020-01-01T00:00:00+00:00",
            end="2099-01-01T00:00:00Z",
            next_token=token,
            priority="background",
        )
    refreshed = api.refresh(grant.refresh_token)
    assert api.revoke(refreshed.access_token) is True

    assert checker.problems == []
    assert set(checker.operations) == {
        "oauth token",
        "getProfileBasic",
        "getBodyMeasurement",
        "getCycleCollection",
        "getCycleById",
        "getRecoveryForCycle",
        "getSleepCollection",
        "getRecoveryCollection",
        "getWorkoutCollection",
        "getSleepById",
        "getWorkoutById",
        "revokeUserOAuthAccess",
    }
    assert {call["user_agent"] for call in emulator.calls if call["path"] != "/oauth/oauth2/auth"} == {
        f"whoop-bridge/{__version__}"
    }


def test_the_check_fails_when_a_client_leaves_the_contract(emulator):
    # The guard of the guard: what WHOOP's document does not allow is caught before it goes out.
    session, checker = checked_session(emulator)
    client = PartnerClient(
        emulator.base_url,
        lambda: {"client_id": emulator.client_id, "client_secret": emulator.client_secret},
        ClientOptions(max_retries=0, session=session),
    )
    requisition = emulator.create_requisition(["CBC"])
    requisition_id, service_request_id = requisition["id"], requisition["service_requests"][0]["id"]

    client.submit_diagnostic_report(
        service_request_id, {"status": "final", "observations": [{"code": "LDL", "value_numeric": "100"}]}
    )
    session.patch(
        f"{emulator.base_url}/developer/v2/partner/requisition/{requisition_id}/status",
        json={"task_business_status": "ORDER_CONFIRMED", "note": "x"},
        timeout=5,
    )
    session.get(f"{emulator.base_url}/developer/v2/partner/requisitions", timeout=5)

    assert len(checker.problems) == 3
    assert "value_numeric" in checker.problems[0] and "not of type 'number'" in checker.problems[0]
    assert "'note' was unexpected" in checker.problems[1]
    assert checker.problems[2].endswith("not an operation of WHOOP's document")
