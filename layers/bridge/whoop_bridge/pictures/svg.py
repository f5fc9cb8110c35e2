"""What both timeline pictures share: SVG elements with XML escaping, a UTC time axis with
ticks and labels, label rows that do not overlap, and a legend.

Pure Python string building (xml.sax.saxutils escapes text and attributes; characters XML
1.0 cannot carry are dropped), no drawing library.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

from whoop_bridge import times

SVG_MEDIA_TYPE = "image/svg+xml"
FONT = "Helvetica, Arial, sans-serif"
MONO = "Menlo, Consolas, monospace"
# Characters XML 1.0 cannot hold (controls but tab and newlines, lone surrogates, U+FFFE/F).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Estimates of a character's width at font size 1 in the sans-serif fonts viewers pick:
# capitals, digits and `_` are wider than the rest.
WIDE, NARROW = 0.7, 0.56
# Tick steps, in seconds: the first giving at most MAX_TICKS ticks is used.
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800)
MAX_TICKS = 8


def clean(value: object, limit: int = 120) -> str:
    """`value` as text XML can hold, at most `limit` characters (an ellipsis marks a cut)."""
    text = _NOT_XML.sub("", str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def element(tag: str, text: str | None = None, **attributes: object) -> str:
    """One element; `attributes` with `_` for `-` (`font_size` is `font-size`) and a
    trailing `_` dropped (`class_`); None values left out. Text and values are escaped."""
    listed = "".join(
        f" {name.rstrip('_').replace('_', '-')}={quoteattr(clean(value, 400))}"
        for name, value in attributes.items()
        if value is not None
    )
    if text is None:
        return f"<{tag}{listed}/>"
    return f"<{tag}{listed}>{escape(clean(text))}</{tag}>"


def group(children: list[str], **attributes: object) -> str:
    """A `<g>` holding `children` (already built elements)."""
    opening = element("g", **attributes)[:-2] + ">"
    return opening + "".join(children) + "</g>"


def text_width(text: str, size: float) -> float:
    """About how wide `text` is drawn at font size `size`, in pixels."""
    wide = sum(1 for char in text if char.isupper() or char.isdigit() or char == "_")
    return (wide * WIDE + (len(text) - wide) * NARROW) * size


def document(width: float, height: float, title: str, children: list[str]) -> str:
    """The SVG document: a white background, `title` as its accessible name, `children`."""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family={quoteattr(FONT)} role="img">'
    )
    background = element("rect", x=0, y=0, width=f"{width:.0f}", height=f"{height:.0f}", fill="#ffffff")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + head
        + element("title", title)
        + background
        + "".join(children)
        + "</svg>\n"
    )


def utc(at: str) -> datetime:
    return times.parse(at).astimezone(UTC)


def shown(at: str | None) -> str:
    """A stored time as a person reads it: `2026-12-01 04:01:02 UTC`."""
    return utc(at).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "—"


@dataclass(frozen=True)
class TimeAxis:
    """A time axis from `start` to `end` (UTC) drawn over [left, left + width] pixels."""

    start: datetime
    end: datetime
    left: float
    width: float

    @classmethod
    def over(cls, first: str | None, last: str | None, left: float, width: float) -> TimeAxis:
        """An axis holding every time in [first, last], with a margin each side (a minute
        either way when there is one time, or none)."""
        start = utc(first) if first else datetime.now(UTC)
        end = utc(last) if last else start
        margin = max((end - start) * 0.04, timedelta(seconds=1)) if end > start else timedelta(seconds=30)
        return cls(start - margin, end + margin, left, width)

    def x(self, at: str | datetime) -> float:
        moment = utc(at) if isinstance(at, str) else at
        total = (self.end - self.start).total_seconds()
        return self.left + self.width * (moment - self.start).total_seconds() / total

    def ticks(self) -> list[tuple[datetime, str]]:
        """Round UTC times across the axis and their labels (with the date when the axis
        crosses midnight)."""
        seconds = (self.end - self.start).total_seconds()
        step = next((s for s in TICK_STEPS if seconds / s <= MAX_TICKS), None)
        if step is None:  # longer than the steps reach: whole days
            step = 86400 * math.ceil(seconds / 86400 / MAX_TICKS)
        first = math.ceil(self.start.timestamp() / step) * step
        pattern = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%Y-%m-%d"
        if step < 86400 and self.start.date() != self.end.date():
            pattern = "%m-%d " + pattern
        found = []
        moment = first
        while moment <= self.end.timestamp():
            tick = datetime.fromtimestamp(moment, UTC)
            found.append((tick, tick.strftime(pattern)))
            moment += step
        return found

    def draw(self, top: float, bottom: float, note_x: float) -> str:
        """Tick labels at `top`, light grid lines down to `bottom`, and at `note_x` the time
        zone and the day the axis starts."""
        note = f"UTC · {self.start.strftime('%Y-%m-%d')}"
        parts = [element("text", note, x=note_x, y=top, font_size=10, fill="#6b7280", class_="axis-note")]
        for tick, label in self.ticks():
            x = f"{self.x(tick):.1f}"
            parts.append(element("line", x1=x, y1=top + 4, x2=x, y2=bottom, stroke="#e5e7eb", stroke_width=1))
            parts.append(
                element("text", label, x=x, y=top, font_size=10, fill="#374151", text_anchor="middle", class_="tick")
            )
        return group(parts, class_="axis")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def nudged(xs: list[float], gap: float) -> list[float]:
    """`xs` (ascending) moved right where needed so that marks stay `gap` apart (the exact
    time is in each mark's tooltip)."""
    placed: list[float] = []
    for x in xs:
        placed.append(max(x, placed[-1] + gap) if placed else x)
    return placed


def label_rows(spans: list[tuple[float, float]], rows: int, gap: float = 6) -> list[int]:
    """For labels spanning [x0, x1] (in the order given), the first row in which each fits
    after the labels already placed there; past `rows`, the least crowded row."""
    ends = [-math.inf] * rows
    placed = []
    for x0, x1 in spans:
        row = next((index for index, end in enumerate(ends) if end + gap <= x0), None)
        if row is None:
            row = min(range(rows), key=lambda index: ends[index])
        ends[row] = max(ends[row], x1)
        placed.append(row)
    return placed


def legend(items: list[tuple[str, str]], x: float, y: float, width: float) -> tuple[str, float]:
    """A legend of (mark drawn centred at 0,0; name) pairs, wrapped at `width`; the SVG
    and its height."""
    parts, column, row = [], 0.0, 0
    for mark, name in items:
        size = 24 + text_width(name, 11) + 18
        if column and column + size > width:
            column, row = 0.0, row + 1
        cx, cy = x + column + 8, y + row * 20
        parts.append(group([mark], transform=f"translate({cx:.1f},{cy:.1f})"))
        parts.append(element("text", name, x=f"{cx + 12:.1f}", y=f"{cy + 4:.1f}", font_size=11, fill="#111827"))
        column += size
    return group(parts, class_="legend"), (row + 1) * 20
