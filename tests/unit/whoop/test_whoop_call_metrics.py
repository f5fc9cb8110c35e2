"""What the dashboard reads of WHOOP calls: each call counted by its route template (never a
path with an id), errors by route, and the rate budget's share of WHOOP's minute and day
limits at each call taken. Fake sessions and an in-memory budget state: no network, no AWS."""

from __future__ import annotations

import pytest
import requests
from fakes.emf import points
from fakes.whoop import InMemoryBudgetStates, ManualClock

from whoop_bridge.whoop import budget as budget_module
from whoop_bridge.whoop import http, routes
from whoop_bridge.whoop.budget import BACKGROUND, WEBHOOK, RateBudget

CYCLE = "https://api.prod.whoop.com/developer/v2/cycle/93845/recovery"
REQUISITION = "https://api.prod.whoop.com/developer/v2/partner/requisition/3f6c2a1e-aaaa-4bbb-8ccc-123456789abc"


class Answering(requests.Session):
    """A session that answers every request with `status`, or raises `error`."""

    def __init__(self, status: int = 200, error: Exception | None = None) -> None:
        super().__init__()
        self.status, self.error = status, error

    def request(self, method, url, **kwargs):  # noqa: ANN001 - requests' signature
        if self.error is not None:
            raise self.error
        response = requests.Response()
        response.status_code = self.status
        response._content = b"{}"
        return response


@pytest.mark.parametrize(
    ("method", "url", "route"),
    [
        ("GET", CYCLE, "GET /v2/cycle/{id}/recovery"),
        ("GET", "https://api.prod.whoop.com/developer/v2/cycle/93845", "GET /v2/cycle/{id}"),
        ("GET", "http://127.0.0.1:8400/developer/v2/activity/sleep?limit=25&nextToken=abc", "GET /v2/activity/sleep"),
        ("PATCH", REQUISITION + "/status", "PATCH /v2/partner/requisition/{id}/status"),
        ("GET", "https://x/developer/v2/partner/document/a%2Fb%20c/content", "GET /v2/partner/document/{id}/content"),
        ("POST", "https://api.prod.whoop.com/oauth/oauth2/token", "POST /oauth/oauth2/token"),
        ("GET", "https://x/developer/v2/partner/unpublished/4242", "GET other"),
        ("PUT", "https://x/developer/v2/cycle/4242", "PUT other"),
    ],
)
def test_a_call_is_named_by_its_route_template_never_its_path(method, url, route):
    assert routes.template(method, url) == route


def test_every_template_names_a_method_and_a_path_and_holds_no_id():
    for name in routes.TEMPLATES:
        method, path = name.split(" ")
        assert method in {"GET", "POST", "PATCH", "DELETE"} and path.startswith("/")
        assert not any(part.isdigit() for part in path.split("/")), name


def test_each_call_is_counted_by_route_and_an_error_answer_too(capsys):
    capsys.readouterr()
    http.send(Answering(200), "GET", CYCLE, what="GET cycle recovery", timeout_seconds=1)
    http.send(Answering(404), "GET", REQUISITION, what="GET requisition", timeout_seconds=1)

    out = capsys.readouterr().out
    assert points(out, "WhoopCalls") == [
        ({"route": "GET /v2/cycle/{id}/recovery"}, 1.0),
        ({"route": "GET /v2/partner/requisition/{id}"}, 1.0),
    ]
    assert points(out, "WhoopCallErrors") == [({"route": "GET /v2/partner/requisition/{id}"}, 1.0)]
    assert "3f6c2a1e" not in out and "93845" not in out


def test_a_call_without_an_answer_is_an_error_of_its_route(capsys):
    capsys.readouterr()
    with pytest.raises(http.WhoopTransientError):
        http.send(
            Answering(error=requests.ConnectionError("refused")), "GET", CYCLE, what="GET cycle", timeout_seconds=1
        )

    assert points(capsys.readouterr().out, "WhoopCallErrors") == [({"route": "GET /v2/cycle/{id}/recovery"}, 1.0)]


def test_a_transient_answer_handed_back_is_still_an_error(capsys):
    capsys.readouterr()
    response = http.send(Answering(503), "GET", CYCLE, what="GET cycle", timeout_seconds=1, raise_transient=False)

    assert response.status_code == 503
    assert points(capsys.readouterr().out, "WhoopCallErrors") == [({"route": "GET /v2/cycle/{id}/recovery"}, 1.0)]


def test_each_call_taken_writes_the_share_of_the_minute_and_day_limits_used(capsys):
    clock = ManualClock()
    budget = RateBudget("app-1", 10, 1_000, InMemoryBudgetStates())
    capsys.readouterr()
    budget_module.use_clock(clock)
    try:
        for _ in range(4):
            budget.acquire(WEBHOOK, max_wait=0)
        clock.sleep(61)  # the minute's four calls leave the window; the day keeps them
        budget.acquire(BACKGROUND, max_wait=0)
    finally:
        budget_module.use_clock(None)

    used = points(capsys.readouterr().out, "RateBudgetUsed")
    minute = [value for dimensions, value in used if dimensions == {"window": "minute"}]
    day = [value for dimensions, value in used if dimensions == {"window": "day"}]
    assert minute == [10.0, 20.0, 30.0, 40.0, 10.0]
    assert day == [0.1, 0.2, 0.3, 0.4, 0.5]
