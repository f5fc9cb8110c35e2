"""Resuming a service request's execution with the lab's update, through the task token
its wait stored (statemachines/service_request.asl.json, `AwaitLabEvent`).

The update is checked against the stored state before the execution hears of it, so a
forbidden transition is a 409 for the lab, never a failed execution. The token is claimed
with a conditional write: of two concurrent updates, one resumes the wait and the other
waits for the next one (or is told the test is busy).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from whoop_bridge import times
from whoop_bridge.lab.errors import Busy, NotFound, TransitionForbidden
from whoop_bridge.lab.ports import REAL, LabPorts
from whoop_bridge.lab.step_functions import WaitEnded
from whoop_bridge.models.service_request import ServiceRequestRecord, WorkflowState

logger = logging.getLogger(__name__)

# How long a request waits for the execution to finish the previous update and wait again.
# Most steps take well under a second; API Gateway allows 29 s in all.
BUSY_WAIT_SECONDS = 10.0
BUSY_POLL_SECONDS = 0.2

# Checks an update against the stored service request: its payload for the execution
# (`{kind, ...}`), or raises TransitionForbidden.
Check = Callable[[ServiceRequestRecord], dict[str, Any]]


def busy_deadline() -> float:
    """The `time.monotonic()` until which a request waits for a busy test: BUSY_WAIT_SECONDS from now."""
    return time.monotonic() + BUSY_WAIT_SECONDS


def forbidden(record: ServiceRequestRecord, message: str) -> TransitionForbidden:
    """The 409 for `record`, naming its status and what may follow it."""
    current = record.task_business_status
    return TransitionForbidden(
        message, [status.value for status in record.allowed_statuses()], current.value if current else None
    )


def resume(
    service_request_id: str,
    check: Check,
    keep: Callable[[dict[str, Any]], None] | None = None,
    *,
    deadline: float | None = None,
    ports: LabPorts = REAL,
) -> dict[str, Any]:
    """Wait (until `deadline`, briefly) for the execution's task token, `check` the update,
    claim the token, `keep` what must be stored first, and resume the execution with it.

    Returns `{service_request_id, event_id, accepted}` (`accepted` the payload's kind).
    Raises NotFound, TransitionForbidden (also when the wait has ended), or Busy when the
    execution did not wait again before `deadline`.
    """
    if deadline is None:
        deadline = busy_deadline()
    while True:
        record = ports.service_requests.get(service_request_id)
        if record is None:
            raise NotFound(f"service request {service_request_id}")
        token = record.task_token
        if not token and record.is_moving:
            if time.monotonic() >= deadline:
                raise Busy(service_request_id)
            time.sleep(BUSY_POLL_SECONDS)
            continue
        if not token:
            raise forbidden(record, f"the test is {record.workflow.value}: no more events are accepted")
        payload = check(record)
        payload["event_id"] = str(uuid.uuid4())
        if not ports.service_requests.claim_task_token(
            service_request_id, token, {**payload, "received_at": times.now_iso()}
        ):
            continue  # another update took this wait; check again against what it left
        workflow = record.workflow
        if keep:
            try:
                keep(payload)
            except Exception:
                ports.service_requests.restore_task_token(service_request_id, token, workflow)
                raise
        _send(service_request_id, token, workflow, payload, ports)
        logger.info("lab update accepted", extra={"service_request_id": service_request_id, "kind": payload["kind"]})
        return {"service_request_id": service_request_id, "event_id": payload["event_id"], "accepted": payload["kind"]}


def _send(
    service_request_id: str, token: str, workflow: WorkflowState, payload: dict[str, Any], ports: LabPorts
) -> None:
    try:
        ports.executions.resume(token, payload)
    except WaitEnded as ended:
        ports.service_requests.close(service_request_id, closed_reason=f"wait ended ({ended.code})")
        raise TransitionForbidden("the test's workflow has ended: no more events are accepted", [], None) from None
    except ClientError:
        # A transient fault: the next try finds the token where it was.
        ports.service_requests.restore_task_token(service_request_id, token, workflow)
        raise
