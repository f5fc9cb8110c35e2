"""The order picture (pictures/order.py): parsed back as XML, one lane per test with its
code, id, status and workflow, a mark and label per entry, a legend, and text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 - parses the picture this test made

from whoop_bridge.models.timeline import EntryKind, RequisitionTimeline, TestTimeline, TimelineEntry
from whoop_bridge.pictures.order import order_picture

NS = {"svg": "http://www.w3.org/2000/svg"}
E = EntryKind


def _at(second: int) -> str:
    return f"2026-12-01T04:00:{second:02d}.000Z"


def _timeline(code: str = "CBC", label: str = "ORDER_CONFIRMED") -> RequisitionTimeline:
    return RequisitionTimeline(
        "req-1",
        "received",
        _at(0),
        True,
        [
            TestTimeline(
                "sr-a",
                code,
                "awaiting_correction",
                "FULL_RESULTS_READY",
                [
                    TimelineEntry(_at(1), E.STATUS, label),
                    TimelineEntry(_at(5), E.REPORT, "final report", {"submitted_at": _at(5)}),
                    TimelineEntry(_at(5), E.STATUS, "FULL_RESULTS_READY"),
                    TimelineEntry(_at(9), E.REPORT, "amended report (not sent yet)", {"submitted_at": None}),
                ],
            ),
            TestTimeline(
                "sr-b",
                "HBA1C",
                "closed",
                "RESULTS_ISSUE",
                [
                    TimelineEntry(_at(1), E.STATUS, "ORDER_CONFIRMED"),
                    TimelineEntry(_at(6), E.ISSUE, "RESULTS_ISSUE", {"reason": "made-up patient words"}),
                    TimelineEntry(_at(7), E.FAILURE, "WhoopTransientError"),
                ],
            ),
        ],
    )


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode())  # nosec B314 - the picture this test made


def _lanes(root: ET.Element) -> dict[str, ET.Element]:
    return {
        lane.get("data-service-request-id"): lane
        for lane in root.iter(f"{{{NS['svg']}}}g")
        if lane.get("class") == "lane"
    }


def _texts(element: ET.Element) -> list[str]:
    return [text.text or "" for text in element.iter(f"{{{NS['svg']}}}text")]


def test_one_lane_per_test_with_its_code_id_status_workflow_and_each_entry_labelled():
    root = _parse(order_picture(_timeline()))

    lanes = _lanes(root)
    assert list(lanes) == ["sr-a", "sr-b"]
    cbc = _texts(lanes["sr-a"])
    assert cbc[:4] == ["CBC", "sr-a", "now: FULL_RESULTS_READY", "workflow: awaiting_correction"]
    assert [t for t in cbc[4:]] == [
        "ORDER_CONFIRMED",
        "final report",
        "FULL_RESULTS_READY",
        "amended report (not sent yet)",
    ]
    entries = [g.get("class") for g in lanes["sr-b"].iter(f"{{{NS['svg']}}}g") if "entry" in (g.get("class") or "")]
    assert entries == ["entry status", "entry issue", "entry failure"]


def test_title_axis_received_line_and_legend_are_drawn_and_no_issue_reason_is():
    svg = order_picture(_timeline())
    root = _parse(svg)

    assert root.find("svg:title", NS).text == "Timeline of order req-1"
    assert "Order req-1" in _texts(root)
    ticks = [t.text for t in root.iter(f"{{{NS['svg']}}}text") if t.get("class") == "tick"]
    assert ticks and all(len(tick) == 8 and tick.count(":") == 2 for tick in ticks)  # HH:MM:SS over 10 s
    assert "UTC · 2026-12-01" in _texts(root)
    assert any(g.get("class") == "received" for g in root.iter(f"{{{NS['svg']}}}g"))
    legend = next(g for g in root.iter(f"{{{NS['svg']}}}g") if g.get("class") == "legend")
    assert {"issue status", "report sent", "report not sent yet", "execution failed"} <= set(_texts(legend))
    assert "made-up patient words" not in svg


def test_marks_of_one_time_are_moved_apart_and_keep_their_exact_time_in_the_tooltip():
    root = _parse(order_picture(_timeline()))

    cbc = _lanes(root)["sr-a"]
    marks = [
        (g.get("data-at"), g.find("svg:g", NS).get("transform"))
        for g in cbc.iter(f"{{{NS['svg']}}}g")
        if "entry" in (g.get("class") or "")
    ]
    (report_at, report_at_x), (status_at, status_x) = marks[1], marks[2]
    assert report_at == status_at == _at(5)
    assert report_at_x != status_x
    tooltips = [t.text for t in cbc.iter(f"{{{NS['svg']}}}title")]
    assert f"FULL_RESULTS_READY · {_at(5)}" in tooltips


def test_odd_characters_are_escaped_and_those_xml_cannot_hold_are_dropped():
    svg = order_picture(_timeline(code="<CBC & \"x\" 'y'>\x01\ufffe", label="A<B>&C"))
    root = _parse(svg)  # well-formed XML

    lane = _lanes(root)["sr-a"]
    assert lane.get("data-code") == "<CBC & \"x\" 'y'>"
    assert _texts(lane)[0] == "<CBC & \"x\" 'y'>"
    assert "A<B>&C" in _texts(lane)
    assert "<CBC" not in svg and "&lt;CBC &amp;" in svg


def test_an_order_without_tests_still_draws_its_title_and_axis():
    empty = RequisitionTimeline("req-2", "awaiting_whoop", _at(0), False, [])

    root = _parse(order_picture(empty))

    assert "no tests" in _texts(root)
    assert "received 2026-12-01 04:00:00 UTC · intake: awaiting_whoop · 0 tests · closed" in _texts(root)
