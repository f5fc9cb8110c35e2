"""What the lab rules need from the outside, as Protocols: the stores, the state machine,
the bus and the partner events queue. `LabPorts()` holds the real ones (the store modules
and the AWS adapters); tests/unit passes in-memory fakes (tests/fakes/lab.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from whoop_bridge import bus
from whoop_bridge.lab import partner_queue, step_functions
from whoop_bridge.models.diagnostic_report import DiagnosticReportRecord, ReportKind
from whoop_bridge.models.document import BasedOn, DocumentRecord
from whoop_bridge.models.requisition import RequisitionRecord
from whoop_bridge.models.review import ReviewRecord
from whoop_bridge.models.service_request import ServiceRequestRecord, TokenPhase, WorkflowState
from whoop_bridge.models.task_status import TaskBusinessStatus
from whoop_bridge.store import (
    document_store,
    report_store,
    requisition_store,
    review_store,
    service_request_store,
)


class RequisitionStore(Protocol):
    """store/requisition_store.py. Every write returns False when its condition did not hold."""

    def put_received(
        self,
        requisition: dict[str, Any],
        received_at: str,
        service_request_ids: list[str],
        problems: list[dict[str, str]],
    ) -> bool: ...
    def put_invalid(self, requisition_id: str, problems: list[dict[str, str]]) -> bool: ...
    def start_not_found_wait(self, requisition_id: str, since: str, until: str) -> bool: ...
    def give_up_not_found(self, requisition_id: str, since: str) -> bool: ...
    def mark_published(self, requisition_id: str) -> None: ...
    def get(self, requisition_id: str) -> RequisitionRecord | None: ...
    def list_received(
        self, since: str | None, limit: int, next_token: str | None, scope: str
    ) -> tuple[list[RequisitionRecord], str | None]: ...


class ServiceRequestStore(Protocol):
    """store/service_request_store.py."""

    def put_if_new(self, record: ServiceRequestRecord) -> bool: ...
    def get(self, service_request_id: str) -> ServiceRequestRecord | None: ...
    def get_many(self, service_request_ids: list[str]) -> list[ServiceRequestRecord]: ...
    def record_status(
        self,
        service_request_id: str,
        status: TaskBusinessStatus,
        *,
        reason: str | None,
        event_id: str,
        workflow: WorkflowState,
        outbox: dict[str, Any],
        correction_deadline: str | None = None,
    ) -> None: ...
    def close(
        self, service_request_id: str, *, closed_at: str | None = None, closed_reason: str | None = None
    ) -> None: ...
    def record_failure(self, service_request_id: str, failure: dict[str, str]) -> None: ...
    def clear_outbox(self, service_request_id: str) -> None: ...
    def store_task_token(self, service_request_id: str, task_token: str, phase: TokenPhase) -> None: ...
    def claim_task_token(self, service_request_id: str, task_token: str, pending_update: dict[str, Any]) -> bool: ...
    def restore_task_token(self, service_request_id: str, task_token: str, workflow: WorkflowState) -> None: ...


class ReportStore(Protocol):
    """store/report_store.py."""

    def put(
        self, service_request_id: str, report_id: str, body: dict[str, Any], kind: ReportKind
    ) -> DiagnosticReportRecord: ...
    def list_for(self, service_request_id: str) -> list[DiagnosticReportRecord]: ...
    def get(self, service_request_id: str, report_id: str) -> DiagnosticReportRecord | None: ...
    def mark_submitted(self, record: DiagnosticReportRecord, outbox: dict[str, Any]) -> None: ...
    def clear_outbox(self, record: DiagnosticReportRecord) -> None: ...


class ReviewStore(Protocol):
    """store/review_store.py."""

    def put_if_new(self, review_id: str, details: dict[str, Any] | None) -> bool: ...
    def get(self, review_id: str) -> ReviewRecord | None: ...
    def mark_published(self, review_id: str) -> None: ...
    def list_pending(self, limit: int, next_token: str | None) -> tuple[list[ReviewRecord], str | None]: ...


class DocumentStore(Protocol):
    """store/document_store.py: documents, their references, and their bytes."""

    def register(
        self, document_id: str, reference_type: str, requisition_id: str, service_request_ids: list[str]
    ) -> DocumentRecord: ...
    def start_attempt(self, document_id: str, attempt: int) -> int | None: ...
    def mark_stored(self, document_id: str, metadata: dict[str, Any], stored_object: dict[str, Any]) -> bool: ...
    def mark_linked(self, document_id: str, metadata: dict[str, Any]) -> bool: ...
    def mark_failed(self, document_id: str, reason: str, next_attempt_at: str) -> bool: ...
    def mark_unavailable(self, document_id: str, reason: str) -> bool: ...
    def get(self, document_id: str) -> DocumentRecord | None: ...
    def get_many(self, document_ids: list[str]) -> dict[str, DocumentRecord]: ...
    def put_references(self, requisition_id: str, references: list[BasedOn]) -> None: ...
    def get_references(self, requisition_id: str) -> list[BasedOn]: ...
    def put_content(self, document_id: str, content: bytes, content_type: str) -> dict[str, Any]: ...
    def download_link(self, object_key: str, object_version: str, expires_in_seconds: int) -> str: ...


class Executions(Protocol):
    """lab/step_functions.py: the service request state machine."""

    def start(self, name: str, execution_input: dict[str, Any]) -> bool: ...
    def resume(self, task_token: str, output: dict[str, Any]) -> None: ...


class Bus(Protocol):
    """whoop_bridge.bus: the bridge's EventBridge bus."""

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class PartnerQueue(Protocol):
    """lab/partner_queue.py: the partner events queue."""

    def enqueue(self, event_type: str, resource_id: str, *, delay_seconds: int = 0, **extra: Any) -> None: ...


@dataclass(frozen=True)
class LabPorts:
    """Everything the lab rules reach outside themselves; the real ones by default."""

    requisitions: RequisitionStore = field(default=requisition_store)  # type: ignore[assignment]
    service_requests: ServiceRequestStore = field(default=service_request_store)  # type: ignore[assignment]
    reports: ReportStore = field(default=report_store)  # type: ignore[assignment]
    reviews: ReviewStore = field(default=review_store)  # type: ignore[assignment]
    documents: DocumentStore = field(default=document_store)  # type: ignore[assignment]
    executions: Executions = field(default=step_functions)  # type: ignore[assignment]
    bus: Bus = field(default=bus)  # type: ignore[assignment]
    queue: PartnerQueue = field(default=partner_queue)  # type: ignore[assignment]


# The real ports, the default of every lab rule's `ports` parameter.
REAL = LabPorts()
