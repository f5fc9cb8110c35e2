"""The clock the WHOOP rate budget counts on: wall-clock time unless a test replaces it.

WHOOP limits an app per minute and per day; a test that gives the budget (and the local
WHOOP emulator's rate limits) one faster clock (`local.clock.FastClock`) lets an hour of
budget pass in a minute. Everything else (token lifetimes, signature timestamps, stored
times) stays on real time.
"""

from __future__ import annotations

import time
from typing import Protocol

from whoop_bridge import caches


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch, on this clock."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock."""
        ...

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock take in real time."""
        ...


class SystemClock:
    """Wall-clock time: what production uses."""

    speed = 1.0

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def real_seconds(self, seconds: float) -> float:
        return seconds


_clock: Clock = SystemClock()


def use_clock(clock: Clock | None) -> None:
    """Count on another clock (a test's fast or manual clock); None: back to the wall clock."""
    global _clock
    _clock = clock or SystemClock()


def clock() -> Clock:
    """The clock in use."""
    return _clock


@caches.register
def reset() -> None:
    """Back to the wall clock (a new local stack)."""
    use_clock(None)
