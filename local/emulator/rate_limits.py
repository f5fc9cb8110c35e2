"""WHOOP's per-app rate limits of the standard API: fixed windows of a minute and a day,
counted on the core's clock, with the `X-RateLimit-*` headers WHOOP sends, and `burst_429`
to force 429s (docs/whoop.md#rate-limits)."""

from __future__ import annotations

import math

from local.emulator.core import Core


class RateLimits:
    """`per_minute` and `per_day` may be changed at any time (WHOOP's defaults: 100 and 10,000)."""

    def __init__(self, core: Core, *, per_minute: int = 100, per_day: int = 10_000) -> None:
        self._core = core
        self.per_minute = per_minute
        self.per_day = per_day
        self._windows: dict[int, tuple[int, int]] = {}  # window size (s) -> (window index, requests served)
        self._burst_left = 0
        self._burst_reset = 0

    def burst_429(self, count: int, reset_seconds: float = 2) -> None:
        """The next `count` member API calls answer 429 (Remaining 0, Reset `reset_seconds`), whatever the windows say."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("count must be a non-negative integer")
        if isinstance(reset_seconds, bool) or not isinstance(reset_seconds, (int, float)) or reset_seconds < 0:
            raise ValueError("reset_seconds must be a non-negative number")
        with self._core.lock:
            self._burst_left = count
            self._burst_reset = math.ceil(reset_seconds)

    def _limit_header(self, first: int) -> str:
        return f"{first}, {self.per_minute};window=60, {self.per_day};window=86400"

    def check(self, *, consume: bool = True) -> tuple[bool, dict[str, str]]:
        """Count a member API request in the fixed windows at the clock's time now;
        (refused, X-RateLimit-* headers). With `consume=False` only the headers are computed
        (nothing is counted)."""
        now = self._core.clock.time()
        with self._core.lock:
            if consume and self._burst_left > 0:
                self._burst_left -= 1
                return True, {
                    "X-RateLimit-Limit": self._limit_header(self.per_minute),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(self._burst_reset),
                }
            windows = []
            for size, limit in ((60, self.per_minute), (86_400, self.per_day)):
                index = math.floor(now / size)
                if self._windows.get(size, (None, 0))[0] != index:
                    self._windows[size] = (index, 0)
                windows.append((size, limit, index))
            refused = any(self._windows[size][1] >= limit for size, limit, _ in windows)
            if consume and not refused:
                for size, _, index in windows:
                    self._windows[size] = (index, self._windows[size][1] + 1)
            # Report the window closest to being hit; on a tie the one that resets last.
            states = [
                (max(0, limit - self._windows[size][1]), -math.ceil((index + 1) * size - now), limit)
                for size, limit, index in windows
            ]
            remaining, negative_reset, limit = min(states)
            return refused, {
                "X-RateLimit-Limit": self._limit_header(limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(-negative_reset),
            }
