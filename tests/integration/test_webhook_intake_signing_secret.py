"""webhook_intake needs only the partner webhook signing key, which has its own secret
(PartnerWebhookSecret): with the partner's client credentials still REPLACE_ME it accepts
a signed webhook. The intake's role cannot read PartnerSecret at all
(tests/template/test_least_privilege.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from integration_harness import Bridge, load_event, start_bridge


def _secret(bridge: Bridge, logical_id: str) -> dict[str, str]:
    secret = boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(
        SecretId=bridge.stack.output(logical_id)
    )
    return json.loads(secret["SecretString"])


@pytest.fixture(scope="module")
def credentials_unset() -> Iterator[Bridge]:
    """Only the webhook signing key is set; the partner's client credentials are placeholders."""
    stack, emulator = start_bridge(
        secrets={"client_id": "REPLACE_ME", "client_secret": "REPLACE_ME", "webhook_secret": "local-webhook-secret"}
    )
    try:
        yield Bridge(stack, emulator)
    finally:
        stack.stop()
        emulator.stop()


def test_the_intake_needs_only_the_webhook_secret_not_the_partner_client_credentials(credentials_unset):
    assert _secret(credentials_unset, "PartnerWebhookSecret") == {"webhook_secret": "local-webhook-secret"}
    assert _secret(credentials_unset, "PartnerSecret")["client_secret"] == "REPLACE_ME"
    event = load_event("webhook_partner_requisition_created.json")

    answer = credentials_unset.invoke("WebhookIntakeFunction", event)

    assert answer["statusCode"] == 204
    assert len(credentials_unset.queue_messages()) == 1
