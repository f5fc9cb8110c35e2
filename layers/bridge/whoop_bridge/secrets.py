"""Credentials from Secrets Manager, cached per warm container by Powertools Parameters.

The template creates each secret with REPLACE_ME placeholders. Until an operator puts the
real values, every caller gets `SecretNotConfigured`: the bridge fails closed, never open.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities import parameters

from whoop_bridge import aws, caches

logger = logging.getLogger(__name__)

PLACEHOLDER = "REPLACE_ME"
# Long enough for a warm container to pick up a rotated secret within minutes.
CACHE_SECONDS = 300


class SecretNotConfigured(RuntimeError):
    """The secret is missing, unreadable, or still holds placeholder values."""


@cache
def _provider() -> parameters.SecretsProvider:
    """Powertools' secrets provider over the container's shared client (`aws.client`).

    Powertools' default provider builds a boto3 session of its own: on a cold start that is
    a second load of botocore's endpoint rules and service models, which the webhook intake
    (WHOOP waits for its answer) cannot afford (bench/intake_cold_start.py).
    """
    return parameters.SecretsProvider(boto3_client=aws.client("secretsmanager"))


def read_secret(secret_arn: str, required: tuple[str, ...]) -> dict[str, str]:
    """The secret's JSON fields; each of `required` must be set to a real value."""
    if not secret_arn:
        raise SecretNotConfigured("no secret ARN is configured for this function")
    try:
        value: Any = _provider().get(secret_arn, transform="json", max_age=CACHE_SECONDS)
    except parameters.exceptions.GetParameterError as error:
        # The message names the secret and the AWS error, never its value.
        raise SecretNotConfigured(f"secret {secret_arn} could not be read: {type(error.__cause__).__name__}") from None
    except parameters.exceptions.TransformParameterError:
        raise SecretNotConfigured(f"secret {secret_arn} is not a JSON object") from None
    if not isinstance(value, dict):
        raise SecretNotConfigured(f"secret {secret_arn} is not a JSON object")
    unset = [key for key in required if not isinstance(value.get(key), str) or value[key].strip() in ("", PLACEHOLDER)]
    if unset:
        raise SecretNotConfigured(f"secret {secret_arn} has no real value for: {', '.join(unset)}")
    return {key: value[key] for key in required}


@caches.register
def clear_cache() -> None:
    """Forget cached secrets and the provider (tests, and after an operator rotates a value)."""
    _provider.cache_clear()
    parameters.clear_caches()
