"""WHOOP's shapes of a lab order, read tolerantly: the requisition, its service requests,
their `based_on` references and the partner documents these name (docs/whoop.md#requisitions). Field
names are WHOOP's and FHIR's own; WHOOP may add fields, which are kept.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from whoop_bridge.models.identifiers import MAX_RESOURCE_ID_LENGTH

# The pattern says in the OpenAPI document what the stripping implies: not only blanks.
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S")]


class WhoopShape(BaseModel):
    """A shape WHOOP sends. WHOOP may add fields: keep them rather than fail an order over a new key."""

    model_config = ConfigDict(extra="allow")


def _as_text(value: Any) -> Any:
    """A value the bridge only keeps and shows, as text whatever its JSON type."""
    return value if value is None or isinstance(value, str) else json.dumps(value)


# A string WHOOP may send as anything (a new value, a null, another type): kept, never an error.
FreeText = Annotated[str | None, BeforeValidator(_as_text)]


class ServiceRequest(WhoopShape):
    """One test of an order. Only `id` and `code` must be readable for the bridge to act on
    it; every other field is kept as received."""

    id: NonEmpty
    code: NonEmpty
    # FHIR request status (active, completed, revoked, on-hold, ...). Absent reads as active
    # (WHOOP's examples omit it); null or any other value means no work for the lab.
    status: FreeText = "active"
    intent: FreeText = None
    # A free string at WHOOP: one of our seven, prose such as "Specimen collected", or null.
    task_business_status: FreeText = None
    task_description: FreeText = None


class LabRequisition(WhoopShape):
    """What the bridge needs to take an order: its id and its list of service requests.

    Each service request is read on its own (`ServiceRequest`), so one it cannot read does
    not hold up the others; `patient`, `appointments`, the times and any new field are kept
    as WHOOP sent them (the spec marks `appointments` required, WHOOP's examples omit it).
    """

    id: NonEmpty
    service_requests: list[Any] = Field(min_length=1)


class Reference(WhoopShape):
    """One FHIR reference of a service request's `based_on`: `{type, id}`."""

    type: str
    # WHOOP's ids are uuids; an empty or longer one could not be kept (a DynamoDB or S3 key).
    id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_RESOURCE_ID_LENGTH)]

    @property
    def is_document(self) -> bool:
        """Whether `type` names a document (case-insensitive: `DocumentReference`,
        `Document`, `PartnerDocument`, `document_reference`, ...)."""
        return "document" in self.type.lower()


class PartnerDocument(WhoopShape):
    """WHOOP's PartnerDocument (`GET /v2/partner/document/{id}`). Unknown fields are kept
    (in `document_json`)."""

    id: str
    document_type: str
    url: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    bundle_id: str | None = None
