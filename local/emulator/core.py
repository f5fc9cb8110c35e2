"""The emulator's shared core: WHOOP's paths, HTTP requests and answers, routing, and the
state every face shares (one lock, the clock, the two developer apps' credentials, the
member directory, the credentials issued and the contract violations seen).

Standard library and the layer's clock only.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from whoop_bridge.clock import Clock, SystemClock

PARTNER_PREFIX = "/developer/v2/partner"
CONTROL_PREFIX = "/_emulator"
TOKEN_PATH = PARTNER_PREFIX + "/token"
OAUTH_PREFIX = "/oauth/oauth2"
AUTHORIZE_PATH = OAUTH_PREFIX + "/auth"
OAUTH_TOKEN_PATH = OAUTH_PREFIX + "/token"
MEMBER_PREFIX = "/developer/v2/user"
DATA_PREFIX = "/developer/v2"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# Fake WHOOP members (standard API). example.com addresses are reserved for fiction.
_FAKE_MEMBERS = (
    ("Avery", "Chen"),
    ("Mateo", "Alvarez"),
    ("Noor", "Haddad"),
    ("Elise", "Moreau"),
    ("Kwame", "Mensah"),
)
FIRST_MEMBER_ID = 10001

Handler = Callable[..., "Response"]
# (method, path regex, handler): each face lists its routes so.
RouteSpec = tuple[str, str, Handler]


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: Message
    body: bytes


@dataclass
class Response:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # pre-encoded body (injected faults with a text body, document content)

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.payload is None:
            return b""
        return json.dumps(self.payload).encode("utf-8")


class HttpError(Exception):
    """Raised by handlers to answer with an error status and JSON body."""

    def __init__(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status, payload)
        self.response = Response(status, payload, dict(headers or {}))


def error(status: int, code: str, message: str | None = None, **extra: Any) -> HttpError:
    """`{"error": code, "message"?: message, **extra}` with `status`."""
    payload: dict[str, Any] = {"error": code}
    if message is not None:
        payload["message"] = message
    payload.update(extra)
    return HttpError(status, payload)


def bad_request(*problems: str) -> HttpError:
    return error(
        400, "invalid_request", problems[0] if len(problems) == 1 else "invalid request", problems=list(problems)
    )


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are not JSON; a strict server refuses them, so a client must not send them.
    raise ValueError(f"invalid JSON constant {name}")


def loads(raw: bytes) -> Any:
    """Strict JSON (no NaN or Infinity) from UTF-8 bytes; ValueError otherwise."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case."""
    return (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def json_body(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body (None when absent and not `required`); 400 otherwise."""
    if not request.body:
        if required:
            raise bad_request("a JSON body is required")
        return None
    try:
        return loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"body is not valid JSON: {exc}") from None


def utc_iso(ts: float | None = None) -> str:
    """ISO 8601 UTC with a `Z`, millisecond precision."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_uuid(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(uuid.UUID(value))
    except ValueError:
        return False


class Router:
    """Table-driven routing: the first (method, regex) whose regex matches the whole path."""

    def __init__(self, routes: list[RouteSpec]) -> None:
        self._routes = [(method, re.compile(pattern), handler) for method, pattern, handler in routes]

    def route(self, request: Request) -> Response:
        """The handler's answer; 405 (with `Allow`) when only other methods match, 404 when
        nothing does, 500 when a handler fails (a handler bug must not kill the connection)."""
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
            except HttpError as exc:
                return exc.response
            except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the connection
                return Response(500, {"error": "internal_error", "message": f"{type(exc).__name__}: {exc}"})
        if allowed:
            return Response(405, {"error": "method_not_allowed"}, {"Allow": ", ".join(sorted(set(allowed)))})
        return Response(404, {"error": "not_found"})


@dataclass(eq=False)
class Core:
    """What every face shares. Faces lock `lock` (re-entrant) around any state they touch.

    `client_id` / `client_secret` / `webhook_secret` are the partner's credentials,
    `member_client_id` / `member_client_secret` the standard-API developer app's; `clock`
    runs the rate-limit windows (a `local.clock.FastClock` makes a minute pass in a second).
    """

    client_id: str = "local-partner-client"
    client_secret: str = "local-partner-secret"
    webhook_secret: str = "local-webhook-secret"
    member_client_id: str = "local-member-client"
    member_client_secret: str = "local-member-secret"
    clock: Clock = field(default_factory=SystemClock)
    lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    members: dict[int, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    issued: list[str] = field(default_factory=list, init=False, repr=False)  # every token and code ever issued
    _violations: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)
    _next_member_id: int = field(default=FIRST_MEMBER_ID, init=False, repr=False)

    # ------------------------------------------------------------------ members

    def add_member(self, user_id: int | None) -> dict[str, Any]:
        """Create and store a member (caller holds the lock); returns the stored profile.
        Without `user_id` the next free id counting from 10001; ValueError if it exists."""
        if user_id is None:
            while self._next_member_id in self.members:
                self._next_member_id += 1
            user_id = self._next_member_id
            self._next_member_id += 1
        elif user_id in self.members:
            raise ValueError(f"member {user_id} already exists")
        first, last = _FAKE_MEMBERS[(user_id - FIRST_MEMBER_ID) % len(_FAKE_MEMBERS)]
        profile = {
            "user_id": user_id,
            "email": f"{first}.{last}.{user_id}@example.com".lower(),
            "first_name": first,
            "last_name": last,
        }
        self.members[user_id] = profile
        return profile

    # ------------------------------------------------------------------ credentials issued

    def issue(self, credential: str) -> str:
        """Note a token or code handed out (caller holds the lock); returns it."""
        self.issued.append(credential)
        return credential

    def issued_credentials(self) -> list[str]:
        """Every token and code ever issued (member and partner), both client secrets and the webhook secret.

        For tests that prove none of them ever reaches a log.
        """
        with self.lock:
            return [*self.issued, self.client_secret, self.member_client_secret, self.webhook_secret]

    # ------------------------------------------------------------------ contract violations

    def contract_violations(self) -> list[dict[str, Any]]:
        """Requests WHOOP's contract (or its docs' rules) does not allow, in arrival order:
        `{"method", "path", "problem"}`. The emulator answers them as WHOOP documents (it
        invents no 400 or 409 where the document lists the answers), so tests assert this
        list empty to prove a client stays inside the contract."""
        with self.lock:
            return [dict(violation) for violation in self._violations]

    def violate(self, request: Request, *problems: str) -> None:
        with self.lock:
            self._violations.extend(
                {"method": request.method, "path": request.path, "problem": problem} for problem in problems
            )
