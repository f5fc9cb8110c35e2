"""FHIR R4 both ways: a DiagnosticReport (contained or in a Bundle) to WHOOP's report, an
order to a Bundle, and answers as OperationOutcome."""

import copy

import pytest
from fhir.resources.R4B.bundle import Bundle

from whoop_bridge.lis import fhir
from whoop_bridge.lis.codes import CodeMap, LabCode
from whoop_bridge.lis.problems import Unreadable
from whoop_bridge.models.lab_results import DiagnosticReport

SR = "6f1c2f44-1d1a-4d6f-9a57-1a2b3c4d5e6f"


def observation(ident, **value):
    return {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": f"code-{ident}"}]},
        **value,
    }


def report(*observations, status="final"):
    return {
        "resourceType": "DiagnosticReport",
        "status": status,
        "code": {"text": "Lipid panel"},
        "basedOn": [{"reference": f"ServiceRequest/{SR}"}],
        "contained": list(observations),
        "result": [{"reference": f"#{o['id']}"} for o in observations],
    }


CHOLESTEROL = observation("o1", valueQuantity={"value": 185.5, "unit": "mg/dL", "code": "mg/dL"})


def problems_of(body, expected=None, codes=None):
    with pytest.raises(Unreadable) as raised:
        fhir.report_in(body, codes or CodeMap(), expected)
    return raised.value


def test_a_contained_quantity_becomes_a_number_with_its_unit():
    service_request_id, whoop, places = fhir.report_in(report(CHOLESTEROL), CodeMap())
    assert service_request_id == SR
    assert whoop == {
        "status": "final",
        "observations": [{"code": "code-o1", "value_numeric": 185.5, "unit": "mg/dL", "status": "final"}],
    }
    DiagnosticReport.model_validate(whoop)  # what the route takes
    assert places["body.observations.0.value_numeric"] == "DiagnosticReport.contained[0].valueQuantity.value"


@pytest.mark.parametrize(
    "value, expected",
    [
        ({"valueString": "No growth after 48 h"}, {"value_text": "No growth after 48 h"}),
        (
            {
                "valueCodeableConcept": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "10828004", "display": "Positive"}]
                }
            },
            {"value_text": "Positive"},
        ),
        ({"valueCodeableConcept": {"text": "Reactive", "coding": [{"code": "R"}]}}, {"value_text": "Reactive"}),
        ({"valueCodeableConcept": {"coding": [{"code": "NEG"}]}}, {"value_text": "NEG"}),
        ({"valueInteger": 7}, {"value_numeric": 7.0}),
        ({"valueBoolean": False}, {"value_text": "false"}),
        (
            {"valueQuantity": {"value": 4, "code": "10*9/L", "system": "http://unitsofmeasure.org"}},
            {"value_numeric": 4.0, "unit": "10*9/L"},
        ),
    ],
)
def test_text_coded_and_numeric_values(value, expected):
    _, whoop, _ = fhir.report_in(report(observation("o1", **value)), CodeMap())
    assert whoop["observations"][0] == {"code": "code-o1", "status": "final", **expected}


@pytest.mark.parametrize(
    "status, whoop_status",
    [
        ("partial", "partial"),
        ("preliminary", "preliminary"),
        ("final", "final"),
        ("amended", "amended"),
        ("appended", "amended"),
        ("corrected", "corrected"),
        ("cancelled", "cancelled"),
    ],
)
def test_every_report_status_with_a_whoop_meaning(status, whoop_status):
    assert fhir.report_in(report(CHOLESTEROL, status=status), CodeMap())[1]["status"] == whoop_status


@pytest.mark.parametrize("status", ["registered", "entered-in-error", "unknown", "bogus"])
def test_a_report_status_without_a_whoop_meaning_is_refused(status):
    error = problems_of(report(CHOLESTEROL, status=status))
    assert [(p.where, p.kind) for p in error.problems] == [("DiagnosticReport.status", "code")]


def test_a_cancelled_report_may_have_no_results():
    body = report(status="cancelled")
    del body["contained"], body["result"]
    assert fhir.report_in(body, CodeMap())[1] == {"status": "cancelled"}


def test_a_bundle_with_the_report_and_its_observations():
    body = report(CHOLESTEROL)
    del body["contained"]
    body["result"] = [{"reference": "urn:uuid:0b3e7c1e-0000-4000-8000-000000000001"}, {"reference": "Observation/o2"}]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": body},
            {"fullUrl": "urn:uuid:0b3e7c1e-0000-4000-8000-000000000001", "resource": CHOLESTEROL},
            {"resource": observation("o2", valueString="trace")},
        ],
    }
    service_request_id, whoop, places = fhir.report_in(bundle, CodeMap())
    assert service_request_id == SR
    assert [o["code"] for o in whoop["observations"]] == ["code-o1", "code-o2"]
    assert places["body.observations.1.value_text"] == "Bundle.entry[2].resource.valueString"


def test_the_service_request_by_identifier_and_against_the_url():
    body = report(CHOLESTEROL)
    body["basedOn"] = [{"identifier": {"system": fhir.SERVICE_REQUEST_SYSTEM, "value": SR}}]
    assert fhir.report_in(body, CodeMap(), expected=SR)[0] == SR
    error = problems_of(body, expected="another")
    assert [p.where for p in error.problems] == ["DiagnosticReport.basedOn"]


def test_every_problem_of_a_malformed_report_at_once():
    body = report(
        observation("o1", valueRange={"low": {"value": 1}}),
        {**observation("o2", valueString="x"), "code": {"text": "no coding"}},
    )
    body["basedOn"] = []
    body["status"] = "registered"
    body["result"].append({"reference": "#missing"})
    error = problems_of(body)
    assert {p.where for p in error.problems} == {
        "DiagnosticReport.basedOn",
        "DiagnosticReport.status",
        "DiagnosticReport.contained[0].valueRange",
        "DiagnosticReport.contained[1].code.coding",
        "DiagnosticReport.result[2]",
    }
    assert not error.rejected


def test_what_fhir_itself_refuses_is_named_by_its_path():
    body = report(observation("o1", valueQuantity={"value": "lots"}))
    del body["code"]
    error = problems_of(body)
    assert {p.where for p in error.problems} == {
        "DiagnosticReport.code",
        "DiagnosticReport.contained[0].valueQuantity.value",
    }
    assert all("lots" not in p.text for p in error.problems)  # never the value


@pytest.mark.parametrize("body", [{"resourceType": "Observation"}, [], {"status": "final"}, "text"])
def test_not_a_report_is_rejected(body):
    error = problems_of(body)
    assert error.rejected and error.problems[0].where == "resourceType"


def test_a_bundle_needs_exactly_one_report():
    error = problems_of({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": CHOLESTEROL}]})
    assert error.problems[0].where == "Bundle.entry"


def test_observation_codes_are_mapped_in():
    codes = CodeMap(observations={"http://loinc.org|code-o1": "LDL", "other": "X"})
    _, whoop, _ = fhir.report_in(report(CHOLESTEROL, observation("o2", valueString="x")), codes)
    assert [o["code"] for o in whoop["observations"]] == ["LDL", "code-o2"]
    assert codes.unmapped == {"out": 0, "in": 1}


VIEW = {
    "id": "3c1f0e2a-0000-4000-8000-00000000000a",
    "created_at": "2026-12-01T10:00:00Z",
    "patient": {
        "id": "p-1",
        "first_name": "Ann",
        "last_name": "Lee",
        "birth_date": "1990-02-03",
        "gender": "Female",
        "email": "a@example.com",
    },
    "appointments": [{"service_request_ids": [SR], "start_time": "2026-12-02T09:30:00Z", "type": "MOBILE"}],
    "service_requests": [
        {"id": SR, "code": "WHOOP_LIPIDS", "status": "active", "task_description": "Lipid panel"},
        {"id": "sr-2", "code": "WHOOP_A1C", "status": "weird"},
    ],
}


def test_an_order_as_a_bundle():
    codes = CodeMap(tests={"WHOOP_LIPIDS": LabCode("57698-3", "http://loinc.org", "Lipid panel")})
    bundle = fhir.requisition_bundle(copy.deepcopy(VIEW), codes)
    Bundle.model_validate(bundle)
    resources = {(e["resource"]["resourceType"], e["resource"]["id"]): e["resource"] for e in bundle["entry"]}
    patient = resources[("Patient", "p-1")]
    assert patient["name"] == [{"family": "Lee", "given": ["Ann"]}] and patient["gender"] == "female"
    lipids = resources[("ServiceRequest", SR)]
    assert lipids["identifier"] == [{"system": fhir.SERVICE_REQUEST_SYSTEM, "value": SR}]
    assert lipids["requisition"] == {"system": fhir.REQUISITION_SYSTEM, "value": VIEW["id"]}
    assert lipids["code"]["coding"] == [{"system": "http://loinc.org", "code": "57698-3", "display": "Lipid panel"}]
    assert lipids["subject"] == {"reference": "Patient/p-1"}
    other = resources[("ServiceRequest", "sr-2")]
    assert other["code"]["coding"] == [{"system": fhir.TEST_CODE_SYSTEM, "code": "WHOOP_A1C"}]
    assert other["status"] == "unknown"
    appointment = resources[("Appointment", f"{VIEW['id']}-1")]
    assert appointment["start"].startswith("2026-12-02T09:30:00") and appointment["basedOn"] == [
        {"reference": f"ServiceRequest/{SR}"}
    ]
    assert codes.unmapped == {"out": 1, "in": 0}


def test_answers_as_operation_outcomes():
    places = {"body.observations.0": "DiagnosticReport.contained[0]", "body.observations.0.value_text": "X.valueString"}
    invalid = {
        "error": "invalid_request",
        "problems": [
            {"field": "observations.0.value_text", "problem": "too short"},
            {"field": "observations.0.bundle_id", "problem": "not a uuid"},
            {"field": "header.Idempotency-Key", "problem": "too long"},
        ],
    }
    issues = fhir.outcome(400, invalid, places)["issue"]
    assert [i.get("expression") for i in issues] == [["X.valueString"], ["DiagnosticReport.contained[0]"], None]
    assert issues[2]["diagnostics"] == "header.Idempotency-Key: too long"
    forbidden = {
        "error": "transition_forbidden",
        "message": "no",
        "task_business_status": "ORDER_CONFIRMED",
        "allowed_next_statuses": ["SPECIMEN_COLLECTED"],
    }
    (issue,) = fhir.outcome(409, forbidden, {})["issue"]
    assert issue["code"] == "business-rule" and "SPECIMEN_COLLECTED" in issue["diagnostics"]
    accepted = fhir.outcome(202, {"service_request_id": SR, "report_id": "r-1", "event_id": "e"}, {})
    assert accepted["issue"][0]["severity"] == "information" and "r-1" in accepted["issue"][0]["diagnostics"]


# rev3: a value below or above a limit is not that number.
@pytest.mark.parametrize("comparator", ["<", "<=", ">=", ">"])
def test_a_quantity_with_a_comparator_is_refused_not_read_as_its_number(comparator):
    limited = observation("o1", valueQuantity={"value": 0.5, "comparator": comparator, "unit": "mg/dL"})
    problems = problems_of(report(limited)).problems
    assert [p.where for p in problems] == ["DiagnosticReport.contained[0].valueQuantity.comparator"]


@pytest.mark.parametrize("reference", ["ServiceRequest/", "ServiceRequest//_history/2"])
def test_a_based_on_reference_without_an_id_names_no_service_request(reference):
    body = report(CHOLESTEROL)
    body["basedOn"] = [{"reference": reference}]
    problems = problems_of(body).problems
    assert [(p.where, p.kind) for p in problems] == [("DiagnosticReport.basedOn", "required")]


# rev3: a resource type R4 does not define (R5's ImagingSelection, a typo) was a KeyError (502).
@pytest.mark.parametrize("kind", ["ImagingSelection", "Foo", 5, None, ["Observation"]])
def test_a_contained_resource_of_a_type_r4_does_not_define_is_a_400_naming_it(kind):
    body = report(CHOLESTEROL)
    body["contained"].append({"resourceType": kind, "id": "i1"})
    problems = problems_of(body).problems
    assert [(p.where, p.kind) for p in problems] == [("DiagnosticReport.contained[1].resourceType", "structure")]


def test_a_bundle_entry_of_a_type_r4_does_not_define_is_a_400_naming_it():
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": report(CHOLESTEROL)}, {"resource": {"resourceType": "Foo"}}],
    }
    problems = problems_of(bundle).problems
    assert [(p.where, p.kind) for p in problems] == [("Bundle.entry[1].resource.resourceType", "structure")]


def test_a_resource_of_an_unknown_type_nested_deeper_is_still_a_400():
    inner = observation("o1", valueString="x")
    inner["contained"] = [{"resourceType": "Foo"}]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": report(inner)}]}
    assert problems_of(bundle).problems[0].kind == "structure"


# rev3: a modifierExtension changes the meaning of its element (FHIR: a receiver that does not
# understand one must not process the resource); it was ignored and the value sent to WHOOP.
def test_a_modifier_extension_on_the_report_or_an_observation_is_refused():
    modifier = [{"url": "http://lab.example/not-performed", "valueBoolean": True}]
    body = report(observation("o1", valueString="x", modifierExtension=modifier))
    body["modifierExtension"] = modifier
    problems = problems_of(body).problems
    assert sorted(p.where for p in problems) == [
        "DiagnosticReport.contained[0].modifierExtension",
        "DiagnosticReport.modifierExtension",
    ]
