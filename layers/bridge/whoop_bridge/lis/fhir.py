"""FHIR R4 for the lab's LIS, with fhir.resources' R4B models (FHIR 4.3.0: for
DiagnosticReport, Observation, ServiceRequest, Patient, Appointment, Bundle and
OperationOutcome the same elements, types and codes as R4 4.0.1; fhir.resources 8 has no
R4 package on pydantic 2).

- `report_in`: a DiagnosticReport (Observations contained, or entries of a Bundle) to
  WHOOP's report (docs/whoop.md#diagnostic-reports), with where each WHOOP field came from.
- `requisition_bundle`: the lab API's view of an order to a Bundle of its Patient, one
  ServiceRequest per test and its Appointments.
- `outcome`: a lab API answer as an OperationOutcome (an issue per problem).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from whoop_bridge.lis.codes import CodeMap
from whoop_bridge.lis.problems import Problem, Unreadable, place_of

MEDIA_TYPE = "application/fhir+json"
# Identifier systems of WHOOP's ids in the bridge's FHIR (README "Connect your LIS").
SERVICE_REQUEST_SYSTEM = "urn:whoop:service-request"
REQUISITION_SYSTEM = "urn:whoop:requisition"
PATIENT_SYSTEM = "urn:whoop:patient"
TEST_CODE_SYSTEM = "urn:whoop:test-code"
# DiagnosticReport.status -> WHOOP's report status; the others have no WHOOP meaning.
REPORT_STATUSES = {
    "partial": "partial",
    "preliminary": "preliminary",
    "final": "final",
    "amended": "amended",
    "appended": "amended",  # content added after the final report: WHOOP's amended
    "corrected": "corrected",
    "cancelled": "cancelled",
}
UNMAPPED_REPORT_STATUSES = {
    "registered": "a registered report has no results yet: send a status event instead",
    "entered-in-error": "WHOOP has no report status for entered-in-error: send a corrected or cancelled report",
    "unknown": "WHOOP needs the report's status",
}
_NUMERIC = ("valueQuantity", "valueInteger")
_TEXT = ("valueString", "valueCodeableConcept", "valueBoolean", "valueDateTime", "valueTime")
_UNSUPPORTED = ("valueRange", "valueRatio", "valueSampledData", "valuePeriod")


def _path(root: str, loc: tuple[Any, ...]) -> str:
    text = root
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _unknown_types(data: dict[str, Any], root: str) -> list[Problem]:
    """A problem per contained resource or Bundle entry whose resourceType R4 does not define
    (fhir.resources fails on those with a KeyError, not a ValidationError)."""
    from fhir.resources.R4B import get_fhir_model_class

    def listed(name: str) -> list[Any]:
        value = data.get(name)
        return value if isinstance(value, list) else []  # other shapes: the model names them

    places = [(f"{root}.contained[{i}]", item) for i, item in enumerate(listed("contained"))]
    places += [
        (f"{root}.entry[{i}].resource", e.get("resource")) for i, e in enumerate(listed("entry")) if isinstance(e, dict)
    ]
    found = []
    for where, item in places:
        if not isinstance(item, dict) or "resourceType" not in item:
            continue  # the model names what is missing
        try:
            get_fhir_model_class(item["resourceType"])
        except (KeyError, ValueError, TypeError):
            found.append(Problem(f"{where}.resourceType", "not a resource type FHIR R4 defines", "structure"))
    return found


def _validated(model: Any, data: dict[str, Any], root: str) -> Any:
    unknown = _unknown_types(data, root)
    if unknown:
        raise Unreadable(unknown)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        # pydantic's messages name the rule, never the input value.
        found = [Problem(_path(root, e["loc"]), e["msg"].removeprefix("Value error, ")) for e in error.errors()]
        raise Unreadable(found) from None
    except (KeyError, TypeError):  # an unknown resourceType deeper down
        raise Unreadable([Problem(root, "holds a resource of a type FHIR R4 does not define", "structure")]) from None


def _load(body: Any) -> tuple[Any, str, dict[str, tuple[str, Any]]]:
    """The report, its FHIRPath root and its observations by reference (`#id`,
    `Observation/id`, fullUrl) with each one's FHIRPath."""
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    kind = body.get("resourceType") if isinstance(body, dict) else None
    if kind == "DiagnosticReport":
        report = _validated(DiagnosticReport, body, "DiagnosticReport")
        found = {
            f"#{resource.id}": (f"DiagnosticReport.contained[{i}]", resource)
            for i, resource in enumerate(report.contained or [])
            if resource.id
        }
        return report, "DiagnosticReport", found
    if kind == "Bundle":
        bundle = _validated(Bundle, body, "Bundle")
        reports, found = [], {}
        for i, entry in enumerate(bundle.entry or []):
            resource = entry.resource
            if resource is None:
                continue
            name = resource.get_resource_type()
            if name == "DiagnosticReport":
                reports.append((i, resource))
            for key in (entry.fullUrl, f"{name}/{resource.id}" if resource.id else None):
                if key:
                    found[key] = (f"Bundle.entry[{i}].resource", resource)
        if len(reports) != 1:
            raise Unreadable([Problem("Bundle.entry", "must hold exactly one DiagnosticReport", "structure")])
        i, report = reports[0]
        return report, f"Bundle.entry[{i}].resource", found
    raise Unreadable([Problem("resourceType", "must be DiagnosticReport or Bundle", "structure")], rejected=True)


def _service_request(report: Any, root: str, expected: str | None) -> tuple[str | None, list[Problem]]:
    named = set()
    for reference in report.basedOn or []:
        text = reference.reference or ""
        if "ServiceRequest/" in text:
            ident = text.rsplit("ServiceRequest/", 1)[1].split("/")[0]
            if ident:  # `ServiceRequest/` alone names none
                named.add(ident)
        elif (
            reference.identifier
            and reference.identifier.system == SERVICE_REQUEST_SYSTEM
            and reference.identifier.value
        ):
            named.add(reference.identifier.value)
    where = f"{root}.basedOn"
    if not named:
        return None, [Problem(where, "must name the service request (ServiceRequest/<id>)", "required")]
    if len(named) > 1:
        return None, [Problem(where, "names more than one service request: send one report per test")]
    (service_request_id,) = named
    if expected is not None and service_request_id != expected:
        return None, [Problem(where, "names another service request than the URL")]
    return service_request_id, []


def _value(observation: Any, where: str, places: dict[str, str], key: str) -> tuple[dict[str, Any], list[Problem]]:
    """WHOOP's value fields of one Observation, and the problems of its value."""
    for name in _UNSUPPORTED:
        if getattr(observation, name, None) is not None:
            return {}, [Problem(f"{where}.{name}", "not supported: WHOOP takes a number or a text")]
    quantity = observation.valueQuantity
    if quantity is not None:
        mapped: dict[str, Any] = {}
        places[f"{key}.value_numeric"] = f"{where}.valueQuantity.value"
        places[f"{key}.unit"] = f"{where}.valueQuantity.unit"
        if quantity.value is None or not math.isfinite(float(quantity.value)):
            return {}, [Problem(f"{where}.valueQuantity.value", "a quantity needs a finite value", "required")]
        if quantity.comparator is not None:  # "<0.5" is not 0.5: WHOOP's value_numeric is exact
            text = "a limit (comparator) is not a number WHOOP takes: send it as valueString, e.g. '<0.5'"
            return {}, [Problem(f"{where}.valueQuantity.comparator", text)]
        mapped["value_numeric"] = float(quantity.value)
        if quantity.unit or quantity.code:
            mapped["unit"] = quantity.unit or quantity.code
        return mapped, []
    if observation.valueInteger is not None:
        places[f"{key}.value_numeric"] = f"{where}.valueInteger"
        return {"value_numeric": float(observation.valueInteger)}, []
    for name in _TEXT:
        value = getattr(observation, name, None)
        if value is None:
            continue
        places[f"{key}.value_text"] = f"{where}.{name}"
        if name == "valueCodeableConcept":
            codings = [c for c in value.coding or [] if c.display or c.code]
            value = value.text or (codings[0].display or codings[0].code if codings else None)
        elif name == "valueBoolean":
            value = "true" if value else "false"
        return ({"value_text": str(value)} if value not in (None, "") else {}), []
    return {}, []  # WHOOP's model names the missing value


def _modifiers(resource: Any, where: str) -> list[Problem]:
    """FHIR: a modifierExtension the receiver does not know forbids processing the resource."""
    if resource.modifierExtension:
        return [Problem(f"{where}.modifierExtension", "not understood: it may change the meaning", "structure")]
    return []


def _observation(
    observation: Any, where: str, index: int, places: dict[str, str], codes: CodeMap
) -> tuple[dict[str, Any], list[Problem]]:
    key = f"body.observations.{index}"
    places[key] = where
    places[f"{key}.code"] = f"{where}.code"
    places[f"{key}.status"] = f"{where}.status"
    mapped: dict[str, Any] = {}
    problems: list[Problem] = _modifiers(observation, where)
    codings = [c for c in observation.code.coding or [] if c.code]
    if codings:
        mapped["code"] = codes.observation_in(codings[0].code, codings[0].system or "")
    else:
        problems.append(Problem(f"{where}.code.coding", "needs a coding with a code", "required"))
    value, value_problems = _value(observation, where, places, key)
    mapped.update(value)
    problems.extend(value_problems)
    if observation.status:
        mapped["status"] = observation.status
    return mapped, problems


def report_in(body: Any, codes: CodeMap, expected: str | None = None) -> tuple[str, dict[str, Any], dict[str, str]]:
    """`(service_request_id, WHOOP report, places)` of a FHIR DiagnosticReport or Bundle:
    `places` maps the lab API's field names (`body.observations.0.value_numeric`) to FHIRPath.
    `expected`: the URL's service request, which `basedOn` must name when it names one.
    Unreadable with every problem found (resourceType other than those two: rejected)."""
    report, root, found = _load(body)
    service_request_id, problems = _service_request(report, root, expected)
    problems += _modifiers(report, root)
    places = {"body": root, "body.status": f"{root}.status", "body.observations": f"{root}.result"}
    status = REPORT_STATUSES.get(report.status)
    if status is None:
        reason = UNMAPPED_REPORT_STATUSES.get(report.status, "not a DiagnosticReport status")
        problems.append(Problem(f"{root}.status", reason, "code"))
    observations = []
    references = [r.reference for r in report.result or []]
    if not references:  # no `result`: every contained Observation is a result
        references = [key for key in found if key.startswith("#")] if root == "DiagnosticReport" else []
    for i, reference in enumerate(references):
        resolved = found.get(reference or "")
        if resolved is None or resolved[1].get_resource_type() != "Observation":
            problems.append(Problem(f"{root}.result[{i}]", "names no Observation in the message"))
            continue
        mapped, found_problems = _observation(resolved[1], resolved[0], len(observations), places, codes)
        observations.append(mapped)
        problems.extend(found_problems)
    if problems:
        raise Unreadable(problems)
    whoop = {"status": status, **({"observations": observations} if observations else {})}
    return str(service_request_id), whoop, places


_REQUEST_STATUSES = {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
_GENDERS = {"male", "female", "other", "unknown"}


def _patient(patient: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient["id"],
        "identifier": [{"system": PATIENT_SYSTEM, "value": patient["id"]}],
    }
    if patient.get("first_name") or patient.get("last_name"):
        name = {
            "family": patient.get("last_name"),
            "given": [patient["first_name"]] if patient.get("first_name") else None,
        }
        resource["name"] = [{k: v for k, v in name.items() if v}]
    if patient.get("birth_date"):
        resource["birthDate"] = patient["birth_date"]
    if patient.get("gender"):
        gender = str(patient["gender"]).lower()
        resource["gender"] = gender if gender in _GENDERS else "other"
    telecom = [
        {"system": kind, "value": patient[key]}
        for kind, key in (("phone", "phone"), ("email", "email"))
        if patient.get(key)
    ]
    if telecom:
        resource["telecom"] = telecom
    return resource


def _service_request_out(test: dict[str, Any], view: dict[str, Any], codes: CodeMap) -> dict[str, Any]:
    lab = codes.test_out(test["code"])
    coding = {"system": lab.system or TEST_CODE_SYSTEM, "code": lab.code, "display": lab.display or None}
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": test["id"],
        "identifier": [{"system": SERVICE_REQUEST_SYSTEM, "value": test["id"]}],
        "requisition": {"system": REQUISITION_SYSTEM, "value": view["id"]},
        "status": test.get("status") if test.get("status") in _REQUEST_STATUSES else "unknown",
        "intent": "order",
        "code": {"coding": [{k: v for k, v in coding.items() if v}]},
    }
    if test.get("task_description"):
        resource["code"]["text"] = test["task_description"]
    if (view.get("patient") or {}).get("id"):
        resource["subject"] = {"reference": f"Patient/{view['patient']['id']}"}
    if view.get("created_at"):
        resource["authoredOn"] = view["created_at"]
    return resource


def _appointment(index: int, appointment: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
    actor = {"reference": f"Patient/{view['patient']['id']}"} if (view.get("patient") or {}).get("id") else None
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": f"{view['id']}-{index + 1}"[:64],
        "status": "booked",
        "basedOn": [{"reference": f"ServiceRequest/{sr}"} for sr in appointment.get("service_request_ids") or []],
        "participant": [{"actor": actor, "status": "accepted"} if actor else {"status": "accepted"}],
    }
    if appointment.get("start_time"):
        resource["start"] = appointment["start_time"]
    if appointment.get("type"):
        resource["appointmentType"] = {"text": str(appointment["type"])}
    return resource


def requisition_bundle(view: dict[str, Any], codes: CodeMap) -> dict[str, Any]:
    """A `collection` Bundle of the lab API's requisition view (lab/views.py): the Patient,
    one ServiceRequest per test (WHOOP's id as its id and identifier, the requisition as
    `requisition`, the test code mapped out) and one Appointment per appointment."""
    from fhir.resources.R4B.bundle import Bundle

    resources = [_patient(view["patient"])] if (view.get("patient") or {}).get("id") else []
    resources += [_service_request_out(test, view, codes) for test in view["service_requests"]]
    resources += [_appointment(i, a, view) for i, a in enumerate(view.get("appointments") or []) if isinstance(a, dict)]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "identifier": {"system": REQUISITION_SYSTEM, "value": view["id"]},
        "entry": [{"resource": resource} for resource in resources],
    }
    # Validated by the models: what the bridge sends is FHIR, or the route fails loudly.
    return Bundle.model_validate(bundle).model_dump(mode="json", by_alias=True, exclude_none=True)


# A lab API answer's `error` -> OperationOutcome.issue.code
_ISSUE_CODES = {
    "invalid_request": "invalid",
    "payload_too_large": "too-long",
    "unsupported_media_type": "not-supported",
    "idempotency_key_reused": "duplicate",
    "not_found": "not-found",
    "transition_forbidden": "business-rule",
    "busy": "transient",
    "whoop_unavailable": "transient",
}
_PROBLEM_CODES = {"invalid": "invalid", "required": "required", "code": "code-invalid", "structure": "structure"}


def outcome_of(problems: list[Problem]) -> dict[str, Any]:
    """An OperationOutcome with one error issue per problem (expression: where)."""
    issues = [
        {
            "severity": "error",
            "code": _PROBLEM_CODES.get(p.kind, "invalid"),
            "diagnostics": p.text,
            "expression": [p.where],
        }
        for p in problems
    ]
    return {"resourceType": "OperationOutcome", "issue": issues}


def outcome(status: int, body: Any, places: dict[str, str]) -> dict[str, Any]:
    """A lab API JSON answer as an OperationOutcome: each listed problem an issue (its
    field as FHIRPath through `places`), any other error one issue, a 2xx one information
    issue naming what was accepted."""
    body = body if isinstance(body, dict) else {}
    if status < 300:
        accepted = f"accepted: report {body.get('report_id')} for ServiceRequest/{body.get('service_request_id')}"
        return {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": accepted}],
        }
    code = _ISSUE_CODES.get(str(body.get("error")), "exception")
    issues = []
    for listed in body.get("problems") or []:
        issue = {"severity": "error", "code": code, "diagnostics": listed.get("problem", "")}
        field = str(listed.get("field", ""))
        place = place_of(field, places)
        if place:
            issue["expression"] = [place]
        else:
            issue["diagnostics"] = f"{field}: {issue['diagnostics']}"
        issues.append(issue)
    if not issues:
        text = str(body.get("message") or body.get("error") or "error")
        if body.get("allowed_next_statuses") is not None:
            text += f" (now {body.get('task_business_status')}; allowed next: {', '.join(body['allowed_next_statuses']) or 'none'})"
        issues.append({"severity": "error", "code": code, "diagnostics": text})
    return {"resourceType": "OperationOutcome", "issue": issues}
