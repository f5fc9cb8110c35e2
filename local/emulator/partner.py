"""The Healthcare Partner API face: client-credentials tokens, requisitions and service
requests, task-status updates, results reports and `development/add-test-data`.

WHOOP documents few answers on these routes, so a request WHOOP's rules refuse gets the
documented answer and is listed in `Core.contract_violations()` (never an invented 400 or 409).
"""

from __future__ import annotations

import copy
import hmac
import re
import secrets
import time
import urllib.parse
from collections.abc import Iterable
from typing import Any

from local.emulator.core import (
    PARTNER_PREFIX,
    Core,
    Handler,
    Request,
    Response,
    RouteSpec,
    error,
    loads,
    media_type,
    utc_iso,
)
from local.emulator.lab_orders import (
    APPOINTMENT_TYPES,
    ISSUE_STATUSES,
    new_requisition,
    report_problems,
    status_body_problems,
    token_body_problems,
    transition_problem,
)


class PartnerApi:
    """The partner's side of WHOOP. Switches: `token_ttl_seconds`, `production`
    (add-test-data answers 404) and `test_codes` (what `create_requisition` orders)."""

    def __init__(
        self,
        core: Core,
        *,
        token_ttl_seconds: int = 3600,
        production: bool = False,
        test_codes: Iterable[str] = ("LIPID_PANEL", "CBC", "HBA1C"),
    ) -> None:
        self._core = core
        self.token_ttl_seconds = token_ttl_seconds
        self.production = production
        self.test_codes = tuple(test_codes)
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._token_issues = 0
        self._requisitions: dict[str, dict[str, Any]] = {}
        self._service_requests: dict[str, dict[str, Any]] = {}  # same objects as inside requisitions
        self._sr_requisition: dict[str, str] = {}  # service request id -> requisition id
        self._reports: dict[str, list[dict[str, Any]]] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._patient_counter = 0

    # ------------------------------------------------------------------ tokens

    @property
    def token_requests(self) -> int:
        """How many partner access tokens were issued."""
        with self._core.lock:
            return self._token_issues

    def expire_tokens(self) -> None:
        """Invalidate every issued token, so the next partner call answers 401."""
        with self._core.lock:
            self._tokens.clear()

    def _token_valid(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        with self._core.lock:
            expiry = self._tokens.get(token.strip())
            return expiry is not None and time.monotonic() < expiry

    def authed(self, handler: Handler) -> Handler:
        """`handler` behind a live partner access token (401 otherwise)."""

        def wrapped(request: Request, **groups: str) -> Response:
            if not self._token_valid(request.headers.get("Authorization")):
                return Response(401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})
            return handler(request, **groups)

        return wrapped

    # ------------------------------------------------------------------ requisitions (Python API)

    def create_requisition(
        self,
        codes: Iterable[str] | None = None,
        *,
        appointments: bool = True,
        appointment_type: str = "IN_PERSON",
        based_on: dict[str, list[dict[str, Any]]] | None = None,
    ) -> dict[str, Any]:
        """Create and store a requisition with one service request per code; returns a copy.

        The shape is WHOOP's LabRequisition: a UnilabsPatient (`id`, names, `birth_date`,
        `gender`, `email`, `phone`, `nationality`, `emirates_id`, `passport_no`), service
        requests with `based_on` (`based_on` maps a code to its `{type, id}` references,
        default none) and no `task_business_status` until the partner sets one, and one
        appointment of `appointment_type` (IN_PERSON, MOBILE with the patient's
        `collection_address`, VIRTUAL) booked tomorrow at 08:00 UTC, unless `appointments`
        is False.
        """
        code_list = list(self.test_codes if codes is None else codes)
        if not code_list or not all(isinstance(c, str) and c for c in code_list):
            raise ValueError("codes must be a non-empty list of non-empty strings")
        if appointment_type not in APPOINTMENT_TYPES:
            raise ValueError(f"appointment_type must be one of {', '.join(APPOINTMENT_TYPES)}")
        references = based_on or {}
        if not isinstance(references, dict) or not all(
            isinstance(refs, list) and all(isinstance(ref, dict) and set(ref) == {"type", "id"} for ref in refs)
            for refs in references.values()
        ):
            raise ValueError("based_on must map a code to a list of {type, id} references")
        with self._core.lock:
            self._patient_counter += 1
            number = self._patient_counter
        requisition = new_requisition(
            number,
            code_list,
            appointments=appointments,
            appointment_type=appointment_type,
            references=references,
            now=time.time(),
        )
        return self.add_requisition(requisition)

    def add_requisition(self, requisition: dict[str, Any]) -> dict[str, Any]:
        """Store an arbitrary requisition (deep-copied) and index its service requests."""
        if not isinstance(requisition, dict) or not isinstance(requisition.get("id"), str):
            raise TypeError("requisition must be a dict with a string id")
        stored = copy.deepcopy(requisition)
        with self._core.lock:
            old = self._requisitions.get(stored["id"])
            for sr in (old or {}).get("service_requests") or []:
                if isinstance(sr, dict) and self._sr_requisition.get(sr.get("id")) == stored["id"]:
                    self._service_requests.pop(sr["id"], None)
                    self._sr_requisition.pop(sr["id"], None)
            self._requisitions[stored["id"]] = stored
            for sr in stored.get("service_requests") or []:
                if isinstance(sr, dict) and isinstance(sr.get("id"), str):
                    self._service_requests[sr["id"]] = sr
                    self._sr_requisition[sr["id"]] = stored["id"]
                    self._reports.setdefault(sr["id"], [])
                    self._history.setdefault(sr["id"], [])
            return copy.deepcopy(stored)

    def requisition(self, requisition_id: str) -> dict[str, Any]:
        """Current state of a requisition (a copy). Raises KeyError if unknown."""
        with self._core.lock:
            return copy.deepcopy(self._requisitions[requisition_id])

    def service_request(self, service_request_id: str) -> dict[str, Any]:
        """Current state of a service request (a copy). Raises KeyError if unknown."""
        with self._core.lock:
            return copy.deepcopy(self._service_requests[service_request_id])

    def reports(self, service_request_id: str) -> list[dict[str, Any]]:
        """Diagnostic reports accepted for a service request, in arrival order."""
        return self._of_service_request(self._reports, service_request_id)

    def status_history(self, service_request_id: str) -> list[dict[str, Any]]:
        """Status changes of a service request: `{"status", "reason", "time"}` each, oldest first."""
        return self._of_service_request(self._history, service_request_id)

    def _of_service_request(self, lists: dict[str, list[dict[str, Any]]], ident: str) -> list[dict[str, Any]]:
        with self._core.lock:
            if ident not in self._service_requests:
                raise KeyError(ident)
            return copy.deepcopy(lists.get(ident, []))

    def has_service_request(self, service_request_id: str) -> bool:
        with self._core.lock:
            return service_request_id in self._service_requests

    # ------------------------------------------------------------------ HTTP

    def routes(self) -> list[RouteSpec]:
        authed = self.authed
        p = re.escape(PARTNER_PREFIX)
        ident = r"(?P<ident>[^/]+)"
        return [
            ("POST", p + r"/token", self._token),
            ("GET", p + rf"/requisition/{ident}", authed(self._get_requisition)),
            ("PATCH", p + rf"/requisition/{ident}/status", authed(self._patch_requisition_status)),
            ("GET", p + rf"/service-request/{ident}", authed(self._get_service_request)),
            ("PATCH", p + rf"/service-request/{ident}/status", authed(self._patch_service_request_status)),
            ("POST", p + rf"/service-request/{ident}/results", authed(self._post_results)),
            ("POST", p + r"/development/add-test-data", authed(self._add_test_data)),
        ]

    def _token(self, request: Request) -> Response:
        # WHOOP documents 200 and 401 only: a malformed token request is a 401 here, and the
        # emulator's stricter reading is recorded as a contract violation.
        problems = []
        body: Any = None
        if media_type(request) != "application/json":
            problems.append("Content-Type must be application/json")
        else:
            try:
                body = loads(request.body) if request.body else None
            except (ValueError, UnicodeDecodeError) as exc:
                problems.append(f"body is not valid JSON: {exc}")
        problems = problems or token_body_problems(body)
        if problems:
            self._core.violate(request, *problems)
            raise error(401, "invalid_client", "client authentication failed")
        id_ok = hmac.compare_digest(body["client_id"].encode(), self._core.client_id.encode())
        secret_ok = hmac.compare_digest(body["client_secret"].encode(), self._core.client_secret.encode())
        if not (id_ok and secret_ok):
            raise error(401, "invalid_client", "client authentication failed")
        token = secrets.token_urlsafe(32)
        with self._core.lock:
            self._tokens[token] = time.monotonic() + self.token_ttl_seconds
            self._token_issues += 1
            self._core.issue(token)
        return Response(200, {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl_seconds})

    def _get_requisition(self, request: Request, ident: str) -> Response:
        return self._get(self._requisitions, ident)

    def _get_service_request(self, request: Request, ident: str) -> Response:
        return self._get(self._service_requests, ident)

    def _get(self, objects: dict[str, dict[str, Any]], ident: str) -> Response:
        with self._core.lock:
            found = objects.get(ident)
            if found is None:
                raise error(404, "not_found")
            return Response(200, copy.deepcopy(found))

    @staticmethod
    def _json(request: Request) -> tuple[Any, list[str]]:
        """The JSON body of a partner call and what is wrong with its framing."""
        if media_type(request) != "application/json":
            return None, ["Content-Type must be application/json"]
        if not request.body:
            return None, ["a JSON body is required"]
        try:
            return loads(request.body), []
        except (ValueError, UnicodeDecodeError) as exc:
            return None, [f"body is not valid JSON: {exc}"]

    def _status_body(self, request: Request) -> tuple[str | None, str | None, list[str]]:
        """(task_business_status, reason, problems) of a status PATCH."""
        body, problems = self._json(request)
        if problems:
            return None, None, problems
        return status_body_problems(body)

    def _apply_status(
        self, request: Request, sr_ids: list[str], status: str | None, reason: str | None, problems: list[str]
    ) -> None:
        """Check the body and every transition, then apply all or nothing (caller holds the lock).

        WHOOP documents no 400 or 409 on the status routes, so a refused change is recorded
        as a contract violation (`contract_violations()`) and the documented answer is sent.
        """
        for sr_id in sr_ids:
            if status is None or problems:
                break
            problem = transition_problem(self._service_requests[sr_id].get("task_business_status"), status)
            if problem:
                problems.append(f"service request {sr_id}: {problem}")
        if problems:
            self._core.violate(request, *problems)
            return
        now = utc_iso()
        for sr_id in sr_ids:
            self._service_requests[sr_id]["task_business_status"] = status
            self._history.setdefault(sr_id, []).append({"status": status, "reason": reason, "time": now})
            requisition = self._requisitions.get(self._sr_requisition.get(sr_id, ""))
            if requisition is not None:
                requisition["updated_at"] = now

    def _patch_requisition_status(self, request: Request, ident: str) -> Response:
        status, reason, problems = self._status_body(request)
        with self._core.lock:
            requisition = self._requisitions.get(ident)
            if requisition is None:
                raise error(404, "not_found")
            sr_ids = [
                sr["id"]
                for sr in requisition.get("service_requests") or []
                if isinstance(sr, dict) and sr.get("id") in self._service_requests
            ]
            self._apply_status(request, sr_ids, status, reason, problems)
        return Response(204)

    def _patch_service_request_status(self, request: Request, ident: str) -> Response:
        status, reason, problems = self._status_body(request)
        with self._core.lock:
            if ident not in self._service_requests:
                raise error(404, "not_found")
            self._apply_status(request, [ident], status, reason, problems)
            return Response(200, copy.deepcopy(self._service_requests[ident]))

    def _post_results(self, request: Request, ident: str) -> Response:
        # WHOOP documents 201 and 404 only: a report WHOOP's rules refuse is recorded as a
        # contract violation (and not stored), never answered with an invented 400 or 409.
        body, problems = self._json(request)
        problems = problems or report_problems(body)
        with self._core.lock:
            service_request = self._service_requests.get(ident)
            if service_request is None:
                raise error(404, "not_found")
            current = service_request.get("task_business_status")
            if not problems and current in ISSUE_STATUSES:
                problems.append(f"service request {ident} is in {current}; results are closed")
            if problems:
                self._core.violate(request, *problems)
            else:
                self._reports.setdefault(ident, []).append(copy.deepcopy(body))
        return Response(201)

    def _add_test_data(self, request: Request) -> Response:
        """A test member and a requisition with a booked appointment: 200 `{"requisition_id"}`.

        `appointmentType` (query) is IN_PERSON (default), MOBILE or VIRTUAL. WHOOP sends no
        webhook for it: the caller fetches the requisition by the returned id. 404 in production.
        """
        if self.production:
            raise error(404, "not_found")
        params = urllib.parse.parse_qs(request.query, keep_blank_values=True)
        appointment_type = (params.get("appointmentType") or ["IN_PERSON"])[-1]
        if appointment_type not in APPOINTMENT_TYPES:
            self._core.violate(request, f"appointmentType must be one of {', '.join(APPOINTMENT_TYPES)}")
            appointment_type = "IN_PERSON"
        requisition = self.create_requisition(appointment_type=appointment_type)
        return Response(200, {"requisition_id": requisition["id"]})
