"""Pydantic models at the lab boundaries (docs/whoop.md#diagnostic-reports).

WHOOP's shapes are tolerant (WHOOP may add fields); the lab's report is strict, because
it goes to WHOOP exactly as the lab wrote it. A lab that sends a bad body gets a 400 that
lists each problem by field, without echoing the values (they may be results or patient
fields).
"""

from __future__ import annotations

import copy
import json

import pytest
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import ValidationError

from whoop_bridge.models.lab_order import LabRequisition, ServiceRequest
from whoop_bridge.models.lab_results import NEEDS_A_VALUE, DiagnosticReport, LabStatusEvent
from whoop_bridge.models.task_status import TaskBusinessStatus
from whoop_bridge.validation import problems

# A patient-like value: must never appear in a problem list.
PATIENT_LIKE = "Jordan Rivera 1988-04-17 jordan.rivera@example.com"

# docs/whoop.md#diagnostic-reports, verbatim.
DOC_REPORT = {
    "status": "final",
    "observations": [
        {"code": "TOTAL_CHOLESTEROL", "value_numeric": 185, "unit": "mg/dL", "status": "final"},
        {"code": "BLOOD_TYPE", "value_text": "A+", "status": "final"},
    ],
}


def requisition(**overrides):
    body = {
        "id": "9b2b6a5e-0c1f-4d5e-8a77-3f1c2d4e5f60",
        "created_at": "2025-01-02T03:04:05.000Z",
        "updated_at": "2025-01-02T03:04:05.000Z",
        "patient": {"id": "p-1", "first_name": "Jordan", "last_name": "Rivera", "birth_date": "1988-04-17"},
        "service_requests": [
            {
                "id": "sr-1",
                "status": "active",
                "intent": "order",
                "code": "LIPID_PANEL",
                "task_business_status": None,
                "task_description": "Fasting lipid panel",
            }
        ],
    }
    body.update(overrides)
    return body


def report_problems(body) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as caught:
        DiagnosticReport.model_validate(body)
    return problems(caught.value)


def fields(listed: list[dict[str, str]]) -> set[str]:
    return {problem["field"] for problem in listed}


def with_observation(**observation):
    return {"status": "final", "observations": [observation]}


# LabRequisition -------------------------------------------------------------------------


def test_requisition_without_appointments_is_valid():
    parsed = LabRequisition.model_validate(requisition())
    assert parsed.model_dump().get("appointments") is None
    (service_request,) = [ServiceRequest.model_validate(sr) for sr in parsed.service_requests]
    assert service_request.code == "LIPID_PANEL"
    assert service_request.task_business_status is None


def test_unknown_fields_on_whoop_shapes_are_kept():
    body = requisition(lab_account="acme", appointments=[{"service_request_ids": ["sr-1"], "room": "2B"}])
    body["patient"]["preferred_language"] = "en"
    body["service_requests"][0]["priority"] = "routine"
    body["service_requests"][0]["status"] = "on-hold"  # a FHIR status WHOOP has not listed: tolerated
    dumped = LabRequisition.model_validate(body).model_dump()
    assert dumped["lab_account"] == "acme"
    assert dumped["patient"]["preferred_language"] == "en"
    assert dumped["patient"]["first_name"] == "Jordan"
    assert dumped["appointments"][0]["room"] == "2B"
    service_request = ServiceRequest.model_validate(dumped["service_requests"][0]).model_dump()
    assert service_request["priority"] == "routine"
    assert service_request["status"] == "on-hold"


@pytest.mark.parametrize("service_requests", [[], None, "sr-1"], ids=["empty", "null", "not-a-list"])
def test_requisition_without_a_list_of_service_requests_is_unreadable(service_requests):
    with pytest.raises(ValidationError) as caught:
        LabRequisition.model_validate(requisition(service_requests=service_requests))
    assert "service_requests" in fields(problems(caught.value))


def test_requisition_missing_service_requests_or_id_is_unreadable():
    body = requisition()
    del body["service_requests"]
    body["id"] = None
    with pytest.raises(ValidationError) as caught:
        LabRequisition.model_validate(body)
    assert fields(problems(caught.value)) == {"service_requests", "id"}


@pytest.mark.parametrize("patient", [None, {}, {"id": None}, "Jordan"], ids=["null", "empty", "null-id", "text"])
def test_patient_and_times_are_kept_as_received_whatever_their_shape(patient):
    parsed = LabRequisition.model_validate(requisition(patient=patient, created_at=None, updated_at=1735787045))
    assert parsed.model_dump()["patient"] == patient
    assert parsed.model_dump()["updated_at"] == 1735787045


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("Specimen collected", "Specimen collected"),  # WHOOP's own example value
        ("SAMPLE_LOST", "SAMPLE_LOST"),
        (None, None),
        ({"text": "Results pending"}, '{"text": "Results pending"}'),
    ],
)
def test_any_task_business_status_is_read_and_kept(value, kept):
    body = requisition()["service_requests"][0] | {"task_business_status": value}
    assert ServiceRequest.model_validate(body).task_business_status == kept


@pytest.mark.parametrize(("field", "value"), [("id", None), ("code", None), ("code", ""), ("code", 42)])
def test_a_service_request_without_a_readable_id_or_code_is_unreadable(field, value):
    body = requisition()["service_requests"][0] | {field: value}
    with pytest.raises(ValidationError) as caught:
        ServiceRequest.model_validate(body)
    assert fields(problems(caught.value)) == {field}


def test_a_null_fhir_status_is_kept_as_null():
    body = requisition()["service_requests"][0] | {"status": None}
    assert ServiceRequest.model_validate(body).status is None
    del body["status"]
    assert ServiceRequest.model_validate(body).status == "active"  # absent: WHOOP's examples omit it


# DiagnosticReport -----------------------------------------------------------------------


def test_documented_example_report_is_valid():
    parsed = DiagnosticReport.model_validate(copy.deepcopy(DOC_REPORT))
    assert parsed.status == "final"
    assert parsed.observations[0].value_numeric == 185
    assert parsed.observations[1].value_text == "A+"


def test_documented_example_report_is_valid_from_json_text():
    assert DiagnosticReport.model_validate_json(json.dumps(DOC_REPORT)).observations[0].unit == "mg/dL"


def test_observation_with_both_values_is_valid():
    DiagnosticReport.model_validate(
        with_observation(code="HBA1C", value_numeric=5.4, value_text="5.4 %", status="final")
    )


def test_observation_with_neither_value_names_its_index():
    body = copy.deepcopy(DOC_REPORT)
    body["observations"].append({"code": "HDL", "unit": "mg/dL", "status": "final"})
    listed = report_problems(body)
    assert fields(listed) == {"observations.2"}
    assert "value_numeric or value_text" in listed[0]["problem"]
    assert not listed[0]["problem"].startswith("Value error")


def test_no_observations_is_a_problem():
    assert fields(report_problems({"status": "final", "observations": []})) == {"observations"}


def test_what_whoop_accepts_is_accepted_observation_without_status_and_with_a_bundle():
    bundle = "3f2c1a9e-7b6d-4e5f-8a1b-2c3d4e5f6a7b"
    parsed = DiagnosticReport.model_validate(
        {
            "status": "final",
            "observations": [
                {"code": "LDL", "value_numeric": 100, "bundle_id": bundle},
                {"code": "HDL", "value_text": "52"},
            ],
        }
    )
    assert parsed.observations[0].bundle_id == bundle
    assert parsed.observations[0].status is None


@pytest.mark.parametrize(
    "body", [{"status": "cancelled"}, {"status": "cancelled", "observations": []}], ids=["absent", "empty"]
)
def test_a_cancelled_report_needs_no_observations(body):
    assert DiagnosticReport.model_validate(body).observations in (None, [])


@pytest.mark.parametrize("status", ["final", "partial", "preliminary", "amended", "corrected"])
def test_every_other_report_needs_an_observation(status):
    listed = report_problems({"status": status})
    assert fields(listed) == {"observations"}
    assert "only a cancelled report" in listed[0]["problem"]


@pytest.mark.parametrize("bundle_id", ["bundle-1", "", 7])
def test_bundle_id_must_be_a_uuid(bundle_id):
    assert fields(report_problems(with_observation(code="LDL", value_numeric=1, bundle_id=bundle_id))) == {
        "observations.0.bundle_id"
    }


@pytest.mark.parametrize("field", ["value_text", "unit", "status", "bundle_id"])
def test_an_optional_field_is_absent_never_null(field):
    # WHOOP's schema has no nulls, and the report goes to WHOOP as written.
    body = with_observation(code="LDL", value_numeric=1, **{field: None})
    assert fields(report_problems(body)) == {f"observations.0.{field}"}


def test_cross_field_problems_are_listed_with_the_field_problems():
    # The first has no value and no status, the second no code: one answer names both.
    listed = report_problems(
        {"status": "final", "observations": [{"unit": "mg/dL", "code": "LDL"}, {"value_numeric": 52.5}]}
    )
    assert {(problem["field"], problem["problem"]) for problem in listed} >= {("observations.0", NEEDS_A_VALUE)}
    assert fields(listed) == {"observations.0", "observations.1.code"}
    # Also when the same observation has a field problem, and with the report's own rule.
    listed = report_problems({"status": "complete", "observations": [{"code": "LDL", "unit": 5}]})
    assert fields(listed) == {"status", "observations.0", "observations.0.unit"}


@pytest.mark.parametrize("status", ["FINAL", "registered", "draft", ""])
def test_unknown_report_status_is_a_problem(status):
    assert fields(report_problems({**DOC_REPORT, "status": status})) == {"status"}


@pytest.mark.parametrize("status", ["FINAL", "partial", "pending", None])
def test_unknown_observation_status_is_a_problem(status):
    assert fields(report_problems(with_observation(code="X", value_text="A+", status=status))) == {
        "observations.0.status"
    }


@pytest.mark.parametrize("extra", ["reference_range", "interpretation", "pdf"])
def test_extra_observation_field_is_a_problem(extra):
    body = with_observation(code="LDL", value_numeric=100, unit="mg/dL", status="final", **{extra: "50-130"})
    assert fields(report_problems(body)) == {f"observations.0.{extra}"}


def test_extra_report_field_is_a_problem():
    assert fields(report_problems({**DOC_REPORT, "performer": "Acme Labs"})) == {"performer"}


@pytest.mark.parametrize("value", ["185", True], ids=["string", "bool"])
def test_value_numeric_is_strict(value):
    assert fields(report_problems(with_observation(code="LDL", value_numeric=value, status="final"))) == {
        "observations.0.value_numeric"
    }


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_value_numeric_must_be_finite(value):
    body = json.loads(
        json.dumps(with_observation(code="LDL", value_numeric=value, status="final"))
    )  # as lab_api parses it
    assert fields(report_problems(body)) == {"observations.0.value_numeric"}


def test_problems_never_contain_the_input_values():
    body = {
        "status": PATIENT_LIKE,
        "observations": [
            {"code": "LDL", "value_numeric": PATIENT_LIKE, "status": "final"},
            {"code": "NAME", "value_text": "x", "status": PATIENT_LIKE},
            {"code": "NOTE", "value_text": "x", "status": "final", "reference_range": PATIENT_LIKE},
            {"code": PATIENT_LIKE[:0], "value_text": PATIENT_LIKE, "status": "final"},
        ],
        "patient": PATIENT_LIKE,
    }
    listed = report_problems(body)
    assert fields(listed) == {
        "status",
        "observations.0.value_numeric",
        "observations.1.status",
        "observations.2.reference_range",
        "observations.3.code",
        "patient",
    }
    text = json.dumps(listed)
    for fragment in ("Jordan", "Rivera", "1988-04-17", "example.com"):
        assert fragment not in text


def test_problems_from_the_event_handler_drop_the_body_prefix():
    # lab_api passes Powertools' RequestValidationError, whose locations start with "body".
    with pytest.raises(ValidationError) as caught:
        DiagnosticReport.model_validate(with_observation(code="LDL", value_numeric=PATIENT_LIKE, status="final"))
    handler_error = RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in caught.value.errors()])
    listed = problems(handler_error)
    assert fields(listed) == {"observations.0.value_numeric"}
    assert "Jordan" not in json.dumps(listed)


# LabStatusEvent -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"])
def test_issue_status_without_a_reason_is_a_problem(status):
    with pytest.raises(ValidationError) as caught:
        LabStatusEvent.model_validate({"status": status})
    listed = problems(caught.value)
    assert len(listed) == 1
    assert listed[0]["problem"] == f"{status} needs a reason"


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"], ids=["empty", "spaces", "whitespace"])
def test_issue_status_with_a_blank_reason_is_a_problem(reason):
    with pytest.raises(ValidationError) as caught:
        LabStatusEvent.model_validate({"status": "APPOINTMENT_ISSUE", "reason": reason})
    assert problems(caught.value)


def test_issue_status_with_a_reason_is_valid_and_trimmed():
    event = LabStatusEvent.model_validate({"status": "ORDER_ISSUE", "reason": "  sample haemolysed  "})
    assert event.status is TaskBusinessStatus.ORDER_ISSUE
    assert event.reason == "sample haemolysed"


def test_attended_without_a_reason_is_valid():
    event = LabStatusEvent.model_validate({"status": "APPOINTMENT_ATTENDED"})
    assert event.status is TaskBusinessStatus.APPOINTMENT_ATTENDED
    assert event.reason is None


def test_issue_status_without_a_reason_is_named_beside_other_problems():
    with pytest.raises(ValidationError) as caught:
        LabStatusEvent.model_validate({"status": "RESULTS_ISSUE", "note": "x"})
    assert {(p["field"], p["problem"]) for p in problems(caught.value)} == {
        ("reason", "RESULTS_ISSUE needs a reason"),
        ("note", "Extra inputs are not permitted"),
    }


def test_unknown_status_and_extra_fields_are_problems():
    with pytest.raises(ValidationError) as caught:
        LabStatusEvent.model_validate({"status": "SAMPLE_LOST", "patient": PATIENT_LIKE})
    listed = problems(caught.value)
    assert fields(listed) == {"status", "patient"}
    assert "Jordan" not in json.dumps(listed)


@pytest.mark.parametrize(
    "body",
    [
        {"status": "final", "observations": []},
        {"status": "final"},
        {"status": "cancelled"},
        {"status": "cancelled", "observations": []},
        {"status": "partial", "observations": [{"code": "LDL", "value_numeric": 1}]},
        {"status": "final", "observations": [{"code": "LDL"}]},
        {
            "status": "final",
            "observations": [{"code": "LDL", "value_text": "A+", "bundle_id": "3f2c1a9e-7b6d-4e5f-8a1b-2c3d4e5f6a7b"}],
        },
    ],
)
def test_the_served_json_schema_says_what_the_model_accepts(body):
    """The OpenAPI document is generated from the model: a tool that trusts it (schemathesis)
    must not find a schema-valid report the API refuses, or the reverse."""
    import jsonschema

    schema_valid = jsonschema.Draft202012Validator(DiagnosticReport.model_json_schema()).is_valid(body)
    try:
        DiagnosticReport.model_validate(body)
        model_valid = True
    except ValidationError:
        model_valid = False
    assert schema_valid == model_valid
