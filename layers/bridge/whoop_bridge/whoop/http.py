"""The HTTP session every WHOOP client uses: pooled connections, a timeout on every call,
and retries of transient faults (429, 5xx, connection errors, timeouts) with exponential
backoff and jitter, 429 waiting for `X-RateLimit-Reset`.

The retry loop is urllib3's own `Retry`; this module only teaches it WHOOP's reset header
and maps what is left after the retries to the errors below.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from whoop_bridge import __version__, emf
from whoop_bridge.whoop.routes import template

logger = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# A single Lambda invocation should not sleep through a long rate-limit window: past this
# the call fails as transient and the queue or the state machine retries it later.
MAX_RESET_WAIT_SECONDS = 20.0
CONNECT_TIMEOUT_SECONDS = 3.05
# Every WHOOP request names the product and its version, so WHOOP can tell its callers apart.
USER_AGENT = f"whoop-bridge/{__version__}"


class WhoopError(Exception):
    """A WHOOP call failed. Messages name the call and status, never a body or token."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WhoopNotFound(WhoopError):
    """404: the resource does not exist or is not this partner's (WHOOP does not say which)."""


class WhoopUnauthorized(WhoopError):
    """401 after a fresh token, or credentials refused: permanent until an operator acts."""


class WhoopTransientError(WhoopError):
    """429, 5xx, a timeout or a connection error that outlasted the retries: try again later."""


class WhoopRequestRejected(WhoopError):
    """Any other 4xx: WHOOP refused the request as made; retrying it unchanged will not help."""


class _ResetBeyondWait(Exception):
    """A 429 whose rate-limit window resets later than one invocation should wait."""


class _WhoopRetry(Retry):
    """urllib3's Retry, honouring WHOOP's `X-RateLimit-Reset` (seconds) on a 429.

    A reset further away than MAX_RESET_WAIT_SECONDS is not slept through: the call fails
    as transient at once and the queue or the state machine retries it later.
    """

    def sleep_for_retry(self, response: Any) -> bool:
        if response is not None and response.status == 429:
            reset = _reset_seconds(response.headers)
            if reset is not None and reset > MAX_RESET_WAIT_SECONDS:
                raise _ResetBeyondWait(reset)
        return super().sleep_for_retry(response)

    def get_retry_after(self, response: Any) -> float | None:
        retry_after = super().get_retry_after(response)
        if retry_after is None and response.status == 429:
            retry_after = _reset_seconds(response.headers)
        return retry_after


def _reset_seconds(headers: Any) -> float | None:
    try:
        return max(0.0, float((headers or {}).get("X-RateLimit-Reset", "")))
    except ValueError:
        return None


@dataclass(frozen=True)
class ClientOptions:
    """How a WHOOP client sends its requests: each one's timeout (seconds), how often a
    transient fault is retried and the backoff between tries (seconds; see new_session),
    and the session to send them with (None: a new pooled one; tests pass their own)."""

    timeout_seconds: float = 10.0
    max_retries: int = 3
    backoff_seconds: float = 0.5
    session: requests.Session | None = None

    def open_session(self, *, retry_reads: bool = True, retry_statuses: bool = True) -> requests.Session:
        """The given session, else a new one retrying as these options say (see new_session)."""
        return self.session or new_session(
            self.max_retries, self.backoff_seconds, retry_reads=retry_reads, retry_statuses=retry_statuses
        )


def new_session(
    max_retries: int, backoff_seconds: float, *, retry_reads: bool = True, retry_statuses: bool = True
) -> requests.Session:
    """A pooled session retrying transient faults on every method, sending `User-Agent: whoop-bridge/<version>`.

    POST is retried too: WHOOP's results endpoint has no idempotency key, and a report
    sent twice is far better than a report lost; the state machine records each report
    as submitted so a later step never posts it again. `retry_reads=False` does not
    resend a request whose answer was lost (WHOOP may have acted on it: a token refresh).
    `retry_statuses=False` leaves 429 and 5xx answers to the caller: every request WHOOP
    answers counts against the app's rate limit, so the rate budget must see each one.
    """
    retry = _WhoopRetry(
        total=max_retries,
        connect=max_retries,
        read=max_retries if retry_reads else 0,
        status=max_retries if retry_statuses else 0,
        other=0,
        allowed_methods=None,
        status_forcelist=TRANSIENT_STATUSES if retry_statuses else (),
        backoff_factor=backoff_seconds,
        backoff_jitter=backoff_seconds,
        backoff_max=MAX_RESET_WAIT_SECONDS,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=16)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    timeout_seconds: float,
    raise_transient: bool = True,
    **kwargs: Any,
) -> requests.Response:
    """One WHOOP call with retries; transport failures become `WhoopTransientError`, and so
    do transient statuses unless `raise_transient=False` hands them back.

    `what` names the call in errors and logs (e.g. "GET requisition"); it must not hold
    identifiers of people. Each call is counted by its route template (`WhoopCalls`, and
    `WhoopCallErrors` for an answer of 400 or more or none at all; dimension `route`).
    """
    route = {"route": template(method, url)}
    emf.put("WhoopCalls", route)
    try:
        response = session.request(method, url, timeout=(CONNECT_TIMEOUT_SECONDS, timeout_seconds), **kwargs)
    except _ResetBeyondWait as reset:
        emf.put("WhoopCallErrors", route)
        raise WhoopTransientError(f"{what}: HTTP 429, the rate limit resets in {reset.args[0]:.0f} s", 429) from None
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
        emf.put("WhoopCallErrors", route)
        raise WhoopTransientError(f"{what}: {type(error).__name__} after retries") from None
    if response.status_code >= 400:
        emf.put("WhoopCallErrors", route)
    if raise_transient and response.status_code in TRANSIENT_STATUSES:
        raise WhoopTransientError(f"{what}: HTTP {response.status_code} after retries", response.status_code)
    return response


def raise_for_status(response: requests.Response, what: str) -> None:
    """Map a non-2xx answer to the error a caller can act on."""
    status = response.status_code
    if status < 400:
        return
    if status == 404:
        raise WhoopNotFound(f"{what}: not found", status)
    if status in (401, 403):
        raise WhoopUnauthorized(f"{what}: HTTP {status}", status)
    raise WhoopRequestRejected(f"{what}: HTTP {status}{_error_code(response)}", status)


def _error_code(response: requests.Response) -> str:
    """WHOOP's short error code, when the body has one; never the rest of the body."""
    try:
        body = response.json()
    except ValueError:
        return ""
    code = body.get("error") if isinstance(body, dict) else None
    return f" ({code})" if isinstance(code, str) and code.isidentifier() and len(code) <= 64 else ""
