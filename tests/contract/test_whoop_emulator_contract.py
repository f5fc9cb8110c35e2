"""Every answer the emulator gives on every route of WHOOP's document, validated by openapi-core.

Each case provokes one answer (a success or an error the emulator really gives) on one
documented operation. An answer whose status the document lists is validated against the
document (status, content type, body; undocumented fields refused). An answer the document
does not list is one WHOOP's prose rules (`PROSE_STATUSES`); it must be one of those, and
member answers always carry WHOOP's rate-limit headers. The set of operations the cases
reach must be the document's whole set.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from member_consent import ALL_SCOPES, REDIRECT, member_tokens
from whoop_openapi import WHOOP_SERVER, document, operation_id, operations, response_errors, whoop_url

from local.emulator import WhoopEmulator

PARTNER = "/developer/v2/partner"
V2 = "/developer/v2"
MISSING = "00000000-0000-4000-8000-000000000404"
DOCUMENT_REFERENCE = {"type": "DocumentReference", "id": "5d0f8a52-4c8e-4f1c-9a51-0c1f4a8d2b11"}
# Answers WHOOP's prose allows where the document lists none: a 401 for an expired or bad
# partner token on every authenticated partner route; a 403 on member routes (a
# deactivated membership; the emulator's missing scope); see contracts/whoop/README.md.
PROSE_STATUSES = {"partner": {401}, "member": {403}}
RATE_LIMIT = re.compile(r"\d+, \d+;window=60, \d+;window=86400")


@dataclass
class World:
    """What the cases call: the emulator, tokens, and one of each WHOOP object."""

    emu: WhoopEmulator
    http: requests.Session
    partner: dict[str, str] = field(default_factory=dict)
    member: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.emu.base_url + path


@dataclass(frozen=True)
class Case:
    name: str
    operation: str
    status: int
    call: Callable[[World], requests.Response]


CASES: list[Case] = []


def case(
    operation: str, status: int, name: str | None = None
) -> Callable[[Callable[[World], requests.Response]], Callable]:
    def register(call: Callable[[World], requests.Response]) -> Callable:
        CASES.append(Case(name or call.__name__, operation, status, call))
        return call

    return register


# Partner API --------------------------------------------------------------------------------


def _token_body(w: World, **overrides: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": w.emu.client_id,
        "client_secret": w.emu.client_secret,
        "scope": "whoop-partner/token",
        **overrides,
    }


@case("requestToken", 200)
def token(w: World) -> requests.Response:
    return w.http.post(w.url(PARTNER + "/token"), json=_token_body(w), timeout=5)


@case("requestToken", 401)
def token_wrong_secret(w: World) -> requests.Response:
    return w.http.post(w.url(PARTNER + "/token"), json=_token_body(w, client_secret="wrong"), timeout=5)


@case("getLabRequisitionById", 200)
def requisition_in_person(w: World) -> requests.Response:
    return w.http.get(w.url(f"{PARTNER}/requisition/{w.ids['requisition']}"), headers=w.partner, timeout=5)


@case("getLabRequisitionById", 200)
def requisition_mobile_based_on_a_document(w: World) -> requests.Response:
    return w.http.get(w.url(f"{PARTNER}/requisition/{w.ids['mobile']}"), headers=w.partner, timeout=5)


@case("getLabRequisitionById", 404)
def requisition_missing(w: World) -> requests.Response:
    return w.http.get(w.url(f"{PARTNER}/requisition/{MISSING}"), headers=w.partner, timeout=5)


@case("getLabRequisitionById", 401)
def requisition_bad_token(w: World) -> requests.Response:
    return w.http.get(
        w.url(f"{PARTNER}/requisition/{w.ids['requisition']}"), headers={"Authorization": "Bearer expired"}, timeout=5
    )


@case("getServiceRequestById", 200)
def service_request(w: World) -> requests.Response:
    return w.http.get(w.url(f"{PARTNER}/service-request/{w.ids['service_request']}"), headers=w.partner, timeout=5)


@case("getServiceRequestById", 404)
def service_request_missing(w: World) -> requests.Response:
    return w.http.get(w.url(f"{PARTNER}/service-request/{MISSING}"), headers=w.partner, timeout=5)


@case("updateLabRequisitionStatus", 204)
def requisition_status(w: World) -> requests.Response:
    return w.http.patch(
        w.url(f"{PARTNER}/requisition/{w.ids['requisition']}/status"),
        headers=w.partner,
        json={"task_business_status": "ORDER_CONFIRMED"},
        timeout=5,
    )


@case("updateLabRequisitionStatus", 404)
def requisition_status_missing(w: World) -> requests.Response:
    return w.http.patch(
        w.url(f"{PARTNER}/requisition/{MISSING}/status"),
        headers=w.partner,
        json={"task_business_status": "ORDER_CONFIRMED"},
        timeout=5,
    )


@case("updateLabRequisitionStatus", 401)
def requisition_status_bad_token(w: World) -> requests.Response:
    return w.http.patch(
        w.url(f"{PARTNER}/requisition/{w.ids['requisition']}/status"),
        headers={"Authorization": "Bearer x"},
        json={"task_business_status": "ORDER_CONFIRMED"},
        timeout=5,
    )


@case("updateServiceRequestStatus", 200)
def service_request_status(w: World) -> requests.Response:
    return w.http.patch(
        w.url(f"{PARTNER}/service-request/{w.ids['service_request']}/status"),
        headers=w.partner,
        json={"task_business_status": "RESULTS_ISSUE", "reason": "Sample haemolysed"},
        timeout=5,
    )


@case("updateServiceRequestStatus", 404)
def service_request_status_missing(w: World) -> requests.Response:
    return w.http.patch(
        w.url(f"{PARTNER}/service-request/{MISSING}/status"),
        headers=w.partner,
        json={"task_business_status": "ORDER_CONFIRMED"},
        timeout=5,
    )


@case("uploadDiagnosticReportResults", 201)
def results(w: World) -> requests.Response:
    report = {
        "status": "final",
        "observations": [
            {"code": "TOTAL_CHOLESTEROL", "value_numeric": 185, "unit": "mg/dL", "status": "final"},
            {"code": "BLOOD_TYPE", "value_text": "A+", "bundle_id": str(uuid.uuid4())},
        ],
    }
    return w.http.post(
        w.url(f"{PARTNER}/service-request/{w.ids['service_request']}/results"),
        headers=w.partner,
        json=report,
        timeout=5,
    )


@case("uploadDiagnosticReportResults", 404)
def results_missing(w: World) -> requests.Response:
    return w.http.post(
        w.url(f"{PARTNER}/service-request/{MISSING}/results"),
        headers=w.partner,
        json={"status": "cancelled"},
        timeout=5,
    )


@case("addTestData", 200)
def add_test_data(w: World) -> requests.Response:
    return w.http.post(w.url(PARTNER + "/development/add-test-data"), headers=w.partner, timeout=5)


@case("addTestData", 200)
def add_test_data_mobile(w: World) -> requests.Response:
    return w.http.post(
        w.url(PARTNER + "/development/add-test-data"),
        params={"appointmentType": "MOBILE"},
        headers=w.partner,
        timeout=5,
    )


@case("addTestData", 404)
def add_test_data_in_production(w: World) -> requests.Response:
    w.emu.production = True
    return w.http.post(
        w.url(PARTNER + "/development/add-test-data"),
        params={"appointmentType": "VIRTUAL"},
        headers=w.partner,
        timeout=5,
    )


@case("getDocumentById", 200)
def document_metadata(w: World) -> requests.Response:
    return w.http.get(w.url(f"{PARTNER}/document/{w.ids['document']}"), headers=w.partner, timeout=5)


@case("getDocumentById", 200)
def document_that_is_a_link(w: World) -> requests.Response:
    return w.http.get(w.url(f"{PARTNER}/document/{w.ids['link_document']}"), headers=w.partner, timeout=5)


@case("getDocumentById", 404)
def document_missing(w: World) -> requests.Response:
    return w.http.get(w.url(f"{PARTNER}/document/{MISSING}"), headers=w.partner, timeout=5)


@case("downloadDocument", 200)
def document_content(w: World) -> requests.Response:
    return w.http.get(w.url(f"{PARTNER}/document/{w.ids['document']}/content"), headers=w.partner, timeout=5)


@case("downloadDocument", 404)
def document_content_missing(w: World) -> requests.Response:
    return w.http.get(w.url(f"{PARTNER}/document/{MISSING}/content"), headers=w.partner, timeout=5)


# Member API ---------------------------------------------------------------------------------


def _member_get(w: World, path: str, **params: Any) -> requests.Response:
    return w.http.get(w.url(V2 + path), params=params, headers=w.member, timeout=5)


for _name, _operation, _path in (
    ("cycle", "getCycleCollection", "/cycle"),
    ("sleep", "getSleepCollection", "/activity/sleep"),
    ("recovery", "getRecoveryCollection", "/recovery"),
    ("workout", "getWorkoutCollection", "/activity/workout"),
):
    case(_operation, 200, f"{_name}_first_page")(lambda w, path=_path: _member_get(w, path, limit=2))
    case(_operation, 200, f"{_name}_last_page")(lambda w, path=_path: _member_get(w, path, limit=25))
    case(_operation, 200, f"{_name}_window")(
        lambda w, path=_path: _member_get(w, path, start=w.ids["window_start"], end=w.ids["window_end"])
    )
    case(_operation, 400, f"{_name}_limit_too_large")(lambda w, path=_path: _member_get(w, path, limit=26))


@case("getCycleCollection", 400)
def cycle_forged_next_token(w: World) -> requests.Response:
    return _member_get(w, "/cycle", nextToken="forged")


@case("getCycleCollection", 401)
def cycles_without_a_live_token(w: World) -> requests.Response:
    return w.http.get(w.url(V2 + "/cycle"), headers={"Authorization": "Bearer expired"}, timeout=5)


@case("getCycleCollection", 429)
def cycles_over_the_rate_limit(w: World) -> requests.Response:
    w.emu.burst_429(1)
    return _member_get(w, "/cycle")


@case("getSleepCollection", 403)
def sleeps_without_the_scope(w: World) -> requests.Response:
    return w.http.get(w.url(V2 + "/activity/sleep"), headers=w.ids["profile_only"], timeout=5)


@case("getCycleById", 200)
def current_cycle(w: World) -> requests.Response:
    return _member_get(w, f"/cycle/{w.ids['current_cycle']}")


@case("getCycleById", 200)
def closed_cycle(w: World) -> requests.Response:
    return _member_get(w, f"/cycle/{w.ids['closed_cycle']}")


@case("getCycleById", 404)
def cycle_missing(w: World) -> requests.Response:
    return _member_get(w, "/cycle/1")


@case("getSleepForCycle", 200)
def cycle_sleep(w: World) -> requests.Response:
    return _member_get(w, f"/cycle/{w.ids['closed_cycle']}/sleep")


@case("getSleepForCycle", 404)
def cycle_sleep_missing(w: World) -> requests.Response:
    return _member_get(w, "/cycle/1/sleep")


@case("getRecoveryForCycle", 200)
def cycle_recovery(w: World) -> requests.Response:
    return _member_get(w, f"/cycle/{w.ids['closed_cycle']}/recovery")


@case("getRecoveryForCycle", 200)
def cycle_recovery_pending(w: World) -> requests.Response:
    return _member_get(w, f"/cycle/{w.ids['current_cycle']}/recovery")


@case("getRecoveryForCycle", 404)
def cycle_recovery_missing(w: World) -> requests.Response:
    return _member_get(w, "/cycle/1/recovery")


@case("getSleepById", 200)
def sleep_by_id(w: World) -> requests.Response:
    return _member_get(w, f"/activity/sleep/{w.ids['sleep']}")


@case("getSleepById", 404)
def sleep_missing(w: World) -> requests.Response:
    return _member_get(w, f"/activity/sleep/{MISSING}")


@case("getWorkoutById", 200)
def workout_by_id(w: World) -> requests.Response:
    return _member_get(w, f"/activity/workout/{w.ids['workout']}")


@case("getWorkoutById", 200)
def workout_without_distance(w: World) -> requests.Response:
    return _member_get(w, f"/activity/workout/{w.ids['yoga']}")


@case("getWorkoutById", 404)
def workout_missing(w: World) -> requests.Response:
    return _member_get(w, f"/activity/workout/{MISSING}")


@case("getProfileBasic", 200)
def profile(w: World) -> requests.Response:
    return _member_get(w, "/user/profile/basic")


@case("getProfileBasic", 401)
def profile_without_a_live_token(w: World) -> requests.Response:
    return w.http.get(w.url(V2 + "/user/profile/basic"), timeout=5)


@case("getBodyMeasurement", 200)
def body_measurement(w: World) -> requests.Response:
    return _member_get(w, "/user/measurement/body")


@case("revokeUserOAuthAccess", 204)
def revoke(w: World) -> requests.Response:
    return w.http.delete(w.url(V2 + "/user/access"), headers=w.member, timeout=5)


@case("revokeUserOAuthAccess", 401)
def revoke_twice(w: World) -> requests.Response:
    w.http.delete(w.url(V2 + "/user/access"), headers=w.member, timeout=5)
    return w.http.delete(w.url(V2 + "/user/access"), headers=w.member, timeout=5)


@case("getActivityMapping", 200)
def activity_mapping(w: World) -> requests.Response:
    return w.http.get(w.url("/developer/v1/activity-mapping/1043"), timeout=5)


@case("getActivityMapping", 404)
def activity_mapping_missing(w: World) -> requests.Response:
    return w.http.get(w.url("/developer/v1/activity-mapping/999999"), timeout=5)


# The checks ---------------------------------------------------------------------------------


@pytest.fixture
def world(emulator, http) -> World:
    w = World(emulator, http)
    token = http.post(w.url(PARTNER + "/token"), json=_token_body(w), timeout=5).json()["access_token"]
    w.partner = {"Authorization": f"Bearer {token}"}
    requisition = emulator.create_requisition(["LIPID_PANEL", "CBC"])
    mobile = emulator.create_requisition(["HBA1C"], appointment_type="MOBILE", based_on={"HBA1C": [DOCUMENT_REFERENCE]})
    w.ids.update(
        requisition=requisition["id"], mobile=mobile["id"], service_request=requisition["service_requests"][1]["id"]
    )
    w.ids["document"] = emulator.add_document(content=b"%PDF-1.4 lab order form")["id"]
    w.ids["link_document"] = emulator.add_document(content=None, url="https://example.com/forms/order.pdf")["id"]
    tokens = member_tokens(emulator, http)
    w.member = {"Authorization": f"Bearer {tokens['access_token']}"}
    user_id = http.get(w.url(V2 + "/user/profile/basic"), headers=w.member, timeout=5).json()["user_id"]
    emulator.generate_history(user_id, 6, end="2026-11-20T15:00:00Z")
    yoga = emulator.add_record(user_id, "workout", pending=False, start="2026-11-20T12:00:00Z", sport_name="yoga")
    cycles, sleeps = emulator.records(user_id, "cycle"), emulator.records(user_id, "sleep")
    workouts = [r for r in emulator.records(user_id, "workout") if "distance_meter" in r.get("score", {})]
    emulator.map_v1_activity(1043, sleeps[1]["id"])
    w.ids.update(
        current_cycle=cycles[0]["id"],
        closed_cycle=cycles[1]["id"],
        sleep=sleeps[1]["id"],
        yoga=yoga["id"],
        workout=(workouts or [yoga])[0]["id"],
        window_start=_later(sleeps[3]["start"], minutes=1),
        window_end=cycles[1]["start"],
    )
    profile_only = member_tokens(emulator, http, ("read:profile",))
    w.ids["profile_only"] = {"Authorization": f"Bearer {profile_only['access_token']}"}
    return w


def _later(moment: str, *, minutes: int) -> str:
    """An ISO moment `minutes` after `moment` (a window that starts while a sleep is in progress)."""
    return (datetime.fromisoformat(moment) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _family(operation: str) -> str:
    return "partner" if operations()[operation][1].startswith("/v2/partner/") else "member"


@pytest.mark.parametrize("answer", CASES, ids=[c.name for c in CASES])
def test_every_answer_of_the_emulator_keeps_whoops_contract(world, answer):
    response = answer.call(world)

    assert response.status_code == answer.status, response.text
    url = whoop_url(response.request.url, world.emu.base_url)
    assert operation_id(response.request.method, url) == answer.operation
    documented = (
        str(answer.status)
        in document()["paths"][operations()[answer.operation][1]][operations()[answer.operation][0].lower()][
            "responses"
        ]
    )
    if documented:
        assert response_errors(response, world.emu.base_url) == []
    else:
        assert answer.status in PROSE_STATUSES[_family(answer.operation)], (
            f"{answer.status} is neither in WHOOP's document nor in its prose"
        )
    if _family(answer.operation) == "member" and answer.operation != "getActivityMapping":
        # WHOOP's rate-limit headers on every member answer (prose: the document has none).
        assert RATE_LIMIT.fullmatch(response.headers["X-RateLimit-Limit"])
        assert response.headers["X-RateLimit-Remaining"].isdigit() and response.headers["X-RateLimit-Reset"].isdigit()
    assert world.emu.contract_violations() == []


def test_the_cases_reach_every_operation_of_the_document():
    assert {c.operation for c in CASES} == set(operations())
    assert {(c.operation, c.status) for c in CASES} >= {
        (operation, int(status))
        for operation, (method, path) in operations().items()
        for status in document()["paths"][path][method.lower()]["responses"]
        if status in ("200", "201", "204")
    }


def test_fields_whoop_says_may_be_absent_are_absent_not_null(world):
    # Answers with a null where WHOOP's schema has no `nullable` would fail validation above;
    # this pins the cases WHOOP words as "only present if" / "not present".
    cycle = _member_get(world, f"/cycle/{world.ids['current_cycle']}").json()
    last = _member_get(world, "/cycle", limit=25).json()
    yoga = _member_get(world, f"/activity/workout/{world.ids['yoga']}").json()
    sleep = _member_get(world, f"/activity/sleep/{world.ids['sleep']}").json()
    new_order = world.http.get(
        world.url(f"{PARTNER}/requisition/{world.ids['requisition']}"), headers=world.partner, timeout=5
    ).json()

    assert "end" not in cycle and "next_token" not in last and "v1_id" not in sleep
    assert not {"distance_meter", "altitude_gain_meter", "altitude_change_meter", "v1_id", "sport_id"} & (
        set(yoga) | set(yoga["score"])
    )
    assert all("task_business_status" not in sr for sr in new_order["service_requests"])


def test_the_check_fails_when_an_answer_leaves_the_contract(world):
    # The guard of the guard: an answer WHOOP's document does not allow is caught.
    world.emu.inject_fault(
        "GET", r"/cycle$", status=200, body={"records": [{"id": 1, "end": None}], "next_token": None}
    )
    broken = _member_get(world, "/cycle")
    world.emu.inject_fault("GET", r"/requisition/", status=409, body={"error": "conflict"})
    invented = world.http.get(
        world.url(f"{PARTNER}/requisition/{world.ids['requisition']}"), headers=world.partner, timeout=5
    )

    problems = response_errors(broken, world.emu.base_url)
    assert problems and "required property" in problems[0] and "None for not nullable" in problems[0]
    assert response_errors(invented, world.emu.base_url) == ["ResponseNotFound: Unknown response http status: 409"]


# What the document does not cover: OAuth (prose rules) -----------------------------------------


def test_oauth_answers_follow_whoops_prose(emulator, http):
    tokens = member_tokens(emulator, http)
    assert set(tokens) == {"access_token", "expires_in", "refresh_token", "scope", "token_type"}
    assert isinstance(tokens["expires_in"], int) and tokens["token_type"] == "bearer"
    assert set(tokens["scope"].split()) == set(ALL_SCOPES)

    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "scope": "offline",
        "client_id": emulator.member_client_id,
        "client_secret": emulator.member_client_secret,
    }
    refreshed = http.post(f"{emulator.base_url}/oauth/oauth2/token", data=form, timeout=5)
    reused = http.post(f"{emulator.base_url}/oauth/oauth2/token", data=form, timeout=5)

    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] != tokens["refresh_token"]
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"  # WHOOP rotates refresh tokens

    emulator.decline_consent = True
    query = {
        "response_type": "code",
        "client_id": emulator.member_client_id,
        "redirect_uri": REDIRECT,
        "scope": "offline",
        "state": "state-0123456789",
    }
    declined = http.get(f"{emulator.base_url}/oauth/oauth2/auth", params=query, allow_redirects=False, timeout=5)
    assert declined.status_code == 302
    location = declined.headers["Location"]
    assert (
        location.startswith(REDIRECT + "?") and "error=access_denied" in location and "error_description=" in location
    )
    assert "state=state-0123456789" in location
    assert WHOOP_SERVER.endswith("/developer")  # OAuth lives outside the document's server
