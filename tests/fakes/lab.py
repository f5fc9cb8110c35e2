"""In-memory fakes of the lab ports (whoop_bridge/lab/ports.py): the same conditions as the
DynamoDB stores (tested with moto under tests/store), no AWS. `fake_ports()` bundles them."""

from __future__ import annotations

import copy
from typing import Any

from whoop_bridge import times
from whoop_bridge.lab.ports import LabPorts
from whoop_bridge.models.diagnostic_report import DiagnosticReportRecord, ReportKind
from whoop_bridge.models.document import BasedOn, DocumentRecord, DocumentState
from whoop_bridge.models.requisition import RequisitionOutcome, RequisitionRecord
from whoop_bridge.models.review import ReviewRecord
from whoop_bridge.models.service_request import ServiceRequestRecord, TokenPhase, WorkflowState
from whoop_bridge.models.task_status import TaskBusinessStatus

R = RequisitionOutcome


class FakeRequisitionStore:
    def __init__(self) -> None:
        self.records: dict[str, RequisitionRecord] = {}

    def _put(self, record: RequisitionRecord, allowed: bool) -> bool:
        if not allowed:
            return False
        self.records[record.requisition_id] = record
        return True

    def put_received(self, requisition, received_at, service_request_ids, problems) -> bool:
        stored = self.records.get(requisition["id"])
        record = RequisitionRecord(
            requisition_id=requisition["id"],
            outcome=R.RECEIVED,
            received_at=received_at,
            created_at=requisition.get("created_at"),
            updated_at=requisition.get("updated_at"),
            patient=copy.deepcopy(requisition.get("patient")),
            appointments=copy.deepcopy(requisition.get("appointments") or []),
            service_request_ids=list(service_request_ids),
            problems=list(problems),
        )
        return self._put(record, stored is None or stored.outcome is not R.RECEIVED)

    def put_invalid(self, requisition_id, problems) -> bool:
        stored = self.records.get(requisition_id)
        record = RequisitionRecord(requisition_id, R.INVALID, received_at=times.now_iso(), problems=list(problems))
        return self._put(record, stored is None or stored.outcome not in (R.RECEIVED, R.INVALID))

    def start_not_found_wait(self, requisition_id, since, until) -> bool:
        stored = self.records.get(requisition_id)
        allowed = stored is None or (
            stored.outcome is not R.RECEIVED
            and (stored.outcome is not R.AWAITING_WHOOP or (stored.retry_until or "") < since)
        )
        record = RequisitionRecord(
            requisition_id, R.AWAITING_WHOOP, received_at=since, not_found_since=since, retry_until=until
        )
        return self._put(record, allowed)

    def give_up_not_found(self, requisition_id, since) -> bool:
        stored = self.records.get(requisition_id)
        if stored is None or not stored.is_waiting_since(since):
            return False
        stored.outcome = R.NOT_FOUND
        return True

    def restart_intake(self, requisition_id, since, until) -> bool:
        stored = self.records.get(requisition_id)
        if stored is None or stored.outcome not in (R.NOT_FOUND, R.INVALID):
            return False
        stored.outcome, stored.not_found_since, stored.retry_until = R.AWAITING_WHOOP, since, until
        return True

    def mark_published(self, requisition_id) -> None:
        self.records[requisition_id].published = True

    def get(self, requisition_id) -> RequisitionRecord | None:
        return copy.deepcopy(self.records.get(requisition_id))

    def list_received(self, since, limit, next_token, scope):
        received = sorted(
            (r for r in self.records.values() if r.is_received and (not since or r.received_at >= since)),
            key=lambda r: (r.received_at, r.requisition_id),
            reverse=True,
        )
        start = int(next_token) if next_token else 0
        page = received[start : start + limit]
        return copy.deepcopy(page), str(start + limit) if start + limit < len(received) else None


class FakeServiceRequestStore:
    def __init__(self) -> None:
        self.records: dict[str, ServiceRequestRecord] = {}
        # Called once before a claim: lets a test make another update take the token first.
        self.before_claim: Any = None

    def add(self, record: ServiceRequestRecord) -> ServiceRequestRecord:
        self.records[record.service_request_id] = record
        return record

    def put_if_new(self, record) -> bool:
        if record.service_request_id in self.records:
            return False
        self.records[record.service_request_id] = copy.deepcopy(record)
        return True

    def get(self, service_request_id):
        return copy.deepcopy(self.records.get(service_request_id))

    def get_many(self, service_request_ids):
        return [copy.deepcopy(self.records[i]) for i in service_request_ids if i in self.records]

    def record_status(self, service_request_id, accepted) -> None:
        record = self.records[service_request_id]
        record.history.append(accepted.history_entry(times.now_iso()))
        record.task_business_status = TaskBusinessStatus(accepted.status)
        record.last_event_id = accepted.event_id
        record.workflow = accepted.workflow
        record.outbox = copy.deepcopy(accepted.outbox)
        if accepted.correction_deadline:
            record.correction_deadline = accepted.correction_deadline

    def close(self, service_request_id, *, closed_at=None, closed_reason=None) -> None:
        record = self.records[service_request_id]
        record.workflow, record.task_token = WorkflowState.CLOSED, None
        record.closed_at = closed_at or record.closed_at
        record.closed_reason = closed_reason or record.closed_reason

    def record_failure(self, service_request_id, failure) -> None:
        record = self.records[service_request_id]
        record.workflow, record.task_token, record.failure = WorkflowState.FAILED, None, dict(failure)

    def clear_outbox(self, service_request_id) -> None:
        self.records[service_request_id].outbox = None

    def store_task_token(self, service_request_id, task_token, phase) -> None:
        record = self.records[service_request_id]
        record.task_token, record.token_phase, record.workflow = (
            task_token,
            TokenPhase(phase),
            TokenPhase(phase).workflow,
        )

    def claim_task_token(self, service_request_id, task_token, pending_update) -> bool:
        if self.before_claim:
            hook, self.before_claim = self.before_claim, None
            hook()
        record = self.records[service_request_id]
        if record.task_token != task_token:
            return False
        record.task_token, record.pending_update = None, copy.deepcopy(pending_update)
        record.workflow = WorkflowState.PROCESSING
        return True

    def restore_task_token(self, service_request_id, task_token, workflow) -> None:
        record = self.records[service_request_id]
        assert record.task_token is None, "a token is stored meanwhile (the store's condition)"
        record.task_token, record.workflow, record.pending_update = task_token, workflow, None

    def claim_resume(self, service_request_id, number, entry) -> bool:
        if self.before_claim:
            hook, self.before_claim = self.before_claim, None
            hook()
        record = self.records[service_request_id]
        if record.workflow is not WorkflowState.FAILED or record.resumes != number - 1:
            return False
        record.workflow, record.resumes, record.failure = WorkflowState.STARTING, number, None
        record.history.append(copy.deepcopy(entry))
        return True

    def release_resume(self, service_request_id, number, failure, entry_index) -> None:
        record = self.records[service_request_id]
        if record.workflow is WorkflowState.STARTING and record.resumes == number:
            record.workflow, record.failure = WorkflowState.FAILED, copy.deepcopy(failure)
            del record.history[entry_index]


class FakeReportStore:
    def __init__(self) -> None:
        self.records: list[DiagnosticReportRecord] = []
        self.fail_put: Exception | None = None

    def put(self, service_request_id, report_id, body, kind) -> DiagnosticReportRecord:
        if self.fail_put:
            raise self.fail_put
        record = DiagnosticReportRecord(
            service_request_id,
            report_id,
            body["status"],
            ReportKind(kind),
            len(body.get("observations", [])),
            copy.deepcopy(body),
            times.now_iso(),
        )
        self.records.append(record)
        return copy.deepcopy(record)

    def list_for(self, service_request_id):
        return [copy.deepcopy(r) for r in self.records if r.service_request_id == service_request_id]

    def get(self, service_request_id, report_id):
        return next((r for r in self.list_for(service_request_id) if r.report_id == report_id), None)

    def _stored(self, record: DiagnosticReportRecord) -> DiagnosticReportRecord:
        return next(
            r
            for r in self.records
            if (r.service_request_id, r.report_id) == (record.service_request_id, record.report_id)
        )

    def mark_submitted(self, record, outbox) -> None:
        stored = self._stored(record)
        stored.submitted_at, stored.outbox = times.now_iso(), copy.deepcopy(outbox)

    def clear_outbox(self, record) -> None:
        self._stored(record).outbox = None


class FakeReviewStore:
    def __init__(self) -> None:
        self.records: dict[str, ReviewRecord] = {}

    def put_if_new(self, review_id, details) -> bool:
        if review_id in self.records:
            return False
        self.records[review_id] = ReviewRecord(review_id, received_at=times.now_iso(), details=copy.deepcopy(details))
        return True

    def get(self, review_id):
        return copy.deepcopy(self.records.get(review_id))

    def mark_published(self, review_id) -> None:
        self.records[review_id].published = True

    def list_pending(self, limit, next_token):
        return [copy.deepcopy(r) for r in self.records.values()][:limit], None


class FakeDocumentStore:
    def __init__(self) -> None:
        self.records: dict[str, DocumentRecord] = {}
        self.references: dict[str, list[BasedOn]] = {}
        self.contents: dict[str, bytes] = {}

    def register(self, document_id, reference_type, requisition_id, service_request_ids) -> DocumentRecord:
        record = self.records.setdefault(document_id, DocumentRecord(document_id, first_seen_at=times.now_iso()))
        record.reference_types.add(reference_type)
        record.requisition_ids.add(requisition_id)
        record.service_request_ids.update(service_request_ids)
        return copy.deepcopy(record)

    def start_attempt(self, document_id, attempt) -> int | None:
        record = self.records.get(document_id)
        if record is None or record.state.is_fetched or (record.next_attempt_at and record.attempts >= attempt):
            return None
        record.attempts += 1
        record.last_attempt_at, record.next_attempt_at = times.now_iso(), None
        return record.attempts

    def _finish(self, document_id, **values) -> bool:
        record = self.records.get(document_id)
        if record is None or record.state.is_fetched:
            return False
        for name, value in values.items():
            setattr(record, name, value)
        return True

    def mark_stored(self, document_id, metadata, stored_object) -> bool:
        return self._finish(
            document_id,
            state=DocumentState.STORED,
            fetched_at=times.now_iso(),
            last_failure=None,
            next_attempt_at=None,
            **metadata,
            **stored_object,
        )

    def mark_linked(self, document_id, metadata) -> bool:
        return self._finish(
            document_id,
            state=DocumentState.LINKED,
            fetched_at=times.now_iso(),
            last_failure=None,
            next_attempt_at=None,
            **metadata,
        )

    def mark_failed(self, document_id, reason, next_attempt_at) -> bool:
        return self._finish(
            document_id, state=DocumentState.PENDING, last_failure=reason, next_attempt_at=next_attempt_at
        )

    def mark_unavailable(self, document_id, reason) -> bool:
        record = self.records.get(document_id)
        if record is not None and record.state is DocumentState.UNAVAILABLE:
            record.last_failure = reason
            return False
        return self._finish(
            document_id,
            state=DocumentState.UNAVAILABLE,
            last_failure=reason,
            unavailable_at=times.now_iso(),
            next_attempt_at=None,
        )

    def get(self, document_id):
        return copy.deepcopy(self.records.get(document_id))

    def get_many(self, document_ids):
        return {i: copy.deepcopy(self.records[i]) for i in document_ids if i in self.records}

    def put_references(self, requisition_id, references) -> None:
        self.references[requisition_id] = list(references)

    def get_references(self, requisition_id):
        return list(self.references.get(requisition_id, []))

    def put_content(self, document_id, content, content_type) -> dict[str, Any]:
        self.contents[document_id] = content
        return {
            "object_key": f"documents/{document_id}",
            "object_version": "v1",
            "size": len(content),
            "content_type": content_type,
        }

    def download_link(self, object_key, object_version, expires_in_seconds) -> str:
        return f"https://bucket.example/{object_key}?version={object_version}&expires={expires_in_seconds}"


class FakeExecutions:
    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.resumed: list[tuple[str, dict[str, Any]]] = []
        # Raised by the next resume (e.g. WaitEnded("TaskTimedOut") or a ClientError).
        self.fail_resume: Exception | None = None
        # Raised by the next start.
        self.fail_start: Exception | None = None
        # The names of executions still running (e.g. a failed one still recording its failure).
        self.running: set[str] = set()

    def start(self, name, execution_input) -> bool:
        if self.fail_start:
            error, self.fail_start = self.fail_start, None
            raise error
        if name in self.started:
            return False
        self.started[name] = copy.deepcopy(execution_input)
        return True

    def is_running(self, name) -> bool:
        return name in self.running

    def resume(self, task_token, output) -> None:
        if self.fail_resume:
            error, self.fail_resume = self.fail_resume, None
            raise error
        self.resumed.append((task_token, copy.deepcopy(output)))


class FakeBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type, detail) -> None:
        self.published.append((detail_type, copy.deepcopy(detail)))

    def of(self, detail_type: str) -> list[dict[str, Any]]:
        return [detail for kind, detail in self.published if kind == detail_type]


class FakeQueue:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def enqueue(self, event_type, resource_id, *, delay_seconds=0, **extra) -> None:
        self.messages.append(
            {"event_type": event_type, "resource_id": resource_id, "delay_seconds": delay_seconds, **extra}
        )


def fake_ports() -> LabPorts:
    """Fresh in-memory ports for one test."""
    return LabPorts(
        requisitions=FakeRequisitionStore(),
        service_requests=FakeServiceRequestStore(),
        reports=FakeReportStore(),
        reviews=FakeReviewStore(),
        documents=FakeDocumentStore(),
        executions=FakeExecutions(),
        bus=FakeBus(),
        queue=FakeQueue(),
    )


class FakePartnerClient:
    """WHOOP's partner API as the lab rules call it: answers set per id; an Exception as an
    answer is raised (e.g. WhoopNotFound, WhoopTransientError); a list gives one answer per
    call, in turn."""

    def __init__(self) -> None:
        self.requisitions: dict[str, Any] = {}
        self.documents: dict[str, Any] = {}
        self.contents: dict[str, Any] = {}
        self.test_data: Any = "req-test"
        self.calls: list[tuple[str, ...]] = []
        self.statuses: list[tuple[str, str, str | None]] = []
        self.reports: list[tuple[str, dict[str, Any]]] = []

    @staticmethod
    def _answer(answers: dict[str, Any], key: str) -> Any:
        answer = answers[key]
        if isinstance(answer, list):
            answer = answer.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return copy.deepcopy(answer)

    def get_requisition(self, requisition_id: str) -> Any:
        self.calls.append(("get_requisition", requisition_id))
        return self._answer(self.requisitions, requisition_id)

    def add_test_data(self, appointment_type: str | None = None) -> str:
        self.calls.append(("add_test_data", str(appointment_type)))
        return self._answer({"": self.test_data}, "")

    def get_document(self, document_id: str) -> Any:
        self.calls.append(("get_document", document_id))
        return self._answer(self.documents, document_id)

    def get_document_content(self, document_id: str) -> bytes:
        self.calls.append(("get_document_content", document_id))
        return self._answer(self.contents, document_id)

    def update_service_request_status(self, service_request_id: str, status: str, reason: str | None) -> None:
        self.statuses.append((service_request_id, status, reason))

    def submit_diagnostic_report(self, service_request_id: str, report: dict[str, Any]) -> None:
        self.reports.append((service_request_id, copy.deepcopy(report)))
