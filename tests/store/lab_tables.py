"""A moto LabTable and document bucket for the lab store tests (imported by them; not a test)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
from moto import mock_aws

from whoop_bridge import aws
from whoop_bridge.config import settings


def lab_table(monkeypatch) -> Iterator[object]:
    """Yield the moto LabTable (pk/sk, index gsi1), with LAB_TABLE_NAME set and caches reset."""
    with mock_aws():
        monkeypatch.setenv("LAB_TABLE_NAME", "LabTable")
        monkeypatch.setenv("DOCUMENT_BUCKET_NAME", "documents")
        monkeypatch.setenv("BRIDGE_KEY_ARN", "arn:aws:kms:us-east-1:123456789012:key/test")
        settings.cache_clear()
        aws.reset()
        table = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="LabTable",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield table
        settings.cache_clear()
        aws.reset()
