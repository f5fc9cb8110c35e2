"""`WhoopEmulator`: the faces over one core, one HTTP server and one dispatch.

Each face keeps its own state and switches; the emulator forwards its public names to the
face that owns them (`_On`), so `emulator.decline_consent = True` sets the OAuth face's switch
and `emulator.create_requisition(...)` is the partner face's method.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Self

from local.emulator.calls import CallLog
from local.emulator.control import ControlApi
from local.emulator.core import CONTROL_PREFIX, DATA_PREFIX, PARTNER_PREFIX, Core, Request, Response, Router
from local.emulator.data_api import DataApi
from local.emulator.documents import Documents
from local.emulator.faults import Faults
from local.emulator.member_data import MemberData
from local.emulator.oauth import OAuth
from local.emulator.partner import PartnerApi
from local.emulator.rate_limits import RateLimits
from local.emulator.server import HttpServer
from local.emulator.webhooks import Webhooks
from whoop_bridge.clock import Clock, SystemClock


class _On:
    """An attribute or method of the emulator that lives on one of its parts (`face`),
    under the same name unless `name` says otherwise; setting it sets it there."""

    def __init__(self, face: str, name: str | None = None) -> None:
        self.face = face
        self.name = name

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return getattr(getattr(instance, self.face), str(self.name))

    def __set__(self, instance: Any, value: Any) -> None:
        setattr(getattr(instance, self.face), str(self.name), value)


def _is_member_api(path: str) -> bool:
    """A member call of the standard API: `/developer/v2/...` but not the partner API."""
    return path.startswith(DATA_PREFIX + "/") and not (path == PARTNER_PREFIX or path.startswith(PARTNER_PREFIX + "/"))


class WhoopEmulator:
    """WHOOP Healthcare Partner API and standard developer API emulator (HTTP server plus test controls).

    Partner API under `/developer/v2/partner/...` (`partner`, `documents`); WHOOP's member
    OAuth under `/oauth/oauth2/auth` and `/oauth/oauth2/token` (the developer app is
    `member_client_id` / `member_client_secret` with `redirect_uris`) and the member
    endpoints under `/developer/v2/user/...` (`oauth`); the member data API
    (`/developer/v2/cycle`, `/v2/recovery`, `/v2/activity/sleep`, `/v2/activity/workout`
    and their by-id routes; `data_api` over `member_data`); control API under
    `/_emulator/...` (`control`). Partner and member access tokens are separate: neither
    works on the other's routes. Control calls are neither recorded in `calls` nor subject
    to injected faults (`faults`).

    Member data: `generate_history` fills a member with days of cycles, sleeps, recoveries
    and workouts; `records`, `record`, `add_record`, `score`, `update_record` and
    `delete_record` read and change them. Every member `/developer/v2/...` call (partner API
    and OAuth token endpoint excluded) is rate limited per app in fixed windows on `clock`
    (`rate_limit_per_minute`, `rate_limit_per_day`; `burst_429` forces 429s; `rate_limits`)
    and listed in `member_api_calls()`. `send_member_webhook` sends WHOOP's signed data
    webhooks to `member_webhook_url`, keyed with `member_client_secret` (`webhooks`).

    Switches a test may set directly: `decline_consent` (the member says no),
    `withhold_scopes` (scopes never granted), `user_limit` (None = unlimited),
    `member_token_ttl_seconds`, `signed_in_user_id` (the WHOOP member who approves the next
    authorizations; None = a brand-new member each time), `redirect_uris` (a list),
    `rate_limit_per_minute`, `rate_limit_per_day` and `member_webhook_url`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = "local-partner-client",
        client_secret: str = "local-partner-secret",
        webhook_secret: str = "local-webhook-secret",
        partner_webhook_url: str | None = None,
        token_ttl_seconds: int = 3600,
        production: bool = False,
        test_codes: Iterable[str] = ("LIPID_PANEL", "CBC", "HBA1C"),
        member_client_id: str = "local-member-client",
        member_client_secret: str = "local-member-secret",
        redirect_uris: Iterable[str] = (),
        member_token_ttl_seconds: int = 3600,
        user_limit: int | None = None,
        member_webhook_url: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.core = Core(
            client_id=client_id,
            client_secret=client_secret,
            webhook_secret=webhook_secret,
            member_client_id=member_client_id,
            member_client_secret=member_client_secret,
            clock=clock if clock is not None else SystemClock(),
        )
        core = self.core
        self.server = HttpServer(self._handle, host=host, port=port)
        self.log = CallLog(core)
        self.faults = Faults(core)
        self.rate_limits = RateLimits(core)
        self.partner = PartnerApi(
            core, token_ttl_seconds=token_ttl_seconds, production=production, test_codes=test_codes
        )
        self.documents = Documents(core, self.partner.authed)
        self.oauth = OAuth(
            core,
            redirect_uris=redirect_uris,
            member_token_ttl_seconds=member_token_ttl_seconds,
            user_limit=user_limit,
        )
        self.member_data = MemberData(core)
        self.data_api = DataApi(core, self.member_data, self.oauth.authed)
        self.webhooks = Webhooks(core, partner_webhook_url=partner_webhook_url, member_webhook_url=member_webhook_url)
        self.control = ControlApi(self)
        self._router = Router(
            self.partner.routes()
            + self.oauth.routes()
            + self.data_api.routes()
            + self.control.routes()
            + self.documents.routes()
        )

    # ------------------------------------------------------------------ where each public name lives

    host = _On("server")
    port = _On("server")
    base_url = _On("server")
    client_id = _On("core")
    client_secret = _On("core")
    webhook_secret = _On("core")
    member_client_id = _On("core")
    member_client_secret = _On("core")
    clock = _On("core")
    issued_credentials = _On("core")
    contract_violations = _On("core")

    token_ttl_seconds = _On("partner")
    production = _On("partner")
    test_codes = _On("partner")
    token_requests = _On("partner")
    expire_tokens = _On("partner")
    create_requisition = _On("partner")
    add_requisition = _On("partner")
    requisition = _On("partner")
    service_request = _On("partner")
    reports = _On("partner")
    status_history = _On("partner")
    add_document = _On("documents")

    redirect_uris = _On("oauth")
    member_token_ttl_seconds = _On("oauth")
    user_limit = _On("oauth")
    decline_consent = _On("oauth")
    withhold_scopes = _On("oauth")
    signed_in_user_id = _On("oauth")
    add_member = _On("oauth")
    member = _On("oauth")
    member_refreshes = _On("oauth")
    member_code_exchanges = _On("oauth")
    revocations = _On("oauth")
    expire_member_tokens = _On("oauth")
    revoke_member = _On("oauth")
    authorized_members = _On("oauth")

    generate_history = _On("member_data")
    records = _On("member_data")
    record = _On("member_data")
    add_record = _On("member_data")
    map_v1_activity = _On("member_data")
    score = _On("member_data")
    update_record = _On("member_data")
    delete_record = _On("member_data")

    rate_limit_per_minute = _On("rate_limits", "per_minute")
    rate_limit_per_day = _On("rate_limits", "per_day")
    burst_429 = _On("rate_limits")

    calls = _On("log")
    calls_to = _On("log")
    reset_calls = _On("log")
    timeline = _On("log")
    member_api_calls = _On("log")
    rate_limited_calls = _On("log")

    inject_fault = _On("faults")
    clear_faults = _On("faults")

    partner_webhook_url = _On("webhooks")
    member_webhook_url = _On("webhooks")
    webhook_deliveries = _On("webhooks")
    member_webhook_deliveries = _On("webhooks")
    send_partner_webhook = _On("webhooks")
    send_member_webhook = _On("webhooks")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind and serve in a daemon thread; port 0 picks a free port. Returns self."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (safe to call twice)."""
        self.server.stop()

    def __enter__(self) -> Self:
        return self if self.server.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def partner_base_url(self) -> str:
        """The partner API base, as WHOOP's `https://api.prod.whoop.com/developer`."""
        return self.base_url + "/developer"

    # ------------------------------------------------------------------ dispatch

    def _handle(self, request: Request) -> Response:
        """Apply faults and rate limits, route, record. Called from server threads."""
        if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
            return self._router.route(request)
        arrival = self.log.arrive()
        member_api = _is_member_api(request.path)
        if member_api:
            # Resolved before routing: a revocation kills the token it arrives with.
            member_call = {
                "time": self.core.clock.time(),
                "method": request.method,
                "path": request.path,
                "status": None,
                "user_id": self.oauth.token_user(request),
            }
        fault = self.faults.take(request.method, request.path)
        if fault is not None and not fault.after:
            if fault.delay:
                time.sleep(fault.delay)  # outside the lock, so other calls proceed
            if fault.status is not None:
                response = fault.response()
                if member_api and not any(k.lower().startswith("x-ratelimit-") for k in response.headers):
                    response.headers.update(self.rate_limits.check(consume=False)[1])
                self.log.record(request, arrival, response.status, injected=True)
                if member_api:
                    self.log.record_member_call(member_call, response.status)
                return response
        if member_api:
            refused, limit_headers = self.rate_limits.check()
            response = Response(429, {"error": "too_many_requests"}) if refused else self._router.route(request)
            response.headers.update(limit_headers)
        else:
            response = self._router.route(request)
        self.log.record(request, arrival, response.status, delay=fault.delay if fault else 0.0)
        if member_api:
            self.log.record_member_call(member_call, response.status)
        if fault is not None and fault.after and fault.delay:
            time.sleep(fault.delay)  # handled: the answer is held (lost, past the client's timeout)
        return response
