"""WHOOP webhook signatures (docs/whoop.md#webhook-signatures). Standard library only.

The intake imports this on every cold start, so nothing heavy belongs here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

_HEX_SHA256_LENGTH = 64


def sign_partner(body: bytes, webhook_secret: str) -> str:
    """The `WHOOP-Signed` value for a partner webhook body: lowercase hex HMAC-SHA256."""
    return hmac.new(webhook_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_partner(body: bytes, signature: str | None, webhook_secret: str) -> bool:
    """True when `signature` is the partner signature of `body`.

    A missing, wrong-length or non-hex header is simply False (the caller answers 401);
    the comparison runs in constant time.
    """
    if not signature or len(signature) != _HEX_SHA256_LENGTH:
        return False
    try:
        given = bytes.fromhex(signature)
    except ValueError:
        return False
    expected = hmac.new(webhook_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)


def sign_member(timestamp: str, body: bytes, client_secret: str) -> str:
    """The `X-WHOOP-Signature` value of a data webhook: base64 HMAC-SHA256 of the
    `X-WHOOP-Signature-Timestamp` value followed by the raw body, keyed with the app's
    client secret."""
    digest = hmac.new(client_secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_member(timestamp: str | None, body: bytes, signature: str | None, client_secret: str) -> bool:
    """True when `signature` is the data-webhook signature of `timestamp` + `body`; the
    comparison runs in constant time. A missing or undecodable header is simply False."""
    if not signature or not timestamp:
        return False
    try:
        given = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        return False
    expected = hmac.new(client_secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)
