"""The members' records behind the data API: what `generate_history` makes up and what a
test adds, scores, changes or deletes, kept the way WHOOP keeps them (a pending sleep
gets scored later; deleting a sleep deletes its recovery). Records live on wall-clock time,
as the bridge's sync windows do."""

from __future__ import annotations

import copy
import random
import time
import uuid
from typing import Any

from local.emulator.core import Core, is_uuid
from local.emulator.history import make_history
from local.emulator.records import (
    FIRST_CYCLE_ID,
    HOUR_MS,
    MINUTE_MS,
    PENDING_SCORE,
    RECORD_FIELDS,
    RECORD_TYPES,
    SCORE_STATES,
    SCORED,
    iso_ms,
    ms_iso,
    new_score,
    settle_score,
    to_ms,
    touch,
)

Store = dict[str, dict[Any, dict[str, Any]]]  # record type -> id -> record


class MemberData:
    """Each member's records by type; a member must exist in the core's directory."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._data: dict[int, Store] = {}  # user -> type -> id -> record
        self._member_tz: dict[int, str] = {}  # the member's timezone_offset
        self._next_cycle_id = FIRST_CYCLE_ID
        self._rng = random.Random()  # scores of records added or rescored later
        self._v1_activities: dict[int, str] = {}  # v1 activity id -> v2 sleep or workout uuid

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

    def _store(self, user_id: int) -> Store:
        """The member's records by type (caller holds the lock). KeyError if the member is unknown."""
        if user_id not in self._core.members:
            raise KeyError(user_id)
        return self._data.setdefault(user_id, {kind: {} for kind in RECORD_TYPES})

    def find(self, user_id: int, record_type: str, record_id: Any) -> dict[str, Any]:
        """The stored record itself (caller holds the lock). KeyError if unknown."""
        self._check_type(record_type)
        return self._store(user_id)[record_type][self._record_key(record_type, record_id)]

    @staticmethod
    def _timed(store: Store, record_type: str, record: dict[str, Any]) -> dict[str, Any]:
        """The record whose `start`/`end` place this one in time: a recovery has no start of
        its own and is windowed and sorted by its sleep's (WHOOP's `/v2/recovery`)."""
        if record_type == "recovery":
            return store["sleep"].get(record["sleep_id"]) or {
                "start": record["created_at"],
                "end": record["created_at"],
            }
        return record

    def _sort_key(self, store: Store, record_type: str, record: dict[str, Any]) -> tuple[int, str]:
        """(start ms, id) to sort newest first; a recovery sorts by its sleep's start."""
        ident = record["sleep_id"] if record_type == "recovery" else record["id"]
        return iso_ms(self._timed(store, record_type, record)["start"]), str(ident)

    def sorted_records(self, user_id: int, record_type: str) -> list[tuple[tuple[int, str], dict[str, Any]]]:
        """(sort key, stored record) pairs, newest first (caller holds the lock)."""
        store = self._data.get(user_id)
        if store is None:
            return []
        pairs = [(self._sort_key(store, record_type, r), r) for r in store[record_type].values()]
        pairs.sort(key=lambda pair: pair[0], reverse=True)
        return pairs

    def in_window(
        self, user_id: int, record_type: str, record: dict[str, Any], start: int | None, end: int | None
    ) -> bool:
        """WHOOP's collection window: records that occurred after or during `start` (so one
        in progress at `start` counts) and began before `end` (exclusive)."""
        timed = self._timed(self._data[user_id], record_type, record)
        began = iso_ms(timed["start"])
        if end is not None and began >= end:
            return False
        if start is None or began >= start:
            return True
        return timed.get("end") is None or iso_ms(timed["end"]) > start

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
        with self._core.lock:
            if user_id not in self._core.members:
                raise KeyError(user_id)
            end_ms = self._now_ms() if end is None else to_ms(end)
            store, offset = make_history(
                user_id, days, end_ms=end_ms, pending_latest=pending_latest, rng=rng, first_cycle_id=self._next_cycle_id
            )
            self._next_cycle_id += len(store["cycle"])
            self._data[user_id] = store
            self._member_tz[user_id] = offset
            return {kind: len(store[kind]) for kind in RECORD_TYPES}

    def records(self, user_id: int, record_type: str) -> list[dict[str, Any]]:
        """The member's records of a type (copies), newest first by start (recovery: its sleep's start)."""
        self._check_type(record_type)
        with self._core.lock:
            self._store(user_id)
            return [copy.deepcopy(record) for _, record in self.sorted_records(user_id, record_type)]

    def record(self, user_id: int, record_type: str, record_id: Any) -> dict[str, Any]:
        """One record (a copy); a recovery's id is its sleep id, cycle ids are ints. KeyError if unknown."""
        with self._core.lock:
            return copy.deepcopy(self.find(user_id, record_type, record_id))

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
        with self._core.lock:
            store = self._store(user_id)
            now = self._now_ms()
            stamp = ms_iso(now)
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
                start_ms = default_start if start is None else to_ms(start)
                record.update(start=ms_iso(start_ms), timezone_offset=offset)
                if record_type == "cycle":
                    record["id"] = self._next_cycle_id
                elif record_type == "sleep":
                    record.update(id=str(uuid.uuid4()), end=ms_iso(start_ms + 450 * MINUTE_MS), nap=False)
                    cycle_id = fields.get("cycle_id")
                    if cycle_id is None:
                        newest = self.sorted_records(user_id, "cycle")
                        if not newest:
                            raise ValueError("the member has no cycle for the sleep; add one or pass cycle_id")
                        cycle_id = newest[0][1]["id"]
                    if cycle_id not in store["cycle"]:
                        raise ValueError(f"unknown cycle_id {cycle_id!r}")
                    record["cycle_id"] = cycle_id
                else:
                    sport = fields.get("sport_name", "running")
                    record.update(id=str(uuid.uuid4()), end=ms_iso(start_ms + 45 * MINUTE_MS), sport_name=sport)
            for name in ("start", "end", "created_at", "updated_at"):
                if fields.get(name) is not None:
                    fields[name] = ms_iso(to_ms(fields[name]))
            record.update(fields)
            try:
                key = self._record_key(record_type, record["sleep_id"] if record_type == "recovery" else record["id"])
            except KeyError:
                raise ValueError(f"invalid {record_type} id {record['id']!r}") from None
            if key in store[record_type]:
                raise ValueError(f"{record_type} {key} already exists")
            record["score_state"] = record["score_state"] if record["score_state"] in SCORE_STATES else PENDING_SCORE
            settle_score(record_type, record, self._rng)
            if record_type == "cycle":
                self._next_cycle_id = max(self._next_cycle_id - 1, key) + 1
                for _, other in self.sorted_records(user_id, "cycle"):
                    if other.get("end") is None and iso_ms(other["start"]) < iso_ms(record["start"]):
                        other["end"] = record["start"]  # a new cycle closes the open one
                        touch(other, now)
            store[record_type][key] = record
            return copy.deepcopy(record)

    def v1_activity(self, v1_id: int) -> str | None:
        """The v2 sleep or workout uuid mapped to the v1 activity id, if any."""
        with self._core.lock:
            return self._v1_activities.get(v1_id)

    def map_v1_activity(self, v1_id: int, activity_id: str) -> None:
        """Let `GET /v1/activity-mapping/{v1_id}` answer `activity_id` (a sleep or workout uuid)."""
        if isinstance(v1_id, bool) or not isinstance(v1_id, int) or v1_id < 0 or not is_uuid(activity_id):
            raise ValueError("v1_id must be a non-negative integer and activity_id a uuid")
        with self._core.lock:
            self._v1_activities[v1_id] = activity_id

    def score(self, user_id: int, record_type: str, record_id: Any) -> dict[str, Any]:
        """Score the record (SCORED with a new score, `updated_at` now); a scored record is rescored."""
        with self._core.lock:
            record = self.find(user_id, record_type, record_id)
            record["score_state"] = SCORED
            record["score"] = new_score(record_type, record, self._rng)
            touch(record, self._now_ms())
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
        with self._core.lock:
            record = self.find(user_id, record_type, record_id)
            for name in ("start", "end", "created_at", "updated_at"):
                if fields.get(name) is not None:
                    fields[name] = ms_iso(to_ms(fields[name]))
            record.update(fields)
            settle_score(record_type, record, self._rng)
            if "updated_at" not in fields:
                touch(record, self._now_ms())
            return copy.deepcopy(record)

    def delete_record(self, user_id: int, record_type: str, record_id: Any) -> list[str]:
        """Delete a record; returns the webhook types WHOOP would send for it (none for a cycle).

        Deleting a sleep deletes its recovery too: `["sleep.deleted", "recovery.deleted"]`.
        """
        with self._core.lock:
            record = self.find(user_id, record_type, record_id)
            store = self._store(user_id)
            key = self._record_key(record_type, record["sleep_id"] if record_type == "recovery" else record["id"])
            del store[record_type][key]
            if record_type == "cycle":
                return []
            events = [f"{record_type}.deleted"]
            if record_type == "sleep" and store["recovery"].pop(key, None) is not None:
                events.append("recovery.deleted")
            return events
