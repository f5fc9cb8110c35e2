"""Clocks for running WHOOP's per-minute rate limits faster than real time.

The emulator counts its rate-limit windows on a clock, and so does the bridge's rate
budget (`whoop_bridge.clock`); a test gives both the same `FastClock` so that an hour of
budget passes in a minute. Everything else (token lifetimes, signature timestamps, SQS)
stays on real time. Standard library and the layer's clock only.
"""

from __future__ import annotations

import time

from whoop_bridge.clock import Clock, SystemClock

# Wall-clock time, under the name the local tools have always used.
RealClock = SystemClock

__all__ = ["Clock", "FastClock", "RealClock"]


class FastClock(SystemClock):
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
