"""Clocks for running WHOOP's per-minute rate limits faster than real time.

The emulator counts its rate-limit windows on a clock, and so does the bridge's rate
budget; a test gives both the same `FastClock` so that an hour of budget passes in a
minute. Everything else (token lifetimes, signature timestamps, SQS) stays on real time.
Standard library only.
"""

from __future__ import annotations

import time


class RealClock:
    """Wall-clock time: what production uses."""

    speed = 1.0

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock take in real time."""
        return seconds


class FastClock(RealClock):
    """Starts at the real time now and runs `speed` times faster."""

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._epoch = time.time()
        self._origin = time.monotonic()

    def time(self) -> float:
        return self._epoch + (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.speed
