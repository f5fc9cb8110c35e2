"""A member's sync timeline (members/timeline.py) from in-memory ports: the backfill and the
last reconciliation, each step with its state, counts, start and end, in the order a job runs."""

from __future__ import annotations

import pytest
from fakes.members import member_ports

from whoop_bridge.members.job_sync import run_job
from whoop_bridge.members.timeline import member_timeline
from whoop_bridge.members.views import NoConnection
from whoop_bridge.models.sync_job import SyncCause, SyncJob


def _sleep(start: str) -> dict:
    return {"id": f"sleep-{start}", "cycle_id": 1, "user_id": 10129, "created_at": start, "updated_at": start}


def _job(cause: SyncCause, steps: list[str]) -> dict:
    seen = [] if cause == SyncCause.RECONCILIATION else None
    return SyncJob(
        "member-1", cause, "2026-11-01T00:00:00.000Z", "2026-11-30T00:00:00.000Z", steps, seen=seen
    ).to_message()


def _sleep_record(start: str) -> dict:
    return {**_sleep(start), "start": start, "score_state": "SCORED"}


def test_a_backfill_shows_each_step_in_job_order_with_its_counts_start_and_end():
    fakes = member_ports()
    fakes.connect(scopes=["offline", "read:sleep", "read:profile"])
    fakes.progress.start("member-1", SyncCause.BACKFILL, ("cycle", "sleep", "profile"))
    fakes.whoop.pages[("sleep", None)] = ([_sleep_record("2026-11-10T23:00:00.000Z")], "page-2")
    fakes.whoop.pages[("sleep", "page-2")] = ([_sleep_record("2026-11-11T23:00:00.000Z")], None)

    run_job(_job(SyncCause.BACKFILL, ["cycle", "sleep", "profile"]), ports=fakes.ports)
    timeline = member_timeline("member-1", fakes.ports)

    (backfill,) = timeline.jobs
    shown = backfill.as_dict()
    assert [step["step"] for step in shown["steps"]] == ["cycle", "sleep", "profile"]
    cycle, sleep, profile = shown["steps"]
    assert (cycle["state"], cycle["pages"]) == ("skipped_scope_not_granted", 0)
    assert (sleep["state"], sleep["pages"], sleep["records"]) == ("done", 2, 2)
    assert sleep["started_at"] <= sleep["ended_at"] == sleep["updated_at"]
    assert profile["state"] == "done"
    assert (shown["cause"], shown["state"], shown["pages"]) == ("backfill", "finished_with_skips", 3)
    assert shown["started_at"] <= shown["ended_at"]
    assert timeline.as_dict()["status"] == "connected"


def test_a_step_still_running_has_no_end_and_the_job_is_running():
    fakes = member_ports()
    fakes.connect()
    fakes.progress.start("member-1", SyncCause.BACKFILL, ("sleep",))
    fakes.progress.note("member-1", SyncCause.BACKFILL, "sleep", pages=1, records=25, state="running", started_at="t0")

    shown = member_timeline("member-1", fakes.ports).as_dict()["jobs"][0]

    assert (shown["state"], shown["ended_at"], shown["steps"][0]["ended_at"]) == ("running", None, None)


def test_a_new_reconciliation_run_starts_its_counts_afresh():
    fakes = member_ports()
    fakes.connect()
    fakes.whoop.pages[("sleep", None)] = ([_sleep_record("2026-11-10T23:00:00.000Z")], None)

    run_job(_job(SyncCause.RECONCILIATION, ["sleep"]), ports=fakes.ports)
    first = member_timeline("member-1", fakes.ports).jobs[0].steps[0]
    run_job(_job(SyncCause.RECONCILIATION, ["sleep"]), ports=fakes.ports)
    second = member_timeline("member-1", fakes.ports).jobs[0].steps[0]

    assert (first.pages, first.records) == (second.pages, second.records) == (1, 1)
    assert second.started_at >= first.started_at
    assert [job.cause for job in member_timeline("member-1", fakes.ports).jobs] == ["reconciliation"]


def test_a_member_never_connected_has_no_timeline_and_one_without_jobs_has_none_listed():
    fakes = member_ports()
    with pytest.raises(NoConnection):
        member_timeline("member-1", fakes.ports)
    fakes.connect()

    assert member_timeline("member-1", fakes.ports).as_dict()["jobs"] == []
