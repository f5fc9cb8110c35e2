"""The emulator's own control API under `/_emulator/` (not WHOOP's): what a test or the demo
does over HTTP instead of through the Python API: create requisitions and members, inject
faults, expire tokens, send webhooks, generate a member's history, read what clients did and
change the OAuth switches. Control calls are neither recorded nor subject to injected faults.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from local.emulator.core import CONTROL_PREFIX, Request, Response, RouteSpec, bad_request, error, json_body
from local.emulator.documents import SAMPLE_DOCUMENT
from local.emulator.oauth import MEMBER_SCOPES
from local.emulator.records import RECORD_TYPES

if TYPE_CHECKING:
    from local.emulator.whoop_emulator import WhoopEmulator


class ControlApi:
    """Each route calls the emulator's Python API."""

    def __init__(self, emulator: WhoopEmulator) -> None:
        self._emulator = emulator
        self._core = emulator.core

    def routes(self) -> list[RouteSpec]:
        c = re.escape(CONTROL_PREFIX)
        member = c + r"/members/(?P<ident>[^/]+)"
        return [
            ("GET", c + r"/health", self._health),
            ("GET", c + r"/calls", self._calls),
            ("DELETE", c + r"/calls", self._reset_calls),
            ("GET", c + r"/timeline", self._timeline),
            ("POST", c + r"/requisitions", self._create_requisition),
            ("POST", c + r"/faults", self._add_fault),
            ("DELETE", c + r"/faults", self._clear_faults),
            ("POST", c + r"/tokens/expire", self._expire_tokens),
            ("POST", c + r"/webhooks/partner", self._send_webhook),
            ("GET", c + r"/service-requests/(?P<ident>[^/]+)", self._service_request),
            ("POST", c + r"/members", self._add_member),
            ("POST", member + r"/revoke", self._revoke_member),
            ("POST", member + r"/history", self._generate_history),
            ("POST", member + r"/webhooks", self._send_member_webhook),
            ("GET", member + r"/records/(?P<record_type>[^/]+)", self._records),
            ("GET", c + r"/oauth", self._get_oauth),
            ("POST", c + r"/oauth", self._set_oauth),
            ("POST", c + r"/documents", self._add_document),
        ]

    def _health(self, request: Request) -> Response:
        return Response(200, {"status": "ok"})

    def _calls(self, request: Request) -> Response:
        return Response(200, {"calls": self._emulator.calls})

    def _reset_calls(self, request: Request) -> Response:
        self._emulator.reset_calls()
        return Response(204)

    def _timeline(self, request: Request) -> Response:
        return Response(200, {"lines": self._emulator.timeline()})

    def _create_requisition(self, request: Request) -> Response:
        body = json_body(request, required=False) or {}
        if not isinstance(body, dict):
            raise bad_request("body must be a JSON object")
        try:
            requisition = self._emulator.create_requisition(
                body.get("codes"),
                appointments=bool(body.get("appointments", True)),
                appointment_type=body.get("appointment_type", "IN_PERSON"),
                based_on=body.get("based_on"),
            )
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return Response(201, requisition)

    def _add_fault(self, request: Request) -> Response:
        body = json_body(request)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("method"), str)
            or not isinstance(body.get("path_regex"), str)
        ):
            raise bad_request("method and path_regex are required strings")
        if not isinstance(body.get("after", False), bool):
            raise bad_request("after must be true or false")
        try:
            self._emulator.inject_fault(
                body["method"],
                body["path_regex"],
                status=body.get("status", 500),
                count=body.get("count", 1),
                delay=float(body.get("delay", 0.0)),
                body=body.get("body"),
                headers=body.get("headers"),
                after=body.get("after", False),
            )
        except (ValueError, TypeError, re.error) as exc:
            raise bad_request(str(exc)) from None
        return Response(204)

    def _clear_faults(self, request: Request) -> Response:
        self._emulator.clear_faults()
        return Response(204)

    def _expire_tokens(self, request: Request) -> Response:
        self._emulator.expire_tokens()
        return Response(204)

    def _send_webhook(self, request: Request) -> Response:
        body = json_body(request)
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("event_type", "resource_id")):
            raise bad_request("event_type and resource_id are required strings")
        try:
            status = self._emulator.send_partner_webhook(
                body["event_type"], body["resource_id"], url=body.get("url"), signature=body.get("signature")
            )
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return Response(200, {"status": status})

    def _service_request(self, request: Request, ident: str) -> Response:
        with self._core.lock:
            try:
                payload = {
                    "service_request": self._emulator.service_request(ident),
                    "reports": self._emulator.reports(ident),
                    "history": self._emulator.status_history(ident),
                }
            except KeyError:
                raise error(404, "not_found") from None
        return Response(200, payload)

    def _add_member(self, request: Request) -> Response:
        body = json_body(request, required=False) or {}
        if not isinstance(body, dict) or set(body) - {"user_id"}:
            raise bad_request("body must be a JSON object with an optional user_id")
        user_id = body.get("user_id")
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1):
            raise bad_request("user_id must be a positive integer")
        with self._core.lock:
            if user_id in self._core.members:
                raise error(409, "conflict", f"member {user_id} already exists")
            return Response(201, self._emulator.add_member(user_id))

    def _revoke_member(self, request: Request, ident: str) -> Response:
        try:
            self._emulator.revoke_member(int(ident))
        except (ValueError, KeyError):
            raise error(404, "not_found") from None
        return Response(204)

    def _get_oauth(self, request: Request) -> Response:
        with self._core.lock:
            return Response(
                200,
                {
                    "member_client_id": self._core.member_client_id,
                    "redirect_uris": list(self._emulator.redirect_uris),
                    "decline_consent": self._emulator.decline_consent,
                    "withhold_scopes": sorted(self._emulator.withhold_scopes),
                    "user_limit": self._emulator.user_limit,
                    "signed_in_user_id": self._emulator.signed_in_user_id,
                    "member_token_ttl_seconds": self._emulator.member_token_ttl_seconds,
                    "members": len(self._core.members),
                    "authorized_members": self._emulator.authorized_members(),
                    "member_code_exchanges": self._emulator.member_code_exchanges,
                    "member_refreshes": self._emulator.member_refreshes,
                    "revocations": self._emulator.revocations,
                },
            )

    def _set_oauth(self, request: Request) -> Response:
        body = json_body(request)
        if not isinstance(body, dict):
            raise bad_request("body must be a JSON object")

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_str_list(value: Any) -> bool:
            return isinstance(value, list) and all(isinstance(v, str) for v in value)

        checks: dict[str, tuple[Callable[[Any], bool], str]] = {
            "decline_consent": (lambda v: isinstance(v, bool), "a boolean"),
            "withhold_scopes": (lambda v: is_str_list(v) and set(v) <= MEMBER_SCOPES, "a list of WHOOP scopes"),
            "user_limit": (lambda v: v is None or (is_int(v) and v >= 0), "a non-negative integer or null"),
            "signed_in_user_id": (lambda v: v is None or (is_int(v) and v >= 1), "a positive integer or null"),
            "member_token_ttl_seconds": (lambda v: is_int(v) and v >= 0, "a non-negative integer"),
            "redirect_uris": (is_str_list, "a list of strings"),
        }
        problems = [f"unknown fields: {', '.join(sorted(set(body) - set(checks)))}"] if set(body) - set(checks) else []
        problems += [f"{key} must be {what}" for key, (ok, what) in checks.items() if key in body and not ok(body[key])]
        if problems:
            raise bad_request(*problems)
        with self._core.lock:
            if "decline_consent" in body:
                self._emulator.decline_consent = body["decline_consent"]
            if "withhold_scopes" in body:
                self._emulator.withhold_scopes = set(body["withhold_scopes"])
            if "user_limit" in body:
                self._emulator.user_limit = body["user_limit"]
            if "signed_in_user_id" in body:
                self._emulator.signed_in_user_id = body["signed_in_user_id"]
            if "member_token_ttl_seconds" in body:
                self._emulator.member_token_ttl_seconds = body["member_token_ttl_seconds"]
            if "redirect_uris" in body:
                self._emulator.redirect_uris[:] = body["redirect_uris"]  # in place: holders of the list see the change
        return Response(204)

    def _member_id(self, ident: str) -> int:
        """The user id in a control path, or 404 if it is not a known member."""
        with self._core.lock:
            if not (ident.isascii() and ident.isdigit()) or int(ident) not in self._core.members:
                raise error(404, "not_found")
        return int(ident)

    def _generate_history(self, request: Request, ident: str) -> Response:
        user_id = self._member_id(ident)
        body = json_body(request, required=False) or {}
        if not isinstance(body, dict) or set(body) - {"days", "seed", "pending_latest"}:
            raise bad_request("body must be a JSON object with optional days, seed and pending_latest")
        days, pending_latest = body.get("days", 30), body.get("pending_latest", True)
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise bad_request("days must be a positive integer")
        if not isinstance(pending_latest, bool):
            raise bad_request("pending_latest must be a boolean")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, str))):
            raise bad_request("seed must be an integer or a string")
        return Response(200, self._emulator.generate_history(user_id, days, pending_latest=pending_latest, seed=seed))

    def _send_member_webhook(self, request: Request, ident: str) -> Response:
        user_id = self._member_id(ident)
        body = json_body(request)
        optional = ("trace_id", "url", "signature")
        if (
            not isinstance(body, dict)
            or not all(isinstance(body.get(k), str) for k in ("type", "id"))
            or not all(isinstance(body.get(k), (str, type(None))) for k in optional)
        ):
            raise bad_request("type and id are required strings; trace_id, url and signature optional strings")
        timestamp_ms = body.get("timestamp_ms")
        if timestamp_ms is not None and (isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int)):
            raise bad_request("timestamp_ms must be an integer")
        try:
            status = self._emulator.send_member_webhook(
                user_id,
                body["type"],
                body["id"],
                trace_id=body.get("trace_id"),
                url=body.get("url"),
                signature=body.get("signature"),
                timestamp_ms=timestamp_ms,
            )
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return Response(200, {"status": status})

    def _records(self, request: Request, ident: str, record_type: str) -> Response:
        user_id = self._member_id(ident)
        if record_type not in RECORD_TYPES:
            raise error(404, "not_found", f"record type must be one of {', '.join(RECORD_TYPES)}")
        return Response(200, {"records": self._emulator.records(user_id, record_type)})

    def _add_document(self, request: Request) -> Response:
        """`POST /_emulator/documents` `{document_type?, content_base64?, url?}` -> 201 PartnerDocument.
        Without `content_base64` and `url` the document gets the sample PDF."""
        body = json_body(request, required=False) or {}
        if not isinstance(body, dict) or set(body) - {"document_type", "content_base64", "url"}:
            raise bad_request("body must be a JSON object with optional document_type, content_base64 and url")
        content: bytes | None = SAMPLE_DOCUMENT if "content_base64" not in body and "url" not in body else None
        if body.get("content_base64") is not None:
            try:
                content = base64.b64decode(body["content_base64"], validate=True)
            except (ValueError, TypeError):
                raise bad_request("content_base64 must be base64") from None
        try:
            document = self._emulator.add_document(
                document_type=body.get("document_type", "LAB_ORDER_FORM"), content=content, url=body.get("url")
            )
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return Response(201, document)
