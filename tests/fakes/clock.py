"""A clock (whoop_bridge.clock.Clock) that only moves when told to."""

from __future__ import annotations


class ManualClock:
    """`time()` stays at `now`; `sleep` moves it at once, and in real time takes nothing."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def real_seconds(self, seconds: float) -> float:
        return seconds
