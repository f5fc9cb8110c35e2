"""Pydantic models at the lab boundaries: WHOOP's shapes (whoop-api.md §2.3) and the
lab's requests. Field names are WHOOP's and FHIR's own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from whoop_bridge.lab.statuses import ISSUE_STATUSES, TaskBusinessStatus

# The pattern says in the OpenAPI document what the stripping implies: not only blanks.
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S")]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000, pattern=r"\S")]


class _WhoopShape(BaseModel):
    # WHOOP may add fields: keep them rather than fail an order over a new key.
    model_config = ConfigDict(extra="allow")


class Patient(_WhoopShape):
    id: NonEmpty


class Appointment(_WhoopShape):
    service_request_ids: list[str] = Field(default_factory=list)
    start_time: str | None = None
    slot_id: str | None = None
    collection_address: Any = None


class ServiceRequest(_WhoopShape):
    id: NonEmpty
    # FHIR request status: active, completed, revoked; others are tolerated.
    status: str = "active"
    intent: str | None = "order"
    code: NonEmpty
    task_business_status: TaskBusinessStatus | None = None
    task_description: str | None = None


class LabRequisition(_WhoopShape):
    id: NonEmpty
    created_at: str | None = None
    updated_at: str | None = None
    patient: Patient
    service_requests: list[ServiceRequest] = Field(min_length=1)
    # The spec marks it required; WHOOP's examples omit it.
    appointments: list[Appointment] = Field(default_factory=list)


ObservationStatus = Literal[
    "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"
]
DiagnosticReportStatus = Literal["final", "partial", "preliminary", "amended", "corrected", "cancelled"]


class Observation(BaseModel):
    """One result. Extra fields are refused (WHOOP has none for ranges, flags or PDFs), and
    types are strict: the report goes to WHOOP exactly as the lab wrote it, so "185" must
    not pass as a number."""

    # The value rule below, as JSON Schema for the OpenAPI document.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"anyOf": [{"required": ["value_numeric"], "properties": {"value_numeric": {"type": "number"}}},
                                     {"required": ["value_text"], "properties": {"value_text": {"type": "string"}}}]},
    )

    code: NonEmpty
    # NaN and infinities parse from JSON but cannot be sent to WHOOP; an empty text is no result.
    value_numeric: Annotated[float, Field(allow_inf_nan=False)] | None = None
    value_text: Annotated[str, StringConstraints(min_length=1)] | None = None
    unit: str | None = None
    status: ObservationStatus

    @model_validator(mode="after")
    def _has_a_value(self) -> Observation:
        if self.value_numeric is None and self.value_text is None:
            raise ValueError("an observation needs value_numeric or value_text (or both)")
        return self


class DiagnosticReport(BaseModel):
    """WHOOP's `DiagnosticReportCreateRequest`, exactly as the lab writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    status: DiagnosticReportStatus
    observations: list[Observation] = Field(min_length=1)


class LabStatusEvent(BaseModel):
    """`{status, reason?}` from the lab: a `task_business_status` value."""

    # The reason rule below, as JSON Schema for the OpenAPI document.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"required": ["status"], "properties": {"status": {"enum": sorted(status.value for status in ISSUE_STATUSES)}}},
            "then": {"required": ["reason"], "properties": {"reason": {"type": "string"}}},
        },
    )

    status: TaskBusinessStatus
    reason: Reason | None = None

    @model_validator(mode="after")
    def _issue_has_reason(self) -> LabStatusEvent:
        if self.status in ISSUE_STATUSES and not self.reason:
            raise ValueError(f"{self.status.value} needs a reason")
        return self
