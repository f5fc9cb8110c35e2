"""WHOOP's standard developer API for members (docs/whoop.md#data-api): OAuth and member calls.

The OAuth endpoints take form-encoded bodies with the app's credentials; member endpoints
take the member's bearer token. Errors name the call and WHOOP's short error code, never a
token, a code or a body.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from whoop_bridge.whoop import http
from whoop_bridge.whoop.budget import (
    BRIEF_WAIT_SECONDS,
    DEFAULT_RESET_SECONDS,
    INTERACTIVE,
    BudgetExhausted,
    RateBudget,
)
from whoop_bridge.whoop.http import (
    TRANSIENT_STATUSES,
    ClientOptions,
    WhoopRequestRejected,
    WhoopTransientError,
    WhoopUnauthorized,
)

logger = logging.getLogger(__name__)

AUTHORIZE_PATH = "/oauth/oauth2/auth"
TOKEN_PATH = "/oauth/oauth2/token"
# WHOOP's collections return at most 25 records a page (docs/whoop.md#collections).
PAGE_LIMIT = 25
# The record types' paths: by id, and as a collection. Recovery has no by-id route; it is
# read by its cycle.
RECORD_PATHS = {"cycle": "/v2/cycle", "sleep": "/v2/activity/sleep", "workout": "/v2/activity/workout"}
COLLECTION_PATHS = {**RECORD_PATHS, "recovery": "/v2/recovery"}
# WHOOP documents the phrase, not a code: an unapproved app "has reached its user limit".
USER_LIMIT_PHRASE = "user limit"


class InvalidGrant(WhoopRequestRejected):
    """`400 invalid_grant`: the code or refresh token is used, expired or revoked."""


class UserLimitReached(WhoopRequestRejected):
    """WHOOP refused a new member: the app is unapproved and at its member cap.
    `error_code` is WHOOP's OAuth `error` word as sent (None without one), never its text."""

    def __init__(self, message: str, status: int | None = None, error_code: str | None = None) -> None:
        super().__init__(message, status)
        self.error_code = error_code


@dataclass(frozen=True)
class TokenGrant:
    """What WHOOP's token endpoint answers. `refresh_token` is None without `offline`."""

    access_token: str
    expires_in: int
    refresh_token: str | None
    scopes: tuple[str, ...]

    def __repr__(self) -> str:  # never print a token, even in a traceback's locals
        return f"TokenGrant(expires_in={self.expires_in}, refresh_token={'yes' if self.refresh_token else 'no'}, scopes={self.scopes})"


def is_user_limit(description: str | None) -> bool:
    """Whether WHOOP's error description is the unapproved app's member cap."""
    return USER_LIMIT_PHRASE in (description or "").lower()


class MemberApi:
    """OAuth (authorize link, code exchange, refresh) and the member endpoints."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        options: ClientOptions = ClientOptions(),
        *,
        budget: RateBudget | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = options.timeout_seconds
        self._max_retries = options.max_retries
        self._backoff = options.backoff_seconds
        self._budget = budget
        # Member calls retry 429 and 5xx here, not in urllib3: each attempt is a request
        # WHOOP counts, so each takes its call from the rate budget.
        self._session = options.open_session(retry_statuses=False)
        # A refresh whose answer was lost may still have rotated the pair at WHOOP; sending
        # it again could only fail, so token calls are not retried after a read timeout.
        self._token_session = options.open_session(retry_reads=False)

    def authorization_url(self, redirect_uri: str, scopes: tuple[str, ...], state: str) -> str:
        """The link that sends a member to WHOOP's consent page."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scopes),
                "state": state,
            }
        )
        return f"{self._base}{AUTHORIZE_PATH}?{query}"

    # Tokens -----------------------------------------------------------------------------

    def exchange_code(self, code: str, redirect_uri: str) -> TokenGrant:
        """`authorization_code` grant: the member's first token pair."""
        return self._token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            "POST token (authorization_code)",
        )

    def refresh(self, refresh_token: str) -> TokenGrant:
        """`refresh_token` grant. WHOOP rotates: the old pair is dead once this succeeds."""
        return self._token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": "offline"},
            "POST token (refresh_token)",
        )

    def _token(self, form: dict[str, str], what: str) -> TokenGrant:
        response = http.send(
            self._token_session,
            "POST",
            f"{self._base}{TOKEN_PATH}",
            what=what,
            timeout_seconds=self._timeout,
            data={**form, "client_id": self._client_id, "client_secret": self._client_secret},
            headers={"Accept": "application/json"},
        )
        if response.status_code >= 400:
            error, description = _oauth_error(response)
            if is_user_limit(description):
                raise UserLimitReached(f"{what}: the WHOOP app has reached its user limit", response.status_code, error)
            if error == "invalid_grant":
                raise InvalidGrant(f"{what}: invalid_grant", response.status_code)
            if error == "invalid_client" or response.status_code == 401:
                raise WhoopUnauthorized(f"{what}: WHOOP refused the app's client credentials", response.status_code)
            http.raise_for_status(response, what)
        try:
            body = response.json()
            access_token = body["access_token"]
            if not isinstance(access_token, str) or not access_token:
                raise TypeError("access_token is not text")
            expires_in = int(body.get("expires_in") or 0)
        except (ValueError, KeyError, TypeError, AttributeError):
            # A success that holds no token (e.g. a proxy's page): a failed call, never its body.
            raise WhoopTransientError(
                f"{what}: HTTP {response.status_code} without a token", response.status_code
            ) from None
        return TokenGrant(
            access_token=access_token,
            expires_in=expires_in,
            refresh_token=body.get("refresh_token") or None,
            scopes=tuple((body.get("scope") or "").split()),
        )

    # Member endpoints -------------------------------------------------------------------

    def basic_profile(self, access_token: str, *, priority: str = INTERACTIVE) -> dict[str, Any]:
        """`GET /v2/user/profile/basic`: `user_id`, `email`, `first_name`, `last_name`."""
        return self._member("GET", "/v2/user/profile/basic", access_token, "GET profile", priority=priority).json()

    def body_measurement(self, access_token: str, *, priority: str) -> dict[str, Any]:
        """`GET /v2/user/measurement/body`: `height_meter`, `weight_kilogram`, `max_heart_rate`."""
        return self._member(
            "GET", "/v2/user/measurement/body", access_token, "GET body measurement", priority=priority
        ).json()

    def record(self, access_token: str, record_type: str, record_id: str, *, priority: str) -> dict[str, Any]:
        """One cycle, sleep or workout by id; `WhoopNotFound` when WHOOP has none."""
        path = f"{RECORD_PATHS[record_type]}/{record_id}"
        return self._member("GET", path, access_token, f"GET {record_type}", priority=priority).json()

    def cycle_recovery(self, access_token: str, cycle_id: int, *, priority: str) -> dict[str, Any]:
        """`GET /v2/cycle/{cycleId}/recovery`: the only way to read one recovery."""
        return self._member(
            "GET", f"/v2/cycle/{int(cycle_id)}/recovery", access_token, "GET cycle recovery", priority=priority
        ).json()

    def page(
        self, access_token: str, record_type: str, *, start: str, end: str, next_token: str | None, priority: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page (25 records, newest first) of a collection in the window; the token of
        the next page, or None after the last."""
        params = {"limit": PAGE_LIMIT, "start": start, "end": end}
        if next_token:
            params["nextToken"] = next_token
        body = self._member(
            "GET",
            COLLECTION_PATHS[record_type],
            access_token,
            f"GET {record_type} collection",
            priority=priority,
            params=params,
        ).json()
        return list(body.get("records") or []), body.get("next_token") or None

    def revoke(self, access_token: str) -> bool:
        """`DELETE /v2/user/access`: True when revoked now, False when it already was (401/404)."""
        try:
            self._member("DELETE", "/v2/user/access", access_token, "DELETE user access", priority=INTERACTIVE)
        except (WhoopUnauthorized, http.WhoopNotFound) as error:
            if error.status in (401, 404):
                return False
            raise
        return True

    def _member(
        self,
        method: str,
        path: str,
        access_token: str,
        what: str,
        *,
        priority: str,
        params: dict[str, Any] | None = None,
    ) -> requests.Response:
        """One member call, each attempt taken from the app's rate budget. A 429 holds the
        whole app until WHOOP's reset and defers this work (`BudgetExhausted`)."""
        for attempt in range(self._max_retries + 1):
            if self._budget is not None:
                self._budget.acquire(priority, max_wait=BRIEF_WAIT_SECONDS[priority])
            response = http.send(
                self._session,
                method,
                f"{self._base}/developer{path}",
                what=what,
                timeout_seconds=self._timeout,
                raise_transient=False,
                headers={"Authorization": f"Bearer {access_token}"},
                params=params,
            )
            if self._budget is not None:
                self._budget.observe(response.status_code, response.headers)
            if response.status_code == 429:
                reset = _reset_seconds(response)
                raise BudgetExhausted(reset, "WHOOP answered 429")
            if response.status_code not in TRANSIENT_STATUSES:
                http.raise_for_status(response, what)
                return response
            if attempt < self._max_retries:
                time.sleep(self._backoff * 2**attempt + random.uniform(0, self._backoff))
        raise WhoopTransientError(f"{what}: HTTP {response.status_code} after retries", response.status_code)


def _reset_seconds(response: requests.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("X-RateLimit-Reset", "")))
    except ValueError:
        return DEFAULT_RESET_SECONDS


def _oauth_error(response: requests.Response) -> tuple[str | None, str | None]:
    """OAuth's `error` and `error_description`, when the body is JSON."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error, description = body.get("error"), body.get("error_description")
    return (error if isinstance(error, str) else None), (description if isinstance(description, str) else None)
