"""Members per WHOOP app: WHOOP calls per member-day against the minimum the day needs, the
members one app carries at WHOOP's default limits, and their freshness at that load.

1. Measured on the local stack and the WHOOP emulator: `--members` members live `--days`
   realistic days. Each day WHOOP opens a cycle (no webhook: WHOOP sends none for cycles),
   records the night's sleep and its recovery unscored and then scores them (two versions
   each, each announced by its `*.updated` webhook), a nap every other day (two versions),
   a workout (two versions), deletes a workout every other day (`workout.deleted`), and
   redelivers one webhook (same trace id). Then the daily reconciliation runs. Every WHOOP
   member API call is counted by the emulator.
   The minimum the scenario needs: one fetch per record version WHOOP announces, plus one
   listing per record type per member per reconciliation (four types; a day's window fits a
   page of 25). A recovery is read through its cycle (`GET /v2/cycle/{id}/recovery`), one
   call when the sleep (which names the cycle) is already stored.
2. Arithmetic: WHOOP's day limit (10,000) ÷ calls per member-day; the minute limit (100)
   allows 144,000 a day and is not what binds.
3. Freshness at that load, simulated with the budget's own rules (whoop/budget.py over
   models/budget.py, an in-memory state, a discrete clock): every member's day of webhook
   fetches arriving over the morning (sleeps and recoveries between 05:00 and 09:00, all
   members in one time zone: the worst case) and workouts over the day, the reconciliation
   of every member queued at 05:00 as the morning starts (background, saturating: the worst hour for it); a fetch the budget refuses is
   deferred for its `retry_after`, as the member queue does. Every change must be fetched
   within 15 minutes of its webhook, and the day limit held.

Goals (exit 1 when one is missed): calls per member-day <= 1.25× the minimum; the simulated
load fresh within 15 minutes and inside the day limit; members per app >= 1,000 unless the
day limit makes it impossible (then the arithmetic is printed).

Run: .venv/bin/python bench/members_per_app.py [--quick] [--members 4] [--days 2]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import math
import os
import random
import sys
import time
import uuid
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layers" / "bridge"))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.whoop import InMemoryBudgetStates, ManualClock  # noqa: E402

from local.clock import FastClock  # noqa: E402
from local.stack import wait_until  # noqa: E402
from tests.e2e.conftest import running_harness  # noqa: E402
from tests.e2e.test_member_data import backfill_done, connect  # noqa: E402
from tests.e2e.test_member_data_scale import _drained  # noqa: E402
from whoop_bridge.whoop import budget as budget_module  # noqa: E402
from whoop_bridge.whoop.budget import BACKGROUND, WEBHOOK, BudgetExhausted, RateBudget  # noqa: E402

PER_MINUTE, PER_DAY = 100, 10_000
RECORD_TYPES = 4
FRESH_SECONDS = 15 * 60
GOAL_RATIO, GOAL_MEMBERS = 1.25, 1000
JOB_WORKERS = 5


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.__stderr__, flush=True)


class Day:
    """One member's WHOOP day on the emulator, webhook by webhook; counts versions announced."""

    def __init__(self, bridge: Any, user_id: int, rng: random.Random) -> None:
        self.bridge, self.user_id, self.rng = bridge, user_id, rng
        self.versions = 0
        self.webhooks = 0

    def send(self, event_type: str, record_id: str, *, version: bool, trace_id: str | None = None) -> str:
        trace = trace_id or str(uuid.uuid4())
        status = self.bridge.emulator.send_member_webhook(self.user_id, event_type, record_id, trace_id=trace)
        assert status == 204, status
        self.webhooks += 1
        self.versions += 1 if version else 0
        return trace

    def created(self, day: int) -> list[tuple[str, str]]:
        """WHOOP records the day's things unscored; the (type, id) to score later."""
        emulator, user_id = self.bridge.emulator, self.user_id
        emulator.add_record(user_id, "cycle")
        sleep = emulator.add_record(user_id, "sleep")
        trace = self.send("sleep.updated", sleep["id"], version=True)
        emulator.add_record(user_id, "recovery", sleep_id=sleep["id"])
        self.send("recovery.updated", sleep["id"], version=True)
        scored = [("sleep", sleep["id"]), ("recovery", sleep["id"])]
        workout = emulator.add_record(user_id, "workout")
        self.send("workout.updated", workout["id"], version=True)
        scored.append(("workout", workout["id"]))
        if day % 2 == 0:
            nap = emulator.add_record(user_id, "sleep", nap=True, start=time.time() - 3 * 3600)
            self.send("sleep.updated", nap["id"], version=True)
            scored.append(("sleep", nap["id"]))
        # WHOOP redelivers a webhook: the same trace id again, nothing new to fetch.
        self.send("sleep.updated", sleep["id"], version=False, trace_id=trace)
        return scored

    def scored(self, day: int, records: list[tuple[str, str]]) -> None:
        emulator, user_id = self.bridge.emulator, self.user_id
        for record_type, record_id in records:
            emulator.score(user_id, record_type, record_id)
            self.send(f"{record_type}.updated", record_id, version=True)
        if day % 2 == 1:
            workouts = emulator.records(user_id, "workout")
            if len(workouts) > 1:
                gone = workouts[-1]["id"]
                emulator.delete_record(user_id, "workout", gone)
                self.send("workout.deleted", gone, version=False)


def all_backfilled(bridge: Any, client_user_ids: list[str]) -> bool:
    return all(backfill_done(bridge, client_user_id) for client_user_id in client_user_ids)


def drained(bridge: Any) -> None:
    time.sleep(0.5)
    wait_until(lambda: _drained(bridge), timeout=600, interval=0.25, what="the member queues")


def measure(members: int, days: int) -> dict[str, Any]:
    """Part 1: the scenario on the local stack; calls and minimum."""
    parameters = {"BackfillDays": "1", "ReconciliationDays": "1"}
    for bridge in running_harness(parameters, FastClock(1), local_retry_seconds=0.2, queue_workers=2):
        ids = [f"app-member-{index}" for index in range(members)]
        user_ids = [connect(bridge, client_user_id, days=1) for client_user_id in ids]
        wait_until(partial(all_backfilled, bridge, ids), timeout=300, interval=0.5, what="the backfills")
        drained(bridge)
        bridge.emulator.reset_calls()
        rng = random.Random(3)
        lives = [Day(bridge, user_id, rng) for user_id in user_ids]
        reconciliations = 0
        for day in range(days):
            pending = [life.created(day) for life in lives]
            drained(bridge)
            for life, records in zip(lives, pending, strict=True):
                life.scored(day, records)
            drained(bridge)
            bridge.stack.run_schedule("MemberSyncFunction", "Reconcile")
            reconciliations += 1
            drained(bridge)
            progress(f"day {day + 1} of {days} done")
        calls = bridge.emulator.member_api_calls()
        sys.stdout = sys.__stdout__
    kinds = Counter(_kind(call["path"]) for call in calls)
    versions = sum(life.versions for life in lives)
    listings = reconciliations * members * RECORD_TYPES
    return {
        "calls": len(calls),
        "kinds": dict(kinds),
        "versions": versions,
        "webhooks": sum(life.webhooks for life in lives),
        "minimum": versions + listings,
        "listings": listings,
        "member_days": members * days,
        "status_429": sum(1 for call in calls if call["status"] == 429),
    }


def _kind(path: str) -> str:
    parts = [part for part in path.split("/") if part and not part[0].isdigit() and "-" not in part]
    return " ".join(parts[-2:])


def simulate(members: int, fetches_per_member_day: float, listings_per_member_day: float, seed: int = 5) -> dict:
    """Part 3: one day of `members` members through the budget's rules on a discrete clock."""
    clock = ManualClock(start=1_795_305_600.0)  # 00:00 UTC
    budget_module.use_clock(clock)
    # Each take prints the budget's use metric (EMF) on stdout, as in Lambda: not here.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        return _simulated_day(clock, members, fetches_per_member_day, listings_per_member_day, seed)


def _simulated_day(
    clock: ManualClock, members: int, fetches_per_member_day: float, listings_per_member_day: float, seed: int
) -> dict:
    try:
        budget = RateBudget("app", PER_MINUTE, PER_DAY, InMemoryBudgetStates())
        rng = random.Random(seed)
        day0 = clock.now
        queue: list[tuple[float, int, str, float]] = []  # (due, sequence, priority, arrived)
        sequence = 0
        for member in range(members):
            # The day's fetches shared out exactly (no rounding up past the measured rate).
            count = math.floor((member + 1) * fetches_per_member_day) - math.floor(member * fetches_per_member_day)
            for index in range(count):
                # Most fetches follow the night (sleep, recovery, their scores), the rest the day.
                hour = rng.uniform(5, 9) if index < count * 0.7 else rng.uniform(6, 21)
                arrived = day0 + hour * 3600
                heapq.heappush(queue, (arrived, sequence, WEBHOOK, arrived))
                sequence += 1
        # The reconciliation's listings, run by the jobs queue's 5 concurrent Lambdas
        # (MaximumConcurrency in template.yaml), each listing after the one before.
        background_left = math.floor(listings_per_member_day * members)
        for worker in range(JOB_WORKERS):
            heapq.heappush(queue, (day0 + 5 * 3600, -1 - worker, BACKGROUND, day0 + 5 * 3600))
        background_left -= JOB_WORKERS
        late, waits, refused_day = 0, [], 0
        while queue:
            due, number, priority, arrived = heapq.heappop(queue)
            clock.now = max(clock.now, due)
            try:
                budget.acquire(priority, max_wait=0)
            except BudgetExhausted as exhausted:
                if exhausted.reason == "day":
                    refused_day += 1
                    continue
                heapq.heappush(queue, (clock.now + max(exhausted.retry_after, 0.001), number, priority, arrived))
                continue
            if priority == BACKGROUND and background_left > 0:
                background_left -= 1
                heapq.heappush(queue, (clock.now, number, BACKGROUND, clock.now))
            if priority == WEBHOOK:
                waits.append(clock.now - arrived)
                late += clock.now - arrived > FRESH_SECONDS
        state = budget._states.states["app"]
        return {
            "fetches": len(waits),
            "max_wait": max(waits),
            "late": late,
            "day_used": state.day_used,
            "refused_day": refused_day,
            "p95": sorted(waits)[int(0.95 * (len(waits) - 1))],
        }
    finally:
        budget_module.use_clock(None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 members, 1 day (CI)")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--days", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.members, args.days = 2, 2
    print(f"{args.members} members, {args.days} days each, on the local stack and the WHOOP emulator")
    measured = measure(args.members, args.days)
    member_days = measured["member_days"]
    per_day = measured["calls"] / member_days
    minimum = measured["minimum"] / member_days
    ratio = per_day / minimum
    print(
        f"WHOOP calls: {measured['calls']} for {member_days} member-days ({measured['webhooks']} webhooks, "
        f"{measured['versions']} record versions announced, {measured['listings']} reconciliation listings); "
        f"by kind {measured['kinds']}; 429s {measured['status_429']}"
    )
    print(f"calls per member-day {per_day:.2f} against the minimum {minimum:.2f}: {ratio:.2f}× (goal <= {GOAL_RATIO})")
    carried = math.floor(PER_DAY / per_day)
    print(
        f"members per app at WHOOP's default limits: {PER_DAY:,}/day ÷ {per_day:.2f} calls per member-day = {carried:,} "
        f"(at the scenario's minimum: {math.floor(PER_DAY / minimum):,}; the minute limit, {PER_MINUTE}×1440 = "
        f"{PER_MINUTE * 1440:,}/day, does not bind)"
    )
    fetches = (measured["calls"] - measured["listings"]) / member_days
    simulated = simulate(carried, fetches, measured["listings"] / member_days)
    print(
        f"freshness at {carried:,} members (simulated day, the budget's rules): {simulated['fetches']:,} webhook fetches, "
        f"wait p95 {simulated['p95']:.1f} s, max {simulated['max_wait']:.1f} s, {simulated['late']} later than 15 min; "
        f"{simulated['day_used']:,} calls of the day's {PER_DAY:,}, {simulated['refused_day']} refused for the day"
    )
    failures = []
    if ratio > GOAL_RATIO:
        failures.append(f"{ratio:.2f}× the minimum")
    if simulated["late"] or simulated["refused_day"] or measured["status_429"]:
        failures.append("not fresh at that load")
    if carried < GOAL_MEMBERS:
        possible = math.floor(PER_DAY / minimum)
        note = "WHOOP's day limit makes 1,000 impossible for this day" if possible < GOAL_MEMBERS else ""
        print(f"members goal {GOAL_MEMBERS:,}: {carried:,}; at the minimum {possible:,}. {note}")
        if possible >= GOAL_MEMBERS:
            failures.append("fewer members than the minimum allows")
    print("goals: " + ("met" if not failures else "MISSED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
