"""Webhooks WHOOP sends: partner webhooks signed with `WHOOP-Signed` (hex HMAC-SHA256 of the
body, keyed with the partner's webhook secret) and the standard API's data webhooks signed
with `X-WHOOP-Signature` (base64 HMAC-SHA256 of timestamp + body, keyed with the member
client secret) and `X-WHOOP-Signature-Timestamp` (ms since the epoch, real time)."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import http.client
import json
import time
import urllib.parse
import uuid
from typing import Any

from local.emulator.core import Core

# Data webhooks: only these six (docs/whoop.md#data-webhooks); a create arrives as `updated`, cycles never appear.
MEMBER_WEBHOOK_TYPES = frozenset(
    f"{kind}.{action}" for kind in ("recovery", "sleep", "workout") for action in ("updated", "deleted")
)


def partner_signature(secret: str, body: bytes) -> str:
    """`WHOOP-Signed`: hex HMAC-SHA256 of the body."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def member_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`X-WHOOP-Signature`: base64 HMAC-SHA256 of the timestamp followed by the body."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _compact(payload: dict[str, Any]) -> bytes:
    # Compact JSON; these exact bytes are what gets signed and sent.
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def _target(url: str | None, default: str | None, setting: str) -> tuple[str, urllib.parse.SplitResult]:
    """The webhook URL to use and its parts; ValueError when there is none or it is not http(s)."""
    target = url or default
    if not target:
        raise ValueError(f"no webhook URL: pass url= or set {setting}")
    parts = urllib.parse.urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL must be http(s): {target!r}")
    return target, parts


def _post(parts: urllib.parse.SplitResult, body: bytes, headers: dict[str, str]) -> tuple[int, str | None]:
    """POST `body` as JSON; (HTTP status, None), or (0, the error) when unreachable."""
    # http.client rather than urllib.request: urllib rewrites header names to
    # "Whoop-Signed", and receivers that keep the sender's casing (API Gateway REST
    # events) must see the documented "WHOOP-Signed". No redirects are followed:
    # a 3xx is reported as the delivery status.
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=10)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        response.read()
        return response.status, None
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


class Webhooks:
    """Sends webhooks to `partner_webhook_url` / `member_webhook_url` (or a `url` given per
    call) and keeps what was sent."""

    def __init__(
        self, core: Core, *, partner_webhook_url: str | None = None, member_webhook_url: str | None = None
    ) -> None:
        self._core = core
        self.partner_webhook_url = partner_webhook_url
        self.member_webhook_url = member_webhook_url
        self._deliveries: list[dict[str, Any]] = []
        self._member_deliveries: list[dict[str, Any]] = []

    @property
    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Webhooks sent: `{"time", "url", "event_type", "resource_id", "signature", "status", "error"}`."""
        with self._core.lock:
            return copy.deepcopy(self._deliveries)

    @property
    def member_webhook_deliveries(self) -> list[dict[str, Any]]:
        """Data webhooks sent: `{"time", "url", "user_id", "type", "id", "trace_id", "timestamp", "signature", "status", "error"}`."""
        with self._core.lock:
            return copy.deepcopy(self._member_deliveries)

    def send_partner_webhook(
        self,
        event_type: str,
        resource_id: str,
        *,
        url: str | None = None,
        signature: str | None = None,
    ) -> int:
        """POST a partner webhook signed with `WHOOP-Signed`; returns the HTTP status (0 if unreachable).

        `signature` replaces the header value, to send forged or malformed signatures.
        """
        target, parts = _target(url, self.partner_webhook_url, "partner_webhook_url")
        body = _compact({"event_type": event_type, "resource_id": resource_id})
        header = partner_signature(self._core.webhook_secret, body) if signature is None else signature
        status, error = _post(parts, body, {"WHOOP-Signed": header})
        delivery = {"event_type": event_type, "resource_id": resource_id, "signature": header}
        self._keep(self._deliveries, target, delivery, status, error)
        return status

    def send_member_webhook(
        self,
        user_id: int,
        event_type: str,
        record_id: str | uuid.UUID,
        *,
        trace_id: str | None = None,
        url: str | None = None,
        signature: str | None = None,
        timestamp_ms: int | None = None,
    ) -> int:
        """POST a signed data webhook; returns the HTTP status (0 if unreachable).

        The body is `{"user_id", "id", "type", "trace_id"}`; for `recovery.*` the id is the
        recovery's sleep id (cycle ids never appear in webhooks). `X-WHOOP-Signature` is
        base64(HMAC-SHA256(member_client_secret, timestamp + body)) and
        `X-WHOOP-Signature-Timestamp` real milliseconds since the epoch unless `timestamp_ms`
        is given; `signature` replaces the header value, to send forged signatures.
        """
        if event_type not in MEMBER_WEBHOOK_TYPES:
            raise ValueError(f"event_type must be one of {', '.join(sorted(MEMBER_WEBHOOK_TYPES))}")
        if isinstance(user_id, bool) or not isinstance(user_id, int):
            raise ValueError("user_id must be an integer")
        if not isinstance(record_id, (str, uuid.UUID)):
            raise ValueError("record_id must be a uuid string (for recovery.* the sleep id)")
        target, parts = _target(url, self.member_webhook_url, "member_webhook_url")
        trace = trace_id if trace_id is not None else str(uuid.uuid4())
        body = _compact({"user_id": user_id, "id": str(record_id), "type": event_type, "trace_id": trace})
        timestamp = str(round(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        computed = member_signature(self._core.member_client_secret, timestamp, body)
        header = computed if signature is None else signature
        status, error = _post(parts, body, {"X-WHOOP-Signature": header, "X-WHOOP-Signature-Timestamp": timestamp})
        delivery = {
            "user_id": user_id,
            "type": event_type,
            "id": str(record_id),
            "trace_id": trace,
            "timestamp": timestamp,
            "signature": header,
        }
        self._keep(self._member_deliveries, target, delivery, status, error)
        return status

    def _keep(
        self, deliveries: list[dict[str, Any]], url: str, delivery: dict[str, Any], status: int, error: str | None
    ) -> None:
        with self._core.lock:
            deliveries.append({"time": time.time(), "url": url, **delivery, "status": status, "error": error})
