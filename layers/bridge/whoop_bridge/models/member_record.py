"""WHOOP's member records (docs/whoop.md#records): cycle, sleep, recovery and workout, as the
bridge stores them and announces them.

A record keeps WHOOP v2's own field names. Fields WHOOP adds later are dropped, so the
shape only changes with `RECORD_VERSION`. WHOOP's data is stored as received wherever the
bridge does not need it: a `score_state` outside the three known ones, a null (or absent)
field, a partial score. Only what the bridge keys, orders and windows a record by must be
readable (its id, `updated_at`, and `start` or a recovery's `created_at`); a record without
those raises RecordInvalid. Timestamps become UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`, which sorts
as text: the store orders, windows and compares `updated_at` on it.

Record versions (`record_version` in every record event, one number for all four types):
1. the first shape;
2. cycles carry `step_count` (int or null); `score_state` is any text WHOOP sends (a new
   state is kept, not refused); every field but the record's id, `user_id`, `created_at`,
   `updated_at` and `start` may be null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationError

from whoop_bridge.models.outbox_message import MemberMessage
from whoop_bridge.models.sync_job import SyncCause

RECORD_TYPES = ("cycle", "sleep", "recovery", "workout")
RECORD_VERSION = 2
SCORE_STATES = ("SCORED", "PENDING_SCORE", "UNSCORABLE")
PENDING_SCORE = "PENDING_SCORE"
# A record in one of these states replaces a pending one of the same `updated_at`; a state
# the bridge does not know never replaces anything it would not replace by time.
FINAL_SCORE_STATES = ("SCORED", "UNSCORABLE")
# Why a record event was sent: a WHOOP data webhook, the first fetch of a member's history,
# or the scheduled poll that catches webhooks WHOOP never delivered.
CAUSES = tuple(SyncCause)

UPDATED = MemberMessage.RECORD_UPDATED
DELETED = MemberMessage.RECORD_DELETED


class RecordInvalid(ValueError):
    """A WHOOP record the bridge cannot read. The message and `fields` name the fields,
    never their values (a record is health data); `record_id` is WHOOP's id of the record
    when it could be read, else None."""

    def __init__(self, message: str, fields: tuple[str, ...] = (), record_id: str | None = None) -> None:
        super().__init__(message)
        self.fields = fields
        self.record_id = record_id


def normalize_timestamp(value: str | datetime) -> str:
    """An ISO-8601 date-time with a UTC offset (or `Z`) as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    Raises ValueError, without the value, when it is not one."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("not an ISO-8601 date-time") from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise ValueError("not an ISO-8601 date-time")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("an ISO-8601 date-time needs a UTC offset or Z")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:00:00+01:00: a ValueError, so a record is unreadable, a query a 400.
        raise ValueError("an ISO-8601 date-time whose UTC time is in the years 1 to 9999") from None
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class InvalidWindow(ValueError):
    """A window whose end is not after its start."""


def window(start: str | datetime | None, end: str | datetime | None) -> tuple[str | None, str | None]:
    """A listing's window [start, end) as normalised timestamps (either may be open).
    Raises InvalidWindow when end is not after start, ValueError for a bad time."""
    since = normalize_timestamp(start) if start is not None else None
    until = normalize_timestamp(end) if end is not None else None
    if since is not None and until is not None and since >= until:
        raise InvalidWindow("end must be after start")
    return since, until


@dataclass(frozen=True)
class RecordQuery:
    """One page of a member's stored records of one type, newest first, from `start`
    (inclusive) to `end` (exclusive): ISO-8601 date-times with an offset or aware datetimes,
    either open (None). `limit` records at most (1 or more); `next_token` the previous
    page's, or None for the first page."""

    client_user_id: str
    record_type: str
    start: str | datetime | None = None
    end: str | datetime | None = None
    limit: int = 25
    next_token: str | None = None


def _timestamp(value: Any) -> str:
    if not isinstance(value, (str, datetime)):
        raise ValueError("not an ISO-8601 date-time")
    return normalize_timestamp(value)


Timestamp = Annotated[str, BeforeValidator(_timestamp)]
_UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(_UUID_PATTERN)
Uuid = Annotated[str, StringConstraints(pattern=_UUID_PATTERN)]
# SCORE_STATES are the states WHOOP documents; any other text is stored as received.
ScoreState = Optional[str]


class _Shape(BaseModel):
    # Unknown fields are dropped: consumers get RECORD_VERSION's shape and nothing else.
    # NaN and infinities cannot be sent on as JSON.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class _Record(_Shape):
    """The fields of every record type: the member's WHOOP `user_id`, when WHOOP created and
    last updated the record (UTC text, see Timestamp), and its `score_state`."""

    user_id: int
    created_at: Timestamp
    updated_at: Timestamp
    score_state: ScoreState = None

    # The order of the fields in the stored, listed and announced record (JSON text): WHOOP's
    # own, as the bridge has always written it, not the base classes' declaration order.
    FIELD_ORDER: ClassVar[tuple[str, ...]]


class _Span(_Record):
    """A record of a span of the member's time: a cycle, a sleep or a workout."""

    start: Timestamp
    end: Optional[Timestamp] = None  # None while a cycle is the current one
    timezone_offset: Optional[str] = None


# A span's fields in their stored order (before its own; `score_state` follows).
_SPAN = ("user_id", "created_at", "updated_at", "start", "end", "timezone_offset")


# Cycle -------------------------------------------------------------------------------------


class CycleScore(_Shape):
    strain: Optional[float] = None
    kilojoule: Optional[float] = None
    average_heart_rate: Optional[int] = None
    max_heart_rate: Optional[int] = None


class Cycle(_Span):
    FIELD_ORDER = ("id", *_SPAN, "score_state", "score", "step_count")
    id: int
    score: Optional[CycleScore] = None
    step_count: Optional[int] = None  # None when WHOOP has no step data for the cycle


# Sleep -------------------------------------------------------------------------------------


class SleepStageSummary(_Shape):
    total_in_bed_time_milli: Optional[int] = None
    total_awake_time_milli: Optional[int] = None
    total_no_data_time_milli: Optional[int] = None
    total_light_sleep_time_milli: Optional[int] = None
    total_slow_wave_sleep_time_milli: Optional[int] = None
    total_rem_sleep_time_milli: Optional[int] = None
    sleep_cycle_count: Optional[int] = None
    disturbance_count: Optional[int] = None


class SleepNeeded(_Shape):
    baseline_milli: Optional[int] = None
    need_from_sleep_debt_milli: Optional[int] = None
    need_from_recent_strain_milli: Optional[int] = None
    need_from_recent_nap_milli: Optional[int] = None


class SleepScore(_Shape):
    stage_summary: Optional[SleepStageSummary] = None
    sleep_needed: Optional[SleepNeeded] = None
    respiratory_rate: Optional[float] = None
    sleep_performance_percentage: Optional[float] = None
    sleep_consistency_percentage: Optional[float] = None
    sleep_efficiency_percentage: Optional[float] = None


class Sleep(_Span):
    FIELD_ORDER = ("id", "cycle_id", "v1_id", *_SPAN, "nap", "score_state", "score")
    id: Uuid
    cycle_id: Optional[int] = None
    v1_id: Optional[int] = None
    nap: Optional[bool] = None
    score: Optional[SleepScore] = None


# Recovery ------------------------------------------------------------------------------------


class RecoveryScore(_Shape):
    user_calibrating: Optional[bool] = None
    recovery_score: Optional[float] = None
    resting_heart_rate: Optional[float] = None
    hrv_rmssd_milli: Optional[float] = None
    spo2_percentage: Optional[float] = None
    skin_temp_celsius: Optional[float] = None


class Recovery(_Record):
    FIELD_ORDER = ("cycle_id", "sleep_id", "user_id", "created_at", "updated_at", "score_state", "score")
    cycle_id: Optional[int] = None
    sleep_id: Uuid
    score: Optional[RecoveryScore] = None


# Workout -------------------------------------------------------------------------------------


class ZoneDurations(_Shape):
    zone_zero_milli: Optional[int] = None
    zone_one_milli: Optional[int] = None
    zone_two_milli: Optional[int] = None
    zone_three_milli: Optional[int] = None
    zone_four_milli: Optional[int] = None
    zone_five_milli: Optional[int] = None


class WorkoutScore(_Shape):
    strain: Optional[float] = None
    average_heart_rate: Optional[int] = None
    max_heart_rate: Optional[int] = None
    kilojoule: Optional[float] = None
    percent_recorded: Optional[float] = None
    distance_meter: Optional[float] = None
    altitude_gain_meter: Optional[float] = None
    altitude_change_meter: Optional[float] = None
    zone_durations: Optional[ZoneDurations] = None


class Workout(_Span):
    FIELD_ORDER = ("id", "v1_id", *_SPAN, "sport_name", "sport_id", "score_state", "score")
    id: Uuid
    v1_id: Optional[int] = None
    sport_name: Optional[str] = None
    sport_id: Optional[int] = None
    score: Optional[WorkoutScore] = None


MODELS: dict[str, type[_Record]] = {"cycle": Cycle, "sleep": Sleep, "recovery": Recovery, "workout": Workout}


def _model(record_type: str) -> type[_Record]:
    try:
        return MODELS[record_type]
    except KeyError:
        raise ValueError(f"unknown record type {record_type!r}; one of {', '.join(RECORD_TYPES)}") from None


def key_prefix(record_type: str) -> str:
    """The sort-key prefix of a record type's items (`SLEEP` for `sleep`); ValueError for
    a type the bridge does not keep."""
    _model(record_type)
    return record_type.upper()


def _cause(cause: str) -> str:
    if cause not in CAUSES:
        raise ValueError(f"unknown cause {cause!r}; one of {', '.join(CAUSES)}")
    return cause


# Public functions --------------------------------------------------------------------------


def normalize(record_type: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A WHOOP v2 record of `record_type` in the bridge's shape (RECORD_VERSION): WHOOP's
    field names, unknown fields dropped, timestamps in UTC with milliseconds and `Z`.
    Normalising a normalised record changes nothing. Raises RecordInvalid naming each bad
    field (never its value)."""
    model = _model(record_type)
    if not isinstance(raw, dict):
        raise RecordInvalid(f"{record_type}: a record must be a JSON object", ("record",))
    try:
        parsed = model.model_validate(raw)
    except ValidationError as error:
        problems, fields = [], []
        for item in error.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in item.get("loc", ())) or "record"
            fields.append(field)
            problems.append(f"{field}: {str(item.get('msg', 'invalid')).removeprefix('Value error, ')}")
        raise RecordInvalid(
            f"{record_type} record invalid: " + "; ".join(problems), tuple(fields), raw_record_id(record_type, raw)
        ) from None
    dumped = parsed.model_dump(mode="json")
    return {name: dumped[name] for name in model.FIELD_ORDER}


def raw_record_id(record_type: str, raw: Any) -> str | None:
    """The id a WHOOP record as received is keyed by (see `record_id`), when it has a usable
    one: a uuid for a sleep, workout or recovery, an integer for a cycle. None otherwise."""
    if not isinstance(raw, dict):
        return None
    value = raw.get("sleep_id" if record_type == "recovery" else "id")
    if record_type == "cycle":
        return str(value) if type(value) is int else None
    return value if isinstance(value, str) and _UUID.match(value) else None


def record_id(record_type: str, record: dict[str, Any]) -> str:
    """The id the bridge keys a record by: a cycle's `id` as text, a sleep's or workout's
    uuid, and for a recovery its `sleep_id` (WHOOP's recovery webhooks name the sleep)."""
    _model(record_type)
    if record_type == "recovery":
        return str(record["sleep_id"])
    return str(record["id"])


def record_time(record_type: str, record: dict[str, Any], sleep_start: str | None = None) -> str:
    """The time records are ordered and windowed by, as WHOOP windows its collections:
    `start`; a recovery has none and goes by its sleep's `start` (`sleep_start`), or by its
    own `created_at` while the sleep is unknown."""
    _model(record_type)
    if record_type == "recovery":
        return normalize_timestamp(sleep_start) if sleep_start else record["created_at"]
    return record["start"]


def updated_event(
    client_user_id: str, user_id: int, record_type: str, record: dict[str, Any], cause: str
) -> tuple[str, dict[str, Any]]:
    """The `member.record.updated` detail type and detail: who, which record, why, and the
    normalised record itself (its shape is `record_version`)."""
    return UPDATED, {
        "client_user_id": client_user_id,
        "user_id": user_id,
        "record_type": record_type,
        "record_id": record_id(record_type, record),
        "record_version": RECORD_VERSION,
        "cause": _cause(cause),
        "record": record,
    }


def deleted_event(
    client_user_id: str, user_id: int, record_type: str, record_id: str, cause: str
) -> tuple[str, dict[str, Any]]:
    """The `member.record.deleted` detail type and detail: who, which record, and why."""
    _model(record_type)
    return DELETED, {
        "client_user_id": client_user_id,
        "user_id": user_id,
        "record_type": record_type,
        "record_id": record_id,
        "cause": _cause(cause),
    }
