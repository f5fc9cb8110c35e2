"""bench/whoop_calls.py's minimums: a duplicate send must count as growth, not as its own minimum."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import whoop_calls  # noqa: E402


def test_a_status_patched_twice_and_a_report_posted_twice_are_above_the_minimum():
    # WHOOP's emulator records every accepted call: PARTIAL_RESULTS_READY may follow itself and
    # a report may be posted twice, so its lists alone count a duplicate as a minimum.
    history = [
        {"status": "ORDER_CONFIRMED", "reason": None},
        {"status": "PARTIAL_RESULTS_READY", "reason": None},
        {"status": "PARTIAL_RESULTS_READY", "reason": None},
        {"status": "FULL_RESULTS_READY", "reason": None},
    ]
    report = {"status": "final", "observations": [{"code": "A1C", "value": 5.1}]}
    reports = [{"status": "preliminary", "observations": []}, report, dict(report)]

    assert whoop_calls.status_changes_needed(history) == 3
    assert whoop_calls.reports_needed(reports) == 2
