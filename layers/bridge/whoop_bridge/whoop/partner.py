"""WHOOP Healthcare Partner API client (docs/whoop.md#partner-endpoints).

Client-credentials token from the partner secret, cached per warm container until shortly
before `expires_in`; one renewal and one retry when WHOOP answers 401.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from whoop_bridge import caches
from whoop_bridge.whoop import http
from whoop_bridge.whoop.http import ClientOptions, WhoopUnauthorized

logger = logging.getLogger(__name__)

PARTNER_SCOPE = "whoop-partner/token"
# Renew this long before WHOOP's expiry so no call goes out with a token about to lapse.
TOKEN_RENEWAL_MARGIN_SECONDS = 60

Credentials = Callable[[], dict[str, str]]


@dataclass
class _CachedToken:
    value: str
    expires_at: float


# One token per (base URL, client id) per warm container, shared by every client instance.
_tokens: dict[tuple[str, str], _CachedToken] = {}
_tokens_lock = threading.Lock()


class PartnerClient:
    """Every endpoint of the partner API. Methods return WHOOP's JSON as dicts."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        options: ClientOptions = ClientOptions(),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base = base_url.rstrip("/") + "/developer"
        self._credentials = credentials
        self._session = options.open_session()
        self._timeout = options.timeout_seconds
        self._clock = clock

    # Token ---------------------------------------------------------------------------

    def _token(self, *, renew: bool = False) -> str:
        credentials = self._credentials()
        key = (self._base, credentials["client_id"])
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not renew and self._clock() < cached.expires_at:
                return cached.value
            response = http.send(
                self._session,
                "POST",
                f"{self._base}/v2/partner/token",
                what="POST partner token",
                timeout_seconds=self._timeout,
                json={
                    "grant_type": "client_credentials",
                    "client_id": credentials["client_id"],
                    "client_secret": credentials["client_secret"],
                    "scope": PARTNER_SCOPE,
                },
            )
            if response.status_code in (400, 401):
                raise WhoopUnauthorized(
                    "POST partner token: WHOOP refused the partner credentials", response.status_code
                )
            http.raise_for_status(response, "POST partner token")
            body = response.json()
            expires_in = float(body.get("expires_in") or 0)
            margin = min(TOKEN_RENEWAL_MARGIN_SECONDS, expires_in / 2)
            _tokens[key] = _CachedToken(body["access_token"], self._clock() + expires_in - margin)
            logger.info("partner token issued", extra={"expires_in": expires_in})
            return _tokens[key].value

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        # A 401: the token expired early or was revoked: one fresh token, one more try.
        for renew in (False, True):
            response = http.send(
                self._session,
                method,
                f"{self._base}{path}",
                what=what,
                timeout_seconds=self._timeout,
                headers={"Authorization": f"Bearer {self._token(renew=renew)}"},
                **kwargs,
            )
            if response.status_code != 401:
                break
        http.raise_for_status(response, what)
        return response

    # Endpoints (docs/whoop.md#partner-endpoints) ------------------------------------

    def get_requisition(self, requisition_id: str) -> dict[str, Any]:
        """`GET /v2/partner/requisition/{id}`: the LabRequisition."""
        return self._call("GET", f"/v2/partner/requisition/{requisition_id}", "GET requisition").json()

    def update_requisition_status(
        self, requisition_id: str, task_business_status: str, reason: str | None = None
    ) -> None:
        """`PATCH /v2/partner/requisition/{id}/status`: sets every service request of the requisition."""
        self._call(
            "PATCH",
            f"/v2/partner/requisition/{requisition_id}/status",
            "PATCH requisition status",
            json=_status_body(task_business_status, reason),
        )

    def get_service_request(self, service_request_id: str) -> dict[str, Any]:
        """`GET /v2/partner/service-request/{id}`: the ServiceRequest."""
        return self._call("GET", f"/v2/partner/service-request/{service_request_id}", "GET service request").json()

    def update_service_request_status(
        self, service_request_id: str, task_business_status: str, reason: str | None = None
    ) -> dict[str, Any]:
        """`PATCH /v2/partner/service-request/{id}/status`: the updated ServiceRequest."""
        response = self._call(
            "PATCH",
            f"/v2/partner/service-request/{service_request_id}/status",
            "PATCH service request status",
            json=_status_body(task_business_status, reason),
        )
        return response.json() if response.content else {}

    def submit_diagnostic_report(self, service_request_id: str, report: dict[str, Any]) -> None:
        """`POST /v2/partner/service-request/{id}/results`: 201, and WHOOP returns no report id."""
        self._call("POST", f"/v2/partner/service-request/{service_request_id}/results", "POST results", json=report)

    def add_test_data(self, appointment_type: str | None = None) -> str:
        """`POST /v2/partner/development/add-test-data`: a test member and a requisition with a
        booked appointment (not in production: `WhoopNotFound`); returns the requisition id.

        `appointment_type` is WHOOP's `appointmentType` (`IN_PERSON`, WHOOP's default,
        `MOBILE` or `VIRTUAL`). WHOOP answers 200 `{"requisition_id": uuid}` and sends no
        webhook for it: fetch the requisition by that id.
        """
        params = {"appointmentType": appointment_type} if appointment_type else None
        response = self._call("POST", "/v2/partner/development/add-test-data", "POST add-test-data", params=params)
        return str(response.json()["requisition_id"])

    def get_document(self, document_id: str) -> dict[str, Any]:
        """`GET /v2/partner/document/{id}`: the PartnerDocument `{id, document_type, url?,
        created_at, updated_at, bundle_id?}`. `WhoopNotFound` when it does not exist or this
        partner does not own it (WHOOP does not say which)."""
        # The id comes from a `based_on` reference: quoted, so it can only name a document.
        return self._call("GET", f"/v2/partner/document/{quote(document_id, safe='')}", "GET document").json()

    def get_document_content(self, document_id: str) -> bytes:
        """`GET /v2/partner/document/{id}/content`: the document's raw bytes. A document that
        is only a link (its `url`) has no content: WHOOP answers 404 (`WhoopNotFound`)."""
        return self._call(
            "GET", f"/v2/partner/document/{quote(document_id, safe='')}/content", "GET document content"
        ).content

    def get(self, path: str, what: str) -> dict[str, Any]:
        """A GET under the partner API for endpoints WHOOP has not published yet (reviews)."""
        return self._call("GET", path, what).json()


def _status_body(task_business_status: str, reason: str | None) -> dict[str, str]:
    body = {"task_business_status": task_business_status}
    if reason:
        body["reason"] = reason
    return body


@caches.register
def forget_tokens() -> None:
    """Drop every cached token (tests; after a credential rotation)."""
    with _tokens_lock:
        _tokens.clear()


def partner_client(*, timeout_seconds: float | None = None, max_retries: int | None = None) -> PartnerClient:
    """The client for this deployment: base URL and retry settings from the environment,
    credentials from the partner secret (read on the first call, then cached). A caller
    that must answer within a bound (an API route) may lower the timeout and retries."""
    from whoop_bridge.config import settings
    from whoop_bridge.secrets import read_secret

    config = settings()
    config.require("partner_secret_arn")
    return PartnerClient(
        config.whoop_api_base_url,
        lambda: read_secret(config.partner_secret_arn, ("client_id", "client_secret")),
        ClientOptions(
            timeout_seconds=config.whoop_timeout_seconds
            if timeout_seconds is None
            else min(timeout_seconds, config.whoop_timeout_seconds),
            max_retries=config.whoop_max_retries if max_retries is None else min(max_retries, config.whoop_max_retries),
            backoff_seconds=config.whoop_backoff_seconds,
        ),
    )
