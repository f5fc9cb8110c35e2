"""A local emulator of WHOOP's Healthcare Partner API and of its standard-API OAuth.

`WhoopEmulator` runs a small HTTP server on 127.0.0.1 that answers the partner API the way
WHOOP documents it (paths, field names, status codes, the `WHOOP-Signed` webhook signature),
sends signed partner webhooks, and exposes a control API under `/_emulator/` plus a Python
API so tests and demos can create orders, inject faults and inspect what a client did.

It also speaks WHOOP's standard developer API OAuth for members (authorization code flow
at `/oauth/oauth2/auth`, form-encoded `/oauth/oauth2/token` with WHOOP's refresh-token
rotation, the app's user limit) and the member endpoints a connect flow touches
(`/developer/v2/user/profile/basic`, `/developer/v2/user/measurement/body`,
`DELETE /developer/v2/user/access`), so a member-connect flow can be tested end to end.

Standard library only, so it runs anywhere the bridge's tests run.

Routing is table-driven: `self._routes` is a list of (method, regex, handler). The partner
API lives in the `_partner_*` methods, OAuth in `_oauth_*`, the member endpoints in
`_member_*` and the control API in the `_control_*` methods; further WHOOP surfaces can be
added as further sections of the table.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import json
import math
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["WhoopEmulator"]

PARTNER_PREFIX = "/developer/v2/partner"
CONTROL_PREFIX = "/_emulator"
TOKEN_PATH = PARTNER_PREFIX + "/token"
OAUTH_PREFIX = "/oauth/oauth2"
AUTHORIZE_PATH = OAUTH_PREFIX + "/auth"
OAUTH_TOKEN_PATH = OAUTH_PREFIX + "/token"
MEMBER_PREFIX = "/developer/v2/user"

# The standard API's scopes (§3.1); `offline` is what earns a refresh token.
MEMBER_SCOPES = frozenset({
    "read:recovery", "read:cycles", "read:workout", "read:sleep", "read:profile", "read:body_measurement", "offline",
})
CODE_TTL_SECONDS = 600  # authorization codes: single use, 10 minutes
MIN_STATE_LENGTH = 8
# Form fields never recorded in clear (token calls): secrets, codes and refresh tokens.
REDACTED_FIELDS = ("client_secret", "code", "refresh_token")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# Happy path rank; WHOOP does not document its rules, this is the safe order of §2.4.
HAPPY_RANK: dict[str | None, int] = {
    None: 0,
    "ORDER_CONFIRMED": 1,
    "APPOINTMENT_ATTENDED": 2,
    "PARTIAL_RESULTS_READY": 3,
    "FULL_RESULTS_READY": 4,
}
ISSUE_STATUSES = frozenset({"APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"})
TASK_BUSINESS_STATUSES = frozenset(k for k in HAPPY_RANK if k is not None) | ISSUE_STATUSES

REPORT_STATUSES = frozenset({"final", "partial", "preliminary", "amended", "corrected", "cancelled"})
OBSERVATION_STATUSES = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
)
REPORT_KEYS = frozenset({"status", "observations"})
OBSERVATION_KEYS = frozenset({"code", "value_numeric", "value_text", "unit", "status"})
STATUS_BODY_KEYS = frozenset({"task_business_status", "reason"})
TOKEN_BODY_KEYS = frozenset({"grant_type", "client_id", "client_secret", "scope"})

TASK_DESCRIPTIONS = {
    "LIPID_PANEL": "Fasting lipid panel",
    "CBC": "Complete blood count",
    "HBA1C": "Hemoglobin A1c",
}

RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "100, 100;window=60, 10000;window=86400",
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-Reset": "1",
}

# Fake members. WHOOP does not document collection_address; an object is a guess that
# keeps clients honest about treating it as opaque. 555-01xx numbers and example.com addresses are reserved for fiction.
_FAKE_PATIENTS = (
    ("Jordan", "Rivera", "1988-04-17", "female"),
    ("Samuel", "Okafor", "1979-11-02", "male"),
    ("Priya", "Natarajan", "1993-06-25", "female"),
    ("Lukas", "Brandt", "1985-01-09", "male"),
)
_FAKE_ADDRESSES = (
    {"line1": "410 Harbor Street", "line2": "Apt 3B", "city": "Boston", "state": "MA",
     "postal_code": "02110", "country": "US"},
    {"line1": "88 Juniper Avenue", "line2": None, "city": "Austin", "state": "TX",
     "postal_code": "78701", "country": "US"},
)

# Fake WHOOP members (standard API). example.com addresses are reserved for fiction.
_FAKE_MEMBERS = (
    ("Avery", "Chen"),
    ("Mateo", "Alvarez"),
    ("Noor", "Haddad"),
    ("Elise", "Moreau"),
    ("Kwame", "Mensah"),
)
# (height_meter, weight_kilogram, max_heart_rate); the first is the docs' example.
_FAKE_BODIES = (
    (1.8288, 90.7185, 200),
    (1.651, 61.235, 188),
    (1.7526, 77.1107, 194),
    (1.7018, 68.0389, 181),
)
FIRST_MEMBER_ID = 10001

Handler = Callable[..., "_Response"]


def _utc_iso(ts: float | None = None) -> str:
    """ISO 8601 UTC with a `Z`, millisecond precision."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _short(identifier: str) -> str:
    return identifier[:8] + "…" if len(identifier) > 8 else identifier


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are not JSON; a strict server refuses them, so a client must not send them.
    raise ValueError(f"invalid JSON constant {name}")


def _loads(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


def _media_type(request: _Request) -> str:
    """The request's Content-Type without parameters, lower case."""
    return (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()


@dataclass
class _Request:
    method: str
    path: str
    query: str
    headers: Message
    body: bytes


@dataclass
class _Response:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # pre-encoded body (injected faults with a text body)

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.payload is None:
            return b""
        return json.dumps(self.payload).encode("utf-8")


class _HttpError(Exception):
    """Raised by handlers to answer with an error status and JSON body."""

    def __init__(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status, payload)
        self.response = _Response(status, payload, dict(headers or {}))


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None
    remaining: int
    delay: float
    body: Any
    headers: dict[str, str]


def _error(status: int, error: str, message: str | None = None, **extra: Any) -> _HttpError:
    payload: dict[str, Any] = {"error": error}
    if message is not None:
        payload["message"] = message
    payload.update(extra)
    return _HttpError(status, payload)


def _bad_request(*problems: str) -> _HttpError:
    return _error(400, "invalid_request", problems[0] if len(problems) == 1 else "invalid request",
                  problems=list(problems))


def _oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> _HttpError:
    """An OAuth 2.0 error body (RFC 6749 §5.2): `error` plus `error_description`."""
    return _HttpError(status, {"error": error, "error_description": description},
                      {"Cache-Control": "no-store", **(headers or {})})


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    user_id: int
    scopes: tuple[str, ...]
    expiry: float  # monotonic
    used: bool = False


@dataclass
class _MemberAccess:
    user_id: int
    client_id: str
    scopes: tuple[str, ...]
    expiry: float  # monotonic
    refresh_token: str | None  # the refresh token issued with this access token


@dataclass
class _MemberRefresh:
    user_id: int
    client_id: str
    scopes: tuple[str, ...]
    access_token: str  # the access token issued with it; dies when this refresh token is used


def _transition_problem(current: str | None, new: str) -> str | None:
    """Why moving a service request from `current` to `new` is forbidden, or None if allowed."""
    if current in ISSUE_STATUSES:
        return f"{current} is terminal; no status may follow it"
    if current == "FULL_RESULTS_READY":
        return "FULL_RESULTS_READY is terminal; no status may follow it"
    if new in ISSUE_STATUSES:
        return None
    if new == "PARTIAL_RESULTS_READY" and current == "PARTIAL_RESULTS_READY":
        return None
    if HAPPY_RANK[new] > HAPPY_RANK.get(current, 0):
        return None
    return f"cannot move from {current or 'no status'} to {new}; the happy path only moves forward"


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients' keep-alive sessions behave as against the real API.
    protocol_version = "HTTP/1.1"
    server_version = "WhoopEmulator/1.0"
    sys_version = ""
    # Headers and body leave in one segment; two small writes on a keep-alive socket
    # meet Nagle plus delayed ACK and cost ~40 ms per call.
    wbufsize = -1
    disable_nagle_algorithm = True
    emulator: WhoopEmulator  # set on the per-emulator subclass

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: test output must stay readable, and request lines could carry ids.
        return

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        try:
            body = self._read_body()
        except ValueError:
            # The stream position is unknown now, so the connection cannot be reused.
            self.close_connection = True
            self._send(_Response(400, {"error": "invalid_request", "message": "malformed request body framing"}))
            return
        request = _Request(self.command, parsed.path, parsed.query, self.headers, body)
        self._send(self.emulator._handle(request))

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        # Exactly Content-Length bytes: reading more would block on a keep-alive socket.
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        # Streaming clients (e.g. requests with a generator body) send chunked bodies.
        chunks = []
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass  # skip trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            if self.rfile.readline(1024).strip():
                raise ValueError("chunk not followed by CRLF")

    def _send(self, response: _Response) -> None:
        body = response.encode()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if body and not any(k.lower() == "content-type" for k in response.headers):
            self.send_header("Content-Type", "application/json")
        if response.status not in (204, 304) and not (100 <= response.status < 200):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD" and response.status not in (204, 304):
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True


class WhoopEmulator:
    """WHOOP Healthcare Partner API and standard-API OAuth emulator (HTTP server plus test controls).

    Partner API under `/developer/v2/partner/...`; WHOOP's member OAuth under
    `/oauth/oauth2/auth` and `/oauth/oauth2/token` (the developer app is `member_client_id`
    / `member_client_secret` with `redirect_uris`); member endpoints under
    `/developer/v2/user/...`; control API under `/_emulator/...`. Partner and member
    access tokens are separate: neither works on the other's routes.
    Control calls are neither recorded in `calls` nor subject to injected faults.

    Switches a test may set directly: `decline_consent` (the member says no),
    `withhold_scopes` (scopes never granted), `user_limit` (None = unlimited),
    `member_token_ttl_seconds`, `signed_in_user_id` (the WHOOP member who approves the next
    authorizations; None = a brand-new member each time) and `redirect_uris` (a list).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = "local-partner-client",
        client_secret: str = "local-partner-secret",
        webhook_secret: str = "local-webhook-secret",
        partner_webhook_url: str | None = None,
        token_ttl_seconds: int = 3600,
        production: bool = False,
        test_codes: Iterable[str] = ("LIPID_PANEL", "CBC", "HBA1C"),
        member_client_id: str = "local-member-client",
        member_client_secret: str = "local-member-secret",
        redirect_uris: Iterable[str] = (),
        member_token_ttl_seconds: int = 3600,
        user_limit: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_secret = webhook_secret
        self.partner_webhook_url = partner_webhook_url
        self.token_ttl_seconds = token_ttl_seconds
        self.production = production
        self.test_codes = tuple(test_codes)

        # The standard-API developer app (member OAuth) and its switches.
        self.member_client_id = member_client_id
        self.member_client_secret = member_client_secret
        self.redirect_uris: list[str] = list(redirect_uris)
        self.member_token_ttl_seconds = member_token_ttl_seconds
        self.user_limit = user_limit
        self.decline_consent: bool = False
        self.withhold_scopes: set[str] = set()
        self.signed_in_user_id: int | None = None

        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._token_issues = 0
        self._requisitions: dict[str, dict[str, Any]] = {}
        self._service_requests: dict[str, dict[str, Any]] = {}  # same objects as inside requisitions
        self._sr_requisition: dict[str, str] = {}  # service request id -> requisition id
        self._reports: dict[str, list[dict[str, Any]]] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._calls: list[dict[str, Any]] = []
        self._seq = 0
        self._faults: list[_Fault] = []
        self._deliveries: list[dict[str, Any]] = []
        self._patient_counter = 0

        self._members: dict[int, dict[str, Any]] = {}
        self._next_member_id = FIRST_MEMBER_ID
        self._authorized: set[int] = set()  # members who authorized the app and have not revoked it
        self._codes: dict[str, _AuthCode] = {}
        self._member_access: dict[str, _MemberAccess] = {}
        self._member_refresh: dict[str, _MemberRefresh] = {}
        self._issued: list[str] = []  # every token and code ever issued, member and partner
        self._member_refreshes = 0
        self._member_code_exchanges = 0
        self._revocations = 0

        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (method, re.compile(pattern), handler)
            for method, pattern, handler in (
                self._partner_routes() + self._oauth_routes() + self._member_routes() + self._control_routes()
            )
        ]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind and serve in a daemon thread; port 0 picks a free port. Returns self."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("emulator already started")
            handler = type("WhoopEmulatorHandler", (_RequestHandler,), {"emulator": self})
            server = ThreadingHTTPServer((self.host, self.port), handler)
            server.daemon_threads = True
            self._server = server
            self.port = server.server_address[1]
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05},
                name=f"whoop-emulator-{self.port}", daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (safe to call twice)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Root URL of the running server, e.g. `http://127.0.0.1:54321`."""
        if self._server is None:
            raise RuntimeError("emulator not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def partner_base_url(self) -> str:
        """The partner API base, as WHOOP's `https://api.prod.whoop.com/developer`."""
        return self.base_url + "/developer"

    # ------------------------------------------------------------------ tokens

    @property
    def token_requests(self) -> int:
        """How many partner access tokens were issued."""
        with self._lock:
            return self._token_issues

    def expire_tokens(self) -> None:
        """Invalidate every issued token, so the next partner call answers 401."""
        with self._lock:
            self._tokens.clear()

    def _token_valid(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        with self._lock:
            expiry = self._tokens.get(token.strip())
            return expiry is not None and time.monotonic() < expiry

    # ------------------------------------------------------------------ data API

    def create_requisition(self, codes: Iterable[str] | None = None, *, appointments: bool = True) -> dict[str, Any]:
        """Create and store a requisition with one service request per code; returns a copy."""
        code_list = list(self.test_codes if codes is None else codes)
        if not code_list or not all(isinstance(c, str) and c for c in code_list):
            raise ValueError("codes must be a non-empty list of non-empty strings")
        with self._lock:
            self._patient_counter += 1
            first, last, birth_date, gender = _FAKE_PATIENTS[(self._patient_counter - 1) % len(_FAKE_PATIENTS)]
            address = _FAKE_ADDRESSES[(self._patient_counter - 1) % len(_FAKE_ADDRESSES)]
            phone_suffix = 100 + self._patient_counter % 100
        now = time.time()
        service_requests = [
            {
                "id": str(uuid.uuid4()),
                "status": "active",
                "intent": "order",
                "code": code,
                "task_business_status": None,
                "task_description": TASK_DESCRIPTIONS.get(code, code),
            }
            for code in code_list
        ]
        # Tomorrow at 08:00 UTC, a typical fasting draw slot.
        start = (datetime.fromtimestamp(now, tz=UTC) + timedelta(days=1)).replace(
            hour=8, minute=0, second=0, microsecond=0)
        requisition = {
            "id": str(uuid.uuid4()),
            "created_at": _utc_iso(now),
            "updated_at": _utc_iso(now),
            "patient": {
                "id": str(uuid.uuid4()),
                "first_name": first,
                "last_name": last,
                "birth_date": birth_date,
                "gender": gender,
                "email": f"{first}.{last}@example.com".lower(),
                "phone": f"+1-617-555-{phone_suffix:04d}",
            },
            "service_requests": service_requests,
            "appointments": [
                {
                    "service_request_ids": [sr["id"] for sr in service_requests],
                    "start_time": start.isoformat().replace("+00:00", "Z"),
                    "slot_id": str(uuid.uuid4()),
                    "collection_address": dict(address),
                }
            ] if appointments else [],
        }
        return self.add_requisition(requisition)

    def add_requisition(self, requisition: dict[str, Any]) -> dict[str, Any]:
        """Store an arbitrary requisition (deep-copied) and index its service requests."""
        if not isinstance(requisition, dict) or not isinstance(requisition.get("id"), str):
            raise TypeError("requisition must be a dict with a string id")
        stored = copy.deepcopy(requisition)
        with self._lock:
            old = self._requisitions.get(stored["id"])
            for sr in (old or {}).get("service_requests") or []:
                if isinstance(sr, dict) and self._sr_requisition.get(sr.get("id")) == stored["id"]:
                    self._service_requests.pop(sr["id"], None)
                    self._sr_requisition.pop(sr["id"], None)
            self._requisitions[stored["id"]] = stored
            for sr in stored.get("service_requests") or []:
                if isinstance(sr, dict) and isinstance(sr.get("id"), str):
                    self._service_requests[sr["id"]] = sr
                    self._sr_requisition[sr["id"]] = stored["id"]
                    self._reports.setdefault(sr["id"], [])
                    self._history.setdefault(sr["id"], [])
            return copy.deepcopy(stored)

    def requisition(self, requisition_id: str) -> dict[str, Any]:
        """Current state of a requisition (a copy). Raises KeyError if unknown."""
        with self._lock:
            return copy.deepcopy(self._requisitions[requisition_id])

    def service_request(self, service_request_id: str) -> dict[str, Any]:
        """Current state of a service request (a copy). Raises KeyError if unknown."""
        with self._lock:
            return copy.deepcopy(self._service_requests[service_request_id])

    def reports(self, service_request_id: str) -> list[dict[str, Any]]:
        """Diagnostic reports accepted for a service request, in arrival order."""
        with self._lock:
            if service_request_id not in self._service_requests:
                raise KeyError(service_request_id)
            return copy.deepcopy(self._reports.get(service_request_id, []))

    def status_history(self, service_request_id: str) -> list[dict[str, Any]]:
        """Status changes of a service request: `{"status", "reason", "time"}` each, oldest first."""
        with self._lock:
            if service_request_id not in self._service_requests:
                raise KeyError(service_request_id)
            return copy.deepcopy(self._history.get(service_request_id, []))

    # ------------------------------------------------------------------ members and OAuth (Python API)

    def add_member(self, user_id: int | None = None) -> dict[str, Any]:
        """Create a fake WHOOP member; returns a copy of `{"user_id", "email", "first_name", "last_name"}`.

        Without `user_id` the next free id counting from 10001 is used. Raises ValueError if
        `user_id` is not a positive integer or the member already exists.
        """
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1):
            raise ValueError("user_id must be a positive integer")
        with self._lock:
            return dict(self._add_member(user_id))

    def _add_member(self, user_id: int | None) -> dict[str, Any]:
        """Create and store a member (caller holds the lock); returns the stored profile."""
        if user_id is None:
            while self._next_member_id in self._members:
                self._next_member_id += 1
            user_id = self._next_member_id
            self._next_member_id += 1
        elif user_id in self._members:
            raise ValueError(f"member {user_id} already exists")
        first, last = _FAKE_MEMBERS[(user_id - FIRST_MEMBER_ID) % len(_FAKE_MEMBERS)]
        profile = {
            "user_id": user_id,
            "email": f"{first}.{last}.{user_id}@example.com".lower(),
            "first_name": first,
            "last_name": last,
        }
        self._members[user_id] = profile
        return profile

    def member(self, user_id: int) -> dict[str, Any]:
        """A member's profile (a copy). Raises KeyError if unknown."""
        with self._lock:
            return dict(self._members[user_id])

    @property
    def member_refreshes(self) -> int:
        """How many refresh_token grants succeeded."""
        with self._lock:
            return self._member_refreshes

    @property
    def member_code_exchanges(self) -> int:
        """How many authorization_code grants succeeded."""
        with self._lock:
            return self._member_code_exchanges

    @property
    def revocations(self) -> int:
        """How many `DELETE /v2/user/access` calls succeeded."""
        with self._lock:
            return self._revocations

    def expire_member_tokens(self, user_id: int | None = None) -> None:
        """Member access tokens (of `user_id`, or everyone's) die now; refresh tokens stay valid."""
        with self._lock:
            for token, access in list(self._member_access.items()):
                if user_id is None or access.user_id == user_id:
                    del self._member_access[token]

    def revoke_member(self, user_id: int) -> None:
        """The member removes the app in WHOOP: every token and pending code of theirs dies.

        Raises KeyError if the member is unknown.
        """
        with self._lock:
            if user_id not in self._members:
                raise KeyError(user_id)
            self._revoke_member(user_id, self.member_client_id)

    def _revoke_member(self, user_id: int, client_id: str) -> None:
        """Kill the member's tokens and codes for the app and deauthorize it (caller holds the lock)."""
        for token, access in list(self._member_access.items()):
            if access.user_id == user_id and access.client_id == client_id:
                del self._member_access[token]
        for token, refresh in list(self._member_refresh.items()):
            if refresh.user_id == user_id and refresh.client_id == client_id:
                del self._member_refresh[token]
        for code, grant in list(self._codes.items()):
            if grant.user_id == user_id and grant.client_id == client_id:
                del self._codes[code]
        self._authorized.discard(user_id)

    def authorized_members(self) -> list[int]:
        """User ids of the members currently authorizing the app, ascending."""
        with self._lock:
            return sorted(self._authorized)

    def issued_credentials(self) -> list[str]:
        """Every token and code ever issued (member and partner), both client secrets and the webhook secret.

        For tests that prove none of them ever reaches a log.
        """
        with self._lock:
            return [*self._issued, self.client_secret, self.member_client_secret, self.webhook_secret]

    def _issue_member_tokens(self, user_id: int, client_id: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        """Issue an access token, plus a refresh token when `offline` is granted (caller holds the lock)."""
        ttl = self.member_token_ttl_seconds
        access_token = secrets.token_urlsafe(32)
        refresh_token = secrets.token_urlsafe(32) if "offline" in scopes else None
        self._member_access[access_token] = _MemberAccess(
            user_id, client_id, scopes, time.monotonic() + ttl, refresh_token)
        self._issued.append(access_token)
        payload: dict[str, Any] = {"access_token": access_token, "expires_in": ttl}
        if refresh_token is not None:
            self._member_refresh[refresh_token] = _MemberRefresh(user_id, client_id, scopes, access_token)
            self._issued.append(refresh_token)
            payload["refresh_token"] = refresh_token
        payload["scope"] = " ".join(scopes)
        payload["token_type"] = "bearer"
        return payload

    # ------------------------------------------------------------------ calls and timeline

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Completed API calls in arrival order: `{"seq", "time" (arrival, epoch s), "method", "path", "status", "body"}`."""
        with self._lock:
            return [self._public_call(c) for c in self._calls]

    def calls_to(self, method: str, path_regex: str) -> list[dict[str, Any]]:
        """Recorded calls with this method (or "*") whose path matches `path_regex` (re.search)."""
        pattern = re.compile(path_regex)
        return [
            c for c in self.calls
            if (method == "*" or c["method"] == method.upper()) and pattern.search(c["path"])
        ]

    def reset_calls(self) -> None:
        """Forget recorded calls (sequence numbers keep counting)."""
        with self._lock:
            self._calls.clear()

    @staticmethod
    def _public_call(call: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in call.items() if not k.startswith("_")}

    def _arrive(self) -> tuple[int, float]:
        # Sequence and time are taken on arrival, so a call made while another is still
        # being handled (a webhook receiver fetching during add-test-data) sorts after it.
        with self._lock:
            self._seq += 1
            return self._seq, time.time()

    @staticmethod
    def _recorded_body(request: _Request) -> Any:
        """The body as recorded: JSON, or a form as a dict; secrets, codes and refresh tokens as `***`."""
        if not request.body:
            return None
        is_form = _media_type(request) == FORM_CONTENT_TYPE
        try:
            if is_form:
                fields = urllib.parse.parse_qs(request.body.decode("utf-8"), keep_blank_values=True, errors="strict")
                body: Any = {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
            else:
                body = _loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return None
        if isinstance(body, dict) and (is_form or request.path in (TOKEN_PATH, OAUTH_TOKEN_PATH)):
            for key in REDACTED_FIELDS:
                if key in body:
                    body[key] = "***"
        return body

    def _record(self, request: _Request, arrival: tuple[int, float], status: int, *,
                injected: bool = False, delay: float = 0.0) -> None:
        body = self._recorded_body(request)
        seq, arrived = arrival
        with self._lock:
            self._calls.append({
                "seq": seq, "time": arrived, "method": request.method,
                "path": request.path, "status": status, "body": body,
                "_injected": injected, "_delay": delay,
            })
            self._calls.sort(key=lambda call: call["seq"])  # nearly sorted: cheap

    def timeline(self) -> list[str]:
        """One readable line per recorded call (token calls left out); ids shortened, no patient data."""
        with self._lock:
            calls = [dict(c) for c in self._calls]
        return [self._timeline_line(c) for c in calls if c["path"] != TOKEN_PATH]

    @staticmethod
    def _timeline_line(call: dict[str, Any]) -> str:
        method, path, body = call["method"], call["path"], call["body"]
        match = re.fullmatch(
            re.escape(PARTNER_PREFIX) + r"/(requisition|service-request)/([^/]+)(?:/(status|results))?", path)
        if match:
            kind, ident, action = match.groups()
            text = f"{method} {kind} {_short(ident)}"
            if action == "status":
                status = body.get("task_business_status") if isinstance(body, dict) else None
                text += f" status {status if isinstance(status, str) else '?'}"
            elif action == "results":
                report_status = body.get("status") if isinstance(body, dict) else None
                observations = body.get("observations") if isinstance(body, dict) else None
                count = len(observations) if isinstance(observations, list) else "?"
                noun = "observation" if count == 1 else "observations"
                text += f" results {report_status if isinstance(report_status, str) else '?'} ({count} {noun})"
        elif path.startswith(PARTNER_PREFIX + "/"):
            text = f"{method} {path[len(PARTNER_PREFIX) + 1:]}"
        elif path == AUTHORIZE_PATH:
            text = f"{method} oauth authorize"
        elif path == OAUTH_TOKEN_PATH:
            grant = body.get("grant_type") if isinstance(body, dict) else None
            shown = grant if isinstance(grant, str) and re.fullmatch(r"[a-z_]{1,40}", grant) else "?"
            text = f"{method} oauth token {shown}"
        elif path.startswith(MEMBER_PREFIX + "/"):
            text = f"{method} {path.removeprefix('/developer/v2/')}"
        else:
            text = f"{method} {path}"
        text += f" → {call['status']}"
        if call.get("_injected"):
            text += " (injected)"
        elif call.get("_delay"):
            text += f" (delayed {call['_delay']:g} s)"
        return text

    # ------------------------------------------------------------------ faults

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        *,
        status: int | None = 500,
        count: int = 1,
        delay: float = 0.0,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `count` matching calls with `status` after `delay` seconds.

        `method` may be "*"; `path_regex` is searched in the path. With `status=None` the
        call is only delayed and then handled normally. A 429 carries WHOOP's rate-limit
        headers unless `headers` overrides them.
        """
        # 1xx answers would leave the client waiting for a final response.
        if status is not None and not (isinstance(status, int) and 200 <= status <= 599):
            raise ValueError("status must be an HTTP status code from 200 to 599, or None")
        if not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive integer")
        if delay < 0:
            raise ValueError("delay must not be negative")
        merged = dict(RATE_LIMIT_HEADERS) if status == 429 else {}
        merged.update(headers or {})
        fault = _Fault(method.upper(), re.compile(path_regex), status, count, float(delay), body, merged)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if (fault.method in ("*", method)) and fault.pattern.search(path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    @staticmethod
    def _fault_response(fault: _Fault) -> _Response:
        assert fault.status is not None
        if fault.status in (204, 304):
            return _Response(fault.status, None, dict(fault.headers))
        if fault.body is None:
            error = "too_many_requests" if fault.status == 429 else "injected_fault"
            return _Response(fault.status, {"error": error, "message": f"injected {fault.status}"},
                             dict(fault.headers))
        if isinstance(fault.body, (bytes, str)):
            raw = fault.body.encode("utf-8") if isinstance(fault.body, str) else fault.body
            headers = {"Content-Type": "text/plain; charset=utf-8", **fault.headers}
            return _Response(fault.status, None, headers, raw=raw)
        return _Response(fault.status, fault.body, dict(fault.headers))

    # ------------------------------------------------------------------ webhooks

    @property
    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Webhooks sent: `{"time", "url", "event_type", "resource_id", "signature", "status", "error"}`."""
        with self._lock:
            return copy.deepcopy(self._deliveries)

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
        target = url or self.partner_webhook_url
        if not target:
            raise ValueError("no webhook URL: pass url= or set partner_webhook_url")
        # Compact JSON; these exact bytes are what gets signed and sent.
        body = json.dumps({"event_type": event_type, "resource_id": resource_id},
                          separators=(",", ":")).encode("utf-8")
        computed = hmac.new(self.webhook_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        header = computed if signature is None else signature
        parts = urllib.parse.urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be http(s): {target!r}")
        # http.client rather than urllib.request: urllib rewrites header names to
        # "Whoop-Signed", and receivers that keep the sender's casing (API Gateway REST
        # events) must see the documented "WHOOP-Signed". No redirects are followed:
        # a 3xx is reported as the delivery status.
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=10)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        error: str | None = None
        try:
            connection.request("POST", path, body=body,
                               headers={"Content-Type": "application/json", "WHOOP-Signed": header})
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            status, error = 0, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with self._lock:
            self._deliveries.append({
                "time": time.time(), "url": target, "event_type": event_type,
                "resource_id": resource_id, "signature": header, "status": status, "error": error,
            })
        return status

    # ------------------------------------------------------------------ dispatch

    def _handle(self, request: _Request) -> _Response:
        """Apply faults, route, record. Called from server threads."""
        if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
            return self._route(request)
        arrival = self._arrive()
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)  # outside the lock, so other calls proceed
            if fault.status is not None:
                response = self._fault_response(fault)
                self._record(request, arrival, response.status, injected=True)
                return response
        response = self._route(request)
        self._record(request, arrival, response.status, delay=fault.delay if fault else 0.0)
        return response

    def _route(self, request: _Request) -> _Response:
        method = "GET" if request.method == "HEAD" else request.method
        allowed: list[str] = []
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            try:
                return handler(request, **match.groupdict())
            except _HttpError as exc:
                return exc.response
            except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the connection
                return _Response(500, {"error": "internal_error", "message": f"{type(exc).__name__}: {exc}"})
        if allowed:
            return _Response(405, {"error": "method_not_allowed"}, {"Allow": ", ".join(sorted(set(allowed)))})
        return _Response(404, {"error": "not_found"})

    @staticmethod
    def _json_body(request: _Request, *, required: bool = True) -> Any:
        if not request.body:
            if required:
                raise _bad_request("a JSON body is required")
            return None
        try:
            return _loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad_request(f"body is not valid JSON: {exc}") from None

    # ------------------------------------------------------------------ partner API

    def _partner_routes(self) -> list[tuple[str, str, Handler]]:
        authed = self._partner_authed
        p = re.escape(PARTNER_PREFIX)
        ident = r"(?P<ident>[^/]+)"
        return [
            ("POST", p + r"/token", self._partner_token),
            ("GET", p + rf"/requisition/{ident}", authed(self._partner_get_requisition)),
            ("PATCH", p + rf"/requisition/{ident}/status", authed(self._partner_patch_requisition_status)),
            ("GET", p + rf"/service-request/{ident}", authed(self._partner_get_service_request)),
            ("PATCH", p + rf"/service-request/{ident}/status", authed(self._partner_patch_service_request_status)),
            ("POST", p + rf"/service-request/{ident}/results", authed(self._partner_post_results)),
            ("POST", p + r"/development/add-test-data", authed(self._partner_add_test_data)),
        ]

    def _partner_authed(self, handler: Handler) -> Handler:
        def wrapped(request: _Request, **groups: str) -> _Response:
            if not self._token_valid(request.headers.get("Authorization")):
                return _Response(401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})
            return handler(request, **groups)
        return wrapped

    def _partner_token(self, request: _Request) -> _Response:
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _bad_request("Content-Type must be application/json")
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise _bad_request("body must be a JSON object")
        problems = []
        if set(body) != TOKEN_BODY_KEYS:
            missing, extra = sorted(TOKEN_BODY_KEYS - set(body)), sorted(set(body) - TOKEN_BODY_KEYS)
            if missing:
                problems.append(f"missing fields: {', '.join(missing)}")
            if extra:
                problems.append(f"unknown fields: {', '.join(extra)}")
        if "grant_type" in body and body["grant_type"] != "client_credentials":
            problems.append("grant_type must be client_credentials")
        if "scope" in body and body["scope"] != "whoop-partner/token":
            problems.append("scope must be whoop-partner/token")
        for key in ("client_id", "client_secret"):
            if key in body and not isinstance(body[key], str):
                problems.append(f"{key} must be a string")
        if problems:
            raise _bad_request(*problems)
        id_ok = hmac.compare_digest(body["client_id"].encode(), self.client_id.encode())
        secret_ok = hmac.compare_digest(body["client_secret"].encode(), self.client_secret.encode())
        if not (id_ok and secret_ok):
            raise _error(401, "invalid_client", "client authentication failed")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl_seconds
            self._token_issues += 1
            self._issued.append(token)
        return _Response(200, {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl_seconds})

    def _partner_get_requisition(self, request: _Request, ident: str) -> _Response:
        with self._lock:
            requisition = self._requisitions.get(ident)
            if requisition is None:
                raise _error(404, "not_found")
            return _Response(200, copy.deepcopy(requisition))

    def _partner_get_service_request(self, request: _Request, ident: str) -> _Response:
        with self._lock:
            service_request = self._service_requests.get(ident)
            if service_request is None:
                raise _error(404, "not_found")
            return _Response(200, copy.deepcopy(service_request))

    def _validate_status_body(self, request: _Request) -> tuple[str, str | None]:
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise _bad_request("body must be a JSON object")
        problems = []
        extra = sorted(set(body) - STATUS_BODY_KEYS)
        if extra:
            problems.append(f"unknown fields: {', '.join(extra)}")
        status = body.get("task_business_status")
        if status not in TASK_BUSINESS_STATUSES:
            problems.append(f"task_business_status must be one of {', '.join(sorted(TASK_BUSINESS_STATUSES))}")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            problems.append("reason must be a string")
        elif status in ISSUE_STATUSES and not (reason or "").strip():
            problems.append(f"reason is required with {status}")
        if problems:
            raise _bad_request(*problems)
        return status, reason

    def _apply_status(self, sr_ids: list[str], status: str, reason: str | None) -> None:
        """Check every transition first, then apply all (caller holds the lock)."""
        for sr_id in sr_ids:
            problem = _transition_problem(self._service_requests[sr_id].get("task_business_status"), status)
            if problem:
                raise _error(409, "conflict", f"service request {sr_id}: {problem}")
        now = _utc_iso()
        for sr_id in sr_ids:
            self._service_requests[sr_id]["task_business_status"] = status
            self._history.setdefault(sr_id, []).append({"status": status, "reason": reason, "time": now})
            requisition = self._requisitions.get(self._sr_requisition.get(sr_id, ""))
            if requisition is not None:
                requisition["updated_at"] = now

    def _partner_patch_requisition_status(self, request: _Request, ident: str) -> _Response:
        status, reason = self._validate_status_body(request)
        with self._lock:
            requisition = self._requisitions.get(ident)
            if requisition is None:
                raise _error(404, "not_found")
            sr_ids = [sr["id"] for sr in requisition.get("service_requests") or []
                      if isinstance(sr, dict) and sr.get("id") in self._service_requests]
            self._apply_status(sr_ids, status, reason)
        return _Response(204)

    def _partner_patch_service_request_status(self, request: _Request, ident: str) -> _Response:
        status, reason = self._validate_status_body(request)
        with self._lock:
            if ident not in self._service_requests:
                raise _error(404, "not_found")
            self._apply_status([ident], status, reason)
            return _Response(200, copy.deepcopy(self._service_requests[ident]))

    @staticmethod
    def _report_problems(body: Any) -> list[str]:
        if not isinstance(body, dict):
            return ["body must be a JSON object"]
        problems = []
        extra = sorted(set(body) - REPORT_KEYS)
        if extra:
            problems.append(f"unknown fields: {', '.join(extra)}")
        if body.get("status") not in REPORT_STATUSES:
            problems.append(f"status must be one of {', '.join(sorted(REPORT_STATUSES))}")
        observations = body.get("observations")
        if not isinstance(observations, list) or not observations:
            problems.append("observations must be a non-empty list")
            return problems
        for index, obs in enumerate(observations):
            where = f"observations[{index}]"
            if not isinstance(obs, dict):
                problems.append(f"{where} must be an object")
                continue
            extra = sorted(set(obs) - OBSERVATION_KEYS)
            if extra:
                problems.append(f"{where}: unknown fields: {', '.join(extra)}")
            code = obs.get("code")
            if not isinstance(code, str) or not code.strip():
                problems.append(f"{where}.code must be a non-empty string")
            numeric, text = obs.get("value_numeric"), obs.get("value_text")
            if numeric is not None and (
                isinstance(numeric, bool) or not isinstance(numeric, (int, float)) or not math.isfinite(numeric)
            ):
                problems.append(f"{where}.value_numeric must be a number")
            if text is not None and (not isinstance(text, str) or not text):
                problems.append(f"{where}.value_text must be a non-empty string")
            if numeric is None and text is None:
                problems.append(f"{where}: at least one of value_numeric or value_text is required")
            unit = obs.get("unit")
            if unit is not None and not isinstance(unit, str):
                problems.append(f"{where}.unit must be a string")
            if obs.get("status") not in OBSERVATION_STATUSES:
                problems.append(f"{where}.status must be one of {', '.join(sorted(OBSERVATION_STATUSES))}")
        return problems

    def _partner_post_results(self, request: _Request, ident: str) -> _Response:
        body = self._json_body(request)
        problems = self._report_problems(body)
        if problems:
            raise _bad_request(*problems)
        with self._lock:
            service_request = self._service_requests.get(ident)
            if service_request is None:
                raise _error(404, "not_found")
            current = service_request.get("task_business_status")
            if current in ISSUE_STATUSES:
                raise _error(409, "conflict", f"service request {ident} is in {current}; results are closed")
            self._reports.setdefault(ident, []).append(copy.deepcopy(body))
        return _Response(201)

    def _partner_add_test_data(self, request: _Request) -> _Response:
        if self.production:
            raise _error(404, "not_found")
        requisition = self.create_requisition()
        if self.partner_webhook_url:
            # Delivered before answering, so a 204 means the webhook has been attempted.
            self.send_partner_webhook("lab_requisition.created", requisition["id"])
        return _Response(204)

    # ------------------------------------------------------------------ OAuth (standard API, members)

    def _oauth_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", re.escape(AUTHORIZE_PATH), self._oauth_authorize),
            ("POST", re.escape(OAUTH_TOKEN_PATH), self._oauth_token),
        ]

    @staticmethod
    def _redirect(redirect_uri: str, params: dict[str, str]) -> _Response:
        """302 to the redirect URI with `params` added to whatever query it already has."""
        parts = urllib.parse.urlsplit(redirect_uri)
        extra = urllib.parse.urlencode(params)
        query = f"{parts.query}&{extra}" if parts.query else extra
        location = urllib.parse.urlunsplit(parts._replace(query=query))
        return _Response(302, None, {"Location": location, "Cache-Control": "no-store"})

    def _oauth_authorize(self, request: _Request) -> _Response:
        params = urllib.parse.parse_qs(request.query, keep_blank_values=True)

        def single(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values is not None and len(values) == 1 else None

        # Client and redirect URI first: an unverified URI is never redirected to (RFC 6749 §4.1.2.1).
        client_id, redirect_uri = single("client_id"), single("redirect_uri")
        if client_id is None or client_id != self.member_client_id:
            raise _oauth_error(400, "invalid_client", "unknown client_id")
        with self._lock:
            registered = redirect_uri is not None and redirect_uri in self.redirect_uris
        if not registered:
            raise _oauth_error(400, "invalid_redirect_uri", "redirect_uri does not match a URI registered for this app")
        assert redirect_uri is not None

        state = single("state")
        echo = {"state": state} if state else {}

        def refuse(error: str, description: str) -> _Response:
            return self._redirect(redirect_uri, {"error": error, "error_description": description, **echo})

        duplicated = sorted(name for name, values in params.items() if len(values) > 1)
        if duplicated:
            return refuse("invalid_request", f"parameters repeated: {', '.join(duplicated)}")
        if single("response_type") != "code":
            return refuse("invalid_request", "response_type must be code")
        if state is None or len(state) < MIN_STATE_LENGTH:
            return refuse("invalid_request", f"state must be at least {MIN_STATE_LENGTH} characters")
        requested = list(dict.fromkeys((single("scope") or "").split()))
        if not requested:
            return refuse("invalid_scope", "scope is required")
        unknown = [scope for scope in requested if scope not in MEMBER_SCOPES]
        if unknown:
            return refuse("invalid_scope", f"unknown scopes: {' '.join(unknown)}")

        with self._lock:
            if self.decline_consent:
                return refuse("access_denied", "The user denied the request")
            signed_in = self.signed_in_user_id
            if signed_in is None:
                user_id = self._add_member(None)["user_id"]
            else:
                if signed_in not in self._members:
                    self._add_member(signed_in)
                user_id = signed_in
            limit = self.user_limit
            # WHOOP's docs only say the error says the app "has reached its user limit";
            # the error code and the exact wording here are this emulator's guess.
            if limit is not None and user_id not in self._authorized and len(self._authorized) >= limit:
                return refuse("access_denied", "This application has reached its user limit")
            granted = tuple(scope for scope in requested if scope not in self.withhold_scopes)
            code = secrets.token_urlsafe(32)
            self._codes[code] = _AuthCode(client_id, redirect_uri, user_id, granted,
                                          time.monotonic() + CODE_TTL_SECONDS)
            self._issued.append(code)
            self._authorized.add(user_id)
        return self._redirect(redirect_uri, {"code": code, "state": state})

    def _oauth_form(self, request: _Request) -> dict[str, str]:
        if _media_type(request) != FORM_CONTENT_TYPE:
            raise _oauth_error(400, "invalid_request", f"Content-Type must be {FORM_CONTENT_TYPE}")
        try:
            fields = urllib.parse.parse_qs(request.body.decode("utf-8"), keep_blank_values=True,
                                           strict_parsing=True, errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise _oauth_error(400, "invalid_request", "body is not a valid form") from None
        duplicated = sorted(name for name, values in fields.items() if len(values) > 1)
        if duplicated:
            raise _oauth_error(400, "invalid_request", f"parameters repeated: {', '.join(duplicated)}")
        return {name: values[0] for name, values in fields.items()}

    def _oauth_token(self, request: _Request) -> _Response:
        form = self._oauth_form(request)
        id_ok = hmac.compare_digest(form.get("client_id", "").encode(), self.member_client_id.encode())
        secret_ok = hmac.compare_digest(form.get("client_secret", "").encode(), self.member_client_secret.encode())
        if not (id_ok and secret_ok and "client_id" in form and "client_secret" in form):
            raise _oauth_error(401, "invalid_client", "client authentication failed")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            payload = self._oauth_code_grant(form)
        elif grant_type == "refresh_token":
            payload = self._oauth_refresh_grant(form)
        elif grant_type is None:
            raise _oauth_error(400, "invalid_request", "grant_type is required")
        else:
            raise _oauth_error(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
        return _Response(200, payload, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _oauth_code_grant(self, form: dict[str, str]) -> dict[str, Any]:
        missing = [name for name in ("code", "redirect_uri") if not form.get(name)]
        if missing:
            raise _oauth_error(400, "invalid_request", f"missing: {', '.join(missing)}")
        with self._lock:
            grant = self._codes.get(form["code"])
            if grant is None or grant.used or time.monotonic() >= grant.expiry:
                raise _oauth_error(400, "invalid_grant", "authorization code is invalid, expired or already used")
            if grant.client_id != form["client_id"]:
                raise _oauth_error(400, "invalid_grant", "authorization code was issued to another client")
            if grant.redirect_uri != form["redirect_uri"]:
                # The code stays usable with the right redirect_uri: only this request is refused.
                raise _oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
            grant.used = True
            self._member_code_exchanges += 1
            return self._issue_member_tokens(grant.user_id, grant.client_id, grant.scopes)

    def _oauth_refresh_grant(self, form: dict[str, str]) -> dict[str, Any]:
        if not form.get("refresh_token"):
            raise _oauth_error(400, "invalid_request", "refresh_token is required")
        if "scope" not in form:
            raise _oauth_error(400, "invalid_request", "scope is required (offline)")
        if form["scope"] != "offline":
            raise _oauth_error(400, "invalid_scope", "scope must be offline")
        # Check and rotate in one critical section: of two concurrent refreshes with the
        # same refresh token exactly one succeeds (WHOOP's rotation, §3.1).
        with self._lock:
            old = self._member_refresh.get(form["refresh_token"])
            if old is None or old.client_id != form["client_id"]:
                raise _oauth_error(400, "invalid_grant", "refresh token is invalid, used or revoked")
            del self._member_refresh[form["refresh_token"]]
            self._member_access.pop(old.access_token, None)
            self._member_refreshes += 1
            return self._issue_member_tokens(old.user_id, old.client_id, old.scopes)

    # ------------------------------------------------------------------ member endpoints (standard API)

    def _member_routes(self) -> list[tuple[str, str, Handler]]:
        m = re.escape(MEMBER_PREFIX)
        return [
            ("GET", m + r"/profile/basic", self._member_authed(self._member_profile, "read:profile")),
            ("GET", m + r"/measurement/body", self._member_authed(self._member_body, "read:body_measurement")),
            ("DELETE", m + r"/access", self._member_authed(self._member_revoke_access, None)),
        ]

    def _member_authed(self, handler: Handler, scope: str | None) -> Handler:
        """Require a live member access token (and `scope`, if given); the handler gets the token's record."""
        def wrapped(request: _Request, **groups: str) -> _Response:
            scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
            token = token.strip()
            with self._lock:
                access = self._member_access.get(token) if scheme.lower() == "bearer" and token else None
                if access is not None and time.monotonic() >= access.expiry:
                    access = None
            if access is None:
                return _Response(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if scope is not None and scope not in access.scopes:
                return _Response(403, {"error": "insufficient_scope"},
                                 {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})
            return handler(request, access, **groups)
        return wrapped

    def _member_profile(self, request: _Request, access: _MemberAccess) -> _Response:
        return _Response(200, self.member(access.user_id))

    def _member_body(self, request: _Request, access: _MemberAccess) -> _Response:
        height, weight, max_heart_rate = _FAKE_BODIES[(access.user_id - FIRST_MEMBER_ID) % len(_FAKE_BODIES)]
        return _Response(200, {"height_meter": height, "weight_kilogram": weight, "max_heart_rate": max_heart_rate})

    def _member_revoke_access(self, request: _Request, access: _MemberAccess) -> _Response:
        with self._lock:
            if access not in self._member_access.values():
                # A concurrent revocation (or refresh) killed the token after it was checked.
                return _Response(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            self._revoke_member(access.user_id, access.client_id)
            self._revocations += 1
        return _Response(204)

    # ------------------------------------------------------------------ control API

    def _control_routes(self) -> list[tuple[str, str, Handler]]:
        c = re.escape(CONTROL_PREFIX)
        return [
            ("GET", c + r"/health", self._control_health),
            ("GET", c + r"/calls", self._control_calls),
            ("DELETE", c + r"/calls", self._control_reset_calls),
            ("GET", c + r"/timeline", self._control_timeline),
            ("POST", c + r"/requisitions", self._control_create_requisition),
            ("POST", c + r"/faults", self._control_add_fault),
            ("DELETE", c + r"/faults", self._control_clear_faults),
            ("POST", c + r"/tokens/expire", self._control_expire_tokens),
            ("POST", c + r"/webhooks/partner", self._control_send_webhook),
            ("GET", c + r"/service-requests/(?P<ident>[^/]+)", self._control_service_request),
            ("POST", c + r"/members", self._control_add_member),
            ("POST", c + r"/members/(?P<ident>[^/]+)/revoke", self._control_revoke_member),
            ("GET", c + r"/oauth", self._control_get_oauth),
            ("POST", c + r"/oauth", self._control_set_oauth),
        ]

    def _control_health(self, request: _Request) -> _Response:
        return _Response(200, {"status": "ok"})

    def _control_calls(self, request: _Request) -> _Response:
        return _Response(200, {"calls": self.calls})

    def _control_reset_calls(self, request: _Request) -> _Response:
        self.reset_calls()
        return _Response(204)

    def _control_timeline(self, request: _Request) -> _Response:
        return _Response(200, {"lines": self.timeline()})

    def _control_create_requisition(self, request: _Request) -> _Response:
        body = self._json_body(request, required=False) or {}
        if not isinstance(body, dict):
            raise _bad_request("body must be a JSON object")
        try:
            requisition = self.create_requisition(body.get("codes"), appointments=bool(body.get("appointments", True)))
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return _Response(201, requisition)

    def _control_add_fault(self, request: _Request) -> _Response:
        body = self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("method"), str) \
                or not isinstance(body.get("path_regex"), str):
            raise _bad_request("method and path_regex are required strings")
        try:
            self.inject_fault(
                body["method"], body["path_regex"], status=body.get("status", 500),
                count=body.get("count", 1), delay=float(body.get("delay", 0.0)),
                body=body.get("body"), headers=body.get("headers"),
            )
        except (ValueError, TypeError, re.error) as exc:
            raise _bad_request(str(exc)) from None
        return _Response(204)

    def _control_clear_faults(self, request: _Request) -> _Response:
        self.clear_faults()
        return _Response(204)

    def _control_expire_tokens(self, request: _Request) -> _Response:
        self.expire_tokens()
        return _Response(204)

    def _control_send_webhook(self, request: _Request) -> _Response:
        body = self._json_body(request)
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("event_type", "resource_id")):
            raise _bad_request("event_type and resource_id are required strings")
        try:
            status = self.send_partner_webhook(
                body["event_type"], body["resource_id"], url=body.get("url"), signature=body.get("signature"))
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return _Response(200, {"status": status})

    def _control_service_request(self, request: _Request, ident: str) -> _Response:
        with self._lock:
            if ident not in self._service_requests:
                raise _error(404, "not_found")
            return _Response(200, {
                "service_request": self.service_request(ident),
                "reports": self.reports(ident),
                "history": self.status_history(ident),
            })

    def _control_add_member(self, request: _Request) -> _Response:
        body = self._json_body(request, required=False) or {}
        if not isinstance(body, dict) or set(body) - {"user_id"}:
            raise _bad_request("body must be a JSON object with an optional user_id")
        user_id = body.get("user_id")
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1):
            raise _bad_request("user_id must be a positive integer")
        with self._lock:
            if user_id in self._members:
                raise _error(409, "conflict", f"member {user_id} already exists")
            return _Response(201, self.add_member(user_id))

    def _control_revoke_member(self, request: _Request, ident: str) -> _Response:
        try:
            self.revoke_member(int(ident))
        except (ValueError, KeyError):
            raise _error(404, "not_found") from None
        return _Response(204)

    def _control_get_oauth(self, request: _Request) -> _Response:
        with self._lock:
            return _Response(200, {
                "member_client_id": self.member_client_id,
                "redirect_uris": list(self.redirect_uris),
                "decline_consent": self.decline_consent,
                "withhold_scopes": sorted(self.withhold_scopes),
                "user_limit": self.user_limit,
                "signed_in_user_id": self.signed_in_user_id,
                "member_token_ttl_seconds": self.member_token_ttl_seconds,
                "members": len(self._members),
                "authorized_members": sorted(self._authorized),
                "member_code_exchanges": self._member_code_exchanges,
                "member_refreshes": self._member_refreshes,
                "revocations": self._revocations,
            })

    def _control_set_oauth(self, request: _Request) -> _Response:
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise _bad_request("body must be a JSON object")

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_str_list(value: Any) -> bool:
            return isinstance(value, list) and all(isinstance(v, str) for v in value)

        checks: dict[str, tuple[Callable[[Any], bool], str]] = {
            "decline_consent": (lambda v: isinstance(v, bool), "a boolean"),
            "withhold_scopes": (lambda v: is_str_list(v) and set(v) <= MEMBER_SCOPES, "a list of WHOOP scopes"),
            "user_limit": (lambda v: v is None or (is_int(v) and v >= 0), "a non-negative integer or null"),
            "signed_in_user_id": (lambda v: v is None or (is_int(v) and v >= 1), "a positive integer or null"),
            "member_token_ttl_seconds": (lambda v: is_int(v) and v >= 0, "a non-negative integer"),
            "redirect_uris": (is_str_list, "a list of strings"),
        }
        problems = [f"unknown fields: {', '.join(sorted(set(body) - set(checks)))}"] if set(body) - set(checks) else []
        problems += [f"{key} must be {what}" for key, (ok, what) in checks.items() if key in body and not ok(body[key])]
        if problems:
            raise _bad_request(*problems)
        with self._lock:
            if "decline_consent" in body:
                self.decline_consent = body["decline_consent"]
            if "withhold_scopes" in body:
                self.withhold_scopes = set(body["withhold_scopes"])
            if "user_limit" in body:
                self.user_limit = body["user_limit"]
            if "signed_in_user_id" in body:
                self.signed_in_user_id = body["signed_in_user_id"]
            if "member_token_ttl_seconds" in body:
                self.member_token_ttl_seconds = body["member_token_ttl_seconds"]
            if "redirect_uris" in body:
                self.redirect_uris[:] = body["redirect_uris"]  # in place: holders of the list see the change
        return _Response(204)
