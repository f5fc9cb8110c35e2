"""The WHOOP app's rate budget: its shared state and the rules that decide when a call may start.

WHOOP limits an app, not a member: 100 requests a minute and 10,000 a day by default (see
docs/whoop.md#rate-limits). The state is one per app, shared by every function:

- `calls`: the times of the last N calls (N = the per-minute limit), a ring whose `head` is
  the oldest. A call may start only when the oldest is more than a minute old, so no 61
  seconds ever hold more than N calls, whatever WHOOP's window boundaries are.
- `day` / `day_used`: the calls of the current UTC day (`YYYY-MM-DD`).
- `whoop_remaining` / `whoop_reset_at`: what WHOOP's `X-RateLimit-Remaining` and
  `X-RateLimit-Reset` said, counted down by each call since; they win when lower (another
  client of the same app, or a window we cannot see). `hold_until`: after a 429, nothing
  until WHOOP's reset.
- `background_next_at`: when background work may take its next call (it is paced evenly
  through the minute rather than spending its share in a burst); None until it first does.
- `priority_seen_at`: when a webhook fetch or a member's call last started, or found the
  minute full and began to wait. While that is less than `RESERVE_LENT_AFTER_SECONDS` ago,
  background work leaves a small reserve of the minute free (`MINUTE_RESERVED_SHARE`, at
  least one call): the next slot to free up goes to the waiting webhook, since background
  needs one more than the reserve. Otherwise the reserve is lent to background work, which
  then uses the whole minute.
- `version`: counts changes; every write is conditional on it (see store/budget_store.py).

Times are seconds since the epoch on the budget's clock. Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum


class Priority(StrEnum):
    """Who waits for a call: webhook fetches and a member on the connect page may use the
    whole budget and go first; background work uses what they leave."""

    INTERACTIVE = "interactive"  # a member on the connect page, a disconnect
    WEBHOOK = "webhook"
    BACKGROUND = "background"  # backfill and reconciliation


# Backfill and reconciliation never take the last fifth of the day: webhooks keep flowing.
RESERVED_SHARE = 0.2
# Of the minute they leave this share free, but only while webhook fetches or members' calls
# were seen lately; after `RESERVE_LENT_AFTER_SECONDS` without one it is lent to them too.
MINUTE_RESERVED_SHARE = 0.05
RESERVE_LENT_AFTER_SECONDS = 120.0
# A minute, plus a second for calls in flight and clocks that differ between Lambdas.
CALL_SPACING_SECONDS = 61.0
# WHOOP's `X-RateLimit-Reset` is whole seconds: a reset this close to the stored one names
# the same window, whose count only goes down (an answer to an older call is not newer news).
SAME_WINDOW_SECONDS = 1.0


@dataclass(frozen=True)
class Wait:
    """How long a call must wait before it may start (0: go now), and why: "WHOOP answered
    429", "pace", "minute", "day" or "WHOOP's remaining count"."""

    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class BudgetState:
    """One app's budget as last stored (see the module doc for each field)."""

    calls: tuple[float, ...]
    head: int = 0
    version: int = 0
    day: str = ""
    day_used: int = 0
    whoop_remaining: int = 0
    whoop_reset_at: float = 0.0
    hold_until: float = 0.0
    background_next_at: float | None = None
    priority_seen_at: float = 0.0

    @classmethod
    def first(cls, slots: int) -> BudgetState:
        """A new app's budget: `slots` (the per-minute limit) calls, all long past."""
        return cls(calls=(0.0,) * slots)

    def resized(self, slots: int) -> BudgetState:
        """The ring for a changed per-minute limit: the newest calls kept, oldest first."""
        if len(self.calls) == slots:
            return self
        ordered = self.calls[self.head :] + self.calls[: self.head]
        kept = ordered[-slots:]
        return replace(self, calls=(0.0,) * (slots - len(kept)) + kept, head=0)

    def wait(self, now: float, priority: Priority, per_minute: int, per_day: int) -> Wait:
        """How long a call of `priority` must wait at `now`: the longest of every limit's wait."""
        background = priority == Priority.BACKGROUND
        waits: list[Wait] = []
        if now < self.hold_until:
            waits.append(Wait(self.hold_until - now, "WHOOP answered 429"))
        if background and self.background_next_at is not None and now < self.background_next_at:
            waits.append(Wait(self.background_next_at - now, "pace"))
        reserve = self.minute_reserve(now, per_minute) if background else 0
        # The (reserve + 1)-th oldest call of the last minute must have left the window.
        oldest_needed = self.calls[(self.head + reserve) % len(self.calls)]
        if oldest_needed + CALL_SPACING_SECONDS > now:
            waits.append(Wait(oldest_needed + CALL_SPACING_SECONDS - now, "minute"))
        day_limit = per_day - (reserved(per_day) if background else 0)
        # A clock still before midnight while another's passed it counts in the newer day.
        if day_of(now) <= self.day and self.day_used >= day_limit:
            waits.append(Wait(seconds_to_midnight(now), "day"))
        if now < self.whoop_reset_at and self.whoop_remaining <= reserve:
            waits.append(Wait(self.whoop_reset_at - now, "WHOOP's remaining count"))
        return max(waits, key=lambda wait: wait.seconds, default=Wait(0))

    def taken(self, now: float, priority: Priority, per_minute: int) -> BudgetState:
        """The state after one call at `now`: the next `version`, one call less of WHOOP's
        remaining count, and for background work the next paced slot."""
        calls = list(self.calls)
        newest = calls[(self.head - 1) % len(calls)]
        calls[self.head] = max(now, newest)  # the ring stays in time order
        today = max(day_of(now), self.day)  # never back to a day another clock has left
        background_next_at = self.background_next_at
        priority_seen_at = self.priority_seen_at
        if priority == Priority.BACKGROUND:
            spacing = CALL_SPACING_SECONDS / (per_minute - self.minute_reserve(now, per_minute))
            # A call that came late keeps the schedule (up to one spacing late): a late wake-up
            # is made up by the next call instead of slowing background work for good.
            background_next_at = max(now - spacing, self.background_next_at or now) + spacing
        else:
            priority_seen_at = max(now, priority_seen_at)
        return replace(
            self,
            calls=tuple(calls),
            head=(self.head + 1) % len(calls),
            version=self.version + 1,
            day=today,
            day_used=self.day_used + 1 if self.day == today else 1,
            whoop_remaining=self.whoop_remaining - 1,
            background_next_at=background_next_at,
            priority_seen_at=priority_seen_at,
        )

    def waiting(self, now: float) -> BudgetState:
        """The state after a webhook fetch or member's call found the minute full at `now`
        and waits for a slot: the minute's reserve is kept for them again from `now`."""
        return replace(self, version=self.version + 1, priority_seen_at=max(now, self.priority_seen_at))

    def minute_reserve(self, now: float, per_minute: int) -> int:
        """The calls of the minute background work leaves free at `now`: a small share
        while webhook fetches or members' calls were seen lately, none otherwise."""
        if now - self.priority_seen_at >= RESERVE_LENT_AFTER_SECONDS:
            return 0
        return min(per_minute - 1, max(1, math.floor(per_minute * MINUTE_RESERVED_SHARE)))


def reserved(limit: int) -> int:
    """The calls of a day (`limit`) that background work leaves to the others."""
    return math.floor(limit * RESERVED_SHARE)


def day_of(now: float) -> str:
    """The UTC day of `now`, as `YYYY-MM-DD`."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def seconds_to_midnight(now: float) -> float:
    """Seconds from `now` to the next UTC midnight."""
    return 86400 - now % 86400
