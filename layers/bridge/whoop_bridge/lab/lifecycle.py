"""The steps of a service request's execution (statemachines/service_request.asl.json).

Each step may be retried by Step Functions after a partial success, so each checks what
is stored before it calls WHOOP: a status already recorded for the same event is not sent
again, and a report already accepted is not posted again.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from whoop_bridge import bus
from whoop_bridge.config import settings
from whoop_bridge.lab.statuses import TERMINAL_STATUSES, TaskBusinessStatus
from whoop_bridge.store import lab_store
from whoop_bridge.whoop.partner import PartnerClient

logger = logging.getLogger(__name__)
metrics = Metrics()


class ServiceRequestMissing(RuntimeError):
    """The execution names a service request that is not stored (a defect, not transient)."""


def _load(service_request_id: str) -> dict[str, Any]:
    stored = lab_store.get_service_request(service_request_id)
    if stored is None:
        raise ServiceRequestMissing(service_request_id)
    return stored


def set_status(
    client: PartnerClient,
    service_request_id: str,
    task_business_status: str,
    reason: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """Send a `task_business_status` to WHOOP, then keep it in the history and publish it."""
    status = TaskBusinessStatus(task_business_status)
    event_id = event_id or status.value
    stored = _load(service_request_id)
    if stored.get("task_business_status") == status.value and stored.get("last_event_id") == event_id:
        logger.info(
            "status already recorded",
            extra={"service_request_id": service_request_id, "task_business_status": status.value},
        )
        _flush_outbox(lab_store.service_request_key(service_request_id), stored.get("outbox"))
        return {"task_business_status": status.value, "repeated": True}

    client.update_service_request_status(service_request_id, status.value, reason)

    # The event is kept with the status in one write and published after it, so a retried
    # step that finds the status recorded still publishes what a failure left unpublished.
    outbox = {
        "detail_type": "service_request.status_changed",
        "detail": {
            "service_request_id": service_request_id,
            "requisition_id": stored["requisition_id"],
            "code": stored["code"],
            "task_business_status": status.value,
            "previous_task_business_status": stored.get("task_business_status"),
            "reason": reason,
        },
    }
    extra: dict[str, Any] = {"outbox": outbox}
    if status is TaskBusinessStatus.FULL_RESULTS_READY:
        deadline = datetime.now(UTC) + timedelta(days=settings().correction_window_days)
        extra["correction_deadline"] = deadline.isoformat(timespec="seconds").replace("+00:00", "Z")
    terminal_issue = status in TERMINAL_STATUSES and status is not TaskBusinessStatus.FULL_RESULTS_READY
    lab_store.record_status(
        service_request_id,
        status.value,
        reason=reason,
        event_id=event_id,
        workflow="closed" if terminal_issue else "running",
        extra=extra,
    )
    _flush_outbox(lab_store.service_request_key(service_request_id), outbox)
    metrics.add_metric(name="StatusSent", unit=MetricUnit.Count, value=1)
    return {"task_business_status": status.value, "repeated": False}


def _flush_outbox(key: dict[str, str], outbox: dict[str, Any] | None) -> None:
    """Publish the event an item keeps, then forget it (at least once, never lost)."""
    if not outbox:
        return
    bus.publish(outbox["detail_type"], outbox["detail"])
    lab_store.clear_outbox(key)


def await_lab_event(service_request_id: str, phase: str, task_token: str) -> None:
    """Keep the wait's task token where lab_api finds it."""
    lab_store.store_task_token(service_request_id, task_token, phase)


def submit_diagnostic_report(client: PartnerClient, service_request_id: str, report_id: str) -> dict[str, Any]:
    """POST the stored report to WHOOP once, as the lab wrote it."""
    stored = _load(service_request_id)
    report = lab_store.get_report(service_request_id, report_id)
    if report is None:
        raise ServiceRequestMissing(f"{service_request_id} report {report_id}")
    key = {"pk": lab_store.service_request_key(service_request_id)["pk"], "sk": report["sk"]}
    if report.get("submitted_at"):
        logger.info(
            "report already submitted", extra={"service_request_id": service_request_id, "report_id": report_id}
        )
        _flush_outbox(key, report.get("outbox"))
        return {"report_id": report_id, "repeated": True}

    client.submit_diagnostic_report(service_request_id, json.loads(report["report_json"]))
    outbox = {
        "detail_type": "service_request.report_submitted",
        "detail": {
            "service_request_id": service_request_id,
            "requisition_id": stored["requisition_id"],
            "code": stored["code"],
            "report_id": report_id,
            "report_status": report["report_status"],
            "observation_count": report["observation_count"],
        },
    }
    lab_store.mark_report_submitted(service_request_id, report["sk"], outbox)
    _flush_outbox(key, outbox)
    metrics.add_metric(name="DiagnosticReportSubmitted", unit=MetricUnit.Count, value=1)
    return {"report_id": report_id, "repeated": False}


def correction_window(service_request_id: str) -> dict[str, int]:
    """Seconds left to accept amended or corrected reports (0 when closed)."""
    deadline = _load(service_request_id).get("correction_deadline")
    if not deadline:
        return {"remaining_seconds": 0}
    remaining = datetime.fromisoformat(deadline.replace("Z", "+00:00")) - datetime.now(UTC)
    return {"remaining_seconds": max(0, int(remaining.total_seconds()))}


def close(service_request_id: str) -> None:
    """The correction window ended: nothing more will be accepted for this test."""
    lab_store.set_workflow(service_request_id, "closed", closed_at=lab_store.now_iso())


def record_failure(service_request_id: str, error: str, cause: str | None) -> None:
    """Keep why the execution stopped, publish it, and count it (the alarm watches failures)."""
    stored = lab_store.get_service_request(service_request_id) or {}
    # Causes come from our own exceptions and Step Functions; cap them for the item.
    failure = {"error": str(error)[:200], "cause": str(cause or "")[:1000], "at": lab_store.now_iso()}
    if stored:
        lab_store.set_workflow(service_request_id, "failed", failure=failure)
    bus.publish(
        "service_request.failed",
        {
            "service_request_id": service_request_id,
            "requisition_id": stored.get("requisition_id"),
            "code": stored.get("code"),
            "error": failure["error"],
        },
    )
    metrics.add_metric(name="ServiceRequestFailed", unit=MetricUnit.Count, value=1)
    logger.error("service request failed", extra={"service_request_id": service_request_id, "error": failure["error"]})
