"""The baseline of bench/intake_cold_start.py: a bare handler doing exactly the webhook
intake's work on `POST /webhooks/whoop` with only the standard library and boto3.

It reads the member app's client secret from Secrets Manager (kept for 5 minutes, as the
intake keeps it), checks WHOOP's signature (base64 HMAC-SHA256 of the timestamp and the raw
body) with `hmac`, sends the webhook's fields to SQS and answers 204. No logging, no
validation beyond what the signature and the enqueue need: the least a correct handler does.
"""

import base64
import hashlib
import hmac
import json
import os
import time

import boto3

secrets = boto3.client("secretsmanager")
sqs = boto3.client("sqs")
_secret: tuple[float, bytes] | None = None


def _client_secret() -> bytes:
    global _secret
    if _secret is None or time.monotonic() - _secret[0] > 300:
        value = json.loads(secrets.get_secret_value(SecretId=os.environ["MEMBER_SECRET_ARN"])["SecretString"])
        _secret = (time.monotonic(), value["client_secret"].encode())
    return _secret[1]


def handler(event, context):
    headers = {key.lower(): value for key, value in (event.get("headers") or {}).items()}
    timestamp = headers.get("x-whoop-signature-timestamp", "")
    body = (event.get("body") or "").encode()
    expected = hmac.new(_client_secret(), timestamp.encode() + body, hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64decode(headers.get("x-whoop-signature", "")), expected):
        return {"statusCode": 401, "body": ""}
    message = json.loads(body)
    fields = {
        "user_id": message["user_id"],
        "id": message["id"],
        "type": message["type"],
        "trace_id": message["trace_id"],
    }
    sqs.send_message(QueueUrl=os.environ["MEMBER_EVENTS_QUEUE_URL"], MessageBody=json.dumps(fields))
    return {"statusCode": 204, "body": ""}
