"""What clients did: every API call recorded on arrival (control calls excluded), the member
API calls with their clock time, and a readable timeline without patient data."""

from __future__ import annotations

import copy
import re
import time
import urllib.parse
from typing import Any

from local.emulator.core import (
    AUTHORIZE_PATH,
    DATA_PREFIX,
    FORM_CONTENT_TYPE,
    OAUTH_TOKEN_PATH,
    PARTNER_PREFIX,
    TOKEN_PATH,
    Core,
    Request,
    loads,
    media_type,
)

# Form fields never recorded in clear (token calls): secrets, codes and refresh tokens.
REDACTED_FIELDS = ("client_secret", "code", "refresh_token")


def _short(identifier: str) -> str:
    return identifier[:8] + "…" if len(identifier) > 8 else identifier


class CallLog:
    """The calls a client made, in arrival order."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._calls: list[dict[str, Any]] = []
        self._member_calls: list[dict[str, Any]] = []
        self._seq = 0

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Completed API calls in arrival order: `{"seq", "time" (arrival, epoch s), "method", "path", "status", "body", "user_agent"}`."""
        with self._core.lock:
            return [self._public_call(c) for c in self._calls]

    def calls_to(self, method: str, path_regex: str) -> list[dict[str, Any]]:
        """Recorded calls with this method (or "*") whose path matches `path_regex` (re.search)."""
        pattern = re.compile(path_regex)
        return [c for c in self.calls if (method == "*" or c["method"] == method.upper()) and pattern.search(c["path"])]

    def reset_calls(self) -> None:
        """Forget recorded calls, `member_api_calls()` included (sequence numbers keep counting)."""
        with self._core.lock:
            self._calls.clear()
            self._member_calls.clear()

    def member_api_calls(self) -> list[dict[str, Any]]:
        """Member `/developer/v2/...` calls (partner API excluded), in arrival order.

        Each `{"time" (clock time on arrival), "method", "path", "status", "user_id"}`;
        `user_id` is the bearer token's member, None if the call had no live member token.
        """
        with self._core.lock:
            return copy.deepcopy(self._member_calls)

    def rate_limited_calls(self) -> list[dict[str, Any]]:
        """The member API calls answered 429 (rate limit, `burst_429` or an injected 429)."""
        return [call for call in self.member_api_calls() if call["status"] == 429]

    @staticmethod
    def _public_call(call: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in call.items() if not k.startswith("_")}

    def arrive(self) -> tuple[int, float]:
        """(sequence number, epoch seconds) of a call arriving now."""
        # Sequence and time are taken on arrival, so a call made while another is still
        # being handled (a webhook receiver fetching during add-test-data) sorts after it.
        with self._core.lock:
            self._seq += 1
            return self._seq, time.time()

    @staticmethod
    def _recorded_body(request: Request) -> Any:
        """The body as recorded: JSON, or a form as a dict; secrets, codes and refresh tokens as `***`."""
        if not request.body:
            return None
        is_form = media_type(request) == FORM_CONTENT_TYPE
        try:
            if is_form:
                fields = urllib.parse.parse_qs(request.body.decode("utf-8"), keep_blank_values=True, errors="strict")
                body: Any = {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
            else:
                body = loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return None
        if isinstance(body, dict) and (is_form or request.path in (TOKEN_PATH, OAUTH_TOKEN_PATH)):
            for key in REDACTED_FIELDS:
                if key in body:
                    body[key] = "***"
        return body

    def record(
        self, request: Request, arrival: tuple[int, float], status: int, *, injected: bool = False, delay: float = 0.0
    ) -> None:
        """Keep a completed call, in arrival order."""
        body = self._recorded_body(request)
        seq, arrived = arrival
        with self._core.lock:
            self._calls.append(
                {
                    "seq": seq,
                    "time": arrived,
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "body": body,
                    "user_agent": request.headers.get("User-Agent"),
                    "_injected": injected,
                    "_delay": delay,
                }
            )
            self._calls.sort(key=lambda call: call["seq"])  # nearly sorted: cheap

    def record_member_call(self, call: dict[str, Any], status: int) -> None:
        """Keep a member API call (`call` as taken on arrival) with its answer's status."""
        with self._core.lock:
            call["status"] = status
            self._member_calls.append(call)

    def timeline(self) -> list[str]:
        """One readable line per recorded call (token calls left out); ids shortened, no patient data."""
        with self._core.lock:
            calls = [dict(c) for c in self._calls]
        return [self._timeline_line(c) for c in calls if c["path"] != TOKEN_PATH]

    @staticmethod
    def _timeline_line(call: dict[str, Any]) -> str:
        method, path, body = call["method"], call["path"], call["body"]
        match = re.fullmatch(
            re.escape(PARTNER_PREFIX) + r"/(requisition|service-request)/([^/]+)(?:/(status|results))?", path
        )
        if match:
            kind, ident, action = match.groups()
            text = f"{method} {kind} {_short(ident)}"
            if action == "status":
                status = body.get("task_business_status") if isinstance(body, dict) else None
                text += f" status {status if isinstance(status, str) else '?'}"
            elif action == "results":
                report_status = body.get("status") if isinstance(body, dict) else None
                observations = body.get("observations") if isinstance(body, dict) else None
                count = len(observations) if isinstance(observations, list) else "?"
                noun = "observation" if count == 1 else "observations"
                text += f" results {report_status if isinstance(report_status, str) else '?'} ({count} {noun})"
        elif path.startswith(PARTNER_PREFIX + "/"):
            text = f"{method} {path[len(PARTNER_PREFIX) + 1 :]}"
        elif path == AUTHORIZE_PATH:
            text = f"{method} oauth authorize"
        elif path == OAUTH_TOKEN_PATH:
            grant = body.get("grant_type") if isinstance(body, dict) else None
            shown = grant if isinstance(grant, str) and re.fullmatch(r"[a-z_]{1,40}", grant) else "?"
            text = f"{method} oauth token {shown}"
        elif path.startswith(DATA_PREFIX + "/"):
            text = f"{method} {path.removeprefix(DATA_PREFIX + '/')}"
        else:
            text = f"{method} {path}"
        text += f" → {call['status']}"
        if call.get("_injected"):
            text += " (injected)"
        elif call.get("_delay"):
            text += f" (delayed {call['_delay']:g} s)"
        return text
