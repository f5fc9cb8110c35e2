"""The operator's recovery, through the lab API: resume a failed test with a new execution
that continues from the stored state, or re-run the intake of a requisition that failed it.

A test: the resume is taken with a conditional write (workflow `failed` -> `starting`,
`resumes` + 1, an entry in the history), then one execution is started under the resume's
own name (`<id>-resume-<n>`, models/resume.py): of two concurrent resumes one starts it and
the other is a 409 naming the state it found. The new execution re-routes the lab's stored
update (or intake's decision); each step skips what WHOOP already acknowledged, so only the
missing status or report is sent, never a report twice, and it then waits for the lab.

A requisition (`not_found`, `invalid`): it becomes `awaiting_whoop` again and its
`lab_requisition.created` goes back on the partner events queue, as after a first 404, so
requisition_processor fetches it again for RequisitionFetchRetrySeconds; the intake is
idempotent, so nothing it already did is done twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from whoop_bridge import emf, times
from whoop_bridge.config import settings
from whoop_bridge.lab.errors import NotFound, NotResumable
from whoop_bridge.lab.ports import REAL, LabPorts
from whoop_bridge.models import resume as rules
from whoop_bridge.models.requisition import RequisitionOutcome
from whoop_bridge.models.service_request import ServiceRequestRecord, UpdateKind
from whoop_bridge.webhooks import REQUISITION_CREATED

logger = logging.getLogger(__name__)
# Counted once per resume started, by `resource` (service_request, requisition).
RESUMED_METRIC = "Resumed"


def resume_service_request(service_request_id: str, ports: LabPorts = REAL) -> dict[str, Any]:
    """Start a failed test's next execution; returns `{service_request_id, execution,
    workflow: "starting", resumes, resending}` (`resending`: the statuses and
    `diagnostic_report` WHOOP has not acknowledged, in the order they will be sent).
    Raises NotFound, or NotResumable (409) when the test is not `failed`, also when a
    concurrent resume took it first."""
    record = ports.service_requests.get(service_request_id)
    if record is None:
        raise NotFound(f"service request {service_request_id}")
    if not rules.can_resume(record):
        raise _not_resumable(record)
    # `failed` is written by the failed execution's RecordFailure step, which may still be
    # retrying (its bus message): a new execution now would be overwritten by that retry.
    ending = rules.execution_name(service_request_id, record.resumes)
    if ports.executions.is_running(ending):
        raise NotResumable(
            f"the failed execution {ending} is still running; resume once it has ended", record.workflow.value
        )
    plan = rules.plan(record, _report_done(record, ports))
    number = record.resumes + 1
    name = rules.execution_name(service_request_id, number)
    entry = rules.history_entry(record, name, times.now_iso(), plan.resending)
    if not ports.service_requests.claim_resume(service_request_id, number, entry):
        current = ports.service_requests.get(service_request_id) or record
        raise _not_resumable(current, "another resume took it first: ")
    execution_input = {
        "service_request_id": service_request_id,
        "requisition_id": record.requisition_id,
        "decision": plan.decision,
        "reason": record.decision_reason,
        "lab_event_timeout_seconds": settings().lab_event_timeout_days * 86400,
        "resume": number,
    }
    if plan.lab_event is not None:
        execution_input["lab_event"] = plan.lab_event

    def release() -> None:  # failed again, as before the claim; the next resume takes the next name
        ports.service_requests.release_resume(service_request_id, number, record.failure, len(record.history))

    try:
        started = ports.executions.start(name, execution_input)
    except Exception:
        release()
        raise
    if not started:  # the name was used before (ExecutionAlreadyExists): nothing of this resume runs
        release()
        raise NotResumable(f"an execution named {name} exists already; resume again for the next name", "failed")
    emf.put(RESUMED_METRIC, {"resource": "service_request"})
    logger.info(
        "service request resumed",
        extra={"service_request_id": service_request_id, "resume": number, "resending": plan.resending},
    )
    return {
        "service_request_id": service_request_id,
        "execution": name,
        "workflow": "starting",
        "resumes": number,
        "resending": plan.resending,
    }


def _report_done(record: ServiceRequestRecord, ports: LabPorts) -> bool | None:
    """Whether WHOOP took the report the stored update carries (None: no report). A bus
    message still unpublished is only published by the step: WHOOP gets nothing again."""
    pending = record.pending_update or {}
    if pending.get("kind") != UpdateKind.REPORT or not pending.get("report_id"):
        return None
    report = ports.reports.get(record.service_request_id, pending["report_id"])
    return bool(report and report.submitted_at)


def _not_resumable(record: ServiceRequestRecord, prefix: str = "") -> NotResumable:
    state = record.workflow.value
    return NotResumable(f"{prefix}the test's workflow is {state}; only a failed test can be resumed", state)


def resume_requisition(requisition_id: str, ports: LabPorts = REAL) -> dict[str, Any]:
    """Fetch again a requisition that failed intake; returns `{requisition_id, outcome:
    "awaiting_whoop", resumed_from, retry_until}`. Raises NotFound (never announced), or
    NotResumable (409) when its outcome is not `not_found` or `invalid`."""
    record = ports.requisitions.get(requisition_id)
    if record is None:
        raise NotFound(f"requisition {requisition_id}")
    if record.outcome not in rules.FAILED_INTAKE:
        raise _intake_not_resumable(record.outcome)
    now = datetime.now(UTC)
    since = times.iso(now)
    until = times.iso(now + timedelta(seconds=settings().requisition_fetch_retry_seconds))
    if not ports.requisitions.restart_intake(requisition_id, since, until):
        current = ports.requisitions.get(requisition_id)
        raise _intake_not_resumable(current.outcome if current else record.outcome, "another resume took it first: ")
    # As a delayed retry after a first 404: the intake's own chain of fetches.
    ports.queue.enqueue(REQUISITION_CREATED, requisition_id, not_found_since=since, not_found_attempt=0)
    emf.put(RESUMED_METRIC, {"resource": "requisition"})
    logger.info("requisition resumed", extra={"requisition_id": requisition_id, "from": record.outcome.value})
    return {
        "requisition_id": requisition_id,
        "outcome": RequisitionOutcome.AWAITING_WHOOP.value,
        "resumed_from": record.outcome.value,
        "retry_until": until,
    }


def _intake_not_resumable(outcome: RequisitionOutcome, prefix: str = "") -> NotResumable:
    return NotResumable(
        f"{prefix}the requisition's intake is {outcome.value}; only not_found or invalid can be resumed", outcome.value
    )
