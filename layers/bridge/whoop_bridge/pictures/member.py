"""The picture of one member's sync jobs (`Accept: image/svg+xml` on
`GET /connections/{client_user_id}/timeline`).

One section per job kind (the backfill, the last reconciliation), each on its own UTC time
axis (a backfill takes seconds to minutes, the reconciliation runs a day later). Each step
(a record type, or the profile) is a lane: a bar from its start to its end coloured by its
state (green done, blue running, grey queued, amber skipped; dashed while unfinished),
then its pages and records stored. A step that never ran a page is a point at its last
change. No record, profile field or WHOOP user id is drawn.
"""

from __future__ import annotations

from whoop_bridge.models.timeline import MemberTimeline, SyncJobTimeline, SyncStepSpan
from whoop_bridge.pictures.svg import TimeAxis, document, element, group, legend, plural, shown

WIDTH = 1000
LEFT = 200
PLOT_LEFT, PLOT_RIGHT = LEFT + 10, WIDTH - 200
LANE = 30
STATE_COLOURS = {"done": "#16a34a", "running": "#2563eb", "queued": "#9ca3af"}
SKIPPED = "#d97706"


def _colour(state: str) -> str:
    return STATE_COLOURS.get(state, SKIPPED)


def _swatch(colour: str, dashed: bool = False) -> str:
    return element(
        "rect", x=-8, y=-4, width=16, height=8, fill=colour, rx=2, stroke_dasharray="3 2" if dashed else None
    )


LEGEND = [
    (_swatch(STATE_COLOURS["done"]), "done"),
    (_swatch(STATE_COLOURS["running"]), "running"),
    (_swatch(STATE_COLOURS["queued"]), "queued"),
    (_swatch(SKIPPED), "skipped (scope not granted, not connected, ...)"),
]


def member_picture(timeline: MemberTimeline) -> str:
    """The SVG document (text) of `timeline`."""
    parts = [
        element("text", f"Member {timeline.client_user_id}", x=20, y=30, font_size=18, font_weight="bold"),
        element(
            "text",
            f"connection: {timeline.status} · backfill and reconciliation jobs",
            x=20,
            y=52,
            font_size=12,
            fill="#374151",
            class_="subtitle",
        ),
    ]
    top = 72.0
    for job in timeline.jobs:
        drawn, height = _job(job, top)
        parts.append(drawn)
        top += height
    if not timeline.jobs:
        parts.append(element("text", "no sync job has run", x=20, y=top + 20, font_size=12, fill="#6b7280"))
        top += 36
    drawn_legend, legend_height = legend(LEGEND, 20, top + 16, WIDTH - 40)
    parts.append(drawn_legend)
    return document(WIDTH, top + 16 + legend_height + 8, f"Sync jobs of member {timeline.client_user_id}", parts)


def _job(job: SyncJobTimeline, top: float) -> tuple[str, float]:
    summary = job.as_dict()
    starts = [step.started_at or step.updated_at for step in job.steps]
    ends = [step.updated_at for step in job.steps]
    first = min((moment for moment in starts if moment), default=None)
    last = max((moment for moment in ends if moment), default=None)
    axis = TimeAxis.over(first, last, PLOT_LEFT, PLOT_RIGHT - PLOT_LEFT)
    heading = (
        f"{job.cause.capitalize()}: {summary['state']} · {plural(summary['pages'], 'page')} · "
        f"{plural(summary['records'], 'record')} · "
        f"started {shown(summary['started_at'])}"
    )
    axis_top = top + 44
    lanes_top = axis_top + 10
    bottom = lanes_top + LANE * len(job.steps)
    parts = [
        element("text", heading, x=20, y=top + 20, font_size=14, font_weight="bold", class_="job-heading"),
        axis.draw(axis_top, bottom, 20),
    ]
    for index, step in enumerate(job.steps):
        parts.append(_step_lane(step, axis, lanes_top + index * LANE, index))
    return group(parts, class_="job", data_cause=job.cause), bottom - top + 16


def _step_lane(step: SyncStepSpan, axis: TimeAxis, top: float, index: int) -> str:
    y = top + LANE / 2
    colour = _colour(step.state)
    parts = [
        element(
            "rect", x=10, y=top, width=WIDTH - 20, height=LANE - 2, fill="#f9fafb" if index % 2 == 0 else "#ffffff"
        ),
        element("text", step.step, x=20, y=y - 1, font_size=12, font_weight="bold", class_="step"),
        element("text", step.state, x=20, y=y + 11, font_size=10, fill=colour, class_="state"),
    ]
    start = step.started_at or step.updated_at
    end = step.ended_at or step.updated_at or start
    counts = f"{plural(step.pages, 'page')} · {plural(step.records, 'record')} · {step.state}"
    tooltip = f"{step.step}: {counts}; started {step.started_at or '—'}, last change {step.updated_at or '—'}"
    if start:
        x0, x1 = axis.x(start), axis.x(end or start)
        width = max(x1 - x0, 4)
        dashed = "4 2" if not step.finished else None
        bar = element(
            "rect",
            x=f"{x0:.1f}",
            y=y - 7,
            width=f"{width:.1f}",
            height=14,
            rx=3,
            fill=colour,
            fill_opacity=0.85,
            stroke=colour,
            stroke_dasharray=dashed,
        )
        parts += [
            group([element("title", tooltip), bar], class_="bar"),
            element("text", counts, x=f"{x0 + width + 6:.1f}", y=y + 4, font_size=10.5, class_="counts"),
        ]
    else:
        parts.append(element("text", f"never ran · {counts}", x=PLOT_LEFT, y=y + 4, font_size=10.5, fill="#6b7280"))
    return group(parts, class_="lane", data_step=step.step, data_state=step.state)
