"""Which language a lab API request speaks, and the translation on either side of the one
results path (README "Connect your LIS").

- `POST /lab/results` and `POST /lab/service-requests/{id}/results` with Content-Type
  `application/fhir+json` or `x-application/hl7-v2+er7`: the message is mapped to WHOOP's
  report (lis/fhir.py, lis/hl7.py), handed to the route as the JSON body it takes (same
  validation, 409s, storage, exactly-once submission, Idempotency-Key), and the answer is
  given back as an OperationOutcome or an ACK. A message that cannot be mapped is answered
  in its language without reaching the route: nothing is stored or sent to WHOOP.
- `GET /lab/requisitions/{id}` with `Accept: application/fhir+json` (a Bundle) or
  `x-application/hl7-v2+er7` (ORM^O01): the JSON view, translated.

Standard library and the API front only here: the FHIR and HL7 modules (and their libraries, the lis layer)
are imported when a request in their language arrives.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from typing import Any

from whoop_bridge.api.negotiation import NotAcceptable, choose

logger = logging.getLogger(__name__)

FHIR = "application/fhir+json"
HL7 = "x-application/hl7-v2+er7"
# Other names labs' tools use for the same two media types.
ALIASES = {
    FHIR: FHIR,
    "application/json+fhir": FHIR,
    HL7: HL7,
    "application/hl7-v2": HL7,
    "application/hl7-v2+er7": HL7,
}
RESULTS = "/lab/service-requests/{service_request_id}/results"
SELF_IDENTIFYING_RESULTS = "/lab/results"
ORDER = "/lab/requisitions/{requisition_id}"
JSON = "application/json"

Resolve = Callable[[dict[str, Any], Any], dict[str, Any]]


def _header(event: dict[str, Any], name: str) -> str:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return value or ""
    return ""


def _set_header(event: dict[str, Any], name: str, value: str) -> None:
    for key in ("headers", "multiValueHeaders"):
        headers = {k: v for k, v in (event.get(key) or {}).items() if k.lower() != name.lower()}
        headers[name] = value if key == "headers" else [value]
        event[key] = headers


def language_of(content_type: str) -> str | None:
    """FHIR or HL7 for a Content-Type naming one (parameters ignored), else None."""
    return ALIASES.get(content_type.partition(";")[0].strip().lower())


def accepted_language(accept: str) -> str | None:
    """FHIR or HL7 when the Accept header prefers one to JSON (by q-value and specificity,
    JSON on a tie), else None: JSON, as without the header, also when it admits none of them
    (`api/negotiation.py` reads the header for every route)."""
    try:
        media = choose(accept, (JSON, *ALIASES))
    except NotAcceptable:
        return None
    return ALIASES.get(media)


def negotiate(event: dict[str, Any], context: Any, resolve: Resolve) -> dict[str, Any]:
    """Serve `event` through `resolve` (the guarded event handler), translated when it speaks FHIR or HL7."""
    method, resource = (event.get("httpMethod") or "").upper(), event.get("resource")
    if method == "POST" and resource in (RESULTS, SELF_IDENTIFYING_RESULTS):
        language = language_of(_header(event, "content-type"))
        if language is not None:
            return _results_in(language, event, context, resolve)
    if method == "GET" and resource == ORDER:
        language = accepted_language(_header(event, "accept"))
        if language is not None:
            return _order_out(language, event, context, resolve)
    return resolve(event, context)


def _answer(status: int, media: str, body: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    listed = {"Content-Type": media, "Cache-Control": "no-store", **(headers or {})}
    return {
        "statusCode": status,
        "multiValueHeaders": {name: [value] for name, value in listed.items()},
        "body": body,
        "isBase64Encoded": False,
    }


def _kept_headers(answer: dict[str, Any]) -> dict[str, str]:
    """The route's answer headers but its Content-Type (Retry-After, Idempotent-Replayed, ...)."""
    found = {k: v for k, v in (answer.get("headers") or {}).items()}
    found.update({k: v[-1] for k, v in (answer.get("multiValueHeaders") or {}).items() if v})
    return {k: v for k, v in found.items() if k.lower() != "content-type"}


def _json_of(answer: dict[str, Any]) -> Any:
    try:
        return json.loads(answer.get("body") or "null")
    except ValueError:
        return None


# HL7 table 0211 (MSH-18, character set) -> Python codec, for messages that are not UTF-8.
HL7_CHARSETS = {"8859/1": "latin-1", "8859/15": "iso8859-15", "ASCII": "ascii", "UNICODE UTF-8": "utf-8"}


def _charset(event: dict[str, Any], data: bytes, language: str) -> str:
    """The body's charset: Content-Type's `charset`, else an HL7 message's MSH-18, else UTF-8."""
    for parameter in _header(event, "content-type").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"'):
            return value.strip().strip('"')
    data = data.lstrip(b"\x0b\r\n\t ")  # MLLP's start byte, blank lines (lis/hl7.py parse)
    if language == HL7 and data[3:4]:  # MSH-18 of the first segment, read in ASCII
        fields = data.split(b"\r")[0].split(b"\n")[0].decode("latin-1").split(chr(data[3]))
        if len(fields) > 17:
            return HL7_CHARSETS.get(fields[17].split("^")[0].strip().upper(), "utf-8")
    return "utf-8"


def _text(event: dict[str, Any], language: str) -> str:
    """The body as text: API Gateway hands over a body that is not UTF-8 base64-encoded; it is
    read in the charset the message names (lis/problems.py Unreadable when it is not in it)."""
    raw = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return raw
    from whoop_bridge.lis.problems import Problem, Unreadable

    try:
        data = base64.b64decode(raw, validate=True)
        charset = _charset(event, data, language)
        return data.decode(charset)
    except (binascii.Error, ValueError, LookupError):
        text = "the body is not UTF-8 text (nor in the charset its Content-Type or HL7 MSH-18 names)"
        raise Unreadable([Problem("body", text, "structure")], rejected=True) from None


class _Speaker:
    """One request's language: its translator module and how its answers are written."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.message: Any = None  # the parsed HL7 message, for the ACK
        if language == FHIR:
            from whoop_bridge.lis import fhir as module
        else:
            from whoop_bridge.lis import hl7 as module  # type: ignore[no-redef]
        self.module: Any = module

    def refused(self, error: Any) -> dict[str, Any]:
        """The answer to a message that cannot be mapped (lis/problems.py Unreadable)."""
        if self.language == FHIR:
            return _answer(error.status, FHIR, json.dumps(self.module.outcome_of(error.problems)))
        ack = self.module.ack(self.message, error.status, None, {}, error.problems, rejected=error.rejected)
        return _answer(error.status, HL7, ack)

    def translated(self, answer: dict[str, Any], places: dict[str, str]) -> dict[str, Any]:
        """The route's JSON answer, in the sender's language."""
        status, body = int(answer.get("statusCode", 200)), _json_of(answer)
        if self.language == FHIR:
            written = json.dumps(self.module.outcome(status, body, places))
        else:
            written = self.module.ack(self.message, status, body, places)
        return _answer(status, self.language, written, _kept_headers(answer))

    def report(
        self, event: dict[str, Any], load_codes: Callable[[], Any], expected: str | None
    ) -> tuple[str, dict[str, Any], dict[str, str], Any]:
        """`(service_request_id, WHOOP report, places, code map)`; the code map is read once
        the message is parsed, so that even its failure is answered to the message."""
        from whoop_bridge.api import guard
        from whoop_bridge.lis.problems import Problem, Unreadable

        text = _text(event, self.language)
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > guard.max_body_bytes():
            limit = guard.max_body_bytes()
            raise Unreadable(
                [Problem("body", f"the body is {size} bytes; the limit is {limit} bytes", "structure")], True, 413
            )
        if self.language == FHIR:
            try:
                # The guard's JSON rules (I-JSON, no duplicate names, bounded depth) for FHIR's JSON too.
                checked = {**event, "body": text, "isBase64Encoded": False, "headers": {"Content-Type": JSON}}
                guard.guard(checked)
            except guard.Refused as refused:
                raise Unreadable([Problem(refused.field, refused.text, "structure")], True, refused.status) from None
            body: Any = json.loads(text)
        else:
            body = self.message = self.module.parse(text)
        codes = load_codes()
        return (*self.module.report_in(body, codes, expected), codes)


def _results_in(language: str, event: dict[str, Any], context: Any, resolve: Resolve) -> dict[str, Any]:
    from whoop_bridge.lis.codes import CodeMapUnavailable, code_map
    from whoop_bridge.lis.problems import Problem, Unreadable

    speaker = _Speaker(language)
    expected = (
        (event.get("pathParameters") or {}).get("service_request_id") if event.get("resource") == RESULTS else None
    )
    try:
        service_request_id, report, places, codes = speaker.report(event, code_map, expected)
    except Unreadable as unreadable:
        return speaker.refused(unreadable)
    except CodeMapUnavailable as unavailable:
        logger.error(
            "LIS code map unavailable", extra={"error_type": type(unavailable).__name__, "detail": str(unavailable)}
        )
        problem = Problem("", "the bridge's code map cannot be read; the operator is told by the log", "internal")
        return speaker.refused(Unreadable([problem], rejected=True, status=503))
    codes.publish_counts()
    # The one results path: the route for the named test, with WHOOP's JSON report.
    event = {**event, "resource": RESULTS, "body": json.dumps(report), "isBase64Encoded": False}
    event["path"] = f"/lab/service-requests/{service_request_id}/results"
    event["pathParameters"] = {"service_request_id": service_request_id}
    event["requestContext"] = {**(event.get("requestContext") or {}), "resourcePath": RESULTS}
    _set_header(event, "Content-Type", JSON)
    return speaker.translated(resolve(event, context), places)


def _order_out(language: str, event: dict[str, Any], context: Any, resolve: Resolve) -> dict[str, Any]:
    answer = resolve(event, context)
    status, view = int(answer.get("statusCode", 200)), _json_of(answer)
    headers = {**_kept_headers(answer), "Vary": "Accept"}
    if status != 200:
        if language == HL7:  # HL7 has no error answer to a query: the JSON problem, as for any caller
            return answer
        from whoop_bridge.lis import fhir

        return _answer(status, FHIR, json.dumps(fhir.outcome(status, view, {})), headers)
    from whoop_bridge.lis.orders import order_in  # the same builder as the order on the bus

    order = order_in(language, view)
    return _answer(200, language, order if isinstance(order, str) else json.dumps(order), headers)


def openapi(document: dict[str, Any]) -> None:
    """The FHIR and HL7 v2 media types in the lab API's OpenAPI document (lis/openapi.py)."""
    from whoop_bridge.lis import openapi as media

    media.amend(document)
