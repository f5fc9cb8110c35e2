"""boto3 clients and resources, made once per container (connection reuse across invocations)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from whoop_bridge import caches

# Fail fast and let the SDK's standard mode retry throttling and transient errors.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    """A shared boto3 client for `service`."""
    return boto3.client(service, config=_CONFIG)


@cache
def s3() -> Any:
    """The shared S3 client, signing with SigV4: presigned links to KMS-encrypted objects need it."""
    return boto3.client("s3", config=_CONFIG.merge(Config(signature_version="s3v4")))


@cache
def dynamodb() -> Any:
    """The shared DynamoDB service resource (deserialises items for us)."""
    return boto3.resource("dynamodb", config=_CONFIG)


@cache
def table(name: str) -> Any:
    """A shared DynamoDB Table resource."""
    return dynamodb().Table(name)


@caches.register
def reset() -> None:
    """Forget every client (tests that start a new AWS mock)."""
    client.cache_clear()
    s3.cache_clear()
    dynamodb.cache_clear()
    table.cache_clear()
