"""A local emulator of WHOOP's Healthcare Partner API and of its standard developer API.

`WhoopEmulator` runs a small HTTP server on 127.0.0.1 that answers the partner API the way
WHOOP documents it (paths, field names, status codes, the `WHOOP-Signed` webhook signature),
sends signed partner webhooks, and exposes a control API under `/_emulator/` plus a Python
API so tests and demos can create orders, inject faults and inspect what a client did.

It follows WHOOP's OpenAPI document (`contracts/whoop/openapi.json`; `tests/contract/`
validates every answer against it): fields WHOOP marks "only present if" are absent, never
null, and where the document lists a route's answers no other status is invented: a request
WHOOP's rules refuse gets the documented answer and is listed in `contract_violations()`.

It also speaks WHOOP's standard developer API (v2) for members:
- OAuth (authorization code flow at `/oauth/oauth2/auth`, form-encoded `/oauth/oauth2/token`
  with WHOOP's refresh-token rotation, the app's user limit) and the member endpoints a
  connect flow touches (`/developer/v2/user/profile/basic`, `/developer/v2/user/measurement/body`,
  `DELETE /developer/v2/user/access`);
- the data API (whoop-api.md §3.2): cycles, sleeps, recoveries and workouts per member, with
  WHOOP's field names, `score_state`, paginated collections (`limit`, `start`, `end`,
  `nextToken`) and the by-id routes (`/v2/cycle/{id}/recovery` is the only recovery by id).
  `generate_history` fills a member with realistic days; `add_record`, `score`,
  `update_record` and `delete_record` change records the way WHOOP does (a pending sleep
  gets scored later, deleting a sleep deletes its recovery);
- WHOOP's per-app rate limits (§3.4) on every member `/developer/v2/...` call, with the
  `X-RateLimit-*` headers and 429s, counted in fixed windows on `clock` (a `local.clock`
  clock, so a `FastClock` makes a minute pass in a second), plus `burst_429`;
- signed data webhooks (§3.3): `send_member_webhook` posts `{"user_id", "id", "type",
  "trace_id"}` with `X-WHOOP-Signature` (base64 HMAC-SHA256 of timestamp + body, keyed with
  the member client secret) and `X-WHOOP-Signature-Timestamp` (ms since the epoch, real time).

Standard library only, so it runs anywhere the bridge's tests run.

Routing is table-driven: `self._routes` is a list of (method, regex, handler). The partner
API lives in the `_partner_*` methods, OAuth in `_oauth_*`, the member endpoints in
`_member_*`, the data API in `_data_*` and the control API in the `_control_*` methods;
further WHOOP surfaces can be added as further sections of the table.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import http.client
import json
import math
import random
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

from local.clock import RealClock

__all__ = ["WhoopEmulator"]

PARTNER_PREFIX = "/developer/v2/partner"
CONTROL_PREFIX = "/_emulator"
TOKEN_PATH = PARTNER_PREFIX + "/token"
OAUTH_PREFIX = "/oauth/oauth2"
AUTHORIZE_PATH = OAUTH_PREFIX + "/auth"
OAUTH_TOKEN_PATH = OAUTH_PREFIX + "/token"
MEMBER_PREFIX = "/developer/v2/user"

# The standard API's scopes (§3.1); `offline` is what earns a refresh token.
MEMBER_SCOPES = frozenset(
    {
        "read:recovery",
        "read:cycles",
        "read:workout",
        "read:sleep",
        "read:profile",
        "read:body_measurement",
        "offline",
    }
)
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
OBSERVATION_KEYS = frozenset({"code", "value_numeric", "value_text", "unit", "status", "bundle_id"})
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

# Fake patients in WHOOP's UnilabsPatient shape (WHOOP's partner labs are in the UAE).
# Identifiers are visibly fictional: emirates ids with a 0000000 serial, passports XX..., 555 numbers.
_FAKE_PATIENTS = (
    ("Jordan", "Rivera", "1988-04-17", "female", "US"),
    ("Samuel", "Okafor", "1979-11-02", "male", "NG"),
    ("Priya", "Natarajan", "1993-06-25", "female", "IN"),
    ("Lukas", "Brandt", "1985-01-09", "male", "DE"),
)
# UnilabsCollectionAddress: building, area and emirate required; landmark and flat_no optional.
_FAKE_ADDRESSES = (
    {
        "building": "Marina Heights Tower",
        "area": "Dubai Marina",
        "emirate": "Dubai",
        "landmark": "Opposite the marina mall",
        "flat_no": "1203",
    },
    {"building": "Al Reem Residence 4", "area": "Al Reem Island", "emirate": "Abu Dhabi"},
)
# add-test-data's `appointmentType` values; a MOBILE appointment comes to the patient's address.
APPOINTMENT_TYPES = ("IN_PERSON", "MOBILE", "VIRTUAL")

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

# The standard API's data side (§3.2-3.4).
DATA_PREFIX = "/developer/v2"
RECORD_TYPES = ("cycle", "sleep", "recovery", "workout")
SCORED, PENDING_SCORE, UNSCORABLE = "SCORED", "PENDING_SCORE", "UNSCORABLE"
SCORE_STATES = frozenset({SCORED, PENDING_SCORE, UNSCORABLE})
# Data webhooks: only these six (§3.3); a create arrives as `updated`, cycles never appear.
MEMBER_WEBHOOK_TYPES = frozenset(
    f"{kind}.{action}" for kind in ("recovery", "sleep", "workout") for action in ("updated", "deleted")
)
FIRST_CYCLE_ID = 93845
ACTIVITY_MAPPING_PREFIX = "/developer/v1/activity-mapping"
DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT = 10, 25
MAX_PAGE_TOKENS = 10_000  # issued next tokens kept; the oldest are forgotten first
# Field order as WHOOP's v2 schemas list them; `score` only when SCORED.
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "cycle": (
        "id",
        "user_id",
        "created_at",
        "updated_at",
        "start",
        "end",
        "timezone_offset",
        "score_state",
        "step_count",
        "score",
    ),
    "sleep": (
        "id",
        "cycle_id",
        "v1_id",
        "user_id",
        "created_at",
        "updated_at",
        "start",
        "end",
        "timezone_offset",
        "nap",
        "score_state",
        "score",
    ),
    "recovery": ("cycle_id", "sleep_id", "user_id", "created_at", "updated_at", "score_state", "score"),
    "workout": (
        "id",
        "v1_id",
        "user_id",
        "created_at",
        "updated_at",
        "start",
        "end",
        "timezone_offset",
        "sport_name",
        "sport_id",
        "score_state",
        "score",
    ),
}
# Fields WHOOP documents as "only present if" / "not present" / gone since 2025-09-01: absent, never
# null (a current cycle has no `end`; `v1_id` and `sport_id` "will not exist past 09/01/2025").
ABSENT_WHEN_NONE: dict[str, tuple[str, ...]] = {
    "cycle": ("end",),
    "sleep": ("v1_id",),
    "recovery": (),
    "workout": ("v1_id", "sport_id"),
}
# A workout score's distance and altitude are "only present if" WHOOP has such data.
OPTIONAL_WORKOUT_SCORE = ("distance_meter", "altitude_gain_meter", "altitude_change_meter")
# WHOOP sport names; the v1 `sport_id` is no longer sent (a test may still set one).
SPORTS = {"running": 0, "cycling": 1, "rowing": 18, "swimming": 33, "yoga": 44, "weightlifting": 45, "walking": 63}
# Typical speeds (m/s) of the sports that record a distance.
_SPORT_SPEEDS = {
    "running": (2.5, 3.6),
    "cycling": (5.5, 8.5),
    "rowing": (3.2, 4.4),
    "swimming": (0.6, 0.9),
    "walking": (1.2, 1.6),
}
_SPORT_WEIGHTS = {"running": 5, "cycling": 3, "weightlifting": 3, "walking": 3, "yoga": 1, "swimming": 1, "rowing": 1}
_TZ_OFFSETS = ("-05:00", "-04:00", "-08:00", "-07:00", "+00:00", "+01:00", "+02:00", "+10:00")
MINUTE_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000

Handler = Callable[..., "_Response"]

# A tiny, valid one-page PDF: what a lab order form from WHOOP looks like to the bridge.
SAMPLE_DOCUMENT = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def _utc_iso(ts: float | None = None) -> str:
    """ISO 8601 UTC with a `Z`, millisecond precision."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms_iso(ms: int) -> str:
    """Milliseconds since the epoch as WHOOP writes timestamps: `2026-11-20T06:25:44.774Z`."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO-8601 date-time with `Z` or an offset; ValueError otherwise."""
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError(f"not an ISO-8601 date-time: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"date-time without Z or a UTC offset: {text!r}")
    return (moment - _EPOCH) // _MS


def _to_ms(value: Any) -> int:
    """A moment given as epoch seconds, an aware datetime or an ISO-8601 string, in epoch milliseconds."""
    if isinstance(value, bool):
        raise TypeError("a moment must be epoch seconds, an aware datetime or an ISO-8601 string")
    if isinstance(value, (int, float)):
        return round(value * 1000)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetime must be timezone-aware")
        return (value - _EPOCH) // _MS
    if isinstance(value, str):
        return _iso_ms(value)
    raise TypeError("a moment must be epoch seconds, an aware datetime or an ISO-8601 string")


def _offset_ms(offset: str) -> int:
    """`-05:00` as milliseconds east of UTC."""
    sign = -1 if offset.startswith("-") else 1
    hours, _, minutes = offset.lstrip("+-").partition(":")
    return sign * (int(hours) * 60 + int(minutes or 0)) * MINUTE_MS


def _cycle_score(rng: random.Random) -> dict[str, Any]:
    strain = rng.uniform(4.0, 18.5)
    return {
        "strain": round(strain, 6),
        "kilojoule": round(rng.uniform(6500.0, 9000.0) + strain * rng.uniform(250.0, 400.0), 4),
        "average_heart_rate": rng.randint(58, 78),
        "max_heart_rate": rng.randint(135, 192),
    }


def _sleep_score(rng: random.Random, in_bed_ms: int) -> dict[str, Any]:
    in_bed_ms = max(in_bed_ms, HOUR_MS)
    awake = int(in_bed_ms * rng.uniform(0.04, 0.12))
    no_data = 0 if rng.random() < 0.85 else rng.randint(1, 20) * MINUTE_MS
    asleep = max(0, in_bed_ms - awake - no_data)
    slow_wave = int(asleep * rng.uniform(0.16, 0.25))
    rem = int(asleep * rng.uniform(0.18, 0.27))
    baseline = rng.randint(450, 510) * MINUTE_MS
    debt = rng.randint(0, 60) * MINUTE_MS
    strain_need = rng.randint(0, 40) * MINUTE_MS
    need = baseline + debt + strain_need
    return {
        "stage_summary": {
            "total_in_bed_time_milli": in_bed_ms,
            "total_awake_time_milli": awake,
            "total_no_data_time_milli": no_data,
            "total_light_sleep_time_milli": asleep - slow_wave - rem,
            "total_slow_wave_sleep_time_milli": slow_wave,
            "total_rem_sleep_time_milli": rem,
            "sleep_cycle_count": max(1, asleep // (90 * MINUTE_MS)),
            "disturbance_count": rng.randint(3, 18),
        },
        "sleep_needed": {
            "baseline_milli": baseline,
            "need_from_sleep_debt_milli": debt,
            "need_from_recent_strain_milli": strain_need,
            "need_from_recent_nap_milli": 0,
        },
        "respiratory_rate": round(rng.uniform(13.5, 17.5), 6),
        "sleep_performance_percentage": min(100, round(asleep / need * 100)),
        "sleep_consistency_percentage": rng.randint(55, 95),
        "sleep_efficiency_percentage": round(asleep / in_bed_ms * 100, 5),
    }


def _recovery_score(rng: random.Random) -> dict[str, Any]:
    hrv = rng.uniform(28.0, 110.0)
    return {
        "user_calibrating": False,
        "recovery_score": max(1, min(99, round((hrv - 28.0) / 82.0 * 75 + rng.uniform(8, 24)))),
        "resting_heart_rate": rng.randint(46, 66),
        "hrv_rmssd_milli": round(hrv, 6),
        "spo2_percentage": round(rng.uniform(94.0, 99.0), 4),
        "skin_temp_celsius": round(rng.uniform(33.0, 35.2), 2),
    }


def _workout_score(rng: random.Random, sport: str, duration_ms: int) -> dict[str, Any]:
    duration_ms = max(duration_ms, MINUTE_MS)
    hours = duration_ms / HOUR_MS
    average = rng.randint(108, 158)
    weights = [
        rng.uniform(0.0, 0.05),
        rng.uniform(0.05, 0.2),
        rng.uniform(0.2, 0.4),
        rng.uniform(0.15, 0.35),
        rng.uniform(0.0, 0.2),
        rng.uniform(0.0, 0.06),
    ]
    zones = [int(duration_ms * w / sum(weights)) for w in weights]
    zones[2] += duration_ms - sum(zones)
    measured: dict[str, float] = {}
    if sport in _SPORT_SPEEDS:
        distance = round(duration_ms / 1000 * rng.uniform(*_SPORT_SPEEDS[sport]), 6)
        measured["distance_meter"] = distance
        if sport != "swimming":
            measured["altitude_gain_meter"] = round(distance * rng.uniform(0.0, 0.015), 6)
            measured["altitude_change_meter"] = round(rng.uniform(-5.0, 5.0), 6)
    return {
        "strain": round(min(21.0, 2.0 + hours * rng.uniform(4.0, 8.0) + (average - 100) / 12), 4),
        "average_heart_rate": average,
        "max_heart_rate": min(202, average + rng.randint(15, 40)),
        "kilojoule": round(hours * 60 * rng.uniform(30.0, 60.0), 4),
        "percent_recorded": 100.0 if rng.random() < 0.9 else round(rng.uniform(85.0, 99.9), 2),
        **measured,
        "zone_durations": dict(
            zip(
                (
                    "zone_zero_milli",
                    "zone_one_milli",
                    "zone_two_milli",
                    "zone_three_milli",
                    "zone_four_milli",
                    "zone_five_milli",
                ),
                zones,
                strict=True,
            )
        ),
    }


def _new_score(record_type: str, record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A fresh, realistic score for the record."""
    if record_type == "cycle":
        return _cycle_score(rng)
    if record_type == "recovery":
        return _recovery_score(rng)
    start = _iso_ms(record["start"]) if record.get("start") else 0
    end = _iso_ms(record["end"]) if record.get("end") else start + (450 if record_type == "sleep" else 45) * MINUTE_MS
    if record_type == "sleep":
        return _sleep_score(rng, end - start)
    return _workout_score(rng, str(record.get("sport_name")), end - start)


def _settle_score(record_type: str, record: dict[str, Any], rng: random.Random) -> None:
    """Keep `score` consistent with `score_state`: present only when SCORED, then always; and
    leave out, rather than null, the fields WHOOP documents as possibly absent."""
    if record.get("score_state") == SCORED:
        if not isinstance(record.get("score"), dict):
            record["score"] = _new_score(record_type, record, rng)
    else:
        record.pop("score", None)
    for name in ABSENT_WHEN_NONE[record_type]:
        if record.get(name, 0) is None:
            del record[name]
    if record_type == "workout" and isinstance(record.get("score"), dict):
        for name in OPTIONAL_WORKOUT_SCORE:
            if record["score"].get(name, 0) is None:
                del record["score"][name]


def _step_count(rng: random.Random, hours: float) -> int | None:
    """Steps in a cycle of `hours`; None now and then (the device was not worn throughout)."""
    return None if rng.random() < 0.07 else round(hours * rng.uniform(250.0, 700.0))


def _touch(record: dict[str, Any], now_ms: int) -> None:
    """Set `updated_at` to now, or 1 ms after the previous value if now is not later."""
    previous = _iso_ms(record["updated_at"])
    record["updated_at"] = _ms_iso(now_ms if now_ms > previous else previous + 1)


def _short(identifier: str) -> str:
    return identifier[:8] + "…" if len(identifier) > 8 else identifier


def _is_uuid(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(uuid.UUID(value))
    except ValueError:
        return False


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
    return _error(
        400, "invalid_request", problems[0] if len(problems) == 1 else "invalid request", problems=list(problems)
    )


def _oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> _HttpError:
    """An OAuth 2.0 error body (RFC 6749 §5.2): `error` plus `error_description`."""
    return _HttpError(
        status, {"error": error, "error_description": description}, {"Cache-Control": "no-store", **(headers or {})}
    )


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
    """WHOOP Healthcare Partner API and standard developer API emulator (HTTP server plus test controls).

    Partner API under `/developer/v2/partner/...`; WHOOP's member OAuth under
    `/oauth/oauth2/auth` and `/oauth/oauth2/token` (the developer app is `member_client_id`
    / `member_client_secret` with `redirect_uris`); member endpoints under
    `/developer/v2/user/...`; the member data API (`/developer/v2/cycle`, `/v2/recovery`,
    `/v2/activity/sleep`, `/v2/activity/workout` and their by-id routes); control API under
    `/_emulator/...`. Partner and member access tokens are separate: neither works on the
    other's routes. Control calls are neither recorded in `calls` nor subject to injected faults.

    Member data: `generate_history` fills a member with days of cycles, sleeps, recoveries
    and workouts; `records`, `record`, `add_record`, `score`, `update_record` and
    `delete_record` read and change them. Every member `/developer/v2/...` call (partner API
    and OAuth token endpoint excluded) is rate limited per app in fixed windows on `clock`
    (`rate_limit_per_minute`, `rate_limit_per_day`; `burst_429` forces 429s) and listed in
    `member_api_calls()`. `send_member_webhook` sends WHOOP's signed data webhooks to
    `member_webhook_url`, keyed with `member_client_secret`.

    Switches a test may set directly: `decline_consent` (the member says no),
    `withhold_scopes` (scopes never granted), `user_limit` (None = unlimited),
    `member_token_ttl_seconds`, `signed_in_user_id` (the WHOOP member who approves the next
    authorizations; None = a brand-new member each time), `redirect_uris` (a list),
    `rate_limit_per_minute`, `rate_limit_per_day` and `member_webhook_url`.
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
        member_webhook_url: str | None = None,
        clock: RealClock | None = None,
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

        # The data side: rate-limit windows run on `clock`; records on wall-clock time.
        self.clock = clock if clock is not None else RealClock()
        self.member_webhook_url = member_webhook_url
        self.rate_limit_per_minute = 100
        self.rate_limit_per_day = 10_000

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
        self._violations: list[dict[str, Any]] = []

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

        self._data: dict[int, dict[str, dict[Any, dict[str, Any]]]] = {}  # user -> type -> id -> record
        self._member_tz: dict[int, str] = {}  # the member's timezone_offset
        self._next_cycle_id = FIRST_CYCLE_ID
        self._rng = random.Random()  # scores of records added or rescored later
        self._page_tokens: dict[str, tuple[tuple[Any, ...], tuple[int, str]]] = {}  # token -> (query, cursor)
        self._windows: dict[int, tuple[int, int]] = {}  # window size (s) -> (window index, requests served)
        self._burst_left = 0
        self._burst_reset = 0
        self._member_calls: list[dict[str, Any]] = []
        self._member_deliveries: list[dict[str, Any]] = []
        self._v1_activities: dict[int, str] = {}  # v1 activity id -> v2 sleep or workout uuid
        self._documents: dict[str, tuple[dict[str, Any], bytes | None]] = {}  # id -> (PartnerDocument, content)

        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (method, re.compile(pattern), handler)
            for method, pattern, handler in (
                self._partner_routes()
                + self._oauth_routes()
                + self._member_routes()
                + self._data_routes()
                + self._control_routes()
                + self._document_routes()
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
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"whoop-emulator-{self.port}",
                daemon=True,
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

    def create_requisition(
        self,
        codes: Iterable[str] | None = None,
        *,
        appointments: bool = True,
        appointment_type: str = "IN_PERSON",
        based_on: dict[str, list[dict[str, Any]]] | None = None,
    ) -> dict[str, Any]:
        """Create and store a requisition with one service request per code; returns a copy.

        The shape is WHOOP's LabRequisition: a UnilabsPatient (`id`, names, `birth_date`,
        `gender`, `email`, `phone`, `nationality`, `emirates_id`, `passport_no`), service
        requests with `based_on` (`based_on` maps a code to its `{type, id}` references,
        default none) and no `task_business_status` until the partner sets one, and one
        appointment of `appointment_type` (IN_PERSON, MOBILE with the patient's
        `collection_address`, VIRTUAL) booked tomorrow at 08:00 UTC, unless `appointments`
        is False.
        """
        code_list = list(self.test_codes if codes is None else codes)
        if not code_list or not all(isinstance(c, str) and c for c in code_list):
            raise ValueError("codes must be a non-empty list of non-empty strings")
        if appointment_type not in APPOINTMENT_TYPES:
            raise ValueError(f"appointment_type must be one of {', '.join(APPOINTMENT_TYPES)}")
        references = based_on or {}
        if not isinstance(references, dict) or not all(
            isinstance(refs, list) and all(isinstance(ref, dict) and set(ref) == {"type", "id"} for ref in refs)
            for refs in references.values()
        ):
            raise ValueError("based_on must map a code to a list of {type, id} references")
        with self._lock:
            self._patient_counter += 1
            number = self._patient_counter
        first, last, birth_date, gender, nationality = _FAKE_PATIENTS[(number - 1) % len(_FAKE_PATIENTS)]
        address = _FAKE_ADDRESSES[(number - 1) % len(_FAKE_ADDRESSES)]
        now = time.time()
        service_requests = [
            {
                "id": str(uuid.uuid4()),
                "status": "active",
                "intent": "order",
                "code": code,
                "task_description": TASK_DESCRIPTIONS.get(code, code),
                "based_on": copy.deepcopy(references.get(code, [])),
            }
            for code in code_list
        ]
        # Tomorrow at 08:00 UTC, a typical fasting draw slot.
        start = (datetime.fromtimestamp(now, tz=UTC) + timedelta(days=1)).replace(
            hour=8, minute=0, second=0, microsecond=0
        )
        appointment: dict[str, Any] = {
            "type": appointment_type,
            "service_request_ids": [sr["id"] for sr in service_requests],
            "start_time": start.isoformat().replace("+00:00", "Z"),
            "slot_id": str(uuid.uuid4()),
        }
        if appointment_type == "MOBILE":
            appointment["collection_address"] = dict(address)
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
                "phone": f"+971-50-555-{100 + number % 100:04d}",
                "nationality": nationality,
                "emirates_id": f"784-{birth_date[:4]}-0000000-{number % 10}",
                "passport_no": f"XX{number:07d}",
            },
            "service_requests": service_requests,
            "appointments": [appointment] if appointments else [],
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
            user_id, client_id, scopes, time.monotonic() + ttl, refresh_token
        )
        self._issued.append(access_token)
        payload: dict[str, Any] = {"access_token": access_token, "expires_in": ttl}
        if refresh_token is not None:
            self._member_refresh[refresh_token] = _MemberRefresh(user_id, client_id, scopes, access_token)
            self._issued.append(refresh_token)
            payload["refresh_token"] = refresh_token
        payload["scope"] = " ".join(scopes)
        payload["token_type"] = "bearer"
        return payload

    # ------------------------------------------------------------------ member data (Python API)

    def _now_ms(self) -> int:
        # Records live on wall-clock time, as the bridge's windows do; only the rate-limit
        # windows run on `clock` (which a test may speed up).
        return round(time.time() * 1000)

    @staticmethod
    def _check_type(record_type: str) -> None:
        if record_type not in RECORD_TYPES:
            raise ValueError(f"record_type must be one of {', '.join(RECORD_TYPES)}")

    @staticmethod
    def _record_key(record_type: str, record_id: Any) -> Any:
        """The store key of a record id: an int for cycles, the (sleep) uuid string otherwise."""
        if record_type == "cycle":
            if isinstance(record_id, int) and not isinstance(record_id, bool):
                return record_id
            if isinstance(record_id, str) and record_id.isascii() and record_id.isdigit():
                return int(record_id)
            raise KeyError(record_id)
        if isinstance(record_id, (str, uuid.UUID)):
            return str(record_id)
        raise KeyError(record_id)

    def _store(self, user_id: int) -> dict[str, dict[Any, dict[str, Any]]]:
        """The member's records by type (caller holds the lock). KeyError if the member is unknown."""
        if user_id not in self._members:
            raise KeyError(user_id)
        return self._data.setdefault(user_id, {kind: {} for kind in RECORD_TYPES})

    def _find(self, user_id: int, record_type: str, record_id: Any) -> dict[str, Any]:
        """The stored record itself (caller holds the lock). KeyError if unknown."""
        self._check_type(record_type)
        return self._store(user_id)[record_type][self._record_key(record_type, record_id)]

    @staticmethod
    def _timed(store: dict[str, dict[Any, dict[str, Any]]], record_type: str, record: dict[str, Any]) -> dict[str, Any]:
        """The record whose `start`/`end` place this one in time: a recovery has no start of
        its own and is windowed and sorted by its sleep's (WHOOP's `/v2/recovery`)."""
        if record_type == "recovery":
            return store["sleep"].get(record["sleep_id"]) or {
                "start": record["created_at"],
                "end": record["created_at"],
            }
        return record

    def _sort_key(
        self, store: dict[str, dict[Any, dict[str, Any]]], record_type: str, record: dict[str, Any]
    ) -> tuple[int, str]:
        """(start ms, id) to sort newest first; a recovery sorts by its sleep's start."""
        ident = record["sleep_id"] if record_type == "recovery" else record["id"]
        return _iso_ms(self._timed(store, record_type, record)["start"]), str(ident)

    def _sorted(self, user_id: int, record_type: str) -> list[tuple[tuple[int, str], dict[str, Any]]]:
        """(sort key, stored record) pairs, newest first (caller holds the lock)."""
        store = self._data.get(user_id)
        if store is None:
            return []
        pairs = [(self._sort_key(store, record_type, r), r) for r in store[record_type].values()]
        pairs.sort(key=lambda pair: pair[0], reverse=True)
        return pairs

    def _in_window(
        self, user_id: int, record_type: str, record: dict[str, Any], start: int | None, end: int | None
    ) -> bool:
        """WHOOP's collection window: records that occurred after or during `start` (so one
        in progress at `start` counts) and began before `end` (exclusive)."""
        timed = self._timed(self._data[user_id], record_type, record)
        began = _iso_ms(timed["start"])
        if end is not None and began >= end:
            return False
        if start is None or began >= start:
            return True
        return timed.get("end") is None or _iso_ms(timed["end"]) > start

    def generate_history(
        self, user_id: int, days: int = 30, *, end: Any = None, pending_latest: bool = True, seed: Any = None
    ) -> dict[str, int]:
        """Replace the member's records with `days` days of realistic data; returns the counts per type.

        One physiological cycle per day (from the evening's sleep onset to the next one; the
        newest cycle is still open, `end` None), one overnight sleep and one recovery per
        cycle, 0-2 workouts a day. `end` (epoch seconds, aware datetime or ISO string;
        default now) is the moment the history reaches; with `pending_latest` the
        newest sleep and recovery are still PENDING_SCORE. The values are deterministic
        given `seed` (default: `user_id`); ids are not (cycle ids count from 93845).
        Raises KeyError for an unknown member.
        """
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError("days must be a positive integer")
        rng = random.Random(user_id if seed is None else seed)
        with self._lock:
            if user_id not in self._members:
                raise KeyError(user_id)
            end_ms = self._now_ms() if end is None else _to_ms(end)
            offset = rng.choice(_TZ_OFFSETS)
            local_midnight = (end_ms + _offset_ms(offset)) // DAY_MS * DAY_MS - _offset_ms(offset)
            # Nights newest first: (cycle start, sleep start, sleep end); cycle starts fall at
            # 22:00-00:30 local time, and the newest night must be over (and scored a while ago).
            nights: list[tuple[int, int, int]] = []
            midnight = local_midnight + DAY_MS
            while len(nights) < days:
                cycle_start = midnight - 2 * HOUR_MS + rng.randint(0, 150) * MINUTE_MS
                sleep_start = cycle_start + rng.randint(2, 20) * MINUTE_MS
                sleep_end = sleep_start + rng.randint(330, 560) * MINUTE_MS
                midnight -= DAY_MS
                if nights or sleep_end + 30 * MINUTE_MS <= end_ms:
                    nights.append((cycle_start, sleep_start, sleep_end))
            nights.reverse()

            store: dict[str, dict[Any, dict[str, Any]]] = {kind: {} for kind in RECORD_TYPES}
            sports = list(_SPORT_WEIGHTS)
            weights = list(_SPORT_WEIGHTS.values())
            for index, (cycle_start, sleep_start, sleep_end) in enumerate(nights):
                newest = index == len(nights) - 1
                cycle_end = None if newest else nights[index + 1][0]
                pending = newest and pending_latest
                cycle_id = self._next_cycle_id
                self._next_cycle_id += 1
                created = cycle_start + rng.randint(5_000, 120_000)
                updated = (
                    max(created, end_ms - rng.randint(0, 600_000))
                    if newest
                    else cycle_end + rng.randint(60_000, 1_200_000)
                )
                cycle = {
                    "id": cycle_id,
                    "user_id": user_id,
                    "created_at": _ms_iso(created),
                    "updated_at": _ms_iso(updated),
                    "start": _ms_iso(cycle_start),
                    "timezone_offset": offset,
                    "score_state": SCORED,
                    "step_count": _step_count(rng, ((cycle_end or end_ms) - cycle_start) / HOUR_MS),
                    "score": _cycle_score(rng),
                }
                if cycle_end is not None:
                    cycle["end"] = _ms_iso(cycle_end)  # a current cycle has no end
                store["cycle"][cycle_id] = cycle
                sleep_id = str(uuid.uuid4())
                created = sleep_end + rng.randint(60_000, 600_000)
                sleep = {
                    "id": sleep_id,
                    "cycle_id": cycle_id,
                    "user_id": user_id,
                    "created_at": _ms_iso(created),
                    "updated_at": _ms_iso(created if pending else created + rng.randint(5_000, 600_000)),
                    "start": _ms_iso(sleep_start),
                    "end": _ms_iso(sleep_end),
                    "timezone_offset": offset,
                    "nap": False,
                    "score_state": PENDING_SCORE if pending else SCORED,
                }
                if not pending:
                    sleep["score"] = _sleep_score(rng, sleep_end - sleep_start)
                store["sleep"][sleep_id] = sleep
                created += rng.randint(10_000, 120_000)
                recovery = {
                    "cycle_id": cycle_id,
                    "sleep_id": sleep_id,
                    "user_id": user_id,
                    "created_at": _ms_iso(created),
                    "updated_at": _ms_iso(created if pending else created + rng.randint(5_000, 600_000)),
                    "score_state": PENDING_SCORE if pending else SCORED,
                }
                if not pending:
                    recovery["score"] = _recovery_score(rng)
                store["recovery"][sleep_id] = recovery
                # Workouts in the day: after waking, an hour clear of either night, in separate slots.
                day_start = sleep_end + HOUR_MS
                day_end = (cycle_end if cycle_end is not None else end_ms) - HOUR_MS
                count = rng.choice((0, 1, 1, 1, 2))
                slot = (day_end - day_start) // max(count, 1)
                for number in range(count):
                    duration = rng.randint(20, 95) * MINUTE_MS
                    if slot < duration + 15 * MINUTE_MS:
                        break
                    workout_start = (
                        day_start + number * slot + rng.randint(0, (slot - duration) // MINUTE_MS) * MINUTE_MS
                    )
                    workout_end = workout_start + duration
                    created = workout_end + rng.randint(60_000, 600_000)
                    if created > end_ms:
                        break
                    sport = rng.choices(sports, weights)[0]
                    workout_id = str(uuid.uuid4())
                    store["workout"][workout_id] = {
                        "id": workout_id,
                        "user_id": user_id,
                        "created_at": _ms_iso(created),
                        "updated_at": _ms_iso(min(end_ms, created + rng.randint(5_000, 300_000))),
                        "start": _ms_iso(workout_start),
                        "end": _ms_iso(workout_end),
                        "timezone_offset": offset,
                        "sport_name": sport,
                        "score_state": SCORED,
                        "score": _workout_score(rng, sport, duration),
                    }
            self._data[user_id] = store
            self._member_tz[user_id] = offset
            return {kind: len(store[kind]) for kind in RECORD_TYPES}

    def records(self, user_id: int, record_type: str) -> list[dict[str, Any]]:
        """The member's records of a type (copies), newest first by start (recovery: its sleep's start)."""
        self._check_type(record_type)
        with self._lock:
            self._store(user_id)
            return [copy.deepcopy(record) for _, record in self._sorted(user_id, record_type)]

    def record(self, user_id: int, record_type: str, record_id: Any) -> dict[str, Any]:
        """One record (a copy); a recovery's id is its sleep id, cycle ids are ints. KeyError if unknown."""
        with self._lock:
            return copy.deepcopy(self._find(user_id, record_type, record_id))

    def add_record(
        self, user_id: int, record_type: str, *, pending: bool = True, start: Any = None, **fields: Any
    ) -> dict[str, Any]:
        """Add a record as WHOOP would create it (PENDING_SCORE unless `pending=False`); returns a copy.

        `start` (epoch seconds, aware datetime or ISO string) defaults to now for a cycle
        (which closes the open cycle before it), 8 h ago for a sleep and 1 h ago for a
        workout. A sleep attaches to the newest cycle unless `cycle_id` is given; a recovery
        needs `sleep_id` (its cycle is the sleep's). `fields` override any WHOOP field.
        """
        self._check_type(record_type)
        unknown = sorted(set(fields) - set(RECORD_FIELDS[record_type]))
        if unknown or "user_id" in fields:
            raise ValueError(f"fields not settable on a {record_type}: {', '.join(unknown or ['user_id'])}")
        with self._lock:
            store = self._store(user_id)
            now = self._now_ms()
            stamp = _ms_iso(now)
            offset = self._member_tz.get(user_id, "+00:00")
            record: dict[str, Any] = dict.fromkeys(RECORD_FIELDS[record_type][:-1])
            record.update(
                user_id=user_id, created_at=stamp, updated_at=stamp, score_state=PENDING_SCORE if pending else SCORED
            )
            if record_type == "recovery":
                if start is not None:
                    raise ValueError("a recovery has no start; it belongs to its sleep")
                sleep_id = fields.get("sleep_id")
                sleep = store["sleep"].get(str(sleep_id)) if isinstance(sleep_id, (str, uuid.UUID)) else None
                if sleep is None:
                    raise ValueError("a recovery needs the sleep_id of one of the member's sleeps")
                if sleep["id"] in store["recovery"]:
                    raise ValueError(f"sleep {sleep['id']} already has a recovery")
                record.update(cycle_id=sleep["cycle_id"], sleep_id=sleep["id"])
            else:
                default_start = {"cycle": now, "sleep": now - 8 * HOUR_MS, "workout": now - HOUR_MS}[record_type]
                start_ms = default_start if start is None else _to_ms(start)
                record.update(start=_ms_iso(start_ms), timezone_offset=offset)
                if record_type == "cycle":
                    record["id"] = self._next_cycle_id
                elif record_type == "sleep":
                    record.update(id=str(uuid.uuid4()), end=_ms_iso(start_ms + 450 * MINUTE_MS), nap=False)
                    cycle_id = fields.get("cycle_id")
                    if cycle_id is None:
                        newest = self._sorted(user_id, "cycle")
                        if not newest:
                            raise ValueError("the member has no cycle for the sleep; add one or pass cycle_id")
                        cycle_id = newest[0][1]["id"]
                    if cycle_id not in store["cycle"]:
                        raise ValueError(f"unknown cycle_id {cycle_id!r}")
                    record["cycle_id"] = cycle_id
                else:
                    sport = fields.get("sport_name", "running")
                    record.update(id=str(uuid.uuid4()), end=_ms_iso(start_ms + 45 * MINUTE_MS), sport_name=sport)
            for name in ("start", "end", "created_at", "updated_at"):
                if fields.get(name) is not None:
                    fields[name] = _ms_iso(_to_ms(fields[name]))
            record.update(fields)
            try:
                key = self._record_key(record_type, record["sleep_id"] if record_type == "recovery" else record["id"])
            except KeyError:
                raise ValueError(f"invalid {record_type} id {record['id']!r}") from None
            if key in store[record_type]:
                raise ValueError(f"{record_type} {key} already exists")
            record["score_state"] = record["score_state"] if record["score_state"] in SCORE_STATES else PENDING_SCORE
            _settle_score(record_type, record, self._rng)
            if record_type == "cycle":
                self._next_cycle_id = max(self._next_cycle_id - 1, key) + 1
                for _, other in self._sorted(user_id, "cycle"):
                    if other.get("end") is None and _iso_ms(other["start"]) < _iso_ms(record["start"]):
                        other["end"] = record["start"]  # a new cycle closes the open one
                        _touch(other, now)
            store[record_type][key] = record
            return copy.deepcopy(record)

    def map_v1_activity(self, v1_id: int, activity_id: str) -> None:
        """Let `GET /v1/activity-mapping/{v1_id}` answer `activity_id` (a sleep or workout uuid)."""
        if isinstance(v1_id, bool) or not isinstance(v1_id, int) or v1_id < 0 or not _is_uuid(activity_id):
            raise ValueError("v1_id must be a non-negative integer and activity_id a uuid")
        with self._lock:
            self._v1_activities[v1_id] = activity_id

    def score(self, user_id: int, record_type: str, record_id: Any) -> dict[str, Any]:
        """Score the record (SCORED with a new score, `updated_at` now); a scored record is rescored."""
        with self._lock:
            record = self._find(user_id, record_type, record_id)
            record["score_state"] = SCORED
            record["score"] = _new_score(record_type, record, self._rng)
            _touch(record, self._now_ms())
            return copy.deepcopy(record)

    def update_record(self, user_id: int, record_type: str, record_id: Any, **fields: Any) -> dict[str, Any]:
        """Change fields of a record and bump `updated_at` (unless given); returns a copy.

        Setting `score_state` to SCORED without a score generates one; any other state drops it.
        """
        self._check_type(record_type)
        fixed = {"user_id", "sleep_id" if record_type == "recovery" else "id"}
        unknown = sorted((set(fields) - set(RECORD_FIELDS[record_type])) | (set(fields) & fixed))
        if unknown:
            raise ValueError(f"fields not changeable on a {record_type}: {', '.join(unknown)}")
        if "score_state" in fields and fields["score_state"] not in SCORE_STATES:
            raise ValueError(f"score_state must be one of {', '.join(sorted(SCORE_STATES))}")
        with self._lock:
            record = self._find(user_id, record_type, record_id)
            for name in ("start", "end", "created_at", "updated_at"):
                if fields.get(name) is not None:
                    fields[name] = _ms_iso(_to_ms(fields[name]))
            record.update(fields)
            _settle_score(record_type, record, self._rng)
            if "updated_at" not in fields:
                _touch(record, self._now_ms())
            return copy.deepcopy(record)

    def delete_record(self, user_id: int, record_type: str, record_id: Any) -> list[str]:
        """Delete a record; returns the webhook types WHOOP would send for it (none for a cycle).

        Deleting a sleep deletes its recovery too: `["sleep.deleted", "recovery.deleted"]`.
        """
        with self._lock:
            record = self._find(user_id, record_type, record_id)
            store = self._store(user_id)
            key = self._record_key(record_type, record["sleep_id"] if record_type == "recovery" else record["id"])
            del store[record_type][key]
            if record_type == "cycle":
                return []
            events = [f"{record_type}.deleted"]
            if record_type == "sleep" and store["recovery"].pop(key, None) is not None:
                events.append("recovery.deleted")
            return events

    # ------------------------------------------------------------------ rate limits (standard API, per app)

    def burst_429(self, count: int, reset_seconds: float = 2) -> None:
        """The next `count` member API calls answer 429 (Remaining 0, Reset `reset_seconds`), whatever the windows say."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("count must be a non-negative integer")
        if isinstance(reset_seconds, bool) or not isinstance(reset_seconds, (int, float)) or reset_seconds < 0:
            raise ValueError("reset_seconds must be a non-negative number")
        with self._lock:
            self._burst_left = count
            self._burst_reset = math.ceil(reset_seconds)

    def _limit_header(self, first: int) -> str:
        return f"{first}, {self.rate_limit_per_minute};window=60, {self.rate_limit_per_day};window=86400"

    def _rate_limit(self, now: float, *, consume: bool = True) -> tuple[bool, dict[str, str]]:
        """Count a member API request in the fixed windows; (refused, X-RateLimit-* headers).

        With `consume=False` only the headers are computed (nothing is counted).
        """
        with self._lock:
            if consume and self._burst_left > 0:
                self._burst_left -= 1
                return True, {
                    "X-RateLimit-Limit": self._limit_header(self.rate_limit_per_minute),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(self._burst_reset),
                }
            windows = []
            for size, limit in ((60, self.rate_limit_per_minute), (86_400, self.rate_limit_per_day)):
                index = math.floor(now / size)
                if self._windows.get(size, (None, 0))[0] != index:
                    self._windows[size] = (index, 0)
                windows.append((size, limit, index))
            refused = any(self._windows[size][1] >= limit for size, limit, _ in windows)
            if consume and not refused:
                for size, _, index in windows:
                    self._windows[size] = (index, self._windows[size][1] + 1)
            # Report the window closest to being hit; on a tie the one that resets last.
            states = [
                (max(0, limit - self._windows[size][1]), -math.ceil((index + 1) * size - now), limit)
                for size, limit, index in windows
            ]
            remaining, negative_reset, limit = min(states)
            return refused, {
                "X-RateLimit-Limit": self._limit_header(limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(-negative_reset),
            }

    def member_api_calls(self) -> list[dict[str, Any]]:
        """Member `/developer/v2/...` calls (partner API excluded), in arrival order.

        Each `{"time" (clock time on arrival), "method", "path", "status", "user_id"}`;
        `user_id` is the bearer token's member, None if the call had no live member token.
        """
        with self._lock:
            return copy.deepcopy(self._member_calls)

    def rate_limited_calls(self) -> list[dict[str, Any]]:
        """The member API calls answered 429 (rate limit, `burst_429` or an injected 429)."""
        return [call for call in self.member_api_calls() if call["status"] == 429]

    def _token_user(self, request: _Request) -> int | None:
        """The member of the request's live bearer token, if any."""
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        with self._lock:
            access = self._member_access.get(token.strip()) if scheme.lower() == "bearer" else None
            return access.user_id if access is not None and time.monotonic() < access.expiry else None

    # ------------------------------------------------------------------ calls and timeline

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Completed API calls in arrival order: `{"seq", "time" (arrival, epoch s), "method", "path", "status", "body", "user_agent"}`."""
        with self._lock:
            return [self._public_call(c) for c in self._calls]

    def calls_to(self, method: str, path_regex: str) -> list[dict[str, Any]]:
        """Recorded calls with this method (or "*") whose path matches `path_regex` (re.search)."""
        pattern = re.compile(path_regex)
        return [c for c in self.calls if (method == "*" or c["method"] == method.upper()) and pattern.search(c["path"])]

    def reset_calls(self) -> None:
        """Forget recorded calls, `member_api_calls()` included (sequence numbers keep counting)."""
        with self._lock:
            self._calls.clear()
            self._member_calls.clear()

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

    def _record(
        self, request: _Request, arrival: tuple[int, float], status: int, *, injected: bool = False, delay: float = 0.0
    ) -> None:
        body = self._recorded_body(request)
        seq, arrived = arrival
        with self._lock:
            self._calls.append(
                {
                    "seq": seq,
                    "time": arrived,
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "body": body,
                    "user_agent": request.headers.get("User-Agent"),
                    "_injected": injected,
                    "_delay": delay,
                }
            )
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
            re.escape(PARTNER_PREFIX) + r"/(requisition|service-request)/([^/]+)(?:/(status|results))?", path
        )
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
            text = f"{method} {path[len(PARTNER_PREFIX) + 1 :]}"
        elif path == AUTHORIZE_PATH:
            text = f"{method} oauth authorize"
        elif path == OAUTH_TOKEN_PATH:
            grant = body.get("grant_type") if isinstance(body, dict) else None
            shown = grant if isinstance(grant, str) and re.fullmatch(r"[a-z_]{1,40}", grant) else "?"
            text = f"{method} oauth token {shown}"
        elif path.startswith(DATA_PREFIX + "/"):
            text = f"{method} {path.removeprefix(DATA_PREFIX + '/')}"
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
            return _Response(fault.status, {"error": error, "message": f"injected {fault.status}"}, dict(fault.headers))
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
        body = json.dumps({"event_type": event_type, "resource_id": resource_id}, separators=(",", ":")).encode("utf-8")
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
            connection.request(
                "POST", path, body=body, headers={"Content-Type": "application/json", "WHOOP-Signed": header}
            )
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            status, error = 0, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with self._lock:
            self._deliveries.append(
                {
                    "time": time.time(),
                    "url": target,
                    "event_type": event_type,
                    "resource_id": resource_id,
                    "signature": header,
                    "status": status,
                    "error": error,
                }
            )
        return status

    @property
    def member_webhook_deliveries(self) -> list[dict[str, Any]]:
        """Data webhooks sent: `{"time", "url", "user_id", "type", "id", "trace_id", "timestamp", "signature", "status", "error"}`."""
        with self._lock:
            return copy.deepcopy(self._member_deliveries)

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
        """POST a signed data webhook (§3.3); returns the HTTP status (0 if unreachable).

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
        target = url or self.member_webhook_url
        if not target:
            raise ValueError("no webhook URL: pass url= or set member_webhook_url")
        parts = urllib.parse.urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be http(s): {target!r}")
        trace = trace_id if trace_id is not None else str(uuid.uuid4())
        # Compact JSON; these exact bytes are what gets signed and sent.
        body = json.dumps(
            {"user_id": user_id, "id": str(record_id), "type": event_type, "trace_id": trace}, separators=(",", ":")
        ).encode("utf-8")
        timestamp = str(round(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        computed = base64.b64encode(
            hmac.new(
                self.member_client_secret.encode("utf-8"), timestamp.encode("ascii") + body, hashlib.sha256
            ).digest()
        ).decode("ascii")
        header = computed if signature is None else signature
        # http.client, as for partner webhooks: the documented header casing reaches the receiver.
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=10)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        error: str | None = None
        try:
            connection.request(
                "POST",
                path,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "X-WHOOP-Signature": header,
                    "X-WHOOP-Signature-Timestamp": timestamp,
                },
            )
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            status, error = 0, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with self._lock:
            self._member_deliveries.append(
                {
                    "time": time.time(),
                    "url": target,
                    "user_id": user_id,
                    "type": event_type,
                    "id": str(record_id),
                    "trace_id": trace,
                    "timestamp": timestamp,
                    "signature": header,
                    "status": status,
                    "error": error,
                }
            )
        return status

    # ------------------------------------------------------------------ dispatch

    @staticmethod
    def _is_member_api(path: str) -> bool:
        """A member call of the standard API: `/developer/v2/...` but not the partner API."""
        return path.startswith(DATA_PREFIX + "/") and not (
            path == PARTNER_PREFIX or path.startswith(PARTNER_PREFIX + "/")
        )

    def _handle(self, request: _Request) -> _Response:
        """Apply faults and rate limits, route, record. Called from server threads."""
        if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
            return self._route(request)
        arrival = self._arrive()
        member_api = self._is_member_api(request.path)
        if member_api:
            # Resolved before routing: a revocation kills the token it arrives with.
            member_call = {
                "time": self.clock.time(),
                "method": request.method,
                "path": request.path,
                "status": None,
                "user_id": self._token_user(request),
            }
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)  # outside the lock, so other calls proceed
            if fault.status is not None:
                response = self._fault_response(fault)
                if member_api and not any(k.lower().startswith("x-ratelimit-") for k in response.headers):
                    response.headers.update(self._rate_limit(self.clock.time(), consume=False)[1])
                self._record(request, arrival, response.status, injected=True)
                if member_api:
                    self._record_member_call(member_call, response.status)
                return response
        if member_api:
            refused, limit_headers = self._rate_limit(self.clock.time())
            if refused:
                response = _Response(429, {"error": "too_many_requests"})
            else:
                response = self._route(request)
            response.headers.update(limit_headers)
        else:
            response = self._route(request)
        self._record(request, arrival, response.status, delay=fault.delay if fault else 0.0)
        if member_api:
            self._record_member_call(member_call, response.status)
        return response

    def _record_member_call(self, call: dict[str, Any], status: int) -> None:
        with self._lock:
            call["status"] = status
            self._member_calls.append(call)

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
        # WHOOP documents 200 and 401 only: a malformed token request is a 401 here, and the
        # emulator's stricter reading is recorded as a contract violation.
        problems = []
        body: Any = None
        if _media_type(request) != "application/json":
            problems.append("Content-Type must be application/json")
        else:
            try:
                body = _loads(request.body) if request.body else None
            except (ValueError, UnicodeDecodeError) as exc:
                problems.append(f"body is not valid JSON: {exc}")
        if not problems and not isinstance(body, dict):
            problems.append("body must be a JSON object")
        if isinstance(body, dict):
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
            self._violate(request, *problems)
            raise _error(401, "invalid_client", "client authentication failed")
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

    def _partner_json(self, request: _Request) -> tuple[Any, list[str]]:
        """The JSON body of a partner call and what is wrong with its framing."""
        if _media_type(request) != "application/json":
            return None, ["Content-Type must be application/json"]
        if not request.body:
            return None, ["a JSON body is required"]
        try:
            return _loads(request.body), []
        except (ValueError, UnicodeDecodeError) as exc:
            return None, [f"body is not valid JSON: {exc}"]

    def _status_body_problems(self, request: _Request) -> tuple[str | None, str | None, list[str]]:
        """(task_business_status, reason, problems) of a status PATCH."""
        body, problems = self._partner_json(request)
        if problems:
            return None, None, problems
        if not isinstance(body, dict):
            return None, None, ["body must be a JSON object"]
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
        return status, reason, problems

    def _apply_status(
        self, request: _Request, sr_ids: list[str], status: str | None, reason: str | None, problems: list[str]
    ) -> None:
        """Check the body and every transition, then apply all or nothing (caller holds the lock).

        WHOOP documents no 400 or 409 on the status routes, so a refused change is recorded
        as a contract violation (`contract_violations()`) and the documented answer is sent.
        """
        for sr_id in sr_ids:
            if status is None or problems:
                break
            problem = _transition_problem(self._service_requests[sr_id].get("task_business_status"), status)
            if problem:
                problems.append(f"service request {sr_id}: {problem}")
        if problems:
            self._violate(request, *problems)
            return
        now = _utc_iso()
        for sr_id in sr_ids:
            self._service_requests[sr_id]["task_business_status"] = status
            self._history.setdefault(sr_id, []).append({"status": status, "reason": reason, "time": now})
            requisition = self._requisitions.get(self._sr_requisition.get(sr_id, ""))
            if requisition is not None:
                requisition["updated_at"] = now

    def _partner_patch_requisition_status(self, request: _Request, ident: str) -> _Response:
        status, reason, problems = self._status_body_problems(request)
        with self._lock:
            requisition = self._requisitions.get(ident)
            if requisition is None:
                raise _error(404, "not_found")
            sr_ids = [
                sr["id"]
                for sr in requisition.get("service_requests") or []
                if isinstance(sr, dict) and sr.get("id") in self._service_requests
            ]
            self._apply_status(request, sr_ids, status, reason, problems)
        return _Response(204)

    def _partner_patch_service_request_status(self, request: _Request, ident: str) -> _Response:
        status, reason, problems = self._status_body_problems(request)
        with self._lock:
            if ident not in self._service_requests:
                raise _error(404, "not_found")
            self._apply_status(request, [ident], status, reason, problems)
            return _Response(200, copy.deepcopy(self._service_requests[ident]))

    @staticmethod
    def _report_problems(body: Any) -> list[str]:
        """What a DiagnosticReportCreateRequest breaks: WHOOP's schema (every field optional,
        `bundle_id` a uuid), the docs' "a value is required" rule, and no unknown fields."""
        if not isinstance(body, dict):
            return ["body must be a JSON object"]
        problems = []
        extra = sorted(set(body) - REPORT_KEYS)
        if extra:
            problems.append(f"unknown fields: {', '.join(extra)}")
        if "status" in body and body["status"] not in REPORT_STATUSES:
            problems.append(f"status must be one of {', '.join(sorted(REPORT_STATUSES))}")
        observations = body.get("observations")
        if observations is None and body.get("status") == "cancelled":
            return problems  # a cancelled report may carry no observations
        if not isinstance(observations, list) or (not observations and body.get("status") != "cancelled"):
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
            if "status" in obs and obs["status"] not in OBSERVATION_STATUSES:
                problems.append(f"{where}.status must be one of {', '.join(sorted(OBSERVATION_STATUSES))}")
            if "bundle_id" in obs and not _is_uuid(obs["bundle_id"]):
                problems.append(f"{where}.bundle_id must be a uuid")
        return problems

    def _partner_post_results(self, request: _Request, ident: str) -> _Response:
        # WHOOP documents 201 and 404 only: a report WHOOP's rules refuse is recorded as a
        # contract violation (and not stored), never answered with an invented 400 or 409.
        body, problems = self._partner_json(request)
        problems = problems or self._report_problems(body)
        with self._lock:
            service_request = self._service_requests.get(ident)
            if service_request is None:
                raise _error(404, "not_found")
            current = service_request.get("task_business_status")
            if not problems and current in ISSUE_STATUSES:
                problems.append(f"service request {ident} is in {current}; results are closed")
            if problems:
                self._violate(request, *problems)
            else:
                self._reports.setdefault(ident, []).append(copy.deepcopy(body))
        return _Response(201)

    def _partner_add_test_data(self, request: _Request) -> _Response:
        """A test member and a requisition with a booked appointment: 200 `{"requisition_id"}`.

        `appointmentType` (query) is IN_PERSON (default), MOBILE or VIRTUAL. WHOOP sends no
        webhook for it: the caller fetches the requisition by the returned id. 404 in production.
        """
        if self.production:
            raise _error(404, "not_found")
        params = urllib.parse.parse_qs(request.query, keep_blank_values=True)
        appointment_type = (params.get("appointmentType") or ["IN_PERSON"])[-1]
        if appointment_type not in APPOINTMENT_TYPES:
            self._violate(request, f"appointmentType must be one of {', '.join(APPOINTMENT_TYPES)}")
            appointment_type = "IN_PERSON"
        requisition = self.create_requisition(appointment_type=appointment_type)
        return _Response(200, {"requisition_id": requisition["id"]})

    # ------------------------------------------------------------------ contract violations

    def contract_violations(self) -> list[dict[str, Any]]:
        """Requests WHOOP's contract (or its docs' rules) does not allow, in arrival order:
        `{"method", "path", "problem"}`. The emulator answers them as WHOOP documents (it
        invents no 400 or 409 where the document lists the answers), so tests assert this
        list empty to prove a client stays inside the contract."""
        with self._lock:
            return copy.deepcopy(self._violations)

    def _violate(self, request: _Request, *problems: str) -> None:
        with self._lock:
            self._violations.extend(
                {"method": request.method, "path": request.path, "problem": problem} for problem in problems
            )

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
            self._codes[code] = _AuthCode(
                client_id, redirect_uri, user_id, granted, time.monotonic() + CODE_TTL_SECONDS
            )
            self._issued.append(code)
            self._authorized.add(user_id)
        return self._redirect(redirect_uri, {"code": code, "state": state})

    def _oauth_form(self, request: _Request) -> dict[str, str]:
        if _media_type(request) != FORM_CONTENT_TYPE:
            raise _oauth_error(400, "invalid_request", f"Content-Type must be {FORM_CONTENT_TYPE}")
        try:
            fields = urllib.parse.parse_qs(
                request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, errors="strict"
            )
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
                return _Response(
                    403,
                    {"error": "insufficient_scope"},
                    {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
                )
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

    # ------------------------------------------------------------------ member data endpoints (standard API)

    def _data_routes(self) -> list[tuple[str, str, Handler]]:
        d = re.escape(DATA_PREFIX)
        ident = r"(?P<ident>[^/]+)"
        authed = self._member_authed
        return [
            ("GET", d + r"/cycle", authed(self._data_collection("cycle"), "read:cycles")),
            ("GET", d + rf"/cycle/{ident}", authed(self._data_cycle, "read:cycles")),
            ("GET", d + rf"/cycle/{ident}/sleep", authed(self._data_cycle_sleep, "read:sleep")),
            ("GET", d + rf"/cycle/{ident}/recovery", authed(self._data_cycle_recovery, "read:recovery")),
            ("GET", d + r"/recovery", authed(self._data_collection("recovery"), "read:recovery")),
            ("GET", d + r"/activity/sleep", authed(self._data_collection("sleep"), "read:sleep")),
            ("GET", d + rf"/activity/sleep/{ident}", authed(self._data_by_id("sleep"), "read:sleep")),
            ("GET", d + r"/activity/workout", authed(self._data_collection("workout"), "read:workout")),
            ("GET", d + rf"/activity/workout/{ident}", authed(self._data_by_id("workout"), "read:workout")),
            # No security in WHOOP's document: the v1 -> v2 id mapping is public.
            ("GET", re.escape(ACTIVITY_MAPPING_PREFIX) + r"/(?P<ident>[^/]+)", self._data_activity_mapping),
        ]

    @staticmethod
    def _page_query(request: _Request) -> tuple[int, int | None, int | None, str | None]:
        """`limit`, `start`, `end` (ms) and `nextToken` of a collection call; 400 when malformed."""
        params = urllib.parse.parse_qs(request.query, keep_blank_values=True)
        repeated = sorted(name for name, values in params.items() if len(values) > 1)
        if repeated:
            raise _bad_request(f"parameters repeated: {', '.join(repeated)}")
        query = {name: values[0] for name, values in params.items()}
        limit = DEFAULT_PAGE_LIMIT
        if "limit" in query:
            raw = query["limit"]
            if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGE_LIMIT):
                raise _bad_request(f"limit must be an integer from 1 to {MAX_PAGE_LIMIT}")
            limit = int(raw)
        bounds: list[int | None] = []
        for name in ("start", "end"):
            if name not in query:
                bounds.append(None)
                continue
            try:
                bounds.append(_iso_ms(query[name]))
            except ValueError:
                raise _bad_request(f"{name} must be an ISO-8601 date-time with Z or a UTC offset") from None
        return limit, bounds[0], bounds[1], query.get("nextToken") or None

    def _data_collection(self, record_type: str) -> Handler:
        def handler(request: _Request, access: _MemberAccess) -> _Response:
            limit, start, end, token = self._page_query(request)
            query_key = (access.user_id, request.path, start, end)
            with self._lock:
                pairs = [
                    (key, record)
                    for key, record in self._sorted(access.user_id, record_type)
                    if self._in_window(access.user_id, record_type, record, start, end)
                ]
                if token is not None:
                    issued = self._page_tokens.get(token)
                    if issued is None or issued[0] != query_key:
                        raise _bad_request("nextToken was not issued for this query")
                    pairs = [(key, record) for key, record in pairs if key < issued[1]]
                page = pairs[:limit]
                body: dict[str, Any] = {"records": [copy.deepcopy(record) for _, record in page]}
                if len(pairs) > limit:  # on the last page `next_token` is absent
                    next_token = secrets.token_urlsafe(18)
                    self._page_tokens[next_token] = (query_key, page[-1][0])
                    while len(self._page_tokens) > MAX_PAGE_TOKENS:
                        del self._page_tokens[next(iter(self._page_tokens))]
                    body["next_token"] = next_token
                return _Response(200, body)

        return handler

    def _data_lookup(self, user_id: int, record_type: str, ident: str) -> dict[str, Any]:
        """A copy of the member's record, or 404 (unknown, malformed or someone else's)."""
        with self._lock:
            try:
                return copy.deepcopy(self._find(user_id, record_type, ident))
            except KeyError:
                raise _error(404, "not_found") from None

    def _data_by_id(self, record_type: str) -> Handler:
        def handler(request: _Request, access: _MemberAccess, ident: str) -> _Response:
            return _Response(200, self._data_lookup(access.user_id, record_type, ident))

        return handler

    def _data_cycle(self, request: _Request, access: _MemberAccess, ident: str) -> _Response:
        return _Response(200, self._data_lookup(access.user_id, "cycle", ident))

    def _data_of_cycle(self, user_id: int, record_type: str, ident: str) -> _Response:
        """The cycle's (main, not nap) sleep or its recovery, the newest if several; 404 if none."""
        cycle_id = self._data_lookup(user_id, "cycle", ident)["id"]
        with self._lock:
            for _, record in self._sorted(user_id, record_type):
                if record["cycle_id"] == cycle_id and not record.get("nap"):
                    return _Response(200, copy.deepcopy(record))
        raise _error(404, "not_found")

    def _data_activity_mapping(self, request: _Request, ident: str) -> _Response:
        with self._lock:
            v2_id = self._v1_activities.get(int(ident)) if ident.isascii() and ident.isdigit() else None
        if v2_id is None:
            raise _error(404, "not_found")
        return _Response(200, {"v2_activity_id": v2_id})

    def _data_cycle_sleep(self, request: _Request, access: _MemberAccess, ident: str) -> _Response:
        return self._data_of_cycle(access.user_id, "sleep", ident)

    def _data_cycle_recovery(self, request: _Request, access: _MemberAccess, ident: str) -> _Response:
        return self._data_of_cycle(access.user_id, "recovery", ident)

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
            ("POST", c + r"/members/(?P<ident>[^/]+)/history", self._control_generate_history),
            ("POST", c + r"/members/(?P<ident>[^/]+)/webhooks", self._control_send_member_webhook),
            ("GET", c + r"/members/(?P<ident>[^/]+)/records/(?P<record_type>[^/]+)", self._control_records),
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
            requisition = self.create_requisition(
                body.get("codes"),
                appointments=bool(body.get("appointments", True)),
                appointment_type=body.get("appointment_type", "IN_PERSON"),
                based_on=body.get("based_on"),
            )
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return _Response(201, requisition)

    def _control_add_fault(self, request: _Request) -> _Response:
        body = self._json_body(request)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("method"), str)
            or not isinstance(body.get("path_regex"), str)
        ):
            raise _bad_request("method and path_regex are required strings")
        try:
            self.inject_fault(
                body["method"],
                body["path_regex"],
                status=body.get("status", 500),
                count=body.get("count", 1),
                delay=float(body.get("delay", 0.0)),
                body=body.get("body"),
                headers=body.get("headers"),
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
                body["event_type"], body["resource_id"], url=body.get("url"), signature=body.get("signature")
            )
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return _Response(200, {"status": status})

    def _control_service_request(self, request: _Request, ident: str) -> _Response:
        with self._lock:
            if ident not in self._service_requests:
                raise _error(404, "not_found")
            return _Response(
                200,
                {
                    "service_request": self.service_request(ident),
                    "reports": self.reports(ident),
                    "history": self.status_history(ident),
                },
            )

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
            return _Response(
                200,
                {
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
                },
            )

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

    def _control_member_id(self, ident: str) -> int:
        """The user id in a control path, or 404 if it is not a known member."""
        with self._lock:
            if not (ident.isascii() and ident.isdigit()) or int(ident) not in self._members:
                raise _error(404, "not_found")
        return int(ident)

    def _control_generate_history(self, request: _Request, ident: str) -> _Response:
        user_id = self._control_member_id(ident)
        body = self._json_body(request, required=False) or {}
        if not isinstance(body, dict) or set(body) - {"days", "seed", "pending_latest"}:
            raise _bad_request("body must be a JSON object with optional days, seed and pending_latest")
        days, pending_latest = body.get("days", 30), body.get("pending_latest", True)
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise _bad_request("days must be a positive integer")
        if not isinstance(pending_latest, bool):
            raise _bad_request("pending_latest must be a boolean")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, str))):
            raise _bad_request("seed must be an integer or a string")
        return _Response(200, self.generate_history(user_id, days, pending_latest=pending_latest, seed=seed))

    def _control_send_member_webhook(self, request: _Request, ident: str) -> _Response:
        user_id = self._control_member_id(ident)
        body = self._json_body(request)
        optional = ("trace_id", "url", "signature")
        if (
            not isinstance(body, dict)
            or not all(isinstance(body.get(k), str) for k in ("type", "id"))
            or not all(isinstance(body.get(k), (str, type(None))) for k in optional)
        ):
            raise _bad_request("type and id are required strings; trace_id, url and signature optional strings")
        timestamp_ms = body.get("timestamp_ms")
        if timestamp_ms is not None and (isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int)):
            raise _bad_request("timestamp_ms must be an integer")
        try:
            status = self.send_member_webhook(
                user_id,
                body["type"],
                body["id"],
                trace_id=body.get("trace_id"),
                url=body.get("url"),
                signature=body.get("signature"),
                timestamp_ms=timestamp_ms,
            )
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return _Response(200, {"status": status})

    def _control_records(self, request: _Request, ident: str, record_type: str) -> _Response:
        user_id = self._control_member_id(ident)
        if record_type not in RECORD_TYPES:
            raise _error(404, "not_found", f"record type must be one of {', '.join(RECORD_TYPES)}")
        return _Response(200, {"records": self.records(user_id, record_type)})

    # ------------------------------------------------------------------ partner documents

    def add_document(
        self,
        *,
        document_type: str = "LAB_ORDER_FORM",
        content: bytes | None = SAMPLE_DOCUMENT,
        url: str | None = None,
    ) -> dict[str, Any]:
        """Store a document this partner owns; returns its `PartnerDocument` (a copy).

        `GET /v2/partner/document/{id}` answers the PartnerDocument (`url` and `bundle_id`
        absent unless set), `/content` the raw `content` bytes. A link-only document (`url`
        given, `content=None`) has no content: `/content` answers 404 for it, as for an id
        this partner does not own. Reference it from a service request with
        `{"type": "DocumentReference", "id": document["id"]}` in `based_on`.
        """
        if not isinstance(document_type, str) or not document_type:
            raise ValueError("document_type must be a non-empty string")
        if content is not None and not isinstance(content, (bytes, bytearray)):
            raise ValueError("content must be bytes or None")
        if url is not None and (not isinstance(url, str) or not url):
            raise ValueError("url must be a non-empty string or None")
        if content is None and url is None:
            raise ValueError("a document needs content, a url, or both")
        now = _utc_iso()
        document: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "document_type": document_type,
            "created_at": now,
            "updated_at": now,
        }
        if url is not None:
            document["url"] = url
        with self._lock:
            self._documents[document["id"]] = (document, bytes(content) if content is not None else None)
        return copy.deepcopy(document)

    def _document_routes(self) -> list[tuple[str, str, Handler]]:
        p = re.escape(PARTNER_PREFIX)
        ident = r"(?P<ident>[^/]+)"
        return [
            ("GET", p + rf"/document/{ident}", self._partner_authed(self._partner_get_document)),
            ("GET", p + rf"/document/{ident}/content", self._partner_authed(self._partner_get_document_content)),
            ("POST", re.escape(CONTROL_PREFIX) + r"/documents", self._control_add_document),
        ]

    def _partner_get_document(self, request: _Request, ident: str) -> _Response:
        with self._lock:
            found = self._documents.get(ident)
            if found is None:
                raise _error(404, "not_found")
            return _Response(200, copy.deepcopy(found[0]))

    def _partner_get_document_content(self, request: _Request, ident: str) -> _Response:
        with self._lock:
            found = self._documents.get(ident)
        if found is None or found[1] is None:
            raise _error(404, "not_found")
        content = found[1]
        media_type = "application/pdf" if content.startswith(b"%PDF-") else "application/octet-stream"
        return _Response(200, None, {"Content-Type": media_type}, raw=content)

    def _control_add_document(self, request: _Request) -> _Response:
        """`POST /_emulator/documents` `{document_type?, content_base64?, url?}` -> 201 PartnerDocument.
        Without `content_base64` and `url` the document gets the sample PDF."""
        body = self._json_body(request, required=False) or {}
        if not isinstance(body, dict) or set(body) - {"document_type", "content_base64", "url"}:
            raise _bad_request("body must be a JSON object with optional document_type, content_base64 and url")
        content: bytes | None = SAMPLE_DOCUMENT if "content_base64" not in body and "url" not in body else None
        if body.get("content_base64") is not None:
            try:
                content = base64.b64decode(body["content_base64"], validate=True)
            except (ValueError, TypeError):
                raise _bad_request("content_base64 must be base64") from None
        try:
            document = self.add_document(
                document_type=body.get("document_type", "LAB_ORDER_FORM"), content=content, url=body.get("url")
            )
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return _Response(201, document)
