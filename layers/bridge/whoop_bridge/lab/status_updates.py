"""The lab's status updates and results, as the lab API takes them: each is checked against
the workflow's rules (models/service_request.py) and handed to the test's execution
(lab/executions.py), which sends it to WHOOP.
"""

from __future__ import annotations

import uuid
from typing import Any

from whoop_bridge.lab import executions
from whoop_bridge.lab.errors import Busy, NotFound, TransitionForbidden
from whoop_bridge.lab.ports import REAL, LabPorts
from whoop_bridge.models.diagnostic_report import ReportKind
from whoop_bridge.models.lab_results import DiagnosticReport, LabStatusEvent
from whoop_bridge.models.service_request import ServiceRequestRecord, UpdateKind
from whoop_bridge.models.task_status import CORRECTION_REPORT_STATUSES


def _current(record: ServiceRequestRecord) -> str:
    return record.task_business_status.value if record.task_business_status else "a new order"


def apply_status_update(
    service_request_id: str, update: LabStatusEvent, *, deadline: float | None = None, ports: LabPorts = REAL
) -> dict[str, Any]:
    """Resume one test's execution with the lab's `{status, reason?}`; returns
    `{service_request_id, event_id, accepted: "status"}`. 409s come as TransitionForbidden
    or Busy; `deadline` (time.monotonic) ends the wait for a busy test (BUSY_WAIT_SECONDS
    from now by default)."""

    def check(record: ServiceRequestRecord) -> dict[str, Any]:
        if update.status not in record.allowed_statuses():
            raise executions.forbidden(record, f"{update.status.value} is not allowed after {_current(record)}")
        return {"kind": UpdateKind.STATUS, "task_business_status": update.status.value, "reason": update.reason}

    return executions.resume(service_request_id, check, deadline=deadline, ports=ports)


def apply_requisition_update(requisition_id: str, update: LabStatusEvent, ports: LabPorts = REAL) -> dict[str, Any]:
    """Apply `{status, reason?}` to each test of the order for which it is a step forward.

    Every test is reported: `applied`, `unchanged` (the rules forbid it for that test now:
    its status and what may follow are given) or `busy` (its previous update was still being
    sent when the shared wait ran out: send it again). 409 only when it applies to none:
    Busy when some test may take it shortly, else TransitionForbidden. All tests share one
    wait of BUSY_WAIT_SECONDS, well within API Gateway's 29 s. NotFound for an order that
    is not received.
    """
    requisition = ports.requisitions.get(requisition_id)
    if requisition is None or not requisition.is_received:
        raise NotFound(f"requisition {requisition_id}")
    deadline = executions.busy_deadline()
    outcomes = []
    for record in ports.service_requests.get_many(requisition.service_request_ids):
        sr_id = record.service_request_id
        try:
            applied = apply_status_update(sr_id, update, deadline=deadline, ports=ports)
            outcomes.append({**applied, "code": record.code, "outcome": "applied"})
        except TransitionForbidden as forbidden:
            outcomes.append(
                {
                    "service_request_id": sr_id,
                    "code": record.code,
                    "outcome": "unchanged",
                    "message": str(forbidden),
                    "task_business_status": forbidden.current,
                    "allowed_next_statuses": forbidden.allowed,
                }
            )
        except Busy:
            outcomes.append({"service_request_id": sr_id, "code": record.code, "outcome": "busy"})
    if not any(outcome["outcome"] == "applied" for outcome in outcomes):
        if any(outcome["outcome"] == "busy" for outcome in outcomes):
            raise Busy(requisition_id)
        raise TransitionForbidden(f"{update.status.value} is not a step forward for any test of the order", [], None)
    return {"requisition_id": requisition_id, "service_requests": outcomes}


def submit_results(
    service_request_id: str, report: DiagnosticReport, as_written: dict[str, Any], ports: LabPorts = REAL
) -> dict[str, Any]:
    """Keep the lab's report (`as_written`, the body exactly as sent) and resume the
    execution to submit it to WHOOP; returns `{service_request_id, event_id, accepted:
    "report", report_id}`. 409s as for a status update."""
    report_id = str(uuid.uuid4())

    def check(record: ServiceRequestRecord) -> dict[str, Any]:
        if report.status not in record.accepted_report_statuses():
            if report.status in CORRECTION_REPORT_STATUSES:
                message = (
                    f"a {report.status} report is accepted only after the final report, within the correction window"
                )
            else:
                message = f"a {report.status} report is not accepted after {_current(record)}"
            raise executions.forbidden(record, message)
        return {
            "kind": UpdateKind.REPORT,
            "report_id": report_id,
            "report_status": report.status,
            "report_kind": ReportKind.of(report.status),
        }

    def keep(payload: dict[str, Any]) -> None:
        # Durable before the execution hears of it: an accepted report is never lost.
        ports.reports.put(service_request_id, report_id, as_written, payload["report_kind"])

    accepted = executions.resume(service_request_id, check, keep, ports=ports)
    return {**accepted, "report_id": report_id}
