"""The timeline routes through the local API Gateway: an order's and a member's timeline as
JSON by default, as an SVG picture with `Accept: image/svg+xml` (q-values respected), a 406
naming what is offered for any other Accept, and a 404 for what the bridge does not know."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 - parses the bridge's own pictures

import pytest
import requests
from test_member_data import connect

from local.demo import CBC_FINAL, HBA1C_ISSUE, SVG
from local.stack import wait_until

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def order(_module_bridge):
    """One order: CBC with its final report, HBA1C with an issue."""
    bridge = _module_bridge
    requisition = bridge.new_requisition(["CBC", "HBA1C"])
    found = bridge.wait_confirmed(requisition["id"], 2)
    ids = {sr["code"]: sr["id"] for sr in found["service_requests"]}
    bridge.lab.event(ids["HBA1C"], HBA1C_ISSUE)
    bridge.lab.results(ids["CBC"], CBC_FINAL)
    bridge.wait_service_request(requisition["id"], ids["HBA1C"], lambda sr: sr["workflow"] == "closed", "the issue")
    bridge.wait_service_request(
        requisition["id"], ids["CBC"], lambda sr: sr["workflow"] == "awaiting_correction", "the final report"
    )
    return requisition["id"], ids


def _lanes(svg: str, key: str) -> dict[str, list[str]]:
    root = ET.fromstring(svg.encode())  # nosec B314 - the bridge's own picture
    return {
        lane.get(key): [text.text or "" for text in lane.iter(f"{SVG_NS}text")]
        for lane in root.iter(f"{SVG_NS}g")
        if lane.get("class") == "lane"
    }


def test_an_orders_timeline_is_json_by_default_with_each_tests_history(bridge, order):
    requisition_id, ids = order

    answer = bridge.lab.timeline(requisition_id, accept="*/*")

    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Vary"] == "Accept"
    body = answer.json()
    assert (body["requisition_id"], body["outcome"], body["open"]) == (requisition_id, "received", True)
    tests = {sr["code"]: sr for sr in body["service_requests"]}
    assert [(e["kind"], e["label"]) for e in tests["HBA1C"]["entries"]] == [
        ("status", "ORDER_CONFIRMED"),
        ("issue", "RESULTS_ISSUE"),
    ]
    assert tests["HBA1C"]["entries"][1]["reason"] == HBA1C_ISSUE["reason"]
    cbc = tests["CBC"]
    assert (cbc["service_request_id"], cbc["task_business_status"]) == (ids["CBC"], "FULL_RESULTS_READY")
    report = next(e for e in cbc["entries"] if e["kind"] == "report")
    assert (report["report_status"], report["at"]) == ("final", report["submitted_at"])
    assert body["start"] == body["received_at"] <= report["at"] <= body["end"]


def test_an_orders_timeline_as_a_picture_has_a_lane_per_test_and_no_issue_reason(bridge, order):
    requisition_id, ids = order

    answer = bridge.lab.timeline(requisition_id, accept=f"application/json;q=0.5, {SVG}")

    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == SVG
    lanes = _lanes(answer.text, "data-service-request-id")
    assert set(lanes) == set(ids.values())
    assert lanes[ids["HBA1C"]][:4] == ["HBA1C", ids["HBA1C"], "now: RESULTS_ISSUE", "workflow: closed"]
    assert "RESULTS_ISSUE" in lanes[ids["HBA1C"]][4:] and "final report" in lanes[ids["CBC"]][4:]
    assert HBA1C_ISSUE["reason"] not in answer.text
    assert f"Order {requisition_id}" in answer.text


@pytest.mark.parametrize("accept", ["text/html", "image/png", f"{SVG};q=0, application/json;q=0"])
def test_an_accept_the_route_cannot_answer_is_a_406_naming_what_it_offers(bridge, order, accept):
    requisition_id, _ = order

    for answer in (bridge.lab.timeline(requisition_id, accept), bridge.platform.timeline("nobody", accept)):
        assert answer.status_code == 406, answer.text
        assert answer.json()["error"] == "not_acceptable"
        assert answer.json()["offered"] == ["application/json", SVG]


def test_what_the_bridge_does_not_know_is_a_404_in_either_media_type(bridge):
    for accept in ("application/json", SVG):
        unknown_order = bridge.lab.timeline("00000000-0000-4000-8000-000000000000", accept)
        unknown_member = bridge.platform.timeline("never-connected", accept)

        assert unknown_order.status_code == unknown_member.status_code == 404
        assert unknown_order.json()["error"] == unknown_member.json()["error"] == "not_found"


def test_a_members_backfill_timeline_as_json_and_as_a_picture(bridge):
    client_user_id = "timeline-member-1"
    connect(bridge, client_user_id, days=5)

    def backfilled():
        answer = bridge.platform.timeline(client_user_id)
        jobs = answer.json()["jobs"] if answer.status_code == 200 else []
        return jobs[0] if jobs and jobs[0]["state"] == "done" else None

    backfill = wait_until(backfilled, timeout=60, what="the backfill")

    assert backfill["cause"] == "backfill"
    steps = {step["step"]: step for step in backfill["steps"]}
    assert list(steps) == ["cycle", "sleep", "recovery", "workout", "profile"]
    assert all(step["started_at"] <= step["ended_at"] for step in steps.values())
    assert steps["sleep"]["records"] >= 4 and backfill["pages"] == sum(s["pages"] for s in steps.values())
    picture = requests.get(
        f"{bridge.stack.url}/connections/{client_user_id}/timeline", headers={"Accept": "image/*"}, timeout=30
    )
    assert (picture.status_code, picture.headers["Content-Type"]) == (200, SVG)
    lanes = _lanes(picture.text, "data-step")
    assert list(lanes) == list(steps)
    assert lanes["sleep"][:2] == ["sleep", "done"]
    assert f"{steps['sleep']['records']} records" in " ".join(lanes["sleep"])
