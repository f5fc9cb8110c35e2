"""A member's made-up history: one physiological cycle a day with its overnight sleep and
recovery, and 0-2 workouts, timed and scored as WHOOP would. Pure functions; the values
come from the random generator alone (so a seed repeats them), drawn in a fixed order."""

from __future__ import annotations

import random
import uuid
from typing import Any

from local.emulator.records import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    PENDING_SCORE,
    RECORD_TYPES,
    SCORED,
    SPORT_WEIGHTS,
    TZ_OFFSETS,
    cycle_score,
    ms_iso,
    offset_ms,
    recovery_score,
    sleep_score,
    step_count,
    workout_score,
)

Store = dict[str, dict[Any, dict[str, Any]]]  # record type -> id -> record
Night = tuple[int, int, int]  # (cycle start, sleep start, sleep end), epoch ms


def make_history(
    user_id: int, days: int, *, end_ms: int, pending_latest: bool, rng: random.Random, first_cycle_id: int
) -> tuple[Store, str]:
    """`days` days of records reaching `end_ms`, by type and id, and the member's timezone offset.

    One cycle per day (from the evening's sleep onset to the next one; the newest cycle is
    still open, without `end`), one overnight sleep and one recovery per cycle, 0-2
    workouts a day; with `pending_latest` the newest sleep and recovery are PENDING_SCORE.
    Cycle ids count from `first_cycle_id`.
    """
    offset = rng.choice(TZ_OFFSETS)
    nights = _nights(days, end_ms, offset, rng)
    store: Store = {kind: {} for kind in RECORD_TYPES}
    base = {"user_id": user_id, "timezone_offset": offset}
    for index, night in enumerate(nights):
        newest = index == len(nights) - 1
        cycle_end = None if newest else nights[index + 1][0]
        cycle = _cycle(first_cycle_id + index, night[0], cycle_end, end_ms, base, rng)
        store["cycle"][cycle["id"]] = cycle
        sleep, recovery = _sleep_and_recovery(cycle["id"], night, newest and pending_latest, base, rng)
        store["sleep"][sleep["id"]] = sleep
        store["recovery"][sleep["id"]] = recovery
        # Workouts in the day: after waking, an hour clear of either night, in separate slots.
        day_end = (cycle_end if cycle_end is not None else end_ms) - HOUR_MS
        for workout in _workouts(night[2] + HOUR_MS, day_end, end_ms, base, rng):
            store["workout"][workout["id"]] = workout
    return store, offset


def _nights(days: int, end_ms: int, offset: str, rng: random.Random) -> list[Night]:
    """The nights, oldest first. Cycle starts fall at 22:00-00:30 local time, and the newest
    night must be over (and scored a while ago) by `end_ms`."""
    local_midnight = (end_ms + offset_ms(offset)) // DAY_MS * DAY_MS - offset_ms(offset)
    nights: list[Night] = []  # newest first while drawn
    midnight = local_midnight + DAY_MS
    while len(nights) < days:
        cycle_start = midnight - 2 * HOUR_MS + rng.randint(0, 150) * MINUTE_MS
        sleep_start = cycle_start + rng.randint(2, 20) * MINUTE_MS
        sleep_end = sleep_start + rng.randint(330, 560) * MINUTE_MS
        midnight -= DAY_MS
        if nights or sleep_end + 30 * MINUTE_MS <= end_ms:
            nights.append((cycle_start, sleep_start, sleep_end))
    nights.reverse()
    return nights


def _cycle(
    cycle_id: int, start: int, end: int | None, end_ms: int, base: dict[str, Any], rng: random.Random
) -> dict[str, Any]:
    """A scored cycle; the current one (`end` None) has no `end` and was updated lately."""
    created = start + rng.randint(5_000, 120_000)
    updated = max(created, end_ms - rng.randint(0, 600_000)) if end is None else end + rng.randint(60_000, 1_200_000)
    cycle = {
        "id": cycle_id,
        "user_id": base["user_id"],
        "created_at": ms_iso(created),
        "updated_at": ms_iso(updated),
        "start": ms_iso(start),
        "timezone_offset": base["timezone_offset"],
        "score_state": SCORED,
        "step_count": step_count(rng, ((end or end_ms) - start) / HOUR_MS),
        "score": cycle_score(rng),
    }
    if end is not None:
        cycle["end"] = ms_iso(end)  # a current cycle has no end
    return cycle


def _sleep_and_recovery(
    cycle_id: int, night: Night, pending: bool, base: dict[str, Any], rng: random.Random
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The night's sleep and the recovery that follows it, both scored unless `pending`."""
    _, sleep_start, sleep_end = night
    sleep_id = str(uuid.uuid4())
    created = sleep_end + rng.randint(60_000, 600_000)
    sleep = {
        "id": sleep_id,
        "cycle_id": cycle_id,
        "user_id": base["user_id"],
        **_stamps(created, pending, rng),
        "start": ms_iso(sleep_start),
        "end": ms_iso(sleep_end),
        "timezone_offset": base["timezone_offset"],
        "nap": False,
        "score_state": PENDING_SCORE if pending else SCORED,
    }
    if not pending:
        sleep["score"] = sleep_score(rng, sleep_end - sleep_start)
    created += rng.randint(10_000, 120_000)
    recovery = {"cycle_id": cycle_id, "sleep_id": sleep_id, "user_id": base["user_id"]}
    recovery.update(_stamps(created, pending, rng), score_state=PENDING_SCORE if pending else SCORED)
    if not pending:
        recovery["score"] = recovery_score(rng)
    return sleep, recovery


def _stamps(created: int, pending: bool, rng: random.Random) -> dict[str, str]:
    """`created_at`, and `updated_at`: a little later once scored."""
    updated = created if pending else created + rng.randint(5_000, 600_000)
    return {"created_at": ms_iso(created), "updated_at": ms_iso(updated)}


def _workouts(
    day_start: int, day_end: int, end_ms: int, base: dict[str, Any], rng: random.Random
) -> list[dict[str, Any]]:
    """0-2 scored workouts between `day_start` and `day_end`, each in its own slot, none
    created after `end_ms`."""
    workouts: list[dict[str, Any]] = []
    count = rng.choice((0, 1, 1, 1, 2))
    slot = (day_end - day_start) // max(count, 1)
    for number in range(count):
        duration = rng.randint(20, 95) * MINUTE_MS
        if slot < duration + 15 * MINUTE_MS:
            break
        workout_start = day_start + number * slot + rng.randint(0, (slot - duration) // MINUTE_MS) * MINUTE_MS
        workout_end = workout_start + duration
        created = workout_end + rng.randint(60_000, 600_000)
        if created > end_ms:
            break
        sport = rng.choices(list(SPORT_WEIGHTS), list(SPORT_WEIGHTS.values()))[0]
        workouts.append(
            {
                "id": str(uuid.uuid4()),
                "user_id": base["user_id"],
                "created_at": ms_iso(created),
                "updated_at": ms_iso(min(end_ms, created + rng.randint(5_000, 300_000))),
                "start": ms_iso(workout_start),
                "end": ms_iso(workout_end),
                "timezone_offset": base["timezone_offset"],
                "sport_name": sport,
                "score_state": SCORED,
                "score": workout_score(rng, sport, duration),
            }
        )
    return workouts
