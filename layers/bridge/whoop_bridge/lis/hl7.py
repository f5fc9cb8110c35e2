"""HL7 v2 for the lab's LIS, with the `hl7` package (parsing, escaping and repetitions).

- `report_in`: an ORU^R01 (one OBR, its OBX results) to WHOOP's report
  (docs/whoop.md#diagnostic-reports), with the HL7 location of each WHOOP field.
- `order_message`: the lab API's view of an order as an ORM^O01 v2.5.1 (PID, then ORC,
  TQ1 and OBR per test; placer order number = the service request id).
- `ack`: a lab API answer as an ACK (MSA AA / AE / AR, one ERR per problem).

Locations are HL7 error locations (ERR-2): `OBX^2^5` is the second OBX's field 5.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from whoop_bridge.lis.codes import CodeMap
from whoop_bridge.lis.problems import Problem, Unreadable, place_of
from whoop_bridge.times import parse as parse_time

MEDIA_TYPE = "x-application/hl7-v2+er7"
SENDING_APPLICATION, SENDING_FACILITY = "WHOOP_BRIDGE", "WHOOP"
# OBR-25 (HL7 table 0123) -> WHOOP's report status. O, I, S (no results yet), Y, Z have none.
REPORT_STATUSES = {
    "A": "partial",
    "P": "preliminary",
    "R": "preliminary",
    "F": "final",
    "C": "corrected",
    "X": "cancelled",
}
# OBX-11 (HL7 table 0085) -> WHOOP's observation status (FHIR's Observation.status).
OBSERVATION_STATUSES = {
    "F": "final",
    "U": "final",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "C": "corrected",
    "A": "amended",
    "B": "amended",
    "D": "entered-in-error",
    "W": "entered-in-error",
    "X": "cancelled",
    "I": "registered",
    "O": "registered",
    "N": "unknown",
}
NUMERIC_TYPES, TEXT_TYPES, CODED_TYPES = {"NM"}, {"ST", "TX", "FT"}, {"CE", "CWE", "CNE"}
# HL7 NM: an optional sign, digits, an optional decimal point (no exponent).
_NM = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
# HL7 table 0357 (message error condition codes) by problem kind.
_ERROR_CODES = {
    "required": ("101", "Required field missing"),
    "invalid": ("102", "Data type error"),
    "code": ("103", "Table value not found"),
    "structure": ("100", "Segment sequence error"),
    "type": ("200", "Unsupported message type"),
    "version": ("203", "Unsupported version id"),
    "key": ("204", "Unknown key identifier"),
    "duplicate": ("205", "Duplicate key identifier"),
    "locked": ("206", "Application record locked"),
    "internal": ("207", "Application internal error"),
}


def parse(text: str) -> Any:
    """The parsed message (`hl7.Message`); Unreadable (rejected) when it is none. Line feeds
    between segments are taken for carriage returns (HTTP tools often send them); MLLP's
    framing bytes (0x0b, 0x1c), a byte order mark and blank lines around it are dropped."""
    import hl7

    text = re.sub(r"\r\n|\n", "\r", text).strip("\r\x0b\x1c\ufeff \t")
    if not text.startswith("MSH") or len(text) < 8:
        raise Unreadable([Problem("MSH", "the message must start with an MSH segment", "structure")], rejected=True)
    try:
        return hl7.parse(text)
    except (hl7.ParseException, ValueError, IndexError, KeyError):  # what the package raises for a broken MSH
        raise Unreadable([Problem("MSH", "not an HL7 v2 message (ER7)", "structure")], rejected=True) from None


def _field(message: Any, segment: str, occurrence: int, number: int, repetition: int = 1, component: int = 1) -> str:
    try:
        # The package's extract_field undoes HL7's escapes (\F\ \S\ \T\ \R\ \E\ ...).
        return message.extract_field(segment, occurrence, number, repetition, component, 1) or ""
    except (IndexError, KeyError):
        return ""


def _segments(message: Any, name: str) -> list[Any]:
    try:
        return list(message.segments(name))
    except KeyError:  # the package's answer for a segment the message lacks
        return []


def _repetitions(segment: Any, number: int) -> int:
    import hl7

    if number >= len(segment):
        return 0
    field = segment(number)
    if any(isinstance(item, hl7.Repetition) for item in field):
        return len(field)
    return 1 if str(field) else 0


def _check_header(message: Any) -> None:
    kind = (_field(message, "MSH", 1, 9, 1, 1), _field(message, "MSH", 1, 9, 1, 2))
    version = _field(message, "MSH", 1, 12)
    problems = []
    if kind != ("ORU", "R01"):
        problems.append(Problem("MSH^1^9", "results are an ORU^R01 message", "type"))
    if not version.startswith("2."):
        problems.append(Problem("MSH^1^12", "HL7 version 2.x is required", "version"))
    if not _field(message, "MSH", 1, 10):
        problems.append(Problem("MSH^1^10", "the message control id is required (the ACK echoes it)", "required"))
    if problems:
        raise Unreadable(problems, rejected=True)


def _value(message: Any, k: int, kind: str, problems: list[Problem]) -> dict[str, Any]:
    segment = _segments(message, "OBX")[k - 1]
    count = _repetitions(segment, 5)
    if kind in NUMERIC_TYPES:
        text = _field(message, "OBX", k, 5)
        components = _field(message, "OBX", k, 5, 1, 2)
        if count > 1 or components or not _NM.match(text.strip()) or not math.isfinite(float(text)):
            problems.append(Problem(f"OBX^{k}^5", "an NM value is one number (sign, digits, decimal point)", "invalid"))
            return {}
        return {"value_numeric": float(text)}
    if kind in TEXT_TYPES or kind in CODED_TYPES:
        component = 1
        lines = []
        for r in range(1, count + 1):
            if kind in CODED_TYPES:  # the text of a coded value, else its identifier
                component = 2 if _field(message, "OBX", k, 5, r, 2) else 1
            lines.append(_field(message, "OBX", k, 5, r, component))
        text = "\n".join(line for line in lines if line)
        return {"value_text": text} if text else {}
    problems.append(Problem(f"OBX^{k}^2", "value type not supported: NM, ST, TX, FT, CE, CWE or CNE", "code"))
    return {}


def _observation(
    message: Any, k: int, codes: CodeMap, places: dict[str, str], problems: list[Problem]
) -> dict[str, Any]:
    key = f"body.observations.{k - 1}"
    places.update({key: f"OBX^{k}", f"{key}.code": f"OBX^{k}^3", f"{key}.value_numeric": f"OBX^{k}^5"})
    places.update({f"{key}.value_text": f"OBX^{k}^5", f"{key}.unit": f"OBX^{k}^6", f"{key}.status": f"OBX^{k}^11"})
    mapped: dict[str, Any] = {}
    code = _field(message, "OBX", k, 3)
    if code:
        mapped["code"] = codes.observation_in(code, _field(message, "OBX", k, 3, 1, 3))
    else:
        problems.append(Problem(f"OBX^{k}^3", "the observation identifier is required", "required"))
    mapped.update(_value(message, k, _field(message, "OBX", k, 2), problems))
    unit = _field(message, "OBX", k, 6) or _field(message, "OBX", k, 6, 1, 2)
    if unit:
        mapped["unit"] = unit
    status = _field(message, "OBX", k, 11)
    if status:
        if status in OBSERVATION_STATUSES:
            mapped["status"] = OBSERVATION_STATUSES[status]
        else:
            problems.append(Problem(f"OBX^{k}^11", "not an observation result status (HL7 table 0085)", "code"))
    return mapped


def report_in(message: Any, codes: CodeMap, expected: str | None = None) -> tuple[str, dict[str, Any], dict[str, str]]:
    """`(service_request_id, WHOOP report, places)` of an ORU^R01 with one OBR: OBR-2's
    placer order number names the service request (`expected`, the URL's, when given),
    OBR-25 gives the report status, each OBX one observation (OBX-3 code, OBX-2 type,
    OBX-5 value, OBX-6 unit, OBX-11 status). `places` maps the lab API's field names to
    HL7 locations. `message` comes from `parse`. Unreadable with every problem found."""
    _check_header(message)
    if len(_segments(message, "OBR")) != 1:
        raise Unreadable([Problem("OBR", "one OBR (one test) per message", "structure")])
    problems: list[Problem] = []
    places = {"body": "OBR^1", "body.status": "OBR^1^25", "body.observations": "OBX"}
    service_request_id = _field(message, "OBR", 1, 2)
    if not service_request_id:
        problems.append(Problem("OBR^1^2", "the placer order number (the service request id) is required", "required"))
    elif expected is not None and service_request_id != expected:
        problems.append(Problem("OBR^1^2", "names another service request than the URL", "key"))
    status = _field(message, "OBR", 1, 25)
    if status not in REPORT_STATUSES:
        problems.append(Problem("OBR^1^25", "a result status WHOOP takes: A, P, R, F, C or X (HL7 table 0123)", "code"))
    count = len(_segments(message, "OBX"))
    observations = [_observation(message, k, codes, places, problems) for k in range(1, count + 1)]
    if problems:
        raise Unreadable(problems)
    whoop = {"status": REPORT_STATUSES[status], **({"observations": observations} if observations else {})}
    return service_request_id, whoop, places


def _timestamp(text: Any) -> str:
    """An ISO 8601 time as HL7 DTM (YYYYMMDDHHMMSS+ZZZZ); empty when it is none."""
    try:
        return parse_time(str(text)).strftime("%Y%m%d%H%M%S%z")
    except (TypeError, ValueError):
        return ""


def _header(kind: str, receiver: tuple[str, str] = ("", ""), processing: str = "P") -> str:
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S%z")
    control = uuid.uuid4().hex[:20]
    return f"MSH|^~\\&|{SENDING_APPLICATION}|{SENDING_FACILITY}|{receiver[0]}|{receiver[1]}|{now}||{kind}|{control}|{processing}|2.5.1"


def _segment(escape: Any, name: str, *fields: Any) -> str:
    """One segment: each field a text, a list of components or a tuple of repetitions (each
    a list of components); every value escaped."""
    written = []
    for field in fields:
        repetitions = field if isinstance(field, tuple) else (field,)
        texts = []
        for repetition in repetitions:
            parts = repetition if isinstance(repetition, list) else [repetition]
            texts.append("^".join(escape(str(part)) if part not in (None, "") else "" for part in parts).rstrip("^"))
        written.append("~".join(texts))
    return "|".join([name, *written]).rstrip("|")


def _escaper() -> Any:
    import hl7

    return hl7.parse(_header("ACK")).escape


_SEX = {"male": "M", "female": "F", "other": "O", "unknown": "U"}


def order_message(view: dict[str, Any], codes: CodeMap) -> str:
    """The order (the lab API's requisition view, lab/views.py) as ORM^O01 v2.5.1: PID
    (PID-3 WHOOP's patient id, name, birth date, sex, phone, email), then per test ORC
    (NW, ORC-2 placer order number = service request id, ORC-4 placer group = requisition id),
    TQ1 (TQ1-7 the appointment's start) and OBR (OBR-2 placer order number, OBR-4 the test
    code mapped out). Segments end with a carriage return."""
    import hl7

    escape = _escaper()
    patient = view.get("patient") or {}
    starts = {}
    for appointment in view.get("appointments") or []:
        if isinstance(appointment, dict):
            for sr in appointment.get("service_request_ids") or []:
                starts[sr] = _timestamp(appointment.get("start_time"))
    telecom = tuple(
        component
        for component, present in (
            ([patient.get("phone"), "PRN", "PH"], patient.get("phone")),
            (["", "NET", "Internet", patient.get("email")], patient.get("email")),
        )
        if present
    )
    sex = _SEX.get(str(patient.get("gender") or "").lower(), "U" if patient.get("gender") else "")
    name = [patient.get("last_name"), patient.get("first_name")]
    birth = str(patient.get("birth_date") or "").replace("-", "")
    pid = ("1", "", [patient.get("id"), "", "", "WHOOP", "PI"], "", name, "", birth, sex, "", "", "", "", telecom or "")
    segments = [_header("ORM^O01^ORM_O01"), _segment(escape, "PID", *pid)]
    for n, test in enumerate(view["service_requests"], start=1):
        lab = codes.test_out(test["code"])
        placer = [test["id"], SENDING_APPLICATION]
        segments.append(_segment(escape, "ORC", "NW", placer, "", [view["id"], SENDING_APPLICATION]))
        segments.append(_segment(escape, "TQ1", str(n), "", "", "", "", "", starts.get(test["id"], "")))
        test_code = [lab.code, lab.display or test.get("task_description") or "", "L" if not lab.system else lab.system]
        segments.append(_segment(escape, "OBR", str(n), placer, "", test_code))
    text = "\r".join(segments) + "\r"
    hl7.parse(text)  # what the bridge sends parses, or the route fails loudly
    return text


def _ack_code(status: int, body: dict[str, Any], rejected: bool) -> str:
    if status < 300:
        return "AA"
    if rejected or status in (413, 415) or status >= 500 or body.get("error") == "busy":
        return "AR"
    return "AE"


def _answer_problems(status: int, body: dict[str, Any], places: dict[str, str]) -> list[Problem]:
    error = str(body.get("error") or "")
    kind = {"not_found": "key", "idempotency_key_reused": "duplicate", "busy": "locked"}.get(error, "internal")
    listed = body.get("problems") or []
    if listed:
        found = []
        for item in listed:
            field = str(item.get("field", ""))
            where = place_of(field, places) or ""
            text = item.get("problem", "")
            found.append(
                Problem(where, text if where else f"{field}: {text}", "invalid" if error == "invalid_request" else kind)
            )
        return found
    text = str(body.get("message") or error)
    if body.get("allowed_next_statuses") is not None:
        allowed = ", ".join(body["allowed_next_statuses"]) or "none"
        text += f" (now {body.get('task_business_status')}; allowed next: {allowed})"
    return [Problem("OBR^1^2" if error in ("not_found", "transition_forbidden") else "", text, kind)]


def ack(
    message: Any,
    status: int,
    body: Any,
    places: dict[str, str],
    problems: list[Problem] | None = None,
    rejected: bool = False,
) -> str:
    """The ACK of `message` (the parsed ORU, None when it could not be parsed) for a lab API
    answer (`status`, JSON `body`) or for the translator's `problems`: MSA-1 AA (2xx), AE
    (the message's content), AR (the message as a whole, or the bridge cannot take it now);
    MSA-2 the message's control id; one ERR per problem (ERR-2 location, ERR-3 HL7 table
    0357 code, ERR-4 E, ERR-8 the problem's text)."""
    body = body if isinstance(body, dict) else {}
    problems = problems if problems is not None else ([] if status < 300 else _answer_problems(status, body, places))
    code = "AR" if rejected else _ack_code(status, body, False)
    escape = _escaper()  # the ACK's own encoding characters (its MSH-2), whatever the sender's were
    if message is None:
        control, receiver, processing = "", ("", ""), "P"
    else:
        control = _field(message, "MSH", 1, 10)
        receiver = (_field(message, "MSH", 1, 3), _field(message, "MSH", 1, 4))
        processing = _field(message, "MSH", 1, 11) or "P"
    segments = [_header("ACK^R01^ACK", receiver, processing), _segment(escape, "MSA", code, control)]
    for problem in problems:
        number, label = _ERROR_CODES.get(problem.kind, _ERROR_CODES["internal"])
        location = problem.where.split("^") if problem.where else ""
        segments.append(
            _segment(escape, "ERR", "", location, [number, label, "HL70357"], "E", "", "", "", problem.text)
        )
    return "\r".join(segments) + "\r"
