"""WHOOP's member records (cycles, sleeps, recoveries, workouts) as the data API sends
them: field order, `score_state`, the fields WHOOP leaves out rather than null, WHOOP's
timestamp format, and realistic made-up scores. Pure functions: no state, no HTTP (docs/whoop.md#records)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

RECORD_TYPES = ("cycle", "sleep", "recovery", "workout")
SCORED, PENDING_SCORE, UNSCORABLE = "SCORED", "PENDING_SCORE", "UNSCORABLE"
SCORE_STATES = frozenset({SCORED, PENDING_SCORE, UNSCORABLE})
FIRST_CYCLE_ID = 93845
# Field order as WHOOP's v2 schemas list them; `score` only when SCORED.
_TIMED = ("user_id", "created_at", "updated_at", "start", "end", "timezone_offset")
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "cycle": ("id", *_TIMED, "score_state", "step_count", "score"),
    "sleep": ("id", "cycle_id", "v1_id", *_TIMED, "nap", "score_state", "score"),
    "recovery": ("cycle_id", "sleep_id", "user_id", "created_at", "updated_at", "score_state", "score"),
    "workout": ("id", "v1_id", *_TIMED, "sport_name", "sport_id", "score_state", "score"),
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
SPORT_WEIGHTS = {"running": 5, "cycling": 3, "weightlifting": 3, "walking": 3, "yoga": 1, "swimming": 1, "rowing": 1}
TZ_OFFSETS = ("-05:00", "-04:00", "-08:00", "-07:00", "+00:00", "+01:00", "+02:00", "+10:00")
MINUTE_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def ms_iso(ms: int) -> str:
    """Milliseconds since the epoch as WHOOP writes timestamps: `2026-11-20T06:25:44.774Z`."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO-8601 date-time with `Z` or an offset; ValueError otherwise."""
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError(f"not an ISO-8601 date-time: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"date-time without Z or a UTC offset: {text!r}")
    return (moment - _EPOCH) // _MS


def to_ms(value: Any) -> int:
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
        return iso_ms(value)
    raise TypeError("a moment must be epoch seconds, an aware datetime or an ISO-8601 string")


def offset_ms(offset: str) -> int:
    """`-05:00` as milliseconds east of UTC."""
    sign = -1 if offset.startswith("-") else 1
    hours, _, minutes = offset.lstrip("+-").partition(":")
    return sign * (int(hours) * 60 + int(minutes or 0)) * MINUTE_MS


def cycle_score(rng: random.Random) -> dict[str, Any]:
    strain = rng.uniform(4.0, 18.5)
    return {
        "strain": round(strain, 6),
        "kilojoule": round(rng.uniform(6500.0, 9000.0) + strain * rng.uniform(250.0, 400.0), 4),
        "average_heart_rate": rng.randint(58, 78),
        "max_heart_rate": rng.randint(135, 192),
    }


def sleep_score(rng: random.Random, in_bed_ms: int) -> dict[str, Any]:
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


def recovery_score(rng: random.Random) -> dict[str, Any]:
    hrv = rng.uniform(28.0, 110.0)
    return {
        "user_calibrating": False,
        "recovery_score": max(1, min(99, round((hrv - 28.0) / 82.0 * 75 + rng.uniform(8, 24)))),
        "resting_heart_rate": rng.randint(46, 66),
        "hrv_rmssd_milli": round(hrv, 6),
        "spo2_percentage": round(rng.uniform(94.0, 99.0), 4),
        "skin_temp_celsius": round(rng.uniform(33.0, 35.2), 2),
    }


def workout_score(rng: random.Random, sport: str, duration_ms: int) -> dict[str, Any]:
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


def new_score(record_type: str, record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A fresh, realistic score for the record."""
    if record_type == "cycle":
        return cycle_score(rng)
    if record_type == "recovery":
        return recovery_score(rng)
    start = iso_ms(record["start"]) if record.get("start") else 0
    end = iso_ms(record["end"]) if record.get("end") else start + (450 if record_type == "sleep" else 45) * MINUTE_MS
    if record_type == "sleep":
        return sleep_score(rng, end - start)
    return workout_score(rng, str(record.get("sport_name")), end - start)


def settle_score(record_type: str, record: dict[str, Any], rng: random.Random) -> None:
    """Keep `score` consistent with `score_state`: present only when SCORED, then always; and
    leave out, rather than null, the fields WHOOP documents as possibly absent."""
    if record.get("score_state") == SCORED:
        if not isinstance(record.get("score"), dict):
            record["score"] = new_score(record_type, record, rng)
    else:
        record.pop("score", None)
    for name in ABSENT_WHEN_NONE[record_type]:
        if record.get(name, 0) is None:
            del record[name]
    if record_type == "workout" and isinstance(record.get("score"), dict):
        for name in OPTIONAL_WORKOUT_SCORE:
            if record["score"].get(name, 0) is None:
                del record["score"][name]


def step_count(rng: random.Random, hours: float) -> int | None:
    """Steps in a cycle of `hours`; None now and then (the device was not worn throughout)."""
    return None if rng.random() < 0.07 else round(hours * rng.uniform(250.0, 700.0))


def touch(record: dict[str, Any], now_ms: int) -> None:
    """Set `updated_at` to now, or 1 ms after the previous value if now is not later."""
    previous = iso_ms(record["updated_at"])
    record["updated_at"] = ms_iso(now_ms if now_ms > previous else previous + 1)
