"""webhook_intake: POST /webhooks/whoop (WHOOP's data webhooks) through its real handler.

WHOOP signs base64(HMAC-SHA256(X-WHOOP-Signature-Timestamp + raw body, client secret))
(docs/whoop.md#webhook-signatures). What WHOOP notices is the status; what the operator notices is what
lands on MemberEventsQueue (no poller here: the queue is read directly).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from integration_harness import load_event, log_records
from whoop_bridge import webhooks

CLIENT_SECRET = "local-member-secret"
SAMPLE = "webhook_whoop_sleep_updated.json"
BODY = {
    "user_id": 10001,
    "id": "5f0c8f2e-9d4b-4b7a-8e21-3c6d9a1b7e40",
    "type": "sleep.updated",
    "trace_id": "d3709ee7-104e-4f70-a928-2932964b017b",
}


def signed(body: dict | str, *, timestamp_ms: int | None = None, secret: str = CLIENT_SECRET) -> dict:
    """The sample webhook carrying `body`, signed now as WHOOP signs it."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    signature = base64.b64encode(
        hmac.new(secret.encode(), (timestamp + text).encode(), hashlib.sha256).digest()
    ).decode()
    event = load_event(SAMPLE)
    event["body"] = text
    for name, value in (("X-WHOOP-Signature", signature), ("X-WHOOP-Signature-Timestamp", timestamp)):
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return event


def enqueued(bridge) -> list[dict]:
    return [json.loads(message["Body"]) for message in bridge.queue_messages("MemberEventsQueue")]


@pytest.fixture(autouse=True)
def empty_queue(bridge):
    bridge.queue_messages("MemberEventsQueue")
    yield


def test_the_sample_is_signed_with_the_emulators_member_client_secret(bridge):
    assert bridge.emulator.member_client_secret == CLIENT_SECRET
    event = load_event(SAMPLE)
    timestamp = event["headers"]["X-WHOOP-Signature-Timestamp"]
    expected = base64.b64encode(
        hmac.new(CLIENT_SECRET.encode(), (timestamp + event["body"]).encode(), hashlib.sha256).digest()
    ).decode()
    assert event["headers"]["X-WHOOP-Signature"] == expected


@pytest.mark.parametrize(
    "event_type",
    ["sleep.updated", "sleep.deleted", "recovery.updated", "recovery.deleted", "workout.updated", "workout.deleted"],
)
def test_each_signed_data_webhook_is_204_and_enqueued_as_sent(bridge, logs, event_type):
    body = {**BODY, "type": event_type}
    event = signed(body)

    answer = bridge.invoke("WebhookIntakeFunction", event)

    assert answer == {"statusCode": 204, "body": ""}
    assert enqueued(bridge) == [body]
    # Neither the signature nor the raw body reaches a log line.
    assert event["headers"]["X-WHOOP-Signature"] not in logs.getvalue()
    assert any(record["message"] == "data webhook enqueued" for record in log_records(logs))


def test_the_committed_sample_is_stale_and_refused(bridge):
    # Signed on 2026-11-22 at 02:18 UTC: far outside WHOOP's two-hour retry schedule by now.
    answer = bridge.invoke("WebhookIntakeFunction", load_event(SAMPLE))
    assert answer["statusCode"] == 401
    assert enqueued(bridge) == []


@pytest.mark.parametrize("age_seconds", [30 * 60, 119 * 60, webhooks.WHOOP_RETRY_SCHEDULE_SECONDS])
def test_a_genuine_webhook_retried_within_whoops_two_hour_schedule_is_accepted_and_logged_late(
    bridge, logs, age_seconds
):
    assert webhooks.WHOOP_RETRY_SCHEDULE_SECONDS == 2 * 3600
    body = {**BODY, "trace_id": f"late-{age_seconds}"}

    answer = bridge.invoke("WebhookIntakeFunction", signed(body, timestamp_ms=int((time.time() - age_seconds) * 1000)))

    assert answer["statusCode"] == 204
    assert enqueued(bridge) == [body]
    late = [record for record in log_records(logs) if record["message"].startswith("data webhook is late")]
    assert len(late) == 1 and late[0]["age_seconds"] >= age_seconds


def test_a_late_retry_of_a_processed_webhook_changes_nothing(bridge):
    # The intake takes it again; member_sync runs a trace_id once (its own tests prove it),
    # so the replay is the same message, not a new one.
    first = signed(BODY)
    late = signed(BODY, timestamp_ms=int((time.time() - 90 * 60) * 1000))
    assert bridge.invoke("WebhookIntakeFunction", first)["statusCode"] == 204
    assert bridge.invoke("WebhookIntakeFunction", late)["statusCode"] == 204
    assert [message["trace_id"] for message in enqueued(bridge)] == [BODY["trace_id"]] * 2


@pytest.mark.parametrize("skew_seconds", [301, 3600, -(webhooks.MAX_SIGNATURE_AGE_SECONDS + 1), -3 * 86400])
def test_a_genuine_timestamp_far_ahead_or_older_than_the_retry_schedule_is_401_and_logged_as_genuine(
    bridge, logs, skew_seconds
):
    answer = bridge.invoke("WebhookIntakeFunction", signed(BODY, timestamp_ms=int((time.time() + skew_seconds) * 1000)))
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"]) == {"error": "stale signature"}
    assert enqueued(bridge) == []
    assert any("genuine, but signed outside" in record["message"] for record in log_records(logs))


def test_an_old_timestamp_with_a_forged_signature_is_refused_as_a_bad_signature(bridge):
    # The signature is checked first: a forgery is never reported as merely stale.
    event = signed(BODY, timestamp_ms=int((time.time() - 3600) * 1000), secret="another-secret")
    answer = bridge.invoke("WebhookIntakeFunction", event)
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"]) == {"error": "bad signature"}
    assert enqueued(bridge) == []


def test_a_timestamp_four_minutes_old_is_accepted(bridge):
    answer = bridge.invoke("WebhookIntakeFunction", signed(BODY, timestamp_ms=int((time.time() - 240) * 1000)))
    assert answer["statusCode"] == 204
    assert len(enqueued(bridge)) == 1


def test_a_forged_signature_is_401(bridge):
    event = load_event("webhook_whoop_bad_signature.json")
    fresh = str(int(time.time() * 1000))
    event["headers"]["X-WHOOP-Signature-Timestamp"] = fresh
    answer = bridge.invoke("WebhookIntakeFunction", event)
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"]) == {"error": "bad signature"}
    assert enqueued(bridge) == []


def test_a_signature_with_another_secret_or_over_another_body_is_401(bridge):
    assert bridge.invoke("WebhookIntakeFunction", signed(BODY, secret="another-secret"))["statusCode"] == 401
    tampered = signed(BODY)
    tampered["body"] = tampered["body"].replace("10001", "10002")
    assert bridge.invoke("WebhookIntakeFunction", tampered)["statusCode"] == 401
    # The timestamp is signed too: moving it breaks the signature.
    moved = signed(BODY)
    moved["headers"]["X-WHOOP-Signature-Timestamp"] = str(int(moved["headers"]["X-WHOOP-Signature-Timestamp"]) - 1000)
    assert bridge.invoke("WebhookIntakeFunction", moved)["statusCode"] == 401
    assert enqueued(bridge) == []


@pytest.mark.parametrize("missing", ["X-WHOOP-Signature", "X-WHOOP-Signature-Timestamp"])
def test_a_missing_signature_header_is_401(bridge, missing):
    event = signed(BODY)
    del event["headers"][missing]
    assert bridge.invoke("WebhookIntakeFunction", event)["statusCode"] == 401
    assert enqueued(bridge) == []


def test_an_unknown_type_is_204_and_not_enqueued(bridge):
    answer = bridge.invoke("WebhookIntakeFunction", signed({**BODY, "type": "cycle.updated"}))
    assert answer["statusCode"] == 204
    assert enqueued(bridge) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        json.dumps({**BODY, "user_id": "10001"}),
        json.dumps({k: v for k, v in BODY.items() if k != "trace_id"}),
        # A v1 webhook names the record by integer: the app must send v2 webhooks.
        json.dumps({**BODY, "id": 10235}),
        json.dumps({**BODY, "id": "../../v2/user/access"}),
    ],
)
def test_a_correctly_signed_body_that_is_not_a_v2_data_webhook_is_400(bridge, body):
    answer = bridge.invoke("WebhookIntakeFunction", signed(body))
    assert answer["statusCode"] == 400
    assert enqueued(bridge) == []


def test_a_data_webhook_refused_for_a_bad_signature_is_counted_for_the_alarm(bridge, capsys):
    capsys.readouterr()
    assert bridge.invoke("WebhookIntakeFunction", signed(BODY, secret="rotated"))["statusCode"] == 401
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"WebhookSignatureRefused"' in line]
    assert [(line["WebhookSignatureRefused"], line["service"], line["webhook"]) for line in lines] == [
        ([1.0], "webhook_intake", "member")
    ]
