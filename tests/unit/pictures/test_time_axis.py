"""The pictures' shared pieces (pictures/svg.py): the UTC axis's ticks, label rows, nudging
and escaping."""

from __future__ import annotations

from whoop_bridge.pictures.svg import TimeAxis, clean, element, label_rows, nudged


def test_ticks_are_round_utc_times_inside_the_axis_at_most_eight_and_in_order():
    axis = TimeAxis.over("2026-12-01T04:00:03.000Z", "2026-12-01T04:07:41.000Z", 100, 800)

    ticks = axis.ticks()

    assert 2 <= len(ticks) <= 8
    # 7.6 minutes and its margins: two-minute steps (one-minute would give nine ticks).
    assert [label for _, label in ticks] == ["04:00", "04:02", "04:04", "04:06"]
    xs = [axis.x(tick) for tick, _ in ticks]
    assert xs == sorted(xs) and 100 <= xs[0] and xs[-1] <= 900


def test_an_axis_over_midnight_dates_its_ticks_and_one_time_gets_a_minute_around_it():
    over_midnight = TimeAxis.over("2026-12-01T23:58:00.000Z", "2026-12-02T00:03:00.000Z", 0, 500)
    assert [label for _, label in over_midnight.ticks()][:2] == ["12-01 23:58", "12-01 23:59"]

    single = TimeAxis.over("2026-12-01T04:00:00.000Z", "2026-12-01T04:00:00.000Z", 0, 600)
    assert single.x("2026-12-01T04:00:00.000Z") == 300
    assert (single.end - single.start).total_seconds() == 60


def test_labels_that_would_overlap_go_to_the_next_row_and_marks_are_kept_apart():
    assert label_rows([(0, 100), (50, 120), (110, 150), (200, 250)], rows=3) == [0, 1, 0, 0]
    assert label_rows([(0, 100), (0, 100), (0, 100)], rows=2) == [0, 1, 0]
    assert nudged([10, 10, 12, 40], 13) == [10, 23, 36, 49]


def test_text_and_attributes_are_escaped_and_cut():
    assert element("text", "a<b & 'c'\x07", data_x='"q"') == "<text data-x='\"q\"'>a&lt;b &amp; 'c'</text>"
    assert clean("x" * 10, limit=5) == "xxxx…"
