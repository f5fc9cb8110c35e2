"""Resuming what failed, as the operator asks through the lab API: a failed test (its
execution stopped: WHOOP down past every retry, or the lab-event timeout) and a requisition
that failed intake (`not_found`, `invalid`). Pure rules: who may resume, where the new
execution starts, what it will send WHOOP again, and its name (docs/architecture.md).

Every step of the state machine checks what WHOOP already acknowledged before it calls
WHOOP (a status recorded for the same lab update, a report marked submitted), so the new
execution re-runs the failed part and sends only what is missing; `ResumePlan.resending`
says what that is, for the answer and the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from whoop_bridge.models.diagnostic_report import ReportKind
from whoop_bridge.models.requisition import RequisitionOutcome
from whoop_bridge.models.service_request import Decision, ServiceRequestRecord, UpdateKind, WorkflowState
from whoop_bridge.models.task_status import TaskBusinessStatus

# The `event` of a resume's entry in `ServiceRequestRecord.history`.
RESUMED = "resumed"
# The execution input's `decision` that starts a resumed execution with the lab's stored
# update (the ASL's `Decide` routes it to `RouteLabEvent`).
WITH_LAB_UPDATE = "lab_event"
# What `resending` names for the stored diagnostic report (a status is named by its value).
DIAGNOSTIC_REPORT = "diagnostic_report"
# The requisition outcomes that failed intake and may be resumed.
FAILED_INTAKE = frozenset({RequisitionOutcome.NOT_FOUND, RequisitionOutcome.INVALID})
# The keys of the lab's update the state machine reads (`$.lab_event.*`).
_LAB_EVENT_KEYS = ("kind", "event_id", "task_business_status", "reason", "report_id", "report_status", "report_kind")
_STATUS_AFTER_REPORT = {
    ReportKind.PARTIAL: TaskBusinessStatus.PARTIAL_RESULTS_READY,
    ReportKind.FINAL: TaskBusinessStatus.FULL_RESULTS_READY,
}


class ResumeRequest(BaseModel):
    """`POST .../resume`: an empty JSON object `{}` (no options yet)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ResumePlan:
    """Where a resumed execution starts: `decision` (the execution input's, which the ASL's
    `Decide` routes), `lab_event` (the lab's stored update it carries, or None) and
    `resending` (what WHOOP has not acknowledged, in the order it will be sent: status
    values and DIAGNOSTIC_REPORT)."""

    decision: str
    lab_event: dict[str, Any] | None
    resending: list[str]


def can_resume(record: ServiceRequestRecord) -> bool:
    """Only a failed test may be resumed; any other state is running or ended on purpose."""
    return record.workflow is WorkflowState.FAILED


def execution_name(service_request_id: str, number: int) -> str:
    """The `number`-th resume's execution: `<service request id>-resume-<number>`; 0 names
    intake's, the bare id. One name per resume, so a second start of the same resume is refused."""
    return f"{service_request_id}-resume-{number}" if number else service_request_id


def plan(record: ServiceRequestRecord, report_done: bool | None = None) -> ResumePlan:
    """The plan for a failed `record`. With a lab update stored (`pending_update`: the last
    one the execution took), the new execution routes it again; `report_done` says whether
    its report (if it carries one) is one WHOOP took (answered 201). Without one, the execution
    starts as intake decided (a confirmation or rejection not yet recorded is sent; one
    recorded is skipped by the step) and then waits for the lab."""
    pending = record.pending_update
    if pending:
        event = {key: pending[key] for key in _LAB_EVENT_KEYS if key in pending}
        if event.get("kind") == UpdateKind.STATUS:
            event.setdefault("reason", None)  # the ASL reads `$.lab_event.reason`
        return ResumePlan(WITH_LAB_UPDATE, event, _unacknowledged(record, event, report_done))
    decision = record.decision if record.decision in (Decision.CONFIRM, Decision.REJECT) else Decision.RESUME
    resending = []
    if decision is not Decision.RESUME:
        status = TaskBusinessStatus.ORDER_CONFIRMED if decision is Decision.CONFIRM else TaskBusinessStatus.ORDER_ISSUE
        if not record.already_recorded(status, status.value):
            resending.append(status.value)
    return ResumePlan(decision.value, None, resending)


def _unacknowledged(record: ServiceRequestRecord, event: dict[str, Any], report_done: bool | None) -> list[str]:
    event_id = event.get("event_id", "")
    if event.get("kind") == UpdateKind.REPORT:
        resending = [] if report_done else [DIAGNOSTIC_REPORT]
        after = _STATUS_AFTER_REPORT.get(ReportKind(event["report_kind"])) if event.get("report_kind") else None
    else:
        resending = []
        after = TaskBusinessStatus(event["task_business_status"]) if event.get("task_business_status") else None
    if after is not None and not record.already_recorded(after, event_id):
        resending.append(after.value)
    return resending


def history_entry(record: ServiceRequestRecord, execution: str, at: str, resending: list[str]) -> dict[str, Any]:
    """The resume's entry in the test's history: `{event: "resumed", at, execution,
    resending, failure: {error, at}}` (the failure it recovers from; never its cause text)."""
    failure = record.failure or {}
    return {
        "event": RESUMED,
        "at": at,
        "execution": execution,
        "resending": list(resending),
        "failure": {"error": failure.get("error"), "at": failure.get("at")},
    }
