"""What the lab sends the bridge, as the lab API's bodies: a status update, a diagnostic
report with its observations (WHOOP's `DiagnosticReportCreateRequest`, sent on as written;
docs/whoop.md#diagnostic-reports) and the sandbox's test-data request. Field names are WHOOP's and FHIR's own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from whoop_bridge.models.lab_order import NonEmpty
from whoop_bridge.models.task_status import ISSUE_STATUSES, TaskBusinessStatus

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000, pattern=r"\S")]


ObservationStatus = Literal[
    "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"
]
DiagnosticReportStatus = Literal["final", "partial", "preliminary", "amended", "corrected", "cancelled"]
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
BundleId = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
NEEDS_A_VALUE = "an observation needs value_numeric or value_text (or both)"


def _optional(**schema: Any) -> Any:
    """An optional field that is absent or a value, never null: WHOOP's schema has no nulls,
    and the report goes to WHOOP as written."""

    def absent_not_null(field_schema: dict[str, Any]) -> None:
        field_schema.pop("default", None)
        field_schema.update(schema)

    return Field(default=None, json_schema_extra=absent_not_null)


def _with_cross_field_problems(
    data: Any, handler: Any, title: str, found: list[tuple[tuple[str | int, ...], str]]
) -> Any:
    """Validate the fields and report the cross-field `found` problems in the same error.

    pydantic skips after-validators once a field fails, so a lab would learn of a missing
    value only after fixing every other problem; the rules run on the raw input instead.
    """
    extra = [
        InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=data)
        for loc, message in found
    ]
    try:
        validated = handler(data)
    except ValidationError as error:
        if not extra:
            raise
        field_errors = [
            InitErrorDetails(
                type=e["type"], loc=e["loc"], input=e["input"], **({"ctx": e["ctx"]} if "ctx" in e else {})
            )
            for e in error.errors()
        ]
        raise ValidationError.from_exception_data(error.title, field_errors + extra) from None
    if extra:
        raise ValidationError.from_exception_data(title, extra)
    return validated


class Observation(BaseModel):
    """One result: WHOOP's `CreateObservationRequest`. WHOOP's schema makes every field
    optional; WHOOP's docs add that an observation needs a value, and the bridge needs a
    `code` (a value that names no analyte says nothing). Extra fields are refused (WHOOP has
    none for ranges, flags or PDFs), and types are strict: the report goes to WHOOP exactly
    as the lab wrote it, so "185" must not pass as a number."""

    # The value rule below, as JSON Schema for the OpenAPI document.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["value_numeric"], "properties": {"value_numeric": {"type": "number"}}},
                {"required": ["value_text"], "properties": {"value_text": {"type": "string"}}},
            ]
        },
    )

    code: NonEmpty
    # NaN and infinities parse from JSON but cannot be sent to WHOOP; an empty text is no result.
    value_numeric: Annotated[float, Field(allow_inf_nan=False)] = _optional()
    value_text: Annotated[str, StringConstraints(min_length=1)] = _optional()
    unit: str = _optional()
    status: ObservationStatus = _optional()
    # Groups related observations for fulfilment (WHOOP: uuid, optional).
    bundle_id: BundleId = _optional(format="uuid")

    @model_validator(mode="wrap")
    @classmethod
    def _has_a_value(cls, data: Any, handler: Any) -> Observation:
        missing = isinstance(data, dict) and data.get("value_numeric") is None and data.get("value_text") is None
        return _with_cross_field_problems(data, handler, cls.__name__, [((), NEEDS_A_VALUE)] if missing else [])


class DiagnosticReport(BaseModel):
    """WHOOP's `DiagnosticReportCreateRequest`, exactly as the lab writes it.

    WHOOP's schema makes both fields optional. The bridge needs `status` (it decides what
    the report does to the test: partial, final or a correction), and results in every
    report but a `cancelled` one (a final report with nothing in it would tell WHOOP results
    are ready when none are)."""

    # The results rule below, as JSON Schema for the OpenAPI document.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "if": {"required": ["status"], "properties": {"status": {"const": "cancelled"}}},
            "else": {"required": ["observations"], "properties": {"observations": {"type": "array", "minItems": 1}}},
        },
    )

    status: DiagnosticReportStatus
    observations: list[Observation] = _optional()

    @model_validator(mode="wrap")
    @classmethod
    def _results_unless_cancelled(cls, data: Any, handler: Any) -> DiagnosticReport:
        found = []
        no_results = isinstance(data, dict) and ("observations" not in data or data["observations"] == [])
        if no_results and data.get("status") != "cancelled":
            found.append(
                (("observations",), "a report needs at least one observation (only a cancelled report may have none)")
            )
        return _with_cross_field_problems(data, handler, cls.__name__, found)


class LabStatusEvent(BaseModel):
    """`{status, reason?}` from the lab: a `task_business_status` value."""

    # The reason rule below, as JSON Schema for the OpenAPI document.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {
                "required": ["status"],
                "properties": {"status": {"enum": sorted(status.value for status in ISSUE_STATUSES)}},
            },
            "then": {"required": ["reason"], "properties": {"reason": {"type": "string"}}},
        },
    )

    status: TaskBusinessStatus
    reason: Reason | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _issue_has_reason(cls, data: Any, handler: Any) -> LabStatusEvent:
        found = []
        status = data.get("status") if isinstance(data, dict) else None
        if isinstance(status, str) and status in ISSUE_STATUSES and data.get("reason") is None:
            found.append((("reason",), f"{status} needs a reason"))
        return _with_cross_field_problems(data, handler, cls.__name__, found)


class TestDataRequest(BaseModel):
    """`POST /lab/test-data`: `{appointment_type?}`, WHOOP's `appointmentType` for its
    sandbox's add-test-data (IN_PERSON when absent)."""

    __test__ = False  # not a pytest class
    model_config = ConfigDict(extra="forbid")

    appointment_type: Literal["IN_PERSON", "MOBILE", "VIRTUAL"] = _optional()
