"""Fault switches: answer the next matching calls with an injected status (and body,
headers) after a delay, or only delay them, before or (`after=True`) after handling them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from local.emulator.core import Core, Response

# What WHOOP sends with a 429; an injected 429 carries them unless the test overrides them.
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "100, 100;window=60, 10000;window=86400",
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-Reset": "1",
}


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None
    remaining: int
    delay: float
    body: Any
    headers: dict[str, str]
    after: bool = False

    def response(self) -> Response:
        """The injected answer (only for a fault with a status)."""
        assert self.status is not None
        if self.status in (204, 304):
            return Response(self.status, None, dict(self.headers))
        if self.body is None:
            error = "too_many_requests" if self.status == 429 else "injected_fault"
            return Response(self.status, {"error": error, "message": f"injected {self.status}"}, dict(self.headers))
        if isinstance(self.body, (bytes, str)):
            raw = self.body.encode("utf-8") if isinstance(self.body, str) else self.body
            headers = {"Content-Type": "text/plain; charset=utf-8", **self.headers}
            return Response(self.status, None, headers, raw=raw)
        return Response(self.status, self.body, dict(self.headers))


class Faults:
    """The pending faults, first injected first matched."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._faults: list[Fault] = []

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        *,
        status: int | None = 500,
        count: int = 1,
        delay: float = 0.0,
        body: Any = None,
        headers: dict[str, str] | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next `count` matching calls with `status` after `delay` seconds.

        `method` may be "*"; `path_regex` is searched in the path. With `status=None` the
        call is only delayed and then handled normally. A 429 carries WHOOP's rate-limit
        headers unless `headers` overrides them. `after=True` (only with `status=None`)
        handles the call first and then holds its answer `delay` seconds: with a delay past
        the client's timeout, WHOOP took the call and the answer is lost.
        """
        if after and status is not None:
            raise ValueError("after is only for a fault without a status (the call is handled, its answer held)")
        # 1xx answers would leave the client waiting for a final response.
        if status is not None and not (isinstance(status, int) and 200 <= status <= 599):
            raise ValueError("status must be an HTTP status code from 200 to 599, or None")
        if not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive integer")
        if delay < 0:
            raise ValueError("delay must not be negative")
        merged = dict(RATE_LIMIT_HEADERS) if status == 429 else {}
        merged.update(headers or {})
        fault = Fault(method.upper(), re.compile(path_regex), status, count, float(delay), body, merged, bool(after))
        with self._core.lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        with self._core.lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first pending fault matching the call, counted down (removed when used up)."""
        with self._core.lock:
            for fault in self._faults:
                if (fault.method in ("*", method)) and fault.pattern.search(path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None
