"""The lab's view of its orders: a requisition with each test's status, history, what may
come next and, for one order, its reports and `based_on` references. A view never shows a
task token or a report's results."""

from __future__ import annotations

from typing import Any

from whoop_bridge.lab import documents
from whoop_bridge.lab.errors import NotFound
from whoop_bridge.lab.ports import REAL, LabPorts
from whoop_bridge.models.diagnostic_report import DiagnosticReportRecord
from whoop_bridge.models.requisition import RequisitionRecord
from whoop_bridge.models.service_request import ServiceRequestRecord


def _value(enum: Any) -> str | None:
    return enum.value if enum is not None else None


def service_request_view(
    record: ServiceRequestRecord, reports: list[DiagnosticReportRecord] | None = None
) -> dict[str, Any]:
    """A service request as the lab sees it: status, history, workflow, `next_statuses`,
    `accepts_results`; with `reports`, a summary of each (`diagnostic_reports`)."""
    view = {
        "id": record.service_request_id,
        "code": record.code,
        "task_description": record.task_description,
        "status": record.fhir_status,
        "task_business_status": _value(record.task_business_status),
        # As WHOOP sent it at intake: one of the seven, prose such as "Specimen collected", or null.
        "whoop_task_business_status": record.whoop_task_business_status,
        "workflow": record.workflow.value,
        "next_statuses": [status.value for status in record.allowed_statuses()],
        "accepts_results": record.accepted_report_statuses(),
        "history": record.history,
        "correction_deadline": record.correction_deadline,
        "failure": record.failure,
        # What the bridge could not read of a `held` test (nothing is sent to WHOOP for it).
        "problems": record.problems or [],
    }
    if reports is not None:
        view["diagnostic_reports"] = [report.summary() for report in reports]
    return view


def requisition_view(
    record: RequisitionRecord,
    service_requests: list[ServiceRequestRecord],
    *,
    with_reports: bool,
    ports: LabPorts = REAL,
) -> dict[str, Any]:
    """A requisition with each test's view (`open` while any test is)."""
    return {
        "id": record.requisition_id,
        "received_at": record.received_at,
        "created_at": record.created_at,
        "patient": record.patient,
        "appointments": record.appointments,
        "open": any(sr.is_open for sr in service_requests),
        # Parts of the order the bridge could not read (kept as WHOOP sent them).
        "problems": record.problems,
        "service_requests": [
            service_request_view(sr, ports.reports.list_for(sr.service_request_id) if with_reports else None)
            for sr in service_requests
        ],
    }


def get_requisition(requisition_id: str, ports: LabPorts = REAL) -> dict[str, Any]:
    """One order with its tests' statuses, history, reports and `based_on` references
    (`[{type, id, document, state?}]`: a document's fetch state, never its content).
    NotFound unless it is received."""
    record = ports.requisitions.get(requisition_id)
    if record is None or not record.is_received:
        raise NotFound(f"requisition {requisition_id}")
    service_requests = ports.service_requests.get_many(record.service_request_ids)
    view = requisition_view(record, service_requests, with_reports=True, ports=ports)
    based_on = documents.references_by_service_request(requisition_id, ports)
    for service_request in view["service_requests"]:
        service_request["based_on"] = based_on.get(service_request["id"], [])
    return view


def get_document(document_id: str, ports: LabPorts = REAL) -> dict[str, Any]:
    """A document an order is based on: metadata, state and, once stored, a short-lived
    link (lab/documents.py `document_view`). NotFound when no order referenced it."""
    view = documents.document_view(document_id, ports)
    if view is None:
        raise NotFound(f"document {document_id}")
    return view
