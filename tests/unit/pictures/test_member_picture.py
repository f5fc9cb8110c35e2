"""The member picture (pictures/member.py): one section per sync job, a lane per step with
its counts and state, parsed back as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 - parses the picture this test made

from whoop_bridge.models.timeline import MemberTimeline, SyncJobTimeline, SyncStepSpan
from whoop_bridge.pictures.member import member_picture

SVG = "{http://www.w3.org/2000/svg}"


def _at(second: int) -> str:
    return f"2026-12-01T04:00:{second:02d}.000Z"


def test_each_job_has_a_heading_and_a_lane_per_step_with_its_counts_and_state():
    timeline = MemberTimeline(
        "member-<1>",
        "connected",
        [
            SyncJobTimeline(
                "backfill",
                [
                    SyncStepSpan("cycle", "done", 2, 31, _at(0), _at(2)),
                    SyncStepSpan("workout", "skipped_scope_not_granted", 0, 0, None, _at(3)),
                    SyncStepSpan("profile", "queued", 0, 0, None, None),
                ],
            )
        ],
    )

    root = ET.fromstring(member_picture(timeline).encode())  # nosec B314 - the picture this test made

    (job,) = [g for g in root.iter(f"{SVG}g") if g.get("class") == "job"]
    assert job.get("data-cause") == "backfill"
    heading = next(t.text for t in job.iter(f"{SVG}text") if t.get("class") == "job-heading")
    assert heading.startswith("Backfill: running · 2 pages · 31 records")
    lanes = {g.get("data-step"): g for g in job.iter(f"{SVG}g") if g.get("class") == "lane"}
    assert list(lanes) == ["cycle", "workout", "profile"]
    assert [lane.get("data-state") for lane in lanes.values()] == ["done", "skipped_scope_not_granted", "queued"]
    counts = [t.text for t in lanes["cycle"].iter(f"{SVG}text") if t.get("class") == "counts"]
    assert counts == ["2 pages · 31 records · done"]
    assert any(g.get("class") == "bar" for g in lanes["workout"].iter(f"{SVG}g"))  # a point at its last change
    assert "never ran · 0 pages · 0 records · queued" in [t.text for t in lanes["profile"].iter(f"{SVG}text")]
    assert root.find(f"{SVG}title").text == "Sync jobs of member member-<1>"


def test_a_member_without_jobs_says_so():
    root = ET.fromstring(member_picture(MemberTimeline("m-1", "connected", [])).encode())  # nosec B314

    assert "no sync job has run" in [t.text for t in root.iter(f"{SVG}text")]
