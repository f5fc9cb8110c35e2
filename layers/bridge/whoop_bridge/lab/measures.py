"""What the lab's dashboard counts when WHOOP accepts a test's status (template.yaml's
`Dashboard`): tests per `task_business_status`, and how long after the order arrived a test
was confirmed and its full results were ready.

The durations come from stored times only: the requisition's `received_at` and the test's
status history (docs/data-model.md#service-request), so a retried step counts nothing new
and a resumed execution still measures from the order.
"""

from __future__ import annotations

from typing import Any

from whoop_bridge import emf, times
from whoop_bridge.lab.ports import REAL, LabPorts
from whoop_bridge.models.task_status import TaskBusinessStatus

# The statuses whose time from the order's arrival is measured.
TIMED_STATUSES = frozenset({TaskBusinessStatus.ORDER_CONFIRMED, TaskBusinessStatus.FULL_RESULTS_READY})


def seconds_from_order(received_at: str | None, history: list[dict[str, Any]], status: str) -> float | None:
    """Seconds from `received_at` (`times.iso` text) to the first entry of `status` in a
    service request's `history` (`[{task_business_status, at, ...}]`); None when either is
    missing or unreadable."""
    at = next((entry.get("at") for entry in history if entry.get("task_business_status") == status), None)
    if not received_at or not at:
        return None
    try:
        return max(0.0, (times.parse(at) - times.parse(received_at)).total_seconds())
    except (TypeError, ValueError):
        return None


def status_accepted(service_request_id: str, status: TaskBusinessStatus, ports: LabPorts = REAL) -> None:
    """Count a status WHOOP accepted for a test (`StatusSent`, dimension
    `task_business_status`) and, for ORDER_CONFIRMED and FULL_RESULTS_READY, the seconds
    since its order was received (`TimeFromOrderReceived`, same dimension), read back from
    the stored records."""
    dimensions = {"task_business_status": status.value}
    emf.put("StatusSent", dimensions)
    if status not in TIMED_STATUSES:
        return
    stored = ports.service_requests.get(service_request_id)
    requisition = ports.requisitions.get(stored.requisition_id) if stored else None
    if stored is None or requisition is None:
        return
    seconds = seconds_from_order(requisition.received_at, stored.history, status.value)
    if seconds is not None:
        emf.put("TimeFromOrderReceived", dimensions, seconds, emf.MetricUnit.Seconds)
