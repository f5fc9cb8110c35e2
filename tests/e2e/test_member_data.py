"""Member data end to end: WHOOP's signed data webhooks, the backfill on connect, the
daily reconciliation and the data API, on the local stack with the WHOOP emulator.

The stack's rate budget and the emulator's rate limit run on one FastClock, so WHOOP's
minute windows pass in a second.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import requests

from local.clock import FastClock
from local.demo import DEMO_RETURN_URL, follow_consent
from local.stack import wait_until
from tests.e2e.conftest import Harness, running_harness

RECORD_TYPES = ("cycle", "sleep", "recovery", "workout")
HISTORY_DAYS = 4
BACKFILL_DAYS = 3
CLOCK_SPEED = 60


@pytest.fixture(scope="module")
def _module_bridge() -> Any:
    parameters = {"BackfillDays": str(BACKFILL_DAYS), "ReconciliationDays": str(BACKFILL_DAYS)}
    yield from running_harness(parameters, FastClock(CLOCK_SPEED), local_retry_seconds=0.2)


# Helpers -------------------------------------------------------------------------------------


def connect(bridge: Harness, client_user_id: str, *, days: int = HISTORY_DAYS) -> int:
    """A WHOOP member with `days` of history connects as `client_user_id`; their WHOOP user id."""
    emulator = bridge.emulator
    user_id = emulator.add_member()["user_id"]
    emulator.generate_history(user_id, days=days)
    with _signed_in_lock:
        emulator.signed_in_user_id = user_id
        link = bridge.platform.connect_link(client_user_id, DEMO_RETURN_URL)
        assert link.status_code == 201, link.text
        hops = follow_consent(link.json()["authorization_url"])
    assert hops[-1].headers["Location"].endswith("status=connected"), hops[-1].headers.get("Location")
    return user_id


_signed_in_lock = threading.Lock()


def stored(bridge: Harness, client_user_id: str, record_type: str, **query: Any) -> list[dict[str, Any]]:
    """Every record the data API holds for the member, following next_token."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 7, **query}
    while True:
        answer = requests.get(f"{bridge.stack.url}/members/{client_user_id}/{record_type}", params=params, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found += body["records"]
        if not body["next_token"]:
            return found
        params["next_token"] = body["next_token"]


def record_key(record_type: str, record: dict[str, Any]) -> str:
    return str(record["sleep_id"] if record_type == "recovery" else record["id"])


def backfill_done(bridge: Harness, client_user_id: str) -> bool:
    backfill = bridge.platform.connection(client_user_id).json().get("backfill") or {}
    return set(backfill) == {*RECORD_TYPES, "profile"} and all(
        progress["state"] == "done" for progress in backfill.values()
    )


def in_window(bridge: Harness, user_id: int, record_type: str, days: int = BACKFILL_DAYS) -> set[str]:
    """The emulator's records a backfill of `days` must bring: as WHOOP windows a collection,
    those that began in the window or were still in progress at its start (a recovery by
    its sleep)."""
    from datetime import UTC, datetime, timedelta

    since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    sleeps = {sleep["id"]: sleep for sleep in bridge.emulator.records(user_id, "sleep")}
    keys = set()
    for record in bridge.emulator.records(user_id, record_type):
        timed = sleeps[record["sleep_id"]] if record_type == "recovery" else record
        if timed["start"] >= since or timed.get("end") is None or timed["end"] > since:
            keys.add(record_key(record_type, record))
    return keys


def webhook(bridge: Harness, user_id: int, event_type: str, record_id: str, trace_id: str | None = None) -> int:
    return bridge.emulator.send_member_webhook(user_id, event_type, record_id, trace_id=trace_id or str(uuid.uuid4()))


def fetches(bridge: Harness, path_part: str) -> int:
    return sum(1 for call in bridge.emulator.member_api_calls() if path_part in call["path"] and call["status"] == 200)


@pytest.fixture(scope="module")
def member(_module_bridge: Harness) -> tuple[str, int]:
    """One connected member, backfilled; shared by the webhook tests."""
    client_user_id = "data-member-1"
    user_id = connect(_module_bridge, client_user_id)
    wait_until(lambda: backfill_done(_module_bridge, client_user_id), timeout=30, what="the backfill")
    return client_user_id, user_id


# Backfill ------------------------------------------------------------------------------------


def test_connecting_backfills_the_window_of_every_type_plus_profile_and_body(bridge, member):
    client_user_id, user_id = member
    for record_type in RECORD_TYPES:
        expected = in_window(bridge, user_id, record_type)
        assert expected, record_type
        assert {
            record_key(record_type, record) for record in stored(bridge, client_user_id, record_type)
        } == expected, record_type
    profile = requests.get(f"{bridge.stack.url}/members/{client_user_id}/profile", timeout=30).json()
    assert profile["user_id"] == user_id
    import boto3

    table = boto3.resource("dynamodb", region_name="us-east-1").Table(bridge.stack.output("MemberTable"))
    body = table.get_item(Key={"pk": f"MEMBER#{client_user_id}", "sk": "BODY_MEASUREMENT"})["Item"]
    assert float(body["height_meter"]) > 1
    # The platform heard of every record, in the documented shape.
    updates = bridge.domain_events.published("member.record.updated", client_user_id=client_user_id, cause="backfill")
    assert {(event["record_type"], event["record_id"]) for event in updates} >= {
        (record_type, key) for record_type in RECORD_TYPES for key in in_window(bridge, user_id, record_type)
    }
    assert all(event["record_version"] == 2 and event["version"] == "1" for event in updates)
    # record_version 2: a cycle carries step_count (null when WHOOP has no step data).
    assert all("step_count" in event["record"] for event in updates if event["record_type"] == "cycle")


def test_the_data_api_answers_newest_first_within_a_window_and_404_for_an_unknown_member(bridge, member):
    client_user_id, _ = member
    sleeps = stored(bridge, client_user_id, "sleep")
    starts = [sleep["start"] for sleep in sleeps]
    assert starts == sorted(starts, reverse=True)
    window = stored(bridge, client_user_id, "sleep", start=starts[-1], end=starts[0])
    assert [sleep["start"] for sleep in window] == starts[1:]  # start inclusive, end exclusive
    assert requests.get(f"{bridge.stack.url}/members/nobody-here/sleep", timeout=30).status_code == 404


# Webhooks ------------------------------------------------------------------------------------


def test_sleep_updated_fetches_and_upserts_the_scored_sleep(bridge, member):
    client_user_id, user_id = member
    pending = next(
        sleep for sleep in bridge.emulator.records(user_id, "sleep") if sleep["score_state"] == "PENDING_SCORE"
    )
    stored_before = {sleep["id"]: sleep for sleep in stored(bridge, client_user_id, "sleep")}
    assert stored_before[pending["id"]]["score_state"] == "PENDING_SCORE"
    scored = bridge.emulator.score(user_id, "sleep", pending["id"])

    assert webhook(bridge, user_id, "sleep.updated", pending["id"]) == 204

    def replaced() -> dict[str, Any] | None:
        now = {sleep["id"]: sleep for sleep in stored(bridge, client_user_id, "sleep")}[pending["id"]]
        return now if now["score_state"] == "SCORED" else None

    now = wait_until(replaced, timeout=20, what="the scored sleep")
    assert now["updated_at"] == scored["updated_at"]
    assert now["score"]["sleep_performance_percentage"] == scored["score"]["sleep_performance_percentage"]
    events = bridge.domain_events.published("member.record.updated", record_id=pending["id"], cause="webhook")
    assert events and events[-1]["record"]["score_state"] == "SCORED"


def test_a_404_right_after_sleep_updated_deletes_nothing_and_the_retry_stores_the_scored_sleep(bridge, member):
    client_user_id, user_id = member
    sleep = bridge.emulator.add_record(user_id, "sleep")  # PENDING_SCORE
    assert webhook(bridge, user_id, "sleep.updated", sleep["id"]) == 204
    wait_until(
        lambda: any(s["id"] == sleep["id"] for s in stored(bridge, client_user_id, "sleep")),
        timeout=20,
        what="the pending sleep",
    )
    scored = bridge.emulator.score(user_id, "sleep", sleep["id"])
    # WHOOP's read lag: its own webhook, then a 404 for the record it names.
    bridge.emulator.inject_fault("GET", f"activity/sleep/{sleep['id']}", status=404, count=1)

    assert webhook(bridge, user_id, "sleep.updated", sleep["id"]) == 204

    def scored_now() -> bool:
        return any(
            s["id"] == sleep["id"] and s["updated_at"] == scored["updated_at"]
            for s in stored(bridge, client_user_id, "sleep")
        )

    wait_until(scored_now, timeout=30, what="the scored sleep after the 404")
    statuses = [
        call["status"]
        for call in bridge.emulator.member_api_calls()
        if call["path"].endswith(f"/activity/sleep/{sleep['id']}")
    ]
    assert statuses[-2:] == [404, 200]
    assert not bridge.domain_events.published("member.record.deleted", record_id=sleep["id"])
    assert "record not readable at WHOOP yet" in bridge.log.getvalue()


def test_recovery_updated_goes_through_the_sleeps_cycle(bridge, member):
    client_user_id, user_id = member
    pending = next(
        recovery
        for recovery in bridge.emulator.records(user_id, "recovery")
        if recovery["score_state"] == "PENDING_SCORE"
    )
    bridge.emulator.score(user_id, "recovery", pending["sleep_id"])
    before = fetches(bridge, f"/v2/cycle/{pending['cycle_id']}/recovery")

    assert webhook(bridge, user_id, "recovery.updated", pending["sleep_id"]) == 204

    wait_until(
        lambda: any(
            r["sleep_id"] == pending["sleep_id"] and r["score_state"] == "SCORED"
            for r in stored(bridge, client_user_id, "recovery")
        ),
        timeout=20,
        what="the scored recovery",
    )
    # WHOOP has no recovery-by-id route: sleep -> cycle_id -> /v2/cycle/{id}/recovery.
    assert fetches(bridge, f"/v2/activity/sleep/{pending['sleep_id']}") >= 1
    assert fetches(bridge, f"/v2/cycle/{pending['cycle_id']}/recovery") == before + 1


def test_workout_updated_stores_a_new_workout(bridge, member):
    client_user_id, user_id = member
    workout = bridge.emulator.add_record(user_id, "workout", pending=False)

    assert webhook(bridge, user_id, "workout.updated", workout["id"]) == 204

    wait_until(
        lambda: any(w["id"] == workout["id"] for w in stored(bridge, client_user_id, "workout")),
        timeout=20,
        what="the new workout",
    )


def test_workout_deleted_removes_it_and_tells_the_platform(bridge, member):
    client_user_id, user_id = member
    workout = bridge.emulator.add_record(user_id, "workout", pending=False)
    webhook(bridge, user_id, "workout.updated", workout["id"])
    wait_until(
        lambda: any(w["id"] == workout["id"] for w in stored(bridge, client_user_id, "workout")),
        timeout=20,
        what="the workout",
    )
    assert bridge.emulator.delete_record(user_id, "workout", workout["id"]) == ["workout.deleted"]

    assert webhook(bridge, user_id, "workout.deleted", workout["id"]) == 204

    wait_until(
        lambda: all(w["id"] != workout["id"] for w in stored(bridge, client_user_id, "workout")),
        timeout=20,
        what="the delete",
    )
    deleted = bridge.domain_events.published("member.record.deleted", record_id=workout["id"])
    assert len(deleted) == 1 and deleted[0]["record_type"] == "workout"


def test_sleep_deleted_and_recovery_deleted_for_one_sleep_remove_both_records(bridge, member):
    client_user_id, user_id = member
    recovery = next(r for r in bridge.emulator.records(user_id, "recovery") if r["score_state"] == "SCORED")
    sleep_id = recovery["sleep_id"]
    assert any(s["id"] == sleep_id for s in stored(bridge, client_user_id, "sleep"))
    assert any(r["sleep_id"] == sleep_id for r in stored(bridge, client_user_id, "recovery"))

    for event_type in bridge.emulator.delete_record(user_id, "sleep", sleep_id):
        assert webhook(bridge, user_id, event_type, sleep_id) == 204

    wait_until(
        lambda: (
            all(s["id"] != sleep_id for s in stored(bridge, client_user_id, "sleep"))
            and all(r["sleep_id"] != sleep_id for r in stored(bridge, client_user_id, "recovery"))
        ),
        timeout=20,
        what="both deletes",
    )
    deleted = bridge.domain_events.published("member.record.deleted", record_id=sleep_id)
    assert sorted(event["record_type"] for event in deleted) == ["recovery", "sleep"]


def test_the_same_trace_id_five_times_is_fetched_once(bridge, member):
    _, user_id = member
    workout = bridge.emulator.add_record(user_id, "workout", pending=False)
    trace_id = str(uuid.uuid4())
    path = f"/v2/activity/workout/{workout['id']}"

    statuses = [webhook(bridge, user_id, "workout.updated", workout["id"], trace_id) for _ in range(5)]

    assert statuses == [204] * 5
    wait_until(lambda: fetches(bridge, path) >= 1, timeout=20, what="the fetch")
    # Let the four duplicates through the queue (they come back after the first finishes).
    wait_until(lambda: _queue_empty(bridge, "MemberEventsQueue"), timeout=20, what="the queue to drain")
    assert fetches(bridge, path) == 1
    assert len(bridge.domain_events.published("member.record.updated", record_id=workout["id"])) == 1


def _queue_empty(bridge: Harness, logical_id: str) -> bool:
    import boto3

    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=bridge.stack.output(logical_id), AttributeNames=names
    )["Attributes"]
    return all(int(attributes[name]) == 0 for name in names)


@pytest.mark.parametrize("forgery", ["signature", "stale"])
def test_a_forged_or_stale_signature_is_401_and_nothing_is_fetched(bridge, member, forgery):
    _, user_id = member
    workout = bridge.emulator.add_record(user_id, "workout", pending=False)
    import time

    options: dict[str, Any] = (
        {"signature": "bm90IHRoZSBzaWduYXR1cmU="}
        if forgery == "signature"
        else {"timestamp_ms": int((time.time() - 3 * 3600) * 1000)}
    )

    status = bridge.emulator.send_member_webhook(user_id, "workout.updated", workout["id"], **options)

    assert status == 401
    time.sleep(0.5)
    assert fetches(bridge, workout["id"]) == 0


def test_a_webhook_for_a_whoop_user_who_is_not_connected_is_accepted_and_not_fetched(bridge, member):
    stranger = bridge.emulator.add_member()["user_id"]
    bridge.emulator.generate_history(stranger, days=1)
    sleep = bridge.emulator.records(stranger, "sleep")[0]

    assert webhook(bridge, stranger, "sleep.updated", sleep["id"]) == 204

    wait_until(
        lambda: '"outcome":"unknown_member"' in bridge.log.getvalue(), timeout=20, what="the unknown-member outcome"
    )
    assert fetches(bridge, sleep["id"]) == 0


def test_a_member_who_must_reauthorize_is_skipped_not_retried(bridge):
    client_user_id = "data-member-reauth"
    user_id = connect(bridge, client_user_id, days=1)
    wait_until(lambda: backfill_done(bridge, client_user_id), timeout=30, what="the backfill")
    bridge.emulator.revoke_member(user_id)  # the member removed the app in WHOOP
    workout = bridge.emulator.add_record(user_id, "workout", pending=False)

    assert webhook(bridge, user_id, "workout.updated", workout["id"]) == 204

    wait_until(
        lambda: bridge.platform.connection(client_user_id).json()["status"] == "reauthorization_required",
        timeout=20,
        what="reauthorization",
    )
    wait_until(lambda: _queue_empty(bridge, "MemberEventsQueue"), timeout=20, what="the queue to drain")
    assert "skipped_reauthorization_required" in bridge.log.getvalue()
    assert fetches(bridge, workout["id"]) == 0


# Rate limits ---------------------------------------------------------------------------------


def test_a_burst_of_429s_is_deferred_until_whoops_reset_and_then_completes(bridge, member):
    client_user_id, user_id = member
    workouts = [bridge.emulator.add_record(user_id, "workout", pending=False) for _ in range(3)]
    bridge.emulator.burst_429(4, reset_seconds=30)
    limited_before = len(bridge.emulator.rate_limited_calls())

    for workout in workouts:
        assert webhook(bridge, user_id, "workout.updated", workout["id"]) == 204

    wanted = {workout["id"] for workout in workouts}
    wait_until(
        lambda: wanted <= {w["id"] for w in stored(bridge, client_user_id, "workout")},
        timeout=30,
        what="every workout after the 429s",
    )
    limited = bridge.emulator.rate_limited_calls()[limited_before:]
    assert len(limited) >= 1
    # After a 429 the whole app waited out WHOOP's reset: no call came sooner.
    first_429 = limited[0]["time"]
    later = [call for call in bridge.emulator.member_api_calls() if call["time"] > first_429 and call["status"] != 429]
    assert later and min(call["time"] for call in later) >= first_429 + 30 - 0.5
    assert "deferred for the rate budget" in bridge.log.getvalue()


# Reconciliation ------------------------------------------------------------------------------


def test_the_daily_reconciliation_repairs_what_webhooks_missed_and_counts_it(bridge, member, capsys):
    client_user_id, user_id = member
    # WHOOP changed three things and every webhook got lost: a new workout, a rescored
    # sleep and a deleted workout.
    added = bridge.emulator.add_record(user_id, "workout", pending=False)
    sleep = max(bridge.emulator.records(user_id, "sleep"), key=lambda s: s["start"])
    rescored = bridge.emulator.score(user_id, "sleep", sleep["id"])
    gone = max(
        (w for w in stored(bridge, client_user_id, "workout") if w["id"] != added["id"]), key=lambda w: w["start"]
    )
    bridge.emulator.delete_record(user_id, "workout", gone["id"])

    bridge.stack.run_schedule("MemberSyncFunction", "Reconcile")

    def repaired() -> bool:
        workouts = {w["id"] for w in stored(bridge, client_user_id, "workout")}
        sleeps = {s["id"]: s for s in stored(bridge, client_user_id, "sleep")}
        return (
            added["id"] in workouts
            and gone["id"] not in workouts
            and sleeps[sleep["id"]]["updated_at"] == rescored["updated_at"]
        )

    wait_until(repaired, timeout=30, what="the repairs")
    assert bridge.domain_events.published("member.record.deleted", record_id=gone["id"], cause="reconciliation")
    # Powertools prints the metric (EMF) on stdout: 3 repairs in all.
    wait_until(lambda: _metric_total(capsys, "ReconciliationRepairs") >= 3, timeout=10, what="the repairs metric")


_printed: list[str] = []


def _metric_total(capsys: pytest.CaptureFixture[str], name: str) -> float:
    import json

    _printed.extend(capsys.readouterr().out.splitlines())
    total = 0.0
    for line in _printed:
        if line.startswith("{") and f'"{name}"' in line:
            total += sum(json.loads(line)[name])
    return total


def test_zz_no_token_secret_signature_or_record_value_in_any_log_line(bridge, member):
    text = bridge.log.getvalue()
    assert "member message processed" in text
    for credential in bridge.emulator.issued_credentials():
        assert credential not in text
    for delivery in bridge.emulator.member_webhook_deliveries:
        assert delivery["signature"] not in text
    _, user_id = member
    # Health values never reach a log line: an exact score value would show it.
    for sleep in bridge.emulator.records(user_id, "sleep"):
        if sleep.get("score"):
            assert f'"respiratory_rate": {sleep["score"]["respiratory_rate"]}' not in text
            assert str(sleep["score"]["stage_summary"]["total_in_bed_time_milli"]) not in text
