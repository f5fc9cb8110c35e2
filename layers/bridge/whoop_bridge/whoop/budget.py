"""One rate budget per WHOOP app, shared by every function and every concurrent Lambda.

WHOOP limits an app, not a member: 100 requests a minute and 10,000 a day by default
(whoop-api.md §3.4). The budget lives in MemberTable as one item per app:

- `calls`: the times of the last N calls (N = the per-minute limit), a ring whose `head` is
  the oldest. A call may start only when the oldest is more than a minute old, so no 61
  seconds ever hold more than N calls, whatever WHOOP's window boundaries are.
- `day` / `day_used`: the calls of the current UTC day.
- `whoop_remaining` / `whoop_reset_at`: what WHOOP's `X-RateLimit-Remaining` and
  `X-RateLimit-Reset` said, counted down by each call since; they win when lower (another
  client of the same app, or a window we cannot see). `hold_until`: after a 429, nothing
  until WHOOP's reset.

Every change is one conditional write on `version`, so concurrent callers never both take
the last call. Webhook-driven fetches and a member waiting on the connect page may use the
whole budget; backfill and reconciliation leave a fifth of each window to them, and are
paced evenly through the minute (`background_next_at`) rather than spending their share
in a burst, so a slot keeps freeing up for the others.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from whoop_bridge import caches
from whoop_bridge.clock import clock
from whoop_bridge.clock import use_clock as use_clock  # the budget's clock is set here too
from whoop_bridge.store import member_store
from whoop_bridge.whoop.http import WhoopTransientError

logger = logging.getLogger(__name__)

INTERACTIVE = "interactive"  # a member on the connect page, a disconnect
WEBHOOK = "webhook"
BACKGROUND = "background"  # backfill and reconciliation
PRIORITIES = (INTERACTIVE, WEBHOOK, BACKGROUND)
# Backfill and reconciliation never take the last fifth of a window.
RESERVED_SHARE = 0.2
# A minute, plus a second for calls in flight and clocks that differ between Lambdas.
CALL_SPACING_SECONDS = 61.0
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


@dataclass(frozen=True)
class _Decision:
    wait: float  # 0: go now
    reason: str = ""


class RateBudget:
    """The budget of one WHOOP app (its client id)."""

    def __init__(self, app: str, per_minute: int, per_day: int) -> None:
        self.app = app
        self.per_minute = per_minute
        self.per_day = per_day
        # The state as this container last wrote it. It can only miss other containers'
        # calls (and their corrections), and those all change `version`: a take based on
        # it then fails its condition and the state is read again. So it saves a read.
        self._cached: dict[str, Any] | None = None

    def acquire(self, priority: str, *, max_wait: float) -> None:
        """Take one call now, waiting up to `max_wait` seconds for one to free up;
        `BudgetExhausted` when none would within that."""
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        deadline = clock().time() + max_wait
        conflicts = 0
        while True:
            state = self._cached or self._state()
            now = clock().time()
            decision = self._decide(state, now, priority)
            if decision.wait <= 0:
                if self._take(state, now, priority):
                    return
                self._cached = None
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    raise BudgetExhausted(1.0, "busy")
                time.sleep(random.uniform(0, 0.005 * min(conflicts, 10)))  # real time: a write race, not the budget
                continue
            if self._cached is not None:
                self._cached = None  # decide waits on the stored state only
                continue
            if now + decision.wait > deadline:
                raise BudgetExhausted(decision.wait, decision.reason)
            clock().sleep(decision.wait)

    def observe(self, status: int, headers: Any) -> None:
        """Correct the shared view with what WHOOP answered: its remaining count when low,
        and after a 429 a hold until its reset."""
        remaining = _header_number(headers, "X-RateLimit-Remaining")
        reset = _header_number(headers, "X-RateLimit-Reset")
        now = clock().time()
        if status == 429:
            wait = reset if reset is not None else DEFAULT_RESET_SECONDS
            self._state()  # the hold needs the budget's item (rare: a 429 with no call taken)
            member_store.note_whoop_limit(self.app, 0, now + wait, hold=True)
            self._cached = None
            logger.warning("WHOOP answered 429: the app's calls are held", extra={"hold_seconds": round(wait, 1)})
        elif remaining is not None and reset is not None and remaining <= self.per_minute * OBSERVE_BELOW_SHARE:
            member_store.note_whoop_limit(self.app, int(remaining), now + reset, hold=False)
            self._cached = None

    # The shared state --------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        state = member_store.get_budget(self.app)
        if state is None:
            member_store.create_budget(self.app, self.per_minute)
            state = member_store.get_budget(self.app)
            assert state is not None
        if len(state["calls"]) != self.per_minute:
            state = {**state, **_resized(state["calls"], state["head"], self.per_minute)}
        return state

    def _decide(self, state: dict[str, Any], now: float, priority: str) -> _Decision:
        background = priority == BACKGROUND
        waits: list[_Decision] = []
        if now < state["hold_until"]:
            waits.append(_Decision(state["hold_until"] - now, "WHOOP answered 429"))
        if background and now < state.get("background_next_at", 0):
            waits.append(_Decision(state["background_next_at"] - now, "pace"))
        reserve = math.floor(self.per_minute * RESERVED_SHARE) if background else 0
        calls, head = state["calls"], state["head"]
        # The (reserve + 1)-th oldest call of the last minute must have left the window.
        oldest_needed = calls[(head + reserve) % len(calls)]
        if oldest_needed + CALL_SPACING_SECONDS > now:
            waits.append(_Decision(oldest_needed + CALL_SPACING_SECONDS - now, "minute"))
        day_limit = self.per_day - (math.floor(self.per_day * RESERVED_SHARE) if background else 0)
        if _day(now) == state["day"] and state["day_used"] >= day_limit:
            waits.append(_Decision(_seconds_to_midnight(now), "day"))
        if now < state["whoop_reset_at"] and state["whoop_remaining"] <= reserve:
            waits.append(_Decision(state["whoop_reset_at"] - now, "WHOOP's remaining count"))
        return max(waits, key=lambda decision: decision.wait, default=_Decision(0))

    def _take(self, state: dict[str, Any], now: float, priority: str) -> bool:
        calls = list(state["calls"])
        head = state["head"]
        newest = calls[(head - 1) % len(calls)]
        calls[head] = max(now, newest)  # the ring stays in time order
        today = _day(now)
        used = state["day_used"] + 1 if state["day"] == today else 1
        background_next_at = None
        if priority == BACKGROUND:
            share = self.per_minute - math.floor(self.per_minute * RESERVED_SHARE)
            background_next_at = max(now, state.get("background_next_at", 0)) + CALL_SPACING_SECONDS / share
        head = (head + 1) % len(calls)
        if not member_store.take_budget_call(self.app, state["version"], calls, head, today, used, background_next_at):
            return False
        self._cached = {
            **state,
            "calls": calls,
            "head": head,
            "version": state["version"] + 1,
            "day": today,
            "day_used": used,
            "whoop_remaining": state["whoop_remaining"] - 1,
            **({"background_next_at": background_next_at} if background_next_at is not None else {}),
        }
        return True


def _resized(calls: list[float], head: int, slots: int) -> dict[str, Any]:
    """The ring for a changed per-minute limit: the newest calls kept, oldest first."""
    ordered = calls[head:] + calls[:head]
    kept = ordered[-slots:]
    return {"calls": [0.0] * (slots - len(kept)) + kept, "head": 0}


def _day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def _seconds_to_midnight(now: float) -> float:
    return 86400 - now % 86400


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


def app_budget(app: str) -> RateBudget:
    """This deployment's budget for the WHOOP app `app`, with the stack's limits."""
    from whoop_bridge.config import settings

    config = settings()
    key = (app, config.rate_limit_per_minute, config.rate_limit_per_day)
    if key not in _budgets:
        _budgets.clear()
        _budgets[key] = RateBudget(*key)
    return _budgets[key]
