"""The member side on a stack whose member-app secret still holds REPLACE_ME: connect links
and callbacks fail closed with a clear log line; nothing is stored, nothing reaches WHOOP."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from integration_harness import SAMPLE_STATE, Bridge, load_event, log_records, start_bridge

PLACEHOLDERS = {"client_id": "REPLACE_ME", "client_secret": "REPLACE_ME"}


@pytest.fixture(scope="module")
def unconfigured() -> Iterator[Bridge]:
    stack, emulator = start_bridge(member_secrets=PLACEHOLDERS)
    try:
        yield Bridge(stack, emulator)
    finally:
        stack.stop()
        emulator.stop()


def test_connect_link_is_503_and_stores_no_state(unconfigured, logs):
    answer = unconfigured.invoke("MemberApiFunction", load_event("member_api_create_connection.json"))

    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["error"] == "not_configured"
    table = unconfigured.stack.output("MemberTable")
    import boto3

    assert boto3.client("dynamodb", region_name="us-east-1").scan(TableName=table)["Count"] == 0
    refused = [record for record in log_records(logs) if "not configured" in record["message"]]
    assert refused and refused[0]["level"] == "ERROR"
    assert "REPLACE_ME" not in logs.getvalue()


def test_callback_is_a_503_page_and_calls_no_whoop(unconfigured):
    from whoop_bridge.models.oauth_state import OAuthState
    from whoop_bridge.store import oauth_state_store

    # A state a link made before the secret went missing: it is consumed, nothing exchanged.
    link = OAuthState("someone", "https://x/v1/oauth/whoop/callback", expires_at=2_000_000_000)
    oauth_state_store.put(hashlib.sha256(SAMPLE_STATE.encode()).hexdigest(), link)
    answer = unconfigured.invoke("OAuthCallbackFunction", load_event("oauth_callback_approved.json"))

    assert answer["statusCode"] == 503
    assert 'data-status="not_configured"' in answer["body"]
    assert unconfigured.emulator.calls == []


def test_a_signed_data_webhook_is_503_and_nothing_enqueued(unconfigured, logs):
    from test_member_webhook_intake import BODY, signed

    answer = unconfigured.invoke("WebhookIntakeFunction", signed(BODY))

    assert answer["statusCode"] == 503
    assert unconfigured.queue_messages("MemberEventsQueue") == []
    refused = [record for record in log_records(logs) if "not configured" in record["message"]]
    assert refused and refused[0]["level"] == "ERROR"
