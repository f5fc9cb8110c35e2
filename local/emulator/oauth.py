"""The standard API's OAuth face: the authorization code flow at `/oauth/oauth2/auth`, the
form-encoded `/oauth/oauth2/token` with WHOOP's refresh-token rotation and the app's user
limit, and the member endpoints a connect flow touches (`/v2/user/profile/basic`,
`/v2/user/measurement/body`, `DELETE /v2/user/access`).

Member access tokens are separate from partner tokens: neither works on the other's routes.
`authed` puts any member route (the data API's too) behind a live token and its scope.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from local.emulator.core import (
    AUTHORIZE_PATH,
    FIRST_MEMBER_ID,
    FORM_CONTENT_TYPE,
    MEMBER_PREFIX,
    OAUTH_TOKEN_PATH,
    Core,
    Handler,
    HttpError,
    Request,
    Response,
    RouteSpec,
    media_type,
)

# The standard API's scopes (docs/whoop.md#oauth); `offline` is what earns a refresh token.
MEMBER_SCOPES = frozenset(
    {
        "read:recovery",
        "read:cycles",
        "read:workout",
        "read:sleep",
        "read:profile",
        "read:body_measurement",
        "offline",
    }
)
CODE_TTL_SECONDS = 600  # authorization codes: single use, 10 minutes
MIN_STATE_LENGTH = 8
# (height_meter, weight_kilogram, max_heart_rate); the first is the docs' example.
_FAKE_BODIES = (
    (1.8288, 90.7185, 200),
    (1.651, 61.235, 188),
    (1.7526, 77.1107, 194),
    (1.7018, 68.0389, 181),
)


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    user_id: int
    scopes: tuple[str, ...]
    expiry: float  # monotonic
    used: bool = False


@dataclass
class MemberAccess:
    user_id: int
    client_id: str
    scopes: tuple[str, ...]
    expiry: float  # monotonic
    refresh_token: str | None  # the refresh token issued with this access token


@dataclass
class MemberRefresh:
    user_id: int
    client_id: str
    scopes: tuple[str, ...]
    access_token: str  # the access token issued with it; dies when this refresh token is used


def oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> HttpError:
    """An OAuth 2.0 error body (RFC 6749 §5.2): `error` plus `error_description`."""
    return HttpError(
        status, {"error": error, "error_description": description}, {"Cache-Control": "no-store", **(headers or {})}
    )


def _invalid_token() -> Response:
    return Response(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _redirect(redirect_uri: str, params: dict[str, str]) -> Response:
    """302 to the redirect URI with `params` added to whatever query it already has."""
    parts = urllib.parse.urlsplit(redirect_uri)
    extra = urllib.parse.urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    location = urllib.parse.urlunsplit(parts._replace(query=query))
    return Response(302, None, {"Location": location, "Cache-Control": "no-store"})


class OAuth:
    """The developer app's members and their tokens.

    Switches a test may set: `decline_consent` (the member says no), `withhold_scopes`
    (scopes never granted), `user_limit` (None = unlimited), `member_token_ttl_seconds`,
    `signed_in_user_id` (the WHOOP member who approves the next authorizations; None = a
    brand-new member each time) and `redirect_uris` (a list).
    """

    def __init__(
        self,
        core: Core,
        *,
        redirect_uris: Iterable[str] = (),
        member_token_ttl_seconds: int = 3600,
        user_limit: int | None = None,
    ) -> None:
        self._core = core
        self.redirect_uris: list[str] = list(redirect_uris)
        self.member_token_ttl_seconds = member_token_ttl_seconds
        self.user_limit = user_limit
        self.decline_consent: bool = False
        self.withhold_scopes: set[str] = set()
        self.signed_in_user_id: int | None = None
        self._authorized: set[int] = set()  # members who authorized the app and have not revoked it
        self._codes: dict[str, AuthCode] = {}
        self._member_access: dict[str, MemberAccess] = {}
        self._member_refresh: dict[str, MemberRefresh] = {}
        self._member_refreshes = 0
        self._member_code_exchanges = 0
        self._revocations = 0

    # ------------------------------------------------------------------ members (Python API)

    def add_member(self, user_id: int | None = None) -> dict[str, Any]:
        """Create a fake WHOOP member; returns a copy of `{"user_id", "email", "first_name", "last_name"}`.

        Without `user_id` the next free id counting from 10001 is used. Raises ValueError if
        `user_id` is not a positive integer or the member already exists.
        """
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1):
            raise ValueError("user_id must be a positive integer")
        with self._core.lock:
            return dict(self._core.add_member(user_id))

    def member(self, user_id: int) -> dict[str, Any]:
        """A member's profile (a copy). Raises KeyError if unknown."""
        with self._core.lock:
            return dict(self._core.members[user_id])

    @property
    def member_refreshes(self) -> int:
        """How many refresh_token grants succeeded."""
        with self._core.lock:
            return self._member_refreshes

    @property
    def member_code_exchanges(self) -> int:
        """How many authorization_code grants succeeded."""
        with self._core.lock:
            return self._member_code_exchanges

    @property
    def revocations(self) -> int:
        """How many `DELETE /v2/user/access` calls succeeded."""
        with self._core.lock:
            return self._revocations

    def expire_member_tokens(self, user_id: int | None = None) -> None:
        """Member access tokens (of `user_id`, or everyone's) die now; refresh tokens stay valid."""
        with self._core.lock:
            for token, access in list(self._member_access.items()):
                if user_id is None or access.user_id == user_id:
                    del self._member_access[token]

    def revoke_member(self, user_id: int) -> None:
        """The member removes the app in WHOOP: every token and pending code of theirs dies.

        Raises KeyError if the member is unknown.
        """
        with self._core.lock:
            if user_id not in self._core.members:
                raise KeyError(user_id)
            self._revoke_member(user_id, self._core.member_client_id)

    def _revoke_member(self, user_id: int, client_id: str) -> None:
        """Kill the member's tokens and codes for the app and deauthorize it (caller holds the lock)."""
        for grants in (self._member_access, self._member_refresh, self._codes):
            for key, grant in list(grants.items()):
                if grant.user_id == user_id and grant.client_id == client_id:
                    del grants[key]
        self._authorized.discard(user_id)

    def authorized_members(self) -> list[int]:
        """User ids of the members currently authorizing the app, ascending."""
        with self._core.lock:
            return sorted(self._authorized)

    def _issue_member_tokens(self, user_id: int, client_id: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        """Issue an access token, plus a refresh token when `offline` is granted (caller holds the lock)."""
        ttl = self.member_token_ttl_seconds
        access_token = secrets.token_urlsafe(32)
        refresh_token = secrets.token_urlsafe(32) if "offline" in scopes else None
        self._member_access[access_token] = MemberAccess(
            user_id, client_id, scopes, time.monotonic() + ttl, refresh_token
        )
        self._core.issue(access_token)
        payload: dict[str, Any] = {"access_token": access_token, "expires_in": ttl}
        if refresh_token is not None:
            self._member_refresh[refresh_token] = MemberRefresh(user_id, client_id, scopes, access_token)
            self._core.issue(refresh_token)
            payload["refresh_token"] = refresh_token
        payload["scope"] = " ".join(scopes)
        payload["token_type"] = "bearer"
        return payload

    # ------------------------------------------------------------------ member tokens on requests

    def _live_access(self, request: Request) -> MemberAccess | None:
        """The live member access token the request carries, if any."""
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        token = token.strip()
        with self._core.lock:
            access = self._member_access.get(token) if scheme.lower() == "bearer" and token else None
            return access if access is not None and time.monotonic() < access.expiry else None

    def token_user(self, request: Request) -> int | None:
        """The member of the request's live bearer token, if any."""
        access = self._live_access(request)
        return access.user_id if access is not None else None

    def authed(self, handler: Handler, scope: str | None) -> Handler:
        """Require a live member access token (and `scope`, if given); the handler gets the token's record."""

        def wrapped(request: Request, **groups: str) -> Response:
            access = self._live_access(request)
            if access is None:
                return _invalid_token()
            if scope is not None and scope not in access.scopes:
                return Response(
                    403,
                    {"error": "insufficient_scope"},
                    {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
                )
            return handler(request, access, **groups)

        return wrapped

    # ------------------------------------------------------------------ HTTP

    def routes(self) -> list[RouteSpec]:
        m = re.escape(MEMBER_PREFIX)
        return [
            ("GET", re.escape(AUTHORIZE_PATH), self._authorize),
            ("POST", re.escape(OAUTH_TOKEN_PATH), self._token),
            ("GET", m + r"/profile/basic", self.authed(self._profile, "read:profile")),
            ("GET", m + r"/measurement/body", self.authed(self._body, "read:body_measurement")),
            ("DELETE", m + r"/access", self.authed(self._revoke_access, None)),
        ]

    def _authorize(self, request: Request) -> Response:
        params = urllib.parse.parse_qs(request.query, keep_blank_values=True)

        def single(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values is not None and len(values) == 1 else None

        # Client and redirect URI first: an unverified URI is never redirected to (RFC 6749 §4.1.2.1).
        client_id, redirect_uri = single("client_id"), single("redirect_uri")
        if client_id is None or client_id != self._core.member_client_id:
            raise oauth_error(400, "invalid_client", "unknown client_id")
        with self._core.lock:
            registered = redirect_uri is not None and redirect_uri in self.redirect_uris
        if not registered:
            raise oauth_error(400, "invalid_redirect_uri", "redirect_uri does not match a URI registered for this app")
        assert redirect_uri is not None

        state = single("state")
        echo = {"state": state} if state else {}

        def refuse(error: str, description: str) -> Response:
            return _redirect(redirect_uri, {"error": error, "error_description": description, **echo})

        duplicated = sorted(name for name, values in params.items() if len(values) > 1)
        if duplicated:
            return refuse("invalid_request", f"parameters repeated: {', '.join(duplicated)}")
        if single("response_type") != "code":
            return refuse("invalid_request", "response_type must be code")
        if state is None or len(state) < MIN_STATE_LENGTH:
            return refuse("invalid_request", f"state must be at least {MIN_STATE_LENGTH} characters")
        requested = list(dict.fromkeys((single("scope") or "").split()))
        if not requested:
            return refuse("invalid_scope", "scope is required")
        unknown = [scope for scope in requested if scope not in MEMBER_SCOPES]
        if unknown:
            return refuse("invalid_scope", f"unknown scopes: {' '.join(unknown)}")

        with self._core.lock:
            if self.decline_consent:
                return refuse("access_denied", "The user denied the request")
            signed_in = self.signed_in_user_id
            if signed_in is None:
                user_id = self._core.add_member(None)["user_id"]
            else:
                if signed_in not in self._core.members:
                    self._core.add_member(signed_in)
                user_id = signed_in
            limit = self.user_limit
            # WHOOP's docs only say the error says the app "has reached its user limit";
            # the error code and the exact wording here are this emulator's guess.
            if limit is not None and user_id not in self._authorized and len(self._authorized) >= limit:
                return refuse("access_denied", "This application has reached its user limit")
            granted = tuple(scope for scope in requested if scope not in self.withhold_scopes)
            code = self._core.issue(secrets.token_urlsafe(32))
            self._codes[code] = AuthCode(client_id, redirect_uri, user_id, granted, time.monotonic() + CODE_TTL_SECONDS)
            self._authorized.add(user_id)
        return _redirect(redirect_uri, {"code": code, "state": state})

    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        if media_type(request) != FORM_CONTENT_TYPE:
            raise oauth_error(400, "invalid_request", f"Content-Type must be {FORM_CONTENT_TYPE}")
        try:
            fields = urllib.parse.parse_qs(
                request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, errors="strict"
            )
        except (ValueError, UnicodeDecodeError):
            raise oauth_error(400, "invalid_request", "body is not a valid form") from None
        duplicated = sorted(name for name, values in fields.items() if len(values) > 1)
        if duplicated:
            raise oauth_error(400, "invalid_request", f"parameters repeated: {', '.join(duplicated)}")
        return {name: values[0] for name, values in fields.items()}

    def _token(self, request: Request) -> Response:
        form = self._form(request)
        id_ok = hmac.compare_digest(form.get("client_id", "").encode(), self._core.member_client_id.encode())
        secret_ok = hmac.compare_digest(
            form.get("client_secret", "").encode(), self._core.member_client_secret.encode()
        )
        if not (id_ok and secret_ok and "client_id" in form and "client_secret" in form):
            raise oauth_error(401, "invalid_client", "client authentication failed")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            payload = self._code_grant(form)
        elif grant_type == "refresh_token":
            payload = self._refresh_grant(form)
        elif grant_type is None:
            raise oauth_error(400, "invalid_request", "grant_type is required")
        else:
            raise oauth_error(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
        return Response(200, payload, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _code_grant(self, form: dict[str, str]) -> dict[str, Any]:
        missing = [name for name in ("code", "redirect_uri") if not form.get(name)]
        if missing:
            raise oauth_error(400, "invalid_request", f"missing: {', '.join(missing)}")
        with self._core.lock:
            grant = self._codes.get(form["code"])
            if grant is None or grant.used or time.monotonic() >= grant.expiry:
                raise oauth_error(400, "invalid_grant", "authorization code is invalid, expired or already used")
            if grant.client_id != form["client_id"]:
                raise oauth_error(400, "invalid_grant", "authorization code was issued to another client")
            if grant.redirect_uri != form["redirect_uri"]:
                # The code stays usable with the right redirect_uri: only this request is refused.
                raise oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
            grant.used = True
            self._member_code_exchanges += 1
            return self._issue_member_tokens(grant.user_id, grant.client_id, grant.scopes)

    def _refresh_grant(self, form: dict[str, str]) -> dict[str, Any]:
        if not form.get("refresh_token"):
            raise oauth_error(400, "invalid_request", "refresh_token is required")
        if "scope" not in form:
            raise oauth_error(400, "invalid_request", "scope is required (offline)")
        if form["scope"] != "offline":
            raise oauth_error(400, "invalid_scope", "scope must be offline")
        # Check and rotate in one critical section: of two concurrent refreshes with the
        # same refresh token exactly one succeeds (WHOOP's rotation, docs/whoop.md#token-rotation).
        with self._core.lock:
            old = self._member_refresh.get(form["refresh_token"])
            if old is None or old.client_id != form["client_id"]:
                raise oauth_error(400, "invalid_grant", "refresh token is invalid, used or revoked")
            del self._member_refresh[form["refresh_token"]]
            self._member_access.pop(old.access_token, None)
            self._member_refreshes += 1
            return self._issue_member_tokens(old.user_id, old.client_id, old.scopes)

    def _profile(self, request: Request, access: MemberAccess) -> Response:
        return Response(200, self.member(access.user_id))

    def _body(self, request: Request, access: MemberAccess) -> Response:
        height, weight, max_heart_rate = _FAKE_BODIES[(access.user_id - FIRST_MEMBER_ID) % len(_FAKE_BODIES)]
        return Response(200, {"height_meter": height, "weight_kilogram": weight, "max_heart_rate": max_heart_rate})

    def _revoke_access(self, request: Request, access: MemberAccess) -> Response:
        with self._core.lock:
            if access not in self._member_access.values():
                # A concurrent revocation (or refresh) killed the token after it was checked.
                return _invalid_token()
            self._revoke_member(access.user_id, access.client_id)
            self._revocations += 1
        return Response(204)
