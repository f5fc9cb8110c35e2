"""Each face of the emulator on its own: no server, no `WhoopEmulator`, only the shared core."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.message import Message

import pytest
from fakes.clock import ManualClock

from local.emulator.core import Core, HttpError, Request, Response, Router, error
from local.emulator.data_api import DataApi, page_query
from local.emulator.faults import Faults
from local.emulator.lab_orders import report_problems, status_body_problems, transition_problem
from local.emulator.member_data import MemberData
from local.emulator.rate_limits import RateLimits
from local.emulator.webhooks import member_signature, partner_signature


def request(method: str = "GET", path: str = "/", query: str = "", body: bytes = b"") -> Request:
    return Request(method, path, query, Message(), body)


# lab_orders: WHOOP's rules, pure -------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (None, "ORDER_CONFIRMED", True),
        ("ORDER_CONFIRMED", "FULL_RESULTS_READY", True),
        ("PARTIAL_RESULTS_READY", "PARTIAL_RESULTS_READY", True),
        ("APPOINTMENT_ATTENDED", "ORDER_CONFIRMED", False),
        ("FULL_RESULTS_READY", "RESULTS_ISSUE", False),
        ("ORDER_ISSUE", "ORDER_CONFIRMED", False),
        ("ORDER_CONFIRMED", "APPOINTMENT_ISSUE", True),
    ],
)
def test_transitions_move_forward_and_stop_at_a_terminal_status(current, new, allowed):
    assert (transition_problem(current, new) is None) is allowed


def test_an_issue_status_needs_a_reason_and_unknown_fields_are_named():
    assert status_body_problems({"task_business_status": "RESULTS_ISSUE"})[2] == [
        "reason is required with RESULTS_ISSUE"
    ]
    status, reason, problems = status_body_problems({"task_business_status": "ORDER_CONFIRMED", "note": "x"})
    assert (status, reason, problems) == ("ORDER_CONFIRMED", None, ["unknown fields: note"])


def test_a_report_observation_needs_a_value_and_a_uuid_bundle():
    problems = report_problems({"status": "final", "observations": [{"code": "LDL", "bundle_id": "nope"}]})
    assert problems == [
        "observations[0]: at least one of value_numeric or value_text is required",
        "observations[0].bundle_id must be a uuid",
    ]
    assert report_problems({"status": "cancelled"}) == []


# the core's routing ---------------------------------------------------------------------------


def test_the_router_answers_404_405_with_allow_and_500_for_a_failing_handler():
    def broken(request: Request) -> Response:
        raise RuntimeError("bug")

    def refused(request: Request, ident: str) -> Response:
        raise error(409, "conflict")

    router = Router([("GET", r"/broken", broken), ("POST", r"/things/(?P<ident>\d+)", refused)])
    assert router.route(request(path="/nowhere")).status == 404
    not_allowed = router.route(request("GET", "/things/1"))
    assert (not_allowed.status, not_allowed.headers) == (405, {"Allow": "POST"})
    assert router.route(request("POST", "/things/1")).payload == {"error": "conflict"}
    assert router.route(request(path="/broken")).payload == {"error": "internal_error", "message": "RuntimeError: bug"}


# rate limits on the core's clock ------------------------------------------------------------


def test_the_minute_window_refuses_past_its_limit_and_opens_again_on_the_clock():
    clock = ManualClock(1_800_000_000.0)  # a minute boundary
    limits = RateLimits(Core(clock=clock), per_minute=2, per_day=100)
    assert [limits.check()[0] for _ in range(3)] == [False, False, True]
    refused, headers = limits.check(consume=False)
    assert refused
    assert headers == {
        "X-RateLimit-Limit": "2, 2;window=60, 100;window=86400",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "60",
    }
    clock.sleep(60)
    assert limits.check()[0] is False


def test_burst_429_refuses_the_next_calls_whatever_the_windows_say():
    limits = RateLimits(Core(clock=ManualClock(0.0)))
    limits.burst_429(1, reset_seconds=2.5)
    assert limits.check() == (
        True,
        {
            "X-RateLimit-Limit": "100, 100;window=60, 10000;window=86400",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "3",
        },
    )
    assert limits.check()[0] is False


# faults -----------------------------------------------------------------------------------


def test_a_fault_matches_its_method_and_path_and_counts_down():
    faults = Faults(Core())
    faults.inject_fault("GET", r"/cycle$", status=429, count=2)
    assert faults.take("POST", "/developer/v2/cycle") is None
    first = faults.take("GET", "/developer/v2/cycle")
    assert first is not None and first.response().headers["X-RateLimit-Remaining"] == "0"
    assert faults.take("GET", "/developer/v2/cycle") is not None
    assert faults.take("GET", "/developer/v2/cycle") is None


# webhook signatures --------------------------------------------------------------------------


def test_signatures_are_whoops_hmacs():
    body = b'{"user_id":1}'
    assert partner_signature("s", body) == hmac.new(b"s", body, hashlib.sha256).hexdigest()
    expected = base64.b64encode(hmac.new(b"s", b"1700000000000" + body, hashlib.sha256).digest()).decode()
    assert member_signature("s", "1700000000000", body) == expected


# member data and the data API ---------------------------------------------------------------------


def test_member_data_alone_makes_the_same_history_from_the_same_seed():
    core = Core()
    data = MemberData(core)
    with core.lock:
        first, second = core.add_member(None)["user_id"], core.add_member(None)["user_id"]
    counts = data.generate_history(first, 5, end=1_790_000_000, seed=3)
    data.generate_history(second, 5, end=1_790_000_000, seed=3)
    assert counts["cycle"] == counts["sleep"] == counts["recovery"] == 5

    def scores(user_id: int) -> list:
        return [sleep.get("score") for sleep in data.records(user_id, "sleep")]

    assert scores(first) == scores(second)
    with pytest.raises(KeyError):
        data.generate_history(99, 1)


def test_the_data_api_pages_through_a_members_records_behind_the_given_authorization():
    core = Core()
    data = MemberData(core)
    with core.lock:
        user_id = core.add_member(None)["user_id"]
    data.generate_history(user_id, 4, end=1_790_000_000)

    class Access:
        pass

    access = Access()
    access.user_id = user_id
    api = DataApi(core, data, lambda handler, scope: lambda request, **groups: handler(request, access, **groups))
    router = Router(api.routes())
    first = router.route(request(path="/developer/v2/cycle", query="limit=3"))
    rest = router.route(request(path="/developer/v2/cycle", query=f"limit=3&nextToken={first.payload['next_token']}"))
    ids = [cycle["id"] for cycle in first.payload["records"] + rest.payload["records"]]
    assert ids == [cycle["id"] for cycle in data.records(user_id, "cycle")]
    assert "next_token" not in rest.payload


def test_a_malformed_page_query_is_a_400():
    with pytest.raises(HttpError) as caught:
        page_query(request(query="limit=26"))
    assert caught.value.response.status == 400
    assert page_query(request(query="start=2026-01-01T00:00:00Z")) == (10, 1_767_225_600_000, None, None)
