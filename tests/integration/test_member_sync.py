"""member_sync through its real handler with the sample events: a data webhook, the
member.connected event that starts a backfill, a backfill job, the daily reconciliation,
and work the rate budget defers. The harness runs no queue poller: the tests read the
queues themselves."""

from __future__ import annotations

import json

import pytest
from test_member_api import _callback, _consent, _member_api

from integration_harness import SAMPLE_CLIENT_USER_ID, load_event

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
    from whoop_bridge.store import record_store

    records, _ = record_store.page(SAMPLE_CLIENT_USER_ID, record_type, limit=100)
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
    event = load_event("sqs_member_sleep_updated.json", **{SAMPLE_SLEEP_ID: sleep["id"], SAMPLE_TRACE_ID: "trace-once-1"})
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
    event = load_event("sqs_member_sleep_updated.json", **{SAMPLE_SLEEP_ID: sleep["id"], SAMPLE_TRACE_ID: "trace-429-1"})
    bridge.emulator.burst_429(1, reset_seconds=30)

    assert bridge.invoke("MemberSyncFunction", event) == {"batchItemFailures": []}

    assert sleep["id"] not in stored(bridge, "sleep")
    import boto3

    attributes = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=bridge.stack.output("MemberEventsQueue"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    from whoop_bridge.store import member_store

    budget = member_store.get_budget(bridge.emulator.member_client_id)
    assert budget["hold_until"] > budget["calls"][budget["head"] - 1]


def test_a_message_that_is_neither_a_webhook_nor_a_job_is_dropped_as_malformed(bridge, member):
    event = load_event("sqs_member_sleep_updated.json")
    event["Records"][0]["body"] = json.dumps({"hello": "world"})
    assert bridge.invoke("MemberSyncFunction", event) == {"batchItemFailures": []}
