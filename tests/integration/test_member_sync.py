"""member_sync through its real handler with the sample events: a data webhook, the
member.connected event that starts a backfill, a backfill job, the daily reconciliation,
and work the rate budget defers. The harness runs no queue poller: the tests read the
queues themselves."""

from __future__ import annotations

import json

import pytest
from test_member_api import _callback, _consent, _member_api

from integration_harness import SAMPLE_CLIENT_USER_ID, load_event, log_records

SAMPLE_SLEEP_ID = "5f0c8f2e-9d4b-4b7a-8e21-3c6d9a1b7e40"
SAMPLE_TRACE_ID = "d3709ee7-104e-4f70-a928-2932964b017b"


@pytest.fixture(scope="module")
def member(bridge) -> int:
    """The sample member, connected as WHOOP user 10001 with a week of history."""
    emulator = bridge.emulator
    user_id = emulator.add_member(10001)["user_id"]
    emulator.generate_history(user_id, days=7)
    emulator.signed_in_user_id = user_id
    _status, link = _member_api(bridge, "member_api_create_connection.json")
    redirect = _consent(bridge, link["authorization_url"])
    assert _callback(bridge, "oauth_callback_approved.json", redirect["state"], redirect["code"])["statusCode"] == 302
    return user_id


def stored(bridge, record_type: str) -> dict[str, dict]:
    from whoop_bridge.models.member_record import RecordQuery
    from whoop_bridge.store import record_store

    records, _ = record_store.page(RecordQuery(SAMPLE_CLIENT_USER_ID, record_type, limit=100))
    return {record["sleep_id"] if record_type == "recovery" else str(record["id"]): record for record in records}


def test_member_connected_runs_the_backfill_of_every_type_and_the_profile(bridge, member):
    answer = bridge.invoke("MemberSyncFunction", load_event("sqs_member_connected.json"))

    assert answer == {"batchItemFailures": []}
    _status, connection = _member_api(bridge, "member_api_get_connection.json")
    assert {step: progress["state"] for step, progress in connection["backfill"].items()} == dict.fromkeys(
        ("cycle", "sleep", "recovery", "workout", "profile"), "done"
    )
    for record_type in ("cycle", "sleep", "recovery", "workout"):
        assert len(stored(bridge, record_type)) >= 6, record_type


def test_the_sample_webhook_fetches_the_sleep_once_however_often_it_comes(bridge, member):
    sleep = bridge.emulator.add_record(member, "sleep", pending=False)
    event = load_event(
        "sqs_member_sleep_updated.json", **{SAMPLE_SLEEP_ID: sleep["id"], SAMPLE_TRACE_ID: "trace-once-1"}
    )
    fetched = lambda: sum(1 for call in bridge.emulator.member_api_calls() if sleep["id"] in call["path"])  # noqa: E731

    for _ in range(3):
        assert bridge.invoke("MemberSyncFunction", event) == {"batchItemFailures": []}

    assert stored(bridge, "sleep")[sleep["id"]]["score_state"] == "SCORED"
    assert fetched() == 1


def test_a_backfill_job_sample_runs_its_steps_from_its_cursor(bridge, member):
    event = load_event("sqs_member_backfill_job.json")
    job = json.loads(event["Records"][0]["body"])
    assert job["steps"] == ["sleep", "recovery", "workout", "profile"]
    before = len(bridge.emulator.member_api_calls())

    assert bridge.invoke("MemberSyncFunction", event) == {"batchItemFailures": []}

    paths = [call["path"] for call in bridge.emulator.member_api_calls()[before:]]
    # The cursor starts at sleep: no cycle listing, and the profile comes last.
    assert "/developer/v2/cycle" not in paths
    assert paths[0] == "/developer/v2/activity/sleep"
    assert paths[-2:] == ["/developer/v2/user/profile/basic", "/developer/v2/user/measurement/body"]


def test_the_reconcile_schedule_queues_one_job_per_connected_member(bridge, member):
    bridge.queue_messages("MemberJobsQueue")

    answer = bridge.invoke("MemberSyncFunction", load_event("schedule_member_sync_reconcile.json"))

    assert answer == {"jobs_queued": 1}
    (message,) = bridge.queue_messages("MemberJobsQueue")
    job = json.loads(message["Body"])
    assert job["client_user_id"] == SAMPLE_CLIENT_USER_ID and job["cause"] == "reconciliation"
    assert job["steps"] == ["cycle", "sleep", "recovery", "workout"] and job["seen"] == []


def test_a_webhook_whoop_answers_429_for_goes_back_on_its_queue_with_a_delay(bridge, member):
    bridge.queue_messages("MemberEventsQueue")
    sleep = bridge.emulator.add_record(member, "sleep", pending=False)
    event = load_event(
        "sqs_member_sleep_updated.json", **{SAMPLE_SLEEP_ID: sleep["id"], SAMPLE_TRACE_ID: "trace-429-1"}
    )
    bridge.emulator.burst_429(1, reset_seconds=30)

    assert bridge.invoke("MemberSyncFunction", event) == {"batchItemFailures": []}

    assert sleep["id"] not in stored(bridge, "sleep")
    import boto3

    attributes = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=bridge.stack.output("MemberEventsQueue"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    from whoop_bridge.store import budget_store

    budget = budget_store.get(bridge.emulator.member_client_id)
    assert budget.hold_until > budget.calls[budget.head - 1]


def test_a_message_that_is_neither_a_webhook_nor_a_job_is_dropped_as_malformed(bridge, member):
    event = load_event("sqs_member_sleep_updated.json")
    event["Records"][0]["body"] = json.dumps({"hello": "world"})
    assert bridge.invoke("MemberSyncFunction", event) == {"batchItemFailures": []}


# Read lag, unreadable records, reconciliation ------------------------------------------------


@pytest.fixture
def fresh_budget(bridge):
    """No hold left by the 429 test above: the app's budget starts over."""
    from whoop_bridge.store import budget_store

    budget_store.forget(bridge.emulator.member_client_id)
    yield


def _sqs(body: dict) -> dict:
    event = load_event("sqs_member_sleep_updated.json")
    event["Records"][0]["body"] = json.dumps(body)
    return event


def _webhook(user_id: int, event_type: str, record_id: str, trace_id: str) -> dict:
    return _sqs({"user_id": user_id, "id": record_id, "type": event_type, "trace_id": trace_id})


def _wait_for_messages(bridge, logical_id: str, seconds: float = 5.0) -> list[dict]:
    import time

    deadline = time.monotonic() + seconds
    while True:
        messages = bridge.queue_messages(logical_id)
        if messages or time.monotonic() > deadline:
            return [json.loads(message["Body"]) for message in messages]
        time.sleep(0.2)


def test_a_404_right_after_sleep_updated_deletes_nothing_is_asked_again_and_a_later_success_stores_it(
    bridge, member, fresh_budget, monkeypatch
):
    from whoop_bridge.members import webhook_sync

    monkeypatch.setattr(webhook_sync, "READ_LAG_RETRY_SECONDS", 1)
    bridge.queue_messages("MemberEventsQueue")
    emulator = bridge.emulator
    sleep = emulator.add_record(member, "sleep")  # PENDING_SCORE
    assert bridge.invoke("MemberSyncFunction", _webhook(member, "sleep.updated", sleep["id"], "trace-lag-0")) == {
        "batchItemFailures": []
    }
    assert stored(bridge, "sleep")[sleep["id"]]["score_state"] == "PENDING_SCORE"
    scored = emulator.score(member, "sleep", sleep["id"])
    emulator.inject_fault("GET", f"activity/sleep/{sleep['id']}$", status=404, count=1)

    # WHOOP's own webhook, then WHOOP answers 404 for the record (read lag).
    assert bridge.invoke("MemberSyncFunction", _webhook(member, "sleep.updated", sleep["id"], "trace-lag-1")) == {
        "batchItemFailures": []
    }

    assert stored(bridge, "sleep")[sleep["id"]]["score_state"] == "PENDING_SCORE"  # not deleted
    assert not bridge.published("member.record.deleted", record_id=sleep["id"])
    (retry,) = _wait_for_messages(bridge, "MemberEventsQueue")
    assert (
        retry["trace_id"] == "trace-lag-1"
        and retry["id"] == sleep["id"]
        and isinstance(retry["not_found_since"], float)
    )

    # The same trace_id again: not swallowed as a duplicate, and this time WHOOP has it.
    assert bridge.invoke("MemberSyncFunction", _sqs(retry)) == {"batchItemFailures": []}

    assert stored(bridge, "sleep")[sleep["id"]]["updated_at"] == scored["updated_at"]
    assert bridge.queue_messages("MemberEventsQueue") == []


@pytest.mark.parametrize("lagging", ["sleep", "cycle recovery"])
def test_recovery_updated_whose_sleep_or_recovery_whoop_does_not_show_yet_is_asked_again_not_deleted(
    bridge, member, fresh_budget, monkeypatch, lagging
):
    from whoop_bridge.members import webhook_sync

    monkeypatch.setattr(webhook_sync, "READ_LAG_RETRY_SECONDS", 1)
    bridge.queue_messages("MemberEventsQueue")
    emulator = bridge.emulator
    cycle = emulator.add_record(member, "cycle", pending=False)  # one recovery per cycle
    sleep = emulator.add_record(member, "sleep", pending=False, cycle_id=cycle["id"])
    emulator.add_record(member, "recovery", sleep_id=sleep["id"], pending=False)
    route = f"activity/sleep/{sleep['id']}$" if lagging == "sleep" else f"cycle/{sleep['cycle_id']}/recovery$"
    emulator.inject_fault("GET", route, status=404, count=1)

    assert bridge.invoke(
        "MemberSyncFunction", _webhook(member, "recovery.updated", sleep["id"], f"trace-lag-{lagging}")
    ) == {"batchItemFailures": []}

    assert sleep["id"] not in stored(bridge, "recovery")
    assert (sleep["id"] in stored(bridge, "sleep")) == (lagging != "sleep")
    (retry,) = _wait_for_messages(bridge, "MemberEventsQueue")
    assert bridge.invoke("MemberSyncFunction", _sqs(retry)) == {"batchItemFailures": []}
    assert stored(bridge, "recovery")[sleep["id"]]["score_state"] == "SCORED"


def test_a_record_whoop_still_does_not_show_after_the_read_lag_is_declared_missing_and_kept(
    bridge, member, fresh_budget, logs
):
    import time

    from whoop_bridge.members import webhook_sync

    bridge.queue_messages("MemberEventsQueue")
    workout = bridge.emulator.add_record(member, "workout", pending=False)
    assert bridge.invoke(
        "MemberSyncFunction", _webhook(member, "workout.updated", workout["id"], "trace-missing-0")
    ) == {"batchItemFailures": []}
    bridge.emulator.inject_fault("GET", f"activity/workout/{workout['id']}$", status=404, count=1)
    late = {"user_id": member, "id": workout["id"], "type": "workout.updated", "trace_id": "trace-missing-1"}
    late["not_found_since"] = time.time() - webhook_sync.READ_LAG_SECONDS - 1

    assert bridge.invoke("MemberSyncFunction", _sqs(late)) == {"batchItemFailures": []}

    assert workout["id"] in stored(bridge, "workout")  # a 404 alone never deletes
    assert not bridge.published("member.record.deleted", record_id=workout["id"])
    assert bridge.queue_messages("MemberEventsQueue") == []
    assert any(record["message"].startswith("WHOOP record still not found") for record in log_records(logs))


def test_a_webhook_record_the_bridge_cannot_read_is_skipped_counted_and_logged_by_id_and_field(
    bridge, member, fresh_budget, logs, capsys
):
    workout = bridge.emulator.add_record(member, "workout", pending=False)
    broken = {**workout, "start": "the morning after 2026-11-20"}
    bridge.emulator.inject_fault("GET", f"activity/workout/{workout['id']}$", status=200, body=broken, count=1)
    capsys.readouterr()

    assert bridge.invoke(
        "MemberSyncFunction", _webhook(member, "workout.updated", workout["id"], "trace-unreadable")
    ) == {"batchItemFailures": []}

    assert workout["id"] not in stored(bridge, "workout")
    (skipped,) = [record for record in log_records(logs) if record["message"].startswith("WHOOP record skipped")]
    assert skipped["record_id"] == workout["id"] and skipped["fields"] == ["start"]
    assert "the morning after" not in logs.getvalue()
    assert '"RecordsUnreadable"' in capsys.readouterr().out


def test_one_unreadable_record_in_a_reconciliation_page_is_skipped_and_nothing_whoop_still_has_is_deleted(
    bridge, member, fresh_budget, logs, capsys
):
    from datetime import UTC, datetime, timedelta

    bridge.queue_messages("MemberJobsQueue")
    emulator = bridge.emulator
    fresh = [emulator.add_record(member, "workout", pending=False) for _ in range(3)]
    before = stored(bridge, "workout")
    assert before and not {workout["id"] for workout in fresh} & set(before)
    # WHOOP's page lists only the three new workouts, the second with a start that is not a time.
    page = [fresh[0], {**fresh[1], "start": "not a time"}, fresh[2]]
    emulator.inject_fault(
        "GET", r"/v2/activity/workout$", status=200, body={"records": page, "next_token": None}, count=1
    )
    now = datetime.now(UTC)
    job = {
        "job": "sync",
        "client_user_id": SAMPLE_CLIENT_USER_ID,
        "cause": "reconciliation",
        "start": (now - timedelta(days=30)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "end": (now + timedelta(minutes=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "steps": ["workout"],
        "next_token": None,
        "seen": [],
    }
    capsys.readouterr()

    assert bridge.invoke("MemberSyncFunction", _sqs(job)) == {"batchItemFailures": []}

    after = stored(bridge, "workout")
    assert {fresh[0]["id"], fresh[2]["id"]} <= set(after) and fresh[1]["id"] not in after
    # Every stored workout the page left out is still at WHOOP (its own GET says so): kept.
    assert set(before) <= set(after)
    assert not any(bridge.published("member.record.deleted", record_id=workout_id) for workout_id in before)
    assert [
        record["record_id"] for record in log_records(logs) if record["message"].startswith("WHOOP record skipped")
    ] == [fresh[1]["id"]]
    assert '"RecordsUnreadable"' in capsys.readouterr().out


def test_reconciliation_deletes_a_record_only_when_whoops_own_get_answers_404(bridge, member, fresh_budget):
    from datetime import UTC, datetime, timedelta

    emulator = bridge.emulator
    kept, gone = (emulator.add_record(member, "workout", pending=False) for _ in range(2))
    for workout in (kept, gone):
        assert bridge.invoke(
            "MemberSyncFunction", _webhook(member, "workout.updated", workout["id"], f"trace-{workout['id']}")
        ) == {"batchItemFailures": []}
    emulator.delete_record(member, "workout", gone["id"])
    # WHOOP's listing leaves out both (a page it got wrong); only `gone` is really gone.
    emulator.inject_fault(
        "GET", r"/v2/activity/workout$", status=200, body={"records": [], "next_token": None}, count=1
    )
    now = datetime.now(UTC)
    job = {
        "job": "sync",
        "client_user_id": SAMPLE_CLIENT_USER_ID,
        "cause": "reconciliation",
        "start": (now - timedelta(hours=3)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "end": (now + timedelta(minutes=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "steps": ["workout"],
        "next_token": None,
        "seen": [],
    }

    assert bridge.invoke("MemberSyncFunction", _sqs(job)) == {"batchItemFailures": []}

    after = stored(bridge, "workout")
    assert kept["id"] in after and gone["id"] not in after
    assert bridge.published("member.record.deleted", record_id=gone["id"], cause="reconciliation")
    assert not bridge.published("member.record.deleted", record_id=kept["id"])


def test_a_recovery_whose_sleep_started_before_the_window_is_not_deleted_by_reconciliation(
    bridge, member, fresh_budget
):
    """WHOOP windows recoveries by their sleep's start; a recovery created inside the window
    for a sleep that started before it is not in WHOOP's listing, and must not be deleted."""
    from datetime import UTC, datetime, timedelta

    emulator = bridge.emulator
    now = datetime.now(UTC)
    window_start = now - timedelta(days=3)
    # A cycle of its own (WHOOP has one recovery per cycle), starting before the window.
    cycle = emulator.add_record(
        member, "cycle", pending=False, start=window_start - timedelta(hours=3), end=window_start + timedelta(hours=20)
    )
    sleep = emulator.add_record(
        member, "sleep", pending=False, start=window_start - timedelta(hours=1), cycle_id=cycle["id"]
    )
    emulator.add_record(
        member, "recovery", sleep_id=sleep["id"], pending=False, created_at=window_start + timedelta(hours=7)
    )
    assert bridge.invoke(
        "MemberSyncFunction", _webhook(member, "recovery.updated", sleep["id"], "trace-edge-recovery")
    ) == {"batchItemFailures": []}
    assert sleep["id"] in stored(bridge, "recovery")
    from whoop_bridge.store import record_store

    stored_ids = record_store.ids_between(SAMPLE_CLIENT_USER_ID, "recovery", window_start + timedelta(minutes=1), now)
    assert sleep["id"] not in stored_ids  # windowed by its sleep's start, as WHOOP windows it
    job = {
        "job": "sync",
        "client_user_id": SAMPLE_CLIENT_USER_ID,
        "cause": "reconciliation",
        "start": (window_start + timedelta(minutes=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "end": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "steps": ["recovery"],
        "next_token": None,
        "seen": [],
    }

    assert bridge.invoke("MemberSyncFunction", _sqs(job)) == {"batchItemFailures": []}

    assert sleep["id"] in stored(bridge, "recovery")
    assert not bridge.published("member.record.deleted", record_id=sleep["id"])


def test_one_unreadable_record_in_a_backfill_page_is_skipped_and_the_backfill_finishes(
    bridge, member, fresh_budget, logs
):
    from datetime import UTC, datetime, timedelta

    from whoop_bridge.store import sync_progress_store

    emulator = bridge.emulator
    fresh = [emulator.add_record(member, "workout", pending=False) for _ in range(3)]
    page = [fresh[0], {**fresh[1], "sport_id": "running", "start": None}, fresh[2]]
    emulator.inject_fault(
        "GET", r"/v2/activity/workout$", status=200, body={"records": page, "next_token": None}, count=1
    )
    now = datetime.now(UTC)
    job = {
        "job": "sync",
        "client_user_id": SAMPLE_CLIENT_USER_ID,
        "cause": "backfill",
        "start": (now - timedelta(days=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "end": (now + timedelta(minutes=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "steps": ["workout", "profile"],
        "next_token": None,
    }

    assert bridge.invoke("MemberSyncFunction", _sqs(job)) == {"batchItemFailures": []}

    after = stored(bridge, "workout")
    assert {fresh[0]["id"], fresh[2]["id"]} <= set(after) and fresh[1]["id"] not in after
    progress = sync_progress_store.progress(SAMPLE_CLIENT_USER_ID, "backfill")
    assert progress["workout"].state == "done" and progress["profile"].state == "done"
    (skipped,) = [record for record in log_records(logs) if record["message"].startswith("WHOOP record skipped")]
    assert skipped["record_id"] == fresh[1]["id"] and sorted(skipped["fields"]) == ["sport_id", "start"]


def test_a_record_type_whose_scope_was_not_granted_is_skipped_and_the_jobs_other_types_still_run(
    bridge, member, fresh_budget
):
    """OAuthScopes may leave out a type (e.g. no read:cycles): that step is skipped, and the
    sleeps after it in the same backfill are still fetched and stored."""
    from datetime import UTC, datetime, timedelta

    from whoop_bridge.store import connection_store, dynamo, sync_progress_store

    sleep = bridge.emulator.add_record(member, "sleep", pending=False)
    connection = connection_store.get(SAMPLE_CLIENT_USER_ID)
    granted = list(connection.scopes)
    table = dynamo.table("member_table_name")
    table.update_item(
        Key=connection_store.connection_key(SAMPLE_CLIENT_USER_ID),
        UpdateExpression="SET scopes = :scopes",
        ExpressionAttributeValues={":scopes": [scope for scope in granted if scope != "read:cycles"]},
    )
    now = datetime.now(UTC)
    job = {
        "job": "sync",
        "client_user_id": SAMPLE_CLIENT_USER_ID,
        "cause": "backfill",
        "start": (now - timedelta(days=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "end": (now + timedelta(minutes=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "steps": ["cycle", "sleep"],
        "next_token": None,
    }
    try:
        assert bridge.invoke("MemberSyncFunction", _sqs(job)) == {"batchItemFailures": []}
    finally:
        table.update_item(
            Key=connection_store.connection_key(SAMPLE_CLIENT_USER_ID),
            UpdateExpression="SET scopes = :scopes",
            ExpressionAttributeValues={":scopes": granted},
        )

    assert sleep["id"] in stored(bridge, "sleep")
    progress = sync_progress_store.progress(SAMPLE_CLIENT_USER_ID, "backfill")
    assert progress["cycle"].state == "skipped_scope_not_granted"
    assert progress["sleep"].state == "done"


def test_a_member_who_disconnects_during_a_backfill_keeps_no_record_of_the_page_in_flight(
    bridge, fresh_budget, monkeypatch
):
    """DELETE /connections deletes the member's records (DeleteDataOnDisconnect); a backfill
    page fetched just before must not be stored after that deletion and outlive it."""
    from datetime import UTC, datetime, timedelta

    from whoop_bridge.members import disconnect, session
    from whoop_bridge.models.member_record import RecordQuery
    from whoop_bridge.store import record_store

    emulator = bridge.emulator
    signed_in = emulator.signed_in_user_id
    user_id = emulator.add_member(10077)["user_id"]
    emulator.generate_history(user_id, days=3)
    member = "disconnects-mid-backfill"
    emulator.signed_in_user_id = user_id
    try:
        _status, link = _member_api(bridge, "member_api_create_connection.json", **{SAMPLE_CLIENT_USER_ID: member})
        redirect = _consent(bridge, link["authorization_url"])
        assert (
            _callback(bridge, "oauth_callback_approved.json", redirect["state"], redirect["code"])["statusCode"] == 302
        )
    finally:
        emulator.signed_in_user_id = signed_in
    real_page = session.MemberSession.page

    def page_then_disconnect(member_session, *args, **kwargs):
        found = real_page(member_session, *args, **kwargs)
        disconnect.disconnect(member)  # the platform's DELETE arrives while the page is in flight
        return found

    monkeypatch.setattr(session.MemberSession, "page", page_then_disconnect)
    now = datetime.now(UTC)
    job = {
        "job": "sync",
        "client_user_id": member,
        "cause": "backfill",
        "start": (now - timedelta(days=3)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "end": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "steps": ["sleep"],
        "next_token": None,
    }

    assert bridge.invoke("MemberSyncFunction", _sqs(job)) == {"batchItemFailures": []}

    assert record_store.page(RecordQuery(member, "sleep", limit=100)) == ([], None)
