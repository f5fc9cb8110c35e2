"""The picture of one order (`Accept: image/svg+xml` on `GET /lab/requisitions/{id}/timeline`).

One lane per test on a shared UTC time axis; at the left of each lane its code, service
request id, status now and workflow state. On the lane, each entry is a mark at its time
with its label above: statuses (blue circles, the status name), issues (red diamonds),
reports (green squares, hollow while not yet sent to WHOOP), failures (dark red crosses,
the error name), resumes (orange triangles), documents (purple), closing (a grey bar). A
dashed grey line marks when the order was received; a lane still open runs on, dashed, to
the right edge. Every mark carries a tooltip with its exact time.

No patient data: an issue's reason and a failure's cause are never drawn.
"""

from __future__ import annotations

from whoop_bridge.models.timeline import EntryKind, RequisitionTimeline, TestTimeline, TimelineEntry
from whoop_bridge.pictures.svg import (
    MONO,
    TimeAxis,
    clean,
    document,
    element,
    group,
    label_rows,
    legend,
    nudged,
    plural,
    shown,
    text_width,
)

WIDTH = 1120
LEFT = 250  # lane labels
PLOT_LEFT, PLOT_RIGHT = LEFT + 20, WIDTH - 170  # room for the last labels to the right
ROW = 14
MAX_ROWS = 6
# Marks closer than this (pixels) are moved apart, so none hides another.
MARK_GAP = 13
LABEL_SIZE = 10.5
AXIS_TOP = 92

COLOURS = {
    EntryKind.STATUS: "#2563eb",
    EntryKind.ISSUE: "#dc2626",
    EntryKind.REPORT: "#16a34a",
    EntryKind.FAILURE: "#7f1d1d",
    EntryKind.RESUME: "#ea580c",
    EntryKind.DOCUMENT: "#7c3aed",
    EntryKind.CLOSED: "#6b7280",
}


def mark(kind: EntryKind, hollow: bool = False) -> str:
    """The mark of an entry kind, centred at (0, 0)."""
    colour = COLOURS[kind]
    if kind is EntryKind.STATUS:
        return element("circle", cx=0, cy=0, r=5.5, fill=colour, stroke="#ffffff", stroke_width=1.5)
    if kind is EntryKind.ISSUE:
        return element("polygon", points="0,-7 7,0 0,7 -7,0", fill=colour, stroke="#ffffff", stroke_width=1)
    if kind is EntryKind.REPORT:
        fill = "#ffffff" if hollow else colour
        return element("rect", x=-5.5, y=-5.5, width=11, height=11, fill=fill, stroke=colour, stroke_width=2)
    if kind is EntryKind.FAILURE:
        return element("path", d="M-5,-5 L5,5 M-5,5 L5,-5", stroke=colour, stroke_width=3, stroke_linecap="round")
    if kind is EntryKind.RESUME:
        return element("polygon", points="-5,-6 7,0 -5,6", fill=colour)
    if kind is EntryKind.DOCUMENT:
        return element("path", d="M-4,-6 H2 L5,-3 V6 H-4 Z", fill=colour)
    return element("rect", x=-1.5, y=-8, width=3, height=16, fill=colour)


LEGEND = [
    (mark(EntryKind.STATUS), "status accepted by WHOOP"),
    (mark(EntryKind.ISSUE), "issue status"),
    (mark(EntryKind.REPORT), "report sent"),
    (mark(EntryKind.REPORT, hollow=True), "report not sent yet"),
    (mark(EntryKind.FAILURE), "execution failed"),
    (mark(EntryKind.RESUME), "resumed"),
    (mark(EntryKind.DOCUMENT), "document fetched / given up"),
    (mark(EntryKind.CLOSED), "closed"),
]


def order_picture(timeline: RequisitionTimeline) -> str:
    """The SVG document (text) of `timeline`."""
    first, last = timeline.span()
    axis = TimeAxis.over(first, last, PLOT_LEFT, PLOT_RIGHT - PLOT_LEFT)
    backgrounds, lanes, top = [], [], AXIS_TOP + 14
    for index, test in enumerate(timeline.tests):
        drawn, height = _lane(test, axis, top, timeline.open)
        fill = "#f3f4f6" if index % 2 == 0 else "#ffffff"
        backgrounds.append(element("rect", x=10, y=top, width=WIDTH - 20, height=height - 4, fill=fill, rx=4))
        lanes.append(drawn)
        top += height
    if not timeline.tests:
        lanes.append(element("text", "no tests", x=PLOT_LEFT, y=top + 20, font_size=12, fill="#6b7280"))
        top += 40
    parts = [
        element("text", f"Order {timeline.requisition_id}", x=20, y=30, font_size=18, font_weight="bold"),
        element("text", _subtitle(timeline), x=20, y=52, font_size=12, fill="#374151", class_="subtitle"),
        *backgrounds,
        axis.draw(AXIS_TOP, top, 20),
    ]
    if timeline.received_at:
        x = f"{axis.x(timeline.received_at):.1f}"
        received = [
            element("title", f"received {timeline.received_at}"),
            element("line", x1=x, y1=AXIS_TOP + 6, x2=x, y2=top, stroke="#6b7280", stroke_dasharray="4 3"),
            element("text", "order received", x=x, y=top + 12, font_size=10, fill="#4b5563", text_anchor="middle"),
        ]
        parts.append(group(received, class_="received"))
    drawn_legend, legend_height = legend(LEGEND, 20, top + 34, WIDTH - 40)
    parts += lanes + [drawn_legend]
    title = f"Timeline of order {timeline.requisition_id}"
    return document(WIDTH, top + 34 + legend_height + 8, title, parts)


def _subtitle(timeline: RequisitionTimeline) -> str:
    state = "open" if timeline.open else "closed"
    return (
        f"received {shown(timeline.received_at)} · intake: {timeline.outcome} · "
        f"{plural(len(timeline.tests), 'test')} · {state}"
    )


def _lane(test: TestTimeline, axis: TimeAxis, top: float, order_open: bool) -> tuple[str, float]:
    """One test's lane from `top` (without its background): the SVG and its height."""
    xs = nudged([axis.x(entry.at) for entry in test.entries], MARK_GAP)
    spans = [(x - 4, x - 4 + text_width(entry.label, LABEL_SIZE)) for x, entry in zip(xs, test.entries, strict=True)]
    rows = label_rows(spans, MAX_ROWS)
    used = max(rows, default=-1) + 1
    line_y = top + max(60, 14 + used * ROW + 16)
    height = line_y - top + 20
    parts = [
        element("text", test.code or "(no code)", x=20, y=top + 18, font_size=14, font_weight="bold", class_="code"),
        element("text", test.service_request_id, x=20, y=top + 32, font_size=9, font_family=MONO, fill="#4b5563"),
        element(
            "text", f"now: {test.task_business_status or '—'}", x=20, y=top + 46, font_size=10.5, class_="status-now"
        ),
        element("text", f"workflow: {test.workflow}", x=20, y=top + 59, font_size=10.5, class_="workflow"),
    ]
    if xs:
        parts.append(_lane_line(min(xs), max(xs), line_y, test.workflow, order_open))
    for x, entry, row in zip(xs, test.entries, rows, strict=True):
        parts.append(_entry(entry, x, line_y, line_y - 16 - row * ROW))
    attributes = {"class_": "lane", "data_service_request_id": test.service_request_id, "data_code": test.code}
    return group(parts, **attributes), height


def _lane_line(x0: float, x1: float, y: float, workflow: str, order_open: bool) -> str:
    solid = element("line", x1=f"{x0:.1f}", y1=y, x2=f"{x1:.1f}", y2=y, stroke="#9ca3af", stroke_width=2)
    if workflow in ("closed", "failed", "skipped", "held") or not order_open:
        return solid
    # Still open: the test goes on past the last entry.
    return solid + element(
        "line", x1=f"{x1:.1f}", y1=y, x2=PLOT_RIGHT, y2=y, stroke="#d1d5db", stroke_width=2, stroke_dasharray="5 4"
    )


def _entry(entry: TimelineEntry, x: float, line_y: float, label_y: float) -> str:
    hollow = entry.kind is EntryKind.REPORT and not entry.details.get("submitted_at")
    parts = [
        element("title", f"{entry.label} · {entry.at}"),
        element("line", x1=f"{x:.1f}", y1=label_y + 3, x2=f"{x:.1f}", y2=line_y - 6, stroke="#d1d5db"),
        group([mark(entry.kind, hollow)], transform=f"translate({x:.1f},{line_y:.1f})"),
        element(
            "text",
            clean(entry.label, 60),
            x=f"{x - 4:.1f}",
            y=f"{label_y:.1f}",
            font_size=LABEL_SIZE,
            fill=COLOURS[entry.kind],
            class_="label",
        ),
    ]
    return group(parts, class_=f"entry {entry.kind.value}", data_at=entry.at)
