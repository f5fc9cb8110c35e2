"""One rate budget per WHOOP app, shared by every function and every concurrent Lambda.

WHOOP limits an app, not a member (see docs/whoop.md#rate-limits). The budget's state and
its rules are `BudgetState` (models/budget.py); this module takes calls from it on a clock,
waiting briefly or deferring the work (`BudgetExhausted`), and corrects it with WHOOP's
rate-limit headers. The state is kept where every Lambda sees it, through the
`BudgetStateStore` port (store/budget_store.py in MemberTable, passed in by the caller).

Every change is one conditional write on `version`, so concurrent callers never both take
the last call. Webhook-driven fetches and a member waiting on the connect page may use the
whole budget and go first; backfill and reconciliation are paced evenly through the minute
(so a slot keeps freeing up), may use all of it while no webhook was seen lately, and keep a
small reserve free otherwise. A webhook fetch that finds the minute full claims that reserve
in the shared state (one more conditional write), so no background call in any container
takes the next free slot: the webhook waits about a slot's spacing (0.6 s at 100 a minute)
behind a saturating backfill, not a minute.
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import Any, Protocol

from whoop_bridge import caches, emf
from whoop_bridge.clock import clock
from whoop_bridge.clock import use_clock as use_clock  # the budget's clock is set here too
from whoop_bridge.models.budget import BudgetState, Priority
from whoop_bridge.whoop.http import WhoopTransientError

logger = logging.getLogger(__name__)

# The priorities by their short names, as callers pass them.
INTERACTIVE = Priority.INTERACTIVE
WEBHOOK = Priority.WEBHOOK
BACKGROUND = Priority.BACKGROUND
# How long a call may wait for the budget before its work is deferred instead: a member on
# the connect page or a webhook fetch waits longer than a background page.
BRIEF_WAIT_SECONDS = {INTERACTIVE: 25.0, WEBHOOK: 5.0, BACKGROUND: 10.0}
# Without a reset header on a 429, wait a full minute window.
DEFAULT_RESET_SECONDS = 60.0
# Past this many write conflicts in a row, give the caller a short deferral instead.
MAX_CONFLICTS = 50
# WHOOP's remaining count is recorded only when it is this share of the minute or lower:
# far from the limit it changes nothing, and each record is a write.
OBSERVE_BELOW_SHARE = 0.5


class BudgetExhausted(WhoopTransientError):
    """No call may start for `retry_after` seconds (on the budget's clock): defer the work."""

    def __init__(self, retry_after: float, reason: str) -> None:
        super().__init__(f"the WHOOP rate budget is spent ({reason}); retry in {retry_after:.1f} s", 429)
        self.retry_after = retry_after
        self.reason = reason


class BudgetStateStore(Protocol):
    """Where the budget's state is kept, shared by every Lambda (store/budget_store.py)."""

    def get(self, app: str) -> BudgetState | None:
        """The app's state as stored (read consistently), or None before its first call."""

    def create(self, app: str, state: BudgetState) -> None:
        """Store `state` unless the app already has one (a concurrent creator wins)."""

    def take(self, app: str, read: BudgetState, taken: BudgetState) -> bool:
        """Store `taken` (one call more) if the state is still `read` (same `version`); the
        stored `whoop_remaining` goes down by one. False when another caller changed it."""

    def claim(self, app: str, read: BudgetState, waiting: BudgetState) -> bool:
        """Store `waiting` (a waiting webhook's claim on the minute's reserve) if the state is
        still `read` (same `version`). False when another caller changed it."""

    def note(self, app: str, remaining: int, reset_at: float, *, hold: bool) -> None:
        """Keep WHOOP's `remaining` count until `reset_at` when lower than the stored view
        (or that view lapsed), with a new `version`; `hold`: no call until `reset_at`.
        Nothing when the app has no state yet."""


class RateBudget:
    """The budget of one WHOOP app (its client id), its state kept in `states`."""

    def __init__(self, app: str, per_minute: int, per_day: int, states: BudgetStateStore) -> None:
        self.app = app
        self.per_minute = per_minute
        self.per_day = per_day
        self._states = states
        # The state as this container last wrote it. It can only miss other containers'
        # calls (and their corrections), and those all change `version`: a take based on
        # it then fails its condition and the state is read again. So it saves a read.
        self._cached: BudgetState | None = None

    def acquire(self, priority: str, *, max_wait: float) -> None:
        """Take one call now, waiting up to `max_wait` seconds for one to free up;
        `BudgetExhausted` when none would within that, ValueError for an unknown priority."""
        priority = Priority(priority)
        deadline = clock().time() + max_wait
        conflicts = 0
        while True:
            state = self._cached or self._state()
            now = clock().time()
            wait = state.wait(now, priority, self.per_minute, self.per_day)
            if wait.seconds <= 0:
                taken = state.taken(now, priority, self.per_minute)
                if self._states.take(self.app, state, taken):
                    self._cached = taken
                    count_use(taken, now, self.per_minute, self.per_day)
                    return
                self._cached = None
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    raise BudgetExhausted(1.0, "busy")
                time.sleep(random.uniform(0, 0.005 * min(conflicts, 10)))  # real time: a write race, not the budget
                continue
            if self._cached is not None:
                self._cached = None  # waits are decided on the stored state only
                continue
            if now + wait.seconds > deadline:
                raise BudgetExhausted(wait.seconds, wait.reason)
            if priority != BACKGROUND and state.minute_reserve(now + wait.seconds, self.per_minute) == 0:
                # Claim the reserve, so background work in any container leaves the next slot.
                if not self._states.claim(self.app, state, state.waiting(now)):
                    conflicts += 1
                    if conflicts >= MAX_CONFLICTS:
                        raise BudgetExhausted(1.0, "busy")
                    continue
            clock().sleep(wait.seconds)

    def observe(self, status: int, headers: Any) -> None:
        """Correct the shared view with what WHOOP answered: its remaining count when low,
        and after a 429 a hold until its reset."""
        remaining = _header_number(headers, "X-RateLimit-Remaining")
        reset = _header_number(headers, "X-RateLimit-Reset")
        now = clock().time()
        if status == 429:
            wait = reset if reset is not None else DEFAULT_RESET_SECONDS
            self._state()  # the hold needs the budget's state (rare: a 429 with no call taken)
            self._states.note(self.app, 0, now + wait, hold=True)
            self._cached = None
            logger.warning("WHOOP answered 429: the app's calls are held", extra={"hold_seconds": round(wait, 1)})
        elif remaining is not None and reset is not None and remaining <= self.per_minute * OBSERVE_BELOW_SHARE:
            self._states.note(self.app, int(remaining), now + reset, hold=False)
            self._cached = None

    def _state(self) -> BudgetState:
        """The stored state (created on the first call), its ring sized to the per-minute limit."""
        state = self._states.get(self.app)
        if state is None:
            self._states.create(self.app, BudgetState.first(self.per_minute))
            state = self._states.get(self.app)
            assert state is not None
        return state.resized(self.per_minute)


def count_use(taken: BudgetState, now: float, per_minute: int, per_day: int) -> None:
    """`RateBudgetUsed` (percent; dimension `window`): the share of WHOOP's minute limit the
    calls of the last minute hold, and of its day limit the day's calls, once a call is taken."""
    minute = sum(1 for at in taken.calls if at > now - 60)
    emf.put("RateBudgetUsed", {"window": "minute"}, 100 * minute / per_minute, emf.MetricUnit.Percent)
    emf.put("RateBudgetUsed", {"window": "day"}, 100 * taken.day_used / per_day, emf.MetricUnit.Percent)


def _header_number(headers: Any, name: str) -> float | None:
    try:
        value = float((headers or {}).get(name, ""))
    except (TypeError, ValueError):
        return None
    return value if value >= 0 and math.isfinite(value) else None


_budgets: dict[tuple[str, int, int], RateBudget] = {}


@caches.register
def reset() -> None:
    """Forget the budgets (tests; a new local stack)."""
    _budgets.clear()


def app_budget(app: str, states: BudgetStateStore) -> RateBudget:
    """This deployment's budget for the WHOOP app `app`, with the stack's limits, its state
    kept in `states` (one budget object per warm container)."""
    from whoop_bridge.config import settings

    config = settings()
    key = (app, config.rate_limit_per_minute, config.rate_limit_per_day)
    if key not in _budgets:
        _budgets.clear()
        _budgets[key] = RateBudget(*key, states)
    return _budgets[key]
