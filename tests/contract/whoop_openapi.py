"""WHOOP's contract (`contracts/whoop/openapi.json`) as an openapi-core `OpenAPI`, and the
adapters that validate the emulator's answers and the bridge's requests against it.

The committed copy is WHOOP's document as published, prose removed; OpenAPI requires a
`description` on every response, so `readable()` puts an empty one back. Three defects of that document stop a
JSON Schema validator from reading it as written; `readable()` mends exactly those, each
for the reason given, and nothing else:

- `info.version` is missing (OpenAPI requires it): set to "unversioned".
- `Appointment` is both the base that `UnilabsAppointment` and `BasicAppointment` extend
  (`allOf`) and the `oneOf` of those two: a reference cycle no validator terminates. Read
  it as the union it means: the base's fields and required list plus the subtypes' fields
  (`slot_id`, `collection_address` as `UnilabsCollectionAddress`). The discriminator has no
  mapping and WHOOP does not enumerate `type`, so it cannot select a subtype.
- `PatientCore` is `oneOf` `Patient` (only `id`) and `UnilabsPatient` (a superset): every
  Unilabs patient matches both, which `oneOf` forbids. Read as `anyOf`.

Undocumented fields are refused (`additional_properties_default_policy="forbid"`): the
emulator must not invent fields the document does not have.

The document's server is `https://api.prod.whoop.com/developer`; requests and responses to
the emulator are re-based onto it before validation (`whoop_url`), so the `/developer`
prefix is checked too.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "contracts" / "whoop" / "openapi.json"
WHOOP_SERVER = "https://api.prod.whoop.com/developer"


def document() -> dict[str, Any]:
    """The committed facts-only copy, as published."""
    return json.loads(CONTRACT.read_text(encoding="utf-8"))


def readable(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with the three defects above mended (a copy)."""
    doc = copy.deepcopy(doc)
    doc["info"].setdefault("version", "unversioned")
    for item in doc["paths"].values():
        for operation in item.values():
            for answer in operation["responses"].values():
                answer.setdefault("description", "")  # required by OpenAPI; the copy strips prose
    schemas = doc["components"]["schemas"]
    base = schemas["Appointment"]
    unilabs_extra = next(part for part in schemas["UnilabsAppointment"]["allOf"] if "$ref" not in part)
    schemas["Appointment"] = {
        "type": "object",
        "required": base["required"],
        "properties": {**base["properties"], **unilabs_extra["properties"]},
    }
    for name in ("UnilabsAppointment", "BasicAppointment"):
        schemas[name]["allOf"] = [{"$ref": "#/components/schemas/Appointment"}] + [
            part for part in schemas[name]["allOf"] if "$ref" not in part
        ]
    # Both alternatives require `id`; PatientCore's own copy of it would make every other
    # field "additional" at its level, so only the alternatives remain.
    schemas["PatientCore"] = {"anyOf": schemas["PatientCore"]["oneOf"]}
    return doc


@cache
def whoop_openapi() -> OpenAPI:
    """The contract for openapi-core (validated as an OpenAPI 3.0 document on load)."""
    return OpenAPI.from_dict(readable(document()), config=Config(additional_properties_default_policy="forbid"))


def whoop_url(url: str, emulator_base: str) -> str:
    """An emulator URL (`http://127.0.0.1:port/developer/...`) on WHOOP's server."""
    prefix = emulator_base.rstrip("/") + "/developer"
    if not url.startswith(prefix):
        raise ValueError(f"not a WHOOP API URL: {url}")
    return WHOOP_SERVER + url[len(prefix) :]


def operations() -> dict[str, tuple[str, str]]:
    """Every operation of the document: operationId -> (METHOD, path template)."""
    return {
        operation["operationId"]: (method.upper(), path)
        for path, item in document()["paths"].items()
        for method, operation in item.items()
    }


def operation_id(method: str, url: str) -> str | None:
    """The operationId the document gives this method and WHOOP URL, None if undocumented."""
    try:
        found = APICallPathFinder(whoop_openapi().spec).find(method.lower(), url.split("?")[0])
    except PathError:
        return None
    return str(found.operation["operationId"])


def rebased(prepared: requests.PreparedRequest, emulator_base: str) -> requests.PreparedRequest:
    """A copy of `prepared` addressed to WHOOP's server."""
    copied = prepared.copy()
    copied.url = whoop_url(prepared.url or "", emulator_base)
    return copied


def request_errors(prepared: requests.PreparedRequest, emulator_base: str) -> list[str]:
    """What is wrong with a request against the document (empty when it conforms)."""
    request = RequestsOpenAPIRequest(rebased(prepared, emulator_base))
    result = whoop_openapi().unmarshal_request(request)
    return [_describe(error) for error in result.errors]


def response_errors(response: requests.Response, emulator_base: str) -> list[str]:
    """What is wrong with an answer (status code, content type, body) against the document."""
    prepared = rebased(response.request, emulator_base)
    result = whoop_openapi().unmarshal_response(RequestsOpenAPIRequest(prepared), RequestsOpenAPIResponse(response))
    return [_describe(error) for error in result.errors]


def _describe(error: BaseException) -> str:
    causes = []
    cause = error.__cause__
    while cause is not None:
        details = getattr(cause, "schema_errors", None)
        if details:
            causes.extend(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in details)
        else:
            causes.append(str(cause))
        cause = cause.__cause__
    return f"{type(error).__name__}: {error}" + (f" ({'; '.join(causes)})" if causes else "")
