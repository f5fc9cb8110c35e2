"""The data API face: cycles, sleeps, recoveries and workouts per member, with WHOOP's
paginated collections (`limit`, `start`, `end`, `nextToken`) and by-id routes
(`/v2/cycle/{id}/recovery` is the only recovery by id), and the public v1 -> v2 activity
id mapping."""

from __future__ import annotations

import copy
import re
import secrets
import urllib.parse
from collections.abc import Callable
from typing import Any

from local.emulator.core import DATA_PREFIX, Core, Handler, Request, Response, RouteSpec, bad_request, error
from local.emulator.member_data import MemberData
from local.emulator.oauth import MemberAccess
from local.emulator.records import iso_ms

ACTIVITY_MAPPING_PREFIX = "/developer/v1/activity-mapping"
DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT = 10, 25
MAX_PAGE_TOKENS = 10_000  # issued next tokens kept; the oldest are forgotten first


def page_query(request: Request) -> tuple[int, int | None, int | None, str | None]:
    """`limit`, `start`, `end` (ms) and `nextToken` of a collection call; 400 when malformed."""
    params = urllib.parse.parse_qs(request.query, keep_blank_values=True)
    repeated = sorted(name for name, values in params.items() if len(values) > 1)
    if repeated:
        raise bad_request(f"parameters repeated: {', '.join(repeated)}")
    query = {name: values[0] for name, values in params.items()}
    limit = DEFAULT_PAGE_LIMIT
    if "limit" in query:
        raw = query["limit"]
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGE_LIMIT):
            raise bad_request(f"limit must be an integer from 1 to {MAX_PAGE_LIMIT}")
        limit = int(raw)
    bounds: list[int | None] = []
    for name in ("start", "end"):
        if name not in query:
            bounds.append(None)
            continue
        try:
            bounds.append(iso_ms(query[name]))
        except ValueError:
            raise bad_request(f"{name} must be an ISO-8601 date-time with Z or a UTC offset") from None
    return limit, bounds[0], bounds[1], query.get("nextToken") or None


class DataApi:
    """Serves `data`'s records; `authed(handler, scope)` puts a route behind a member token
    with that scope and hands the handler the token's `MemberAccess`."""

    def __init__(self, core: Core, data: MemberData, authed: Callable[[Handler, str | None], Handler]) -> None:
        self._core = core
        self._data = data
        self._authed = authed
        self._page_tokens: dict[str, tuple[tuple[Any, ...], tuple[int, str]]] = {}  # token -> (query, cursor)

    def routes(self) -> list[RouteSpec]:
        d = re.escape(DATA_PREFIX)
        ident = r"(?P<ident>[^/]+)"
        authed = self._authed
        return [
            ("GET", d + r"/cycle", authed(self._collection("cycle"), "read:cycles")),
            ("GET", d + rf"/cycle/{ident}", authed(self._by_id("cycle"), "read:cycles")),
            ("GET", d + rf"/cycle/{ident}/sleep", authed(self._of_cycle("sleep"), "read:sleep")),
            ("GET", d + rf"/cycle/{ident}/recovery", authed(self._of_cycle("recovery"), "read:recovery")),
            ("GET", d + r"/recovery", authed(self._collection("recovery"), "read:recovery")),
            ("GET", d + r"/activity/sleep", authed(self._collection("sleep"), "read:sleep")),
            ("GET", d + rf"/activity/sleep/{ident}", authed(self._by_id("sleep"), "read:sleep")),
            ("GET", d + r"/activity/workout", authed(self._collection("workout"), "read:workout")),
            ("GET", d + rf"/activity/workout/{ident}", authed(self._by_id("workout"), "read:workout")),
            # No security in WHOOP's document: the v1 -> v2 id mapping is public.
            ("GET", re.escape(ACTIVITY_MAPPING_PREFIX) + r"/(?P<ident>[^/]+)", self._activity_mapping),
        ]

    def _collection(self, record_type: str) -> Handler:
        def handler(request: Request, access: MemberAccess) -> Response:
            limit, start, end, token = page_query(request)
            query_key = (access.user_id, request.path, start, end)
            with self._core.lock:
                pairs = [
                    (key, record)
                    for key, record in self._data.sorted_records(access.user_id, record_type)
                    if self._data.in_window(access.user_id, record_type, record, start, end)
                ]
                if token is not None:
                    issued = self._page_tokens.get(token)
                    if issued is None or issued[0] != query_key:
                        raise bad_request("nextToken was not issued for this query")
                    pairs = [(key, record) for key, record in pairs if key < issued[1]]
                page = pairs[:limit]
                body: dict[str, Any] = {"records": [copy.deepcopy(record) for _, record in page]}
                if len(pairs) > limit:  # on the last page `next_token` is absent
                    next_token = secrets.token_urlsafe(18)
                    self._page_tokens[next_token] = (query_key, page[-1][0])
                    while len(self._page_tokens) > MAX_PAGE_TOKENS:
                        del self._page_tokens[next(iter(self._page_tokens))]
                    body["next_token"] = next_token
                return Response(200, body)

        return handler

    def _lookup(self, user_id: int, record_type: str, ident: str) -> dict[str, Any]:
        """A copy of the member's record, or 404 (unknown, malformed or someone else's)."""
        with self._core.lock:
            try:
                return copy.deepcopy(self._data.find(user_id, record_type, ident))
            except KeyError:
                raise error(404, "not_found") from None

    def _by_id(self, record_type: str) -> Handler:
        def handler(request: Request, access: MemberAccess, ident: str) -> Response:
            return Response(200, self._lookup(access.user_id, record_type, ident))

        return handler

    def _of_cycle(self, record_type: str) -> Handler:
        """The cycle's (main, not nap) sleep or its recovery, the newest if several; 404 if none."""

        def handler(request: Request, access: MemberAccess, ident: str) -> Response:
            cycle_id = self._lookup(access.user_id, "cycle", ident)["id"]
            with self._core.lock:
                for _, record in self._data.sorted_records(access.user_id, record_type):
                    if record["cycle_id"] == cycle_id and not record.get("nap"):
                        return Response(200, copy.deepcopy(record))
            raise error(404, "not_found")

        return handler

    def _activity_mapping(self, request: Request, ident: str) -> Response:
        v2_id = self._data.v1_activity(int(ident)) if ident.isascii() and ident.isdigit() else None
        if v2_id is None:
            raise error(404, "not_found")
        return Response(200, {"v2_activity_id": v2_id})
