"""`task_business_status`: the lab's workflow, and the order the bridge enforces.

WHOOP does not document which transitions it enforces (docs/whoop.md#task-business-status), so the bridge
keeps a safe order locally: forward only; PARTIAL_RESULTS_READY may repeat; nothing after
an issue status or FULL_RESULTS_READY (only amended or corrected reports, within the
correction window); an issue status always carries a reason.
"""

from __future__ import annotations

from enum import StrEnum


class TaskBusinessStatus(StrEnum):
    ORDER_CONFIRMED = "ORDER_CONFIRMED"
    APPOINTMENT_ATTENDED = "APPOINTMENT_ATTENDED"
    PARTIAL_RESULTS_READY = "PARTIAL_RESULTS_READY"
    FULL_RESULTS_READY = "FULL_RESULTS_READY"
    APPOINTMENT_ISSUE = "APPOINTMENT_ISSUE"
    RESULTS_ISSUE = "RESULTS_ISSUE"
    ORDER_ISSUE = "ORDER_ISSUE"


S = TaskBusinessStatus
HAPPY_PATH = (S.ORDER_CONFIRMED, S.APPOINTMENT_ATTENDED, S.PARTIAL_RESULTS_READY, S.FULL_RESULTS_READY)
ISSUE_STATUSES = frozenset({S.APPOINTMENT_ISSUE, S.RESULTS_ISSUE, S.ORDER_ISSUE})
TERMINAL_STATUSES = ISSUE_STATUSES | {S.FULL_RESULTS_READY}
# Results statuses are reached by submitting a diagnostic report, never by a bare event.
RESULTS_STATUSES = frozenset({S.PARTIAL_RESULTS_READY, S.FULL_RESULTS_READY})

# Diagnostic report statuses (docs/whoop.md#diagnostic-reports) and what each does to the workflow.
PARTIAL_REPORT_STATUSES = frozenset({"partial", "preliminary"})
FINAL_REPORT_STATUSES = frozenset({"final"})
CORRECTION_REPORT_STATUSES = frozenset({"amended", "corrected", "cancelled"})
REPORT_STATUSES = PARTIAL_REPORT_STATUSES | FINAL_REPORT_STATUSES | CORRECTION_REPORT_STATUSES


def _rank(status: TaskBusinessStatus | None) -> int:
    return -1 if status is None else HAPPY_PATH.index(status) if status in HAPPY_PATH else len(HAPPY_PATH)


def allowed_next(current: TaskBusinessStatus | None) -> list[TaskBusinessStatus]:
    """Every status that may follow `current`, in workflow order."""
    if current in TERMINAL_STATUSES:
        return []
    forward = [status for status in HAPPY_PATH if _rank(status) > _rank(current)]
    if current is S.PARTIAL_RESULTS_READY:
        forward.insert(0, S.PARTIAL_RESULTS_READY)
    issues = [S.APPOINTMENT_ISSUE, S.RESULTS_ISSUE, S.ORDER_ISSUE]
    return forward + issues


def is_allowed(current: TaskBusinessStatus | None, new: TaskBusinessStatus) -> bool:
    """Whether `new` may follow `current`."""
    return new in allowed_next(current)


def lab_update_statuses(current: TaskBusinessStatus | None) -> list[TaskBusinessStatus]:
    """The statuses a lab may send as a bare status update now (results come with a report)."""
    return [
        status for status in allowed_next(current) if status not in RESULTS_STATUSES and status is not S.ORDER_CONFIRMED
    ]


def status_after_report(report_status: str) -> TaskBusinessStatus | None:
    """The status a report of this status leads to; None for a correction (no change)."""
    if report_status in PARTIAL_REPORT_STATUSES:
        return S.PARTIAL_RESULTS_READY
    if report_status in FINAL_REPORT_STATUSES:
        return S.FULL_RESULTS_READY
    return None


def parse(value: str | None) -> TaskBusinessStatus | None:
    """The status named by `value`, None for WHOOP's null (a new order). For the bridge's
    own stored values; read what WHOOP sends with `known`."""
    return None if value is None else TaskBusinessStatus(value)


def known(value: object) -> TaskBusinessStatus | None:
    """One of the seven statuses when `value` names it, else None.

    WHOOP types `task_business_status` as a free string (its own examples are prose such
    as "Specimen collected"): a value outside the seven is kept as received, never an error.
    """
    try:
        return TaskBusinessStatus(value) if isinstance(value, str) else None
    except ValueError:
        return None
