"""webhook_intake on a stack whose partner secret still holds the template's REPLACE_ME
placeholders: it fails closed (503, WHOOP retries) with a clear log line, never open.

Its own stack: `LocalStack._secret_value` merges the given values over the template's
placeholder secret, so every field is given as REPLACE_ME here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from integration_harness import Bridge, load_event, log_records, start_bridge

PLACEHOLDERS = {"client_id": "REPLACE_ME", "client_secret": "REPLACE_ME", "webhook_secret": "REPLACE_ME"}


@pytest.fixture(scope="module")
def unconfigured() -> Iterator[Bridge]:
    stack, emulator = start_bridge(secrets=PLACEHOLDERS)
    try:
        yield Bridge(stack, emulator)
    finally:
        stack.stop()
        emulator.stop()


def _secret(bridge: Bridge, logical_id: str) -> dict[str, str]:
    import boto3

    secret = boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(
        SecretId=bridge.stack.output(logical_id)
    )
    return json.loads(secret["SecretString"])


def test_the_stack_really_holds_the_placeholder_secrets(unconfigured):
    assert _secret(unconfigured, "PartnerWebhookSecret") == {"webhook_secret": "REPLACE_ME"}
    assert _secret(unconfigured, "PartnerSecret")["client_secret"] == "REPLACE_ME"


def test_signed_webhook_is_503_with_a_not_configured_log_line_and_nothing_enqueued(unconfigured, logs):
    event = load_event("webhook_partner_requisition_created.json")

    answer = unconfigured.invoke("WebhookIntakeFunction", event)

    assert answer["statusCode"] == 503
    assert json.loads(answer["body"]) == {"error": "not configured"}
    assert unconfigured.queue_messages() == []
    records = log_records(logs)
    refused = [record for record in records if "not configured" in record["message"]]
    assert refused, records
    assert refused[0]["level"] == "ERROR"
    assert "REPLACE_ME" not in logs.getvalue()


def test_missing_signature_is_still_401_not_503(unconfigured):
    event = load_event("webhook_partner_requisition_created.json")
    del event["headers"]["WHOOP-Signed"]

    assert unconfigured.invoke("WebhookIntakeFunction", event)["statusCode"] == 401
    assert unconfigured.queue_messages() == []
