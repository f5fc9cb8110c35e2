"""A member's made-up history: one physiological cycle a day with its overnight sleep and
recovery, and 0-2 workouts, timed and scored as WHOOP would. A pure function."""

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


def make_history(
    user_id: int, days: int, *, end_ms: int, pending_latest: bool, rng: random.Random, first_cycle_id: int
) -> tuple[dict[str, dict[Any, dict[str, Any]]], str]:
    """`days` days of records reaching `end_ms`, by type and id, and the member's timezone offset.

    One cycle per day (from the evening's sleep onset to the next one; the newest cycle is
    still open, without `end`), one overnight sleep and one recovery per cycle, 0-2
    workouts a day; with `pending_latest` the newest sleep and recovery are PENDING_SCORE.
    Cycle ids count from `first_cycle_id`; values come from `rng` alone.
    """
    offset = rng.choice(TZ_OFFSETS)
    local_midnight = (end_ms + offset_ms(offset)) // DAY_MS * DAY_MS - offset_ms(offset)
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
    sports = list(SPORT_WEIGHTS)
    weights = list(SPORT_WEIGHTS.values())
    for index, (cycle_start, sleep_start, sleep_end) in enumerate(nights):
        newest = index == len(nights) - 1
        cycle_end = None if newest else nights[index + 1][0]
        pending = newest and pending_latest
        cycle_id = first_cycle_id + index
        created = cycle_start + rng.randint(5_000, 120_000)
        updated = (
            max(created, end_ms - rng.randint(0, 600_000)) if newest else cycle_end + rng.randint(60_000, 1_200_000)
        )
        cycle = {
            "id": cycle_id,
            "user_id": user_id,
            "created_at": ms_iso(created),
            "updated_at": ms_iso(updated),
            "start": ms_iso(cycle_start),
            "timezone_offset": offset,
            "score_state": SCORED,
            "step_count": step_count(rng, ((cycle_end or end_ms) - cycle_start) / HOUR_MS),
            "score": cycle_score(rng),
        }
        if cycle_end is not None:
            cycle["end"] = ms_iso(cycle_end)  # a current cycle has no end
        store["cycle"][cycle_id] = cycle
        sleep_id = str(uuid.uuid4())
        created = sleep_end + rng.randint(60_000, 600_000)
        sleep = {
            "id": sleep_id,
            "cycle_id": cycle_id,
            "user_id": user_id,
            "created_at": ms_iso(created),
            "updated_at": ms_iso(created if pending else created + rng.randint(5_000, 600_000)),
            "start": ms_iso(sleep_start),
            "end": ms_iso(sleep_end),
            "timezone_offset": offset,
            "nap": False,
            "score_state": PENDING_SCORE if pending else SCORED,
        }
        if not pending:
            sleep["score"] = sleep_score(rng, sleep_end - sleep_start)
        store["sleep"][sleep_id] = sleep
        created += rng.randint(10_000, 120_000)
        recovery = {
            "cycle_id": cycle_id,
            "sleep_id": sleep_id,
            "user_id": user_id,
            "created_at": ms_iso(created),
            "updated_at": ms_iso(created if pending else created + rng.randint(5_000, 600_000)),
            "score_state": PENDING_SCORE if pending else SCORED,
        }
        if not pending:
            recovery["score"] = recovery_score(rng)
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
            workout_start = day_start + number * slot + rng.randint(0, (slot - duration) // MINUTE_MS) * MINUTE_MS
            workout_end = workout_start + duration
            created = workout_end + rng.randint(60_000, 600_000)
            if created > end_ms:
                break
            sport = rng.choices(sports, weights)[0]
            workout_id = str(uuid.uuid4())
            store["workout"][workout_id] = {
                "id": workout_id,
                "user_id": user_id,
                "created_at": ms_iso(created),
                "updated_at": ms_iso(min(end_ms, created + rng.randint(5_000, 300_000))),
                "start": ms_iso(workout_start),
                "end": ms_iso(workout_end),
                "timezone_offset": offset,
                "sport_name": sport,
                "score_state": SCORED,
                "score": workout_score(rng, sport, duration),
            }
    return store, offset
