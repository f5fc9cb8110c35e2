"""WHOOP's lab orders as the partner API carries them, and the rules the emulator holds a
partner to: the requisition it makes up (a fake patient, service requests, an appointment),
the task-status transitions, and what a status update, a results report and a token
request may contain. Pure functions: no state, no HTTP."""

from __future__ import annotations

import copy
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from local.emulator.core import is_uuid, utc_iso

# Happy path rank; WHOOP does not document its rules, this is the safe order (docs/whoop.md#task-business-status).
HAPPY_RANK: dict[str | None, int] = {
    None: 0,
    "ORDER_CONFIRMED": 1,
    "APPOINTMENT_ATTENDED": 2,
    "PARTIAL_RESULTS_READY": 3,
    "FULL_RESULTS_READY": 4,
}
ISSUE_STATUSES = frozenset({"APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"})
TASK_BUSINESS_STATUSES = frozenset(k for k in HAPPY_RANK if k is not None) | ISSUE_STATUSES

REPORT_STATUSES = frozenset({"final", "partial", "preliminary", "amended", "corrected", "cancelled"})
OBSERVATION_STATUSES = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
)
REPORT_KEYS = frozenset({"status", "observations"})
OBSERVATION_KEYS = frozenset({"code", "value_numeric", "value_text", "unit", "status", "bundle_id"})
STATUS_BODY_KEYS = frozenset({"task_business_status", "reason"})
TOKEN_BODY_KEYS = frozenset({"grant_type", "client_id", "client_secret", "scope"})

TASK_DESCRIPTIONS = {
    "LIPID_PANEL": "Fasting lipid panel",
    "CBC": "Complete blood count",
    "HBA1C": "Hemoglobin A1c",
}

# Fake patients in WHOOP's UnilabsPatient shape (WHOOP's partner labs are in the UAE).
# Identifiers are visibly fictional: emirates ids with a 0000000 serial, passports XX..., 555 numbers.
_FAKE_PATIENTS = (
    ("Jordan", "Rivera", "1988-04-17", "female", "US"),
    ("Samuel", "Okafor", "1979-11-02", "male", "NG"),
    ("Priya", "Natarajan", "1993-06-25", "female", "IN"),
    ("Lukas", "Brandt", "1985-01-09", "male", "DE"),
)
# UnilabsCollectionAddress: building, area and emirate required; landmark and flat_no optional.
_FAKE_ADDRESSES = (
    {
        "building": "Marina Heights Tower",
        "area": "Dubai Marina",
        "emirate": "Dubai",
        "landmark": "Opposite the marina mall",
        "flat_no": "1203",
    },
    {"building": "Al Reem Residence 4", "area": "Al Reem Island", "emirate": "Abu Dhabi"},
)
# add-test-data's `appointmentType` values; a MOBILE appointment comes to the patient's address.
APPOINTMENT_TYPES = ("IN_PERSON", "MOBILE", "VIRTUAL")


def new_requisition(
    number: int,
    codes: list[str],
    *,
    appointments: bool,
    appointment_type: str,
    references: dict[str, list[dict[str, Any]]],
    now: float,
) -> dict[str, Any]:
    """The `number`-th made-up requisition (see `PartnerApi.create_requisition`), created at `now`."""
    first, last, birth_date, gender, nationality = _FAKE_PATIENTS[(number - 1) % len(_FAKE_PATIENTS)]
    address = _FAKE_ADDRESSES[(number - 1) % len(_FAKE_ADDRESSES)]
    service_requests = [
        {
            "id": str(uuid.uuid4()),
            "status": "active",
            "intent": "order",
            "code": code,
            "task_description": TASK_DESCRIPTIONS.get(code, code),
            "based_on": copy.deepcopy(references.get(code, [])),
        }
        for code in codes
    ]
    # Tomorrow at 08:00 UTC, a typical fasting draw slot.
    start = (datetime.fromtimestamp(now, tz=UTC) + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    appointment: dict[str, Any] = {
        "type": appointment_type,
        "service_request_ids": [sr["id"] for sr in service_requests],
        "start_time": start.isoformat().replace("+00:00", "Z"),
        "slot_id": str(uuid.uuid4()),
    }
    if appointment_type == "MOBILE":
        appointment["collection_address"] = dict(address)
    return {
        "id": str(uuid.uuid4()),
        "created_at": utc_iso(now),
        "updated_at": utc_iso(now),
        "patient": {
            "id": str(uuid.uuid4()),
            "first_name": first,
            "last_name": last,
            "birth_date": birth_date,
            "gender": gender,
            "email": f"{first}.{last}@example.com".lower(),
            "phone": f"+971-50-555-{100 + number % 100:04d}",
            "nationality": nationality,
            "emirates_id": f"784-{birth_date[:4]}-0000000-{number % 10}",
            "passport_no": f"XX{number:07d}",
        },
        "service_requests": service_requests,
        "appointments": [appointment] if appointments else [],
    }


def transition_problem(current: str | None, new: str) -> str | None:
    """Why moving a service request from `current` to `new` is forbidden, or None if allowed."""
    if current in ISSUE_STATUSES:
        return f"{current} is terminal; no status may follow it"
    if current == "FULL_RESULTS_READY":
        return "FULL_RESULTS_READY is terminal; no status may follow it"
    if new in ISSUE_STATUSES:
        return None
    if new == "PARTIAL_RESULTS_READY" and current == "PARTIAL_RESULTS_READY":
        return None
    if HAPPY_RANK[new] > HAPPY_RANK.get(current, 0):
        return None
    return f"cannot move from {current or 'no status'} to {new}; the happy path only moves forward"


def token_body_problems(body: Any) -> list[str]:
    """What a partner token request's JSON body breaks (client credentials, WHOOP's scope)."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = []
    missing, extra = sorted(TOKEN_BODY_KEYS - set(body)), sorted(set(body) - TOKEN_BODY_KEYS)
    if missing:
        problems.append(f"missing fields: {', '.join(missing)}")
    if extra:
        problems.append(f"unknown fields: {', '.join(extra)}")
    if "grant_type" in body and body["grant_type"] != "client_credentials":
        problems.append("grant_type must be client_credentials")
    if "scope" in body and body["scope"] != "whoop-partner/token":
        problems.append("scope must be whoop-partner/token")
    for key in ("client_id", "client_secret"):
        if key in body and not isinstance(body[key], str):
            problems.append(f"{key} must be a string")
    return problems


def status_body_problems(body: Any) -> tuple[str | None, str | None, list[str]]:
    """(task_business_status, reason, problems) of a status update's JSON body."""
    if not isinstance(body, dict):
        return None, None, ["body must be a JSON object"]
    problems = []
    extra = sorted(set(body) - STATUS_BODY_KEYS)
    if extra:
        problems.append(f"unknown fields: {', '.join(extra)}")
    status = body.get("task_business_status")
    if status not in TASK_BUSINESS_STATUSES:
        problems.append(f"task_business_status must be one of {', '.join(sorted(TASK_BUSINESS_STATUSES))}")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        problems.append("reason must be a string")
    elif status in ISSUE_STATUSES and not (reason or "").strip():
        problems.append(f"reason is required with {status}")
    return status, reason, problems


def report_problems(body: Any) -> list[str]:
    """What a DiagnosticReportCreateRequest breaks: WHOOP's schema (every field optional,
    `bundle_id` a uuid), the docs' "a value is required" rule, and no unknown fields."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = []
    extra = sorted(set(body) - REPORT_KEYS)
    if extra:
        problems.append(f"unknown fields: {', '.join(extra)}")
    if "status" in body and body["status"] not in REPORT_STATUSES:
        problems.append(f"status must be one of {', '.join(sorted(REPORT_STATUSES))}")
    observations = body.get("observations")
    if observations is None and body.get("status") == "cancelled":
        return problems  # a cancelled report may carry no observations
    if not isinstance(observations, list) or (not observations and body.get("status") != "cancelled"):
        problems.append("observations must be a non-empty list")
        return problems
    for index, obs in enumerate(observations):
        problems += _observation_problems(f"observations[{index}]", obs)
    return problems


def _observation_problems(where: str, obs: Any) -> list[str]:
    if not isinstance(obs, dict):
        return [f"{where} must be an object"]
    problems = []
    extra = sorted(set(obs) - OBSERVATION_KEYS)
    if extra:
        problems.append(f"{where}: unknown fields: {', '.join(extra)}")
    code = obs.get("code")
    if not isinstance(code, str) or not code.strip():
        problems.append(f"{where}.code must be a non-empty string")
    numeric, text = obs.get("value_numeric"), obs.get("value_text")
    if numeric is not None and (
        isinstance(numeric, bool) or not isinstance(numeric, (int, float)) or not math.isfinite(numeric)
    ):
        problems.append(f"{where}.value_numeric must be a number")
    if text is not None and (not isinstance(text, str) or not text):
        problems.append(f"{where}.value_text must be a non-empty string")
    if numeric is None and text is None:
        problems.append(f"{where}: at least one of value_numeric or value_text is required")
    unit = obs.get("unit")
    if unit is not None and not isinstance(unit, str):
        problems.append(f"{where}.unit must be a string")
    if "status" in obs and obs["status"] not in OBSERVATION_STATUSES:
        problems.append(f"{where}.status must be one of {', '.join(sorted(OBSERVATION_STATUSES))}")
    if "bundle_id" in obs and not is_uuid(obs["bundle_id"]):
        problems.append(f"{where}.bundle_id must be a uuid")
    return problems
