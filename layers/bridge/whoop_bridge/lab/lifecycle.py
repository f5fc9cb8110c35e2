"""The steps of a service request's execution (statemachines/service_request.asl.json).

Each step may be retried by Step Functions after a partial success, so each checks what
is stored before it calls WHOOP: a status already recorded for the same update is not sent
again, and a report already accepted is not posted again. A bus message is kept with the
write it reports (an outbox) and published after it, so a retried step still publishes what
a failure left unpublished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from whoop_bridge import times
from whoop_bridge.config import settings
from whoop_bridge.lab import measures
from whoop_bridge.lab.errors import ServiceRequestMissing
from whoop_bridge.lab.ports import REAL, LabPorts
from whoop_bridge.models.diagnostic_report import DiagnosticReportRecord, refusal_settles
from whoop_bridge.models.service_request import AcceptedStatus, ServiceRequestRecord, TokenPhase, WorkflowState
from whoop_bridge.models.task_status import TERMINAL_STATUSES, TaskBusinessStatus
from whoop_bridge.whoop.http import WhoopError
from whoop_bridge.whoop.partner import PartnerClient

logger = logging.getLogger(__name__)
metrics = Metrics()


def _load(service_request_id: str, ports: LabPorts) -> ServiceRequestRecord:
    stored = ports.service_requests.get(service_request_id)
    if stored is None:
        raise ServiceRequestMissing(service_request_id)
    return stored


def set_status(
    client: PartnerClient,
    service_request_id: str,
    task_business_status: str,
    reason: str | None = None,
    event_id: str | None = None,
    ports: LabPorts = REAL,
) -> dict[str, Any]:
    """Send a `task_business_status` to WHOOP, then keep it in the history and publish it.
    `event_id` names the lab's update it carries (the status itself for the execution's
    own steps). Returns `{task_business_status, repeated}`."""
    status = TaskBusinessStatus(task_business_status)
    event_id = event_id or status.value
    stored = _load(service_request_id, ports)
    clear = partial(ports.service_requests.clear_outbox, service_request_id)
    if stored.already_recorded(status, event_id):
        logger.info(
            "status already recorded",
            extra={"service_request_id": service_request_id, "task_business_status": status.value},
        )
        _flush_outbox(stored.outbox, clear, ports)
        return {"task_business_status": status.value, "repeated": True}

    client.update_service_request_status(service_request_id, status.value, reason)

    outbox = {
        "detail_type": "service_request.status_changed",
        "detail": {
            "service_request_id": service_request_id,
            "requisition_id": stored.requisition_id,
            "code": stored.code,
            "task_business_status": status.value,
            "previous_task_business_status": stored.task_business_status,
            "reason": reason,
        },
    }
    correction_deadline = None
    if status is TaskBusinessStatus.FULL_RESULTS_READY:
        deadline = datetime.now(UTC) + timedelta(days=settings().correction_window_days)
        correction_deadline = times.iso(deadline, "seconds")
    terminal_issue = status in TERMINAL_STATUSES and status is not TaskBusinessStatus.FULL_RESULTS_READY
    workflow = WorkflowState.CLOSED if terminal_issue else WorkflowState.RUNNING
    ports.service_requests.record_status(
        service_request_id, AcceptedStatus(status, event_id, workflow, outbox, reason, correction_deadline)
    )
    _flush_outbox(outbox, clear, ports)
    measures.status_accepted(service_request_id, status, ports)
    return {"task_business_status": status.value, "repeated": False}


def _flush_outbox(outbox: dict[str, Any] | None, clear: Callable[[], None], ports: LabPorts) -> None:
    """Publish the bus message an item keeps `{detail_type, detail}`, then `clear` it (at
    least once, never lost)."""
    if not outbox:
        return
    ports.bus.publish(outbox["detail_type"], outbox["detail"])
    clear()


def await_lab_event(service_request_id: str, phase: str, task_token: str, ports: LabPorts = REAL) -> None:
    """Keep the wait's task token (`phase` `lab_event` or `correction`) where the lab API finds it."""
    ports.service_requests.store_task_token(service_request_id, task_token, TokenPhase(phase))


def submit_diagnostic_report(
    client: PartnerClient, service_request_id: str, report_id: str, ports: LabPorts = REAL
) -> dict[str, Any]:
    """POST the stored report to WHOOP once, as the lab wrote it; `{report_id, repeated}`."""
    stored = _load(service_request_id, ports)
    report = ports.reports.get(service_request_id, report_id)
    if report is None:
        raise ServiceRequestMissing(f"{service_request_id} report {report_id}")
    clear = partial(ports.reports.clear_outbox, report)
    if report.submitted_at:
        logger.info(
            "report already submitted", extra={"service_request_id": service_request_id, "report_id": report_id}
        )
        _flush_outbox(report.outbox, clear, ports)
        return {"report_id": report_id, "repeated": True}

    # Within this execution a POST whose answer was lost is sent again (whoop/http.py, and
    # the step's retries): better twice than lost. The marker written first lets a later
    # resume see such a report as uncertain and ask the operator (lab/resume.py).
    if ports.reports.start_submission(report) is None:  # accepted meanwhile (a concurrent retry)
        return submit_diagnostic_report(client, service_request_id, report_id, ports)
    try:
        client.submit_diagnostic_report(service_request_id, report.body)
    except WhoopError as refused:
        if refused.status is not None and refusal_settles(refused.status):  # a 4xx: WHOOP does not hold it
            ports.reports.record_refusal(report, refused.status)
        # No answer (a timeout, a reset), or one that settles nothing (5xx or 429 past the
        # in-call retries, after which an earlier attempt may have been taken): uncertain.
        raise
    outbox = report_submitted_message(stored, report)
    ports.reports.mark_submitted(report, outbox)
    _flush_outbox(outbox, clear, ports)
    metrics.add_metric(name="DiagnosticReportSubmitted", unit=MetricUnit.Count, value=1)
    return {"report_id": report_id, "repeated": False}


def report_submitted_message(stored: ServiceRequestRecord, report: DiagnosticReportRecord) -> dict[str, Any]:
    """The outbox `{detail_type, detail}` of `service_request.report_submitted` (no results)."""
    return {
        "detail_type": "service_request.report_submitted",
        "detail": {
            "service_request_id": stored.service_request_id,
            "requisition_id": stored.requisition_id,
            "code": stored.code,
            "report_id": report.report_id,
            "report_status": report.report_status,
            "observation_count": report.observation_count,
        },
    }


def correction_window(service_request_id: str, ports: LabPorts = REAL) -> dict[str, int]:
    """Seconds left to accept amended or corrected reports (0 when closed): `{remaining_seconds}`."""
    return {"remaining_seconds": _load(service_request_id, ports).correction_seconds_left()}


def close(service_request_id: str, ports: LabPorts = REAL) -> None:
    """The correction window ended: nothing more will be accepted for this test."""
    ports.service_requests.close(service_request_id, closed_at=times.now_iso())


def record_failure(service_request_id: str, error: str, cause: str | None, ports: LabPorts = REAL) -> None:
    """Keep why the execution stopped, publish it, and count it (the alarm watches failures)."""
    stored = ports.service_requests.get(service_request_id)
    # Causes come from our own exceptions and Step Functions; cap them for the item.
    failure = {"error": str(error)[:200], "cause": str(cause or "")[:1000], "at": times.now_iso()}
    if stored:
        ports.service_requests.record_failure(service_request_id, failure)
    ports.bus.publish(
        "service_request.failed",
        {
            "service_request_id": service_request_id,
            "requisition_id": stored.requisition_id if stored else None,
            "code": stored.code if stored else None,
            "error": failure["error"],
        },
    )
    metrics.add_metric(name="ServiceRequestFailed", unit=MetricUnit.Count, value=1)
    logger.error("service request failed", extra={"service_request_id": service_request_id, "error": failure["error"]})


class UnknownAction(ValueError):
    """The state machine asked for a step this function does not have."""


# The state machine's steps by `action`, each from its task's parameters.
STEPS: dict[str, Callable[[PartnerClient, dict[str, Any]], Any]] = {
    "set_status": lambda client, step: set_status(
        client, step["service_request_id"], step["task_business_status"], step.get("reason"), step.get("event_id")
    ),
    "await_lab_event": lambda client, step: await_lab_event(
        step["service_request_id"], step["phase"], step["task_token"]
    ),
    "submit_diagnostic_report": lambda client, step: submit_diagnostic_report(
        client, step["service_request_id"], step["report_id"]
    ),
    "correction_window": lambda client, step: correction_window(step["service_request_id"]),
    "close": lambda client, step: close(step["service_request_id"]),
    "record_failure": lambda client, step: record_failure(step["service_request_id"], step["error"], step.get("cause")),
}


def run_step(client: PartnerClient, step: dict[str, Any]) -> Any:
    """Run the step the state machine names in `step["action"]` with its parameters; its
    result is the task's output. UnknownAction for a step this function does not have."""
    run = STEPS.get(step.get("action"))  # type: ignore[arg-type]
    if run is None:
        raise UnknownAction(f"unknown action {step.get('action')!r}")
    return run(client, step)
