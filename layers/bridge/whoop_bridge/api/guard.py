"""The guard: what API Gateway hands over, checked before the event handler sees it.

Input no route can read is a 400, 413 or 415 problem (api/bodies.py), never a 5xx or a
Lambda error: a query parameter given twice, a body over the stack's limit
(API_MAX_BODY_BYTES, 256 KiB unless set: the biggest lab report holds a few hundred
observations, tens of KiB), a body that is not `application/json` (UTF-8), not
one JSON object, or not I-JSON (RFC 7493: exact integers, finite numbers, valid Unicode,
bounded depth). A base64 body is decoded for the event handler.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from typing import Any, Optional

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from whoop_bridge.api import audit
from whoop_bridge.api.bodies import JSON, problem
from whoop_bridge.config import ConfigurationError, Settings, settings

# I-JSON (RFC 7493): numbers an IEEE double holds exactly as integers, no deeper nesting
# than any real request needs.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class Refused(Exception):
    """Input no route can read: answered `status` with one problem at `field` (`error` names the kind)."""

    def __init__(self, status: int, field: str, text: str, error: str = "invalid_request") -> None:
        super().__init__(text)
        self.status, self.field, self.text, self.error = status, field, text, error


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise Refused(400, "body", "a member name appears twice in one object")
        found[key] = value
    return found


def _check_values(value: Any, path: tuple[str, ...] = ()) -> None:
    """I-JSON (RFC 7493): exact integers, finite numbers, valid Unicode, bounded depth.
    A problem names its place as the event handler's validation does (`observations.0.code`)."""
    field = ".".join(path) or "body"
    if len(path) > MAX_DEPTH:
        raise Refused(400, "body", f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, field)
            _check_values(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, (*path, str(index)))
    elif isinstance(value, str):
        _check_text(value, field)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        raise Refused(400, field, f"an integer beyond ±{MAX_SAFE_INTEGER} (I-JSON, RFC 7493)")
    elif isinstance(value, float) and not math.isfinite(value):
        raise Refused(400, field, "must be a finite number (NaN and Infinity are not JSON; 1e999 is beyond a double)")


def _check_text(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(400, field, "a string holds an unpaired surrogate (\\ud800-\\udfff)") from None


def _media_type(event: dict[str, Any]) -> Optional[str]:
    headers = event.get("headers") or {}
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value
    return None


def max_body_bytes() -> int:
    """The largest body the APIs read, in bytes (setting API_MAX_BODY_BYTES)."""
    try:
        return settings().api_max_body_bytes
    except ConfigurationError:
        # Another setting is broken: the route answers 503 for it when it reads the settings.
        return Settings.api_max_body_bytes


def _check_size(size: int) -> None:
    limit = max_body_bytes()
    if size > limit:
        text = f"the body is {size} bytes; the limit is {limit} bytes ({limit / 1024:g} KiB)"
        raise Refused(413, "body", text, "payload_too_large")


def guard(event: dict[str, Any]) -> None:
    """Refuse (400, 413, 415) what no route can read, and hand the event handler a body it can:
    UTF-8 text of one JSON object. Rewrites `event` in place (a base64 body decoded)."""
    queries = event.get("multiValueQueryStringParameters") or {}
    repeated = sorted(name for name, values in queries.items() if values and len(values) > 1)
    if repeated:
        raise Refused(400, f"query.{repeated[0]}", "given more than once")
    if (event.get("httpMethod") or "").upper() not in BODY_METHODS:
        return
    raw = event.get("body")
    content_type = _media_type(event)
    if content_type is not None:
        media, _, parameters = content_type.partition(";")
        charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", parameters, re.IGNORECASE)
        if media.strip().lower() != JSON or (charset and charset.group(1).lower() not in ("utf-8", "utf8")):
            raise Refused(415, "header.Content-Type", "must be application/json (UTF-8)", "unsupported_media_type")
    if raw is None or raw == "":
        raise Refused(400, "body", "a JSON object is required")
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise Refused(400, "body", "not UTF-8 text") from None
        _check_size(len(data))
        try:
            raw = data.decode("utf-8")
        except ValueError:
            raise Refused(400, "body", "not UTF-8 text") from None
        event["body"], event["isBase64Encoded"] = raw, False
    else:
        _check_size(len(raw.encode("utf-8", "surrogatepass")))
    try:
        # NaN and Infinity parse as floats here and are refused, with their place, below.
        parsed = json.loads(raw, object_pairs_hook=_no_duplicates)
    except Refused:
        raise
    except RecursionError:
        raise Refused(400, "body", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # JSONDecodeError, and an integer of over 4300 digits
        raise Refused(400, "body", "not valid JSON") from None
    if not isinstance(parsed, dict):
        raise Refused(400, "body", "must be a JSON object")
    _check_values(parsed)


def proxy_answer(response: Response) -> dict[str, Any]:
    headers = {
        "Content-Type": response.content_type or JSON,
        **{k: v for k, v in response.headers.items() if isinstance(v, str)},
    }
    return {
        "statusCode": response.status_code,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "body": json.dumps(response.body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def resolve(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`app.resolve`, behind the guard: input no route can read is a 400/415 problem."""
    try:
        guard(event)
    except Refused as refused:
        return proxy_answer(problem(refused.status, [{"field": refused.field, "problem": refused.text}], refused.error))
    return app.resolve(event, context)


Negotiate = Callable[[dict[str, Any], Any, Callable[[dict[str, Any], Any], dict[str, Any]]], dict[str, Any]]


def lambda_handler(
    app: APIGatewayRestResolver, logger: Any, negotiate: Optional[Negotiate] = None
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The API function's Lambda handler: `resolve` with the request id as correlation id
    in `logger` (the handler's Powertools Logger), then the call's audit record (api/audit.py),
    whatever the answer; a handler that raised is recorded as API Gateway answers it (502).
    `negotiate(event, context, resolve)`, when given, serves requests in other languages
    than JSON around `resolve` (the lab API's FHIR and HL7 v2: lis/negotiation.py)."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # The route and ids as API Gateway gave them, before the guard touches the event.
        audited = {key: event.get(key) for key in ("httpMethod", "resource", "pathParameters", "requestContext")}
        status = 502
        try:
            if negotiate is None:
                answer = resolve(app, event, context)
            else:
                answer = negotiate(event, context, lambda event, context: resolve(app, event, context))
            status = int(answer.get("statusCode", 200))
            return answer
        finally:
            audit.record_call(audited, status, getattr(context, "function_name", ""))

    return handler
