"""Sync rules against in-memory ports: data webhooks (fetch, delete, scopes, read lag), jobs
page by page (deferral, deletes found by reconciliation), and the queue message rules."""

from __future__ import annotations

import json
import uuid

import pytest
from fakes.members import member_ports

from whoop_bridge.members import job_sync, jobs, webhook_sync
from whoop_bridge.members.job_sync import JobDeferred, run_job
from whoop_bridge.members.webhook_sync import ReadLagRetry, handle_webhook
from whoop_bridge.models.sync_job import SyncCause, SyncJob
from whoop_bridge.whoop.budget import BudgetExhausted


def _sleep(start: str = "2026-11-10T23:00:00.000Z", **changes) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "cycle_id": 93845,
        "user_id": 10129,
        "created_at": start,
        "updated_at": start,
        "start": start,
        "score_state": "SCORED",
    } | changes


def _webhook(kind: str, record_id: str, user_id: int = 10129) -> dict:
    return {"user_id": user_id, "id": record_id, "type": kind, "trace_id": "trace-1"}


def _job(cause: SyncCause, steps: list[str]) -> dict:
    job = SyncJob(
        "member-1",
        cause,
        "2026-11-01T00:00:00.000Z",
        "2026-11-30T00:00:00.000Z",
        steps,
        seen=[] if cause == SyncCause.RECONCILIATION else None,
    )
    return job.to_message()


def test_a_sleep_updated_webhook_fetches_stores_and_announces_the_sleep():
    fakes = member_ports()
    fakes.connect()
    sleep = _sleep()
    fakes.whoop.records[("sleep", sleep["id"])] = sleep

    result = handle_webhook(_webhook("sleep.updated", sleep["id"]), ports=fakes.ports)

    assert result == {"outcome": "fetched", "changed": 1}
    assert fakes.records.get("member-1", "sleep", sleep["id"])["start"] == sleep["start"]
    assert [detail_type for detail_type, _ in fakes.bus.published] == ["member.record.updated"]


def test_a_recovery_webhook_reads_the_cycle_from_the_stored_sleep_or_else_fetches_the_sleep():
    fakes = member_ports()
    fakes.connect()
    sleep = _sleep()
    recovery = {
        "sleep_id": sleep["id"],
        "cycle_id": 93845,
        "user_id": 10129,
        "created_at": sleep["start"],
        "updated_at": sleep["start"],
        "score_state": "PENDING_SCORE",
    }
    fakes.whoop.recoveries[93845] = recovery

    # The sleep is not stored yet: it is fetched (and kept) to learn its cycle.
    fakes.whoop.records[("sleep", sleep["id"])] = sleep
    assert handle_webhook(_webhook("recovery.updated", sleep["id"]), ports=fakes.ports)["changed"] == 2
    assert fakes.records.get("member-1", "sleep", sleep["id"]) is not None

    # Scored later: the stored sleep names the cycle, so only the recovery is read (one
    # WHOOP call); a sleep WHOOP no longer shows would have made this a read-lag retry.
    del fakes.whoop.records[("sleep", sleep["id"])]
    fakes.whoop.recoveries[93845] = recovery | {"score_state": "SCORED", "updated_at": "2026-11-11T07:00:00.000Z"}
    result = handle_webhook(_webhook("recovery.updated", sleep["id"]), ports=fakes.ports)
    assert result == {"outcome": "fetched", "changed": 1}
    assert fakes.records.get("member-1", "recovery", sleep["id"])["score_state"] == "SCORED"


def test_a_sleep_deleted_webhook_deletes_the_sleep_and_its_recovery():
    fakes = member_ports()
    fakes.connect()
    sleep = _sleep()
    fakes.records.upsert("member-1", 10129, "sleep", sleep, "webhook")
    recovery = {"sleep_id": sleep["id"], "user_id": 10129, "created_at": sleep["start"], "updated_at": sleep["start"]}
    fakes.records.upsert("member-1", 10129, "recovery", recovery, "webhook")

    result = handle_webhook(_webhook("sleep.deleted", sleep["id"]), ports=fakes.ports)

    assert result == {"outcome": "deleted", "changed": 2}
    assert fakes.records.stored == {}


def test_a_webhook_for_an_unknown_whoop_user_changes_nothing():
    fakes = member_ports()
    fakes.connect()

    assert handle_webhook(_webhook("sleep.updated", "x", user_id=1), ports=fakes.ports)["outcome"] == "unknown_member"


def test_a_record_type_whose_scope_was_not_granted_is_skipped():
    fakes = member_ports()
    fakes.connect(scopes=["offline", "read:profile"])

    result = handle_webhook(_webhook("workout.updated", str(uuid.uuid4())), ports=fakes.ports)

    assert result == {"outcome": "skipped_scope_not_granted", "changed": 0}


def test_a_404_right_after_the_webhook_is_asked_again_and_never_deletes():
    fakes = member_ports()
    fakes.connect()
    sleep = _sleep()
    fakes.records.upsert("member-1", 10129, "sleep", sleep, "webhook")

    with pytest.raises(ReadLagRetry) as retry:
        handle_webhook(_webhook("sleep.updated", sleep["id"]), ports=fakes.ports)

    assert retry.value.retry_after == webhook_sync.READ_LAG_RETRY_SECONDS
    assert isinstance(retry.value.rest["not_found_since"], float)
    late = {**retry.value.rest, "not_found_since": retry.value.rest["not_found_since"] - webhook_sync.READ_LAG_SECONDS}
    assert handle_webhook(late, ports=fakes.ports) == {"outcome": "not_found", "changed": 0}
    assert fakes.records.get("member-1", "sleep", sleep["id"]) is not None


def test_a_job_walks_its_pages_then_the_profile_and_notes_its_progress():
    fakes = member_ports()
    fakes.connect()
    first, second = _sleep("2026-11-10T23:00:00.000Z"), _sleep("2026-11-11T23:00:00.000Z")
    fakes.whoop.pages[("sleep", None)] = ([first], "page-2")
    fakes.whoop.pages[("sleep", "page-2")] = ([second], None)

    result = run_job(_job(SyncCause.BACKFILL, ["sleep", "profile"]), ports=fakes.ports)

    assert result == {"outcome": "done", "records": 2, "repairs": 0, "unreadable": 0}
    progress = fakes.progress.progress("member-1", SyncCause.BACKFILL)
    assert (progress["sleep"].state, progress["sleep"].pages, progress["sleep"].records) == ("done", 2, 2)
    assert progress["profile"].state == "done"
    assert fakes.items.get("member-1", "PROFILE")["user_id"] == 10129
    assert fakes.items.get("member-1", "BODY_MEASUREMENT") is None  # read:body_measurement not granted


def test_a_step_without_its_scope_is_skipped_and_the_next_still_runs():
    fakes = member_ports()
    fakes.connect(scopes=["offline", "read:sleep"])
    fakes.whoop.pages[("sleep", None)] = ([_sleep()], None)

    result = run_job(_job(SyncCause.BACKFILL, ["cycle", "sleep"]), ports=fakes.ports)

    progress = fakes.progress.progress("member-1", SyncCause.BACKFILL)
    assert result["records"] == 1
    assert (progress["cycle"].state, progress["sleep"].state) == ("skipped_scope_not_granted", "done")


def test_a_job_the_budget_stops_is_deferred_from_its_cursor():
    fakes = member_ports()
    fakes.connect()
    fakes.whoop.pages[("sleep", None)] = ([_sleep()], "page-2")
    fakes.whoop.failures["page"] = [None, BudgetExhausted(30.0, "minute")]

    with pytest.raises(JobDeferred) as deferred:
        run_job(_job(SyncCause.BACKFILL, ["sleep", "profile"]), ports=fakes.ports)

    assert deferred.value.retry_after == 30.0
    assert deferred.value.rest["steps"] == ["sleep", "profile"] and deferred.value.rest["next_token"] == "page-2"
    assert len(fakes.records.stored) == 1  # the first page is kept


def test_reconciliation_deletes_a_stored_record_whoop_no_longer_lists_once_its_get_answers_404():
    fakes = member_ports()
    fakes.connect()
    listed, gone = _sleep("2026-11-10T23:00:00.000Z"), _sleep("2026-11-11T23:00:00.000Z")
    for record in (listed, gone):
        fakes.records.upsert("member-1", 10129, "sleep", record, "backfill")
    fakes.whoop.pages[("sleep", None)] = ([listed], None)

    result = run_job(_job(SyncCause.RECONCILIATION, ["sleep"]), ports=fakes.ports)

    assert result["outcome"] == "done" and result["repairs"] == 1
    assert fakes.records.get("member-1", "sleep", gone["id"]) is None
    assert fakes.records.get("member-1", "sleep", listed["id"]) is not None


def test_a_job_for_a_disconnected_member_is_skipped():
    fakes = member_ports()

    assert run_job(_job(SyncCause.BACKFILL, ["sleep"]), ports=fakes.ports)["outcome"] == "skipped_not_connected"


def test_a_job_that_runs_long_continues_as_a_new_job(monkeypatch):
    fakes = member_ports()
    fakes.connect()
    monkeypatch.setattr(job_sync, "MAX_PAGES_PER_RUN", 1)
    fakes.whoop.pages[("sleep", None)] = ([_sleep()], "page-2")

    assert run_job(_job(SyncCause.BACKFILL, ["sleep"]), ports=fakes.ports)["outcome"] == "continued"
    ((queue, rest, delay),) = fakes.queues.sent
    assert queue == "https://sqs/member-jobs" and delay == 0
    assert (rest["next_token"], rest["deferrals"]) == ("page-2", 0)


# The queue message rules (member_sync's record handler) ---------------------------------------


def test_a_malformed_message_is_counted_and_not_retried():
    handled = jobs.handle_message("not json", "m-1", {}, member_ports().ports)

    assert handled.outcome == "malformed" and [count.name for count in handled.metrics] == ["MemberMessageMalformed"]


def test_work_the_budget_cannot_serve_goes_back_on_its_queue_with_a_delay():
    fakes = member_ports()
    message = _webhook("sleep.updated", "x")

    def exhausted(_message):
        raise BudgetExhausted(12.0, "minute")

    handled = jobs.handle_message(json.dumps(message), "m-1", {jobs.WEBHOOK: exhausted}, fakes.ports)

    ((queue, body, delay),) = fakes.queues.sent
    assert handled.outcome == "deferred" and queue == "https://sqs/member-events"
    assert body == {**message, "deferrals": 1, "deferred_since": body["deferred_since"]} and 1 <= delay <= 900
    assert isinstance(body["deferred_since"], float)


def test_a_webhook_deferred_past_its_freshness_window_is_counted_for_the_alarm_every_time():
    """The known gap "unalarmed endless rate-budget deferral": a webhook deferred again and
    again (the day limit reached, WHOOP's remaining count at 0, more webhooks than the minute)
    went back on its queue as a new message each time, so no queue-age alarm ever saw it."""
    from fakes.whoop import ManualClock

    from whoop_bridge.clock import use_clock

    manual = ManualClock()
    use_clock(manual)
    try:
        fakes = member_ports()

        def exhausted(_message):
            raise BudgetExhausted(900.0, "day")

        body = json.dumps(_webhook("sleep.updated", "x"))
        names = []
        for _ in range(4):
            handled = jobs.handle_message(body, "m-1", {jobs.WEBHOOK: exhausted}, fakes.ports)
            names.append([count.name for count in handled.metrics])
            body = json.dumps(fakes.queues.sent[-1][1])
            manual.now += 450
    finally:
        use_clock(None)

    # Deferred at 0, 450, 900 and 1350 s after the first deferral: from 900 s (the 15 minutes
    # in which a change is stored) each deferral is counted, and the message is still kept.
    assert names == [["MemberWorkDeferred"]] * 2 + [["MemberWorkDeferred", "MemberWebhookDeferredLong"]] * 2
    assert len(fakes.queues.sent) == 4 and json.loads(body)["deferrals"] == 4


def test_a_finished_message_is_counted_by_its_outcome():
    message = _job(SyncCause.RECONCILIATION, ["sleep"])

    def reconciled(_message):
        return {"outcome": "done", "records": 3, "repairs": 2}

    handled = jobs.handle_message(json.dumps(message), "m-1", {jobs.JOB: reconciled}, member_ports().ports)

    assert {(count.name, count.value) for count in handled.metrics} == {
        ("RecordsChanged", 2),
        ("ReconciliationRepairs", 2),
    }


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"job": "sync", "client_user_id": "m", "steps": []}, jobs.JOB),
        ({"detail-type": "member.connected", "detail": {"client_user_id": "m"}}, jobs.CONNECTED),
        ({"type": "sleep.updated", "trace_id": "t", "user_id": 1, "id": "x"}, jobs.WEBHOOK),
        ({"type": "sleep.updated", "trace_id": "t", "user_id": "1"}, None),
        ([], None),
    ],
)
def test_messages_are_told_apart_by_shape(message, kind):
    assert jobs.kind_of(message) == kind
