"""A member's WHOOP tokens, sealed with the stack's KMS key.

Both tokens go into one ciphertext, so a pair is stored and replaced as a whole. The
encryption context names the member: a ciphertext copied onto another member's item does
not decrypt, and CloudTrail shows whose tokens each KMS call opened.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from whoop_bridge import aws, caches
from whoop_bridge.config import settings

PURPOSE = "whoop-member-tokens"
# Opened pairs kept per warm container, so a busy member costs one KMS call per rotation.
CACHE_SIZE = 512


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str | None

    def __repr__(self) -> str:  # never print a token, even in a traceback's locals
        return f"TokenPair(refresh_token={'yes' if self.refresh_token else 'no'})"


_opened: OrderedDict[bytes, TokenPair] = OrderedDict()
_lock = threading.Lock()


def _context(client_user_id: str) -> dict[str, str]:
    return {"purpose": PURPOSE, "client_user_id": client_user_id}


def seal(client_user_id: str, pair: TokenPair) -> bytes:
    """The pair as one ciphertext bound to this member."""
    config = settings()
    config.require("bridge_key_arn")
    plaintext = json.dumps({"access_token": pair.access_token, "refresh_token": pair.refresh_token}).encode()
    sealed = aws.client("kms").encrypt(
        KeyId=config.bridge_key_arn, Plaintext=plaintext, EncryptionContext=_context(client_user_id)
    )["CiphertextBlob"]
    _remember(_cache_key(client_user_id, sealed), pair)
    return sealed


def open_pair(client_user_id: str, sealed: bytes) -> TokenPair:
    """The pair sealed for this member (KMS refuses it for any other member)."""
    sealed = bytes(sealed)  # DynamoDB hands back a Binary
    key = _cache_key(client_user_id, sealed)
    with _lock:
        if key in _opened:
            _opened.move_to_end(key)
            return _opened[key]
    plaintext = aws.client("kms").decrypt(CiphertextBlob=sealed, EncryptionContext=_context(client_user_id))[
        "Plaintext"
    ]
    value = json.loads(plaintext)
    pair = TokenPair(value["access_token"], value.get("refresh_token"))
    _remember(key, pair)
    return pair


def _cache_key(client_user_id: str, sealed: bytes) -> bytes:
    return hashlib.sha256(client_user_id.encode() + b"\0" + bytes(sealed)).digest()


def _remember(key: bytes, pair: TokenPair) -> None:
    with _lock:
        _opened[key] = pair
        _opened.move_to_end(key)
        while len(_opened) > CACHE_SIZE:
            _opened.popitem(last=False)


@caches.register
def forget() -> None:
    """Drop every opened pair (tests; a new mock)."""
    with _lock:
        _opened.clear()
