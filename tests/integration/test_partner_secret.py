"""The partner secret (whoop_bridge.secrets) in Secrets Manager on moto: a placeholder, blank
or unreadable secret fails closed without leaking a value."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from whoop_bridge import caches, secrets

FIELDS = ("client_id", "client_secret", "webhook_secret")


@pytest.fixture
def secrets_manager():
    caches.reset_all()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")
    caches.reset_all()


def test_secret_with_a_placeholder_fails_closed_naming_the_field(secrets_manager):
    arn = secrets_manager.create_secret(
        Name="partner",
        SecretString=json.dumps(
            {"client_id": "cid-real-123", "client_secret": "REPLACE_ME", "webhook_secret": "whsec_real_456"}
        ),
    )["ARN"]
    with pytest.raises(secrets.SecretNotConfigured) as caught:
        secrets.read_secret(arn, FIELDS)
    message = str(caught.value)
    assert "client_secret" in message
    assert "client_id" not in message and "webhook_secret" not in message
    for value in ("cid-real-123", "whsec_real_456", "REPLACE_ME"):
        assert value not in message


def test_secret_with_a_blank_or_missing_field_fails_closed(secrets_manager):
    arn = secrets_manager.create_secret(
        Name="partner", SecretString=json.dumps({"client_id": "  ", "webhook_secret": "whsec_real_456"})
    )["ARN"]
    with pytest.raises(secrets.SecretNotConfigured) as caught:
        secrets.read_secret(arn, FIELDS)
    assert "client_id" in str(caught.value) and "client_secret" in str(caught.value)


def test_missing_secret_fails_closed(secrets_manager):
    with pytest.raises(secrets.SecretNotConfigured):
        secrets.read_secret("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf", FIELDS)
    with pytest.raises(secrets.SecretNotConfigured):
        secrets.read_secret("", FIELDS)


def test_secret_that_is_not_json_fails_closed(secrets_manager):
    arn = secrets_manager.create_secret(Name="partner", SecretString="client_secret=abc")["ARN"]
    with pytest.raises(secrets.SecretNotConfigured) as caught:
        secrets.read_secret(arn, FIELDS)
    assert "abc" not in str(caught.value)


def test_good_secret_returns_the_required_fields(secrets_manager):
    arn = secrets_manager.create_secret(
        Name="partner",
        SecretString=json.dumps(
            {
                "client_id": "cid-real-123",
                "client_secret": "cs-real-789",
                "webhook_secret": "whsec_real_456",
                "note": "x",
            }
        ),
    )["ARN"]
    fields = secrets.read_secret(arn, ("client_id", "client_secret"))
    assert fields == {"client_id": "cid-real-123", "client_secret": "cs-real-789"}
