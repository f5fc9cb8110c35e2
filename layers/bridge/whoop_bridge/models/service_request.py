"""A service request (one lab test) as the bridge keeps it, with its workflow state and the
rules of what the lab may send it now.

Step Functions runs one execution per service request (statemachines/service_request.asl.json);
`workflow` says where that execution is, `task_business_status` what WHOOP holds. Values are
the stored strings (StrEnum), so items and API answers read as before. See docs/data-model.md#service-request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from whoop_bridge import times
from whoop_bridge.models.task_status import (
    CORRECTION_REPORT_STATUSES,
    TaskBusinessStatus,
    is_allowed,
    lab_update_statuses,
)


class WorkflowState(StrEnum):
    """Where a service request's execution is."""

    # Stored at intake; the execution is about to confirm (or reject) the order.
    STARTING = "starting"
    # A status was sent to WHOOP; the execution goes on to its next wait.
    RUNNING = "running"
    # The lab's update took the task token; the execution is sending it to WHOOP.
    PROCESSING = "processing"
    # Waiting for the lab's next status update or report (a task token is stored).
    AWAITING_LAB_EVENT = "awaiting_lab_event"
    # Final results sent: waiting for amended or corrected reports within the correction window.
    AWAITING_CORRECTION = "awaiting_correction"
    # Nothing more is accepted: an issue status, the correction window over, or the wait ended.
    CLOSED = "closed"
    # The execution stopped on an error (`failure` says why).
    FAILED = "failed"
    # No work for the lab: not `active` at WHOOP, or WHOOP holds a final status already.
    SKIPPED = "skipped"
    # The bridge could not read the test (`problems`); nothing is sent to WHOOP, a person decides.
    HELD = "held"


# States in which the execution is between two waits and will soon wait again.
MOVING = frozenset({WorkflowState.STARTING, WorkflowState.RUNNING, WorkflowState.PROCESSING})
# States after which nothing is accepted.
ENDED = frozenset({WorkflowState.CLOSED, WorkflowState.FAILED, WorkflowState.SKIPPED, WorkflowState.HELD})


class TokenPhase(StrEnum):
    """What the execution's stored task token waits for (the ASL's `phase`)."""

    LAB_EVENT = "lab_event"
    CORRECTION = "correction"

    @property
    def workflow(self) -> WorkflowState:
        """The workflow state while a token of this phase is stored."""
        if self is TokenPhase.CORRECTION:
            return WorkflowState.AWAITING_CORRECTION
        return WorkflowState.AWAITING_LAB_EVENT


class Decision(StrEnum):
    """What intake decided for one test of a new order (the ASL's `Decide` reads it)."""

    CONFIRM = "confirm"  # send ORDER_CONFIRMED, then wait for the lab
    REJECT = "reject"  # a code the lab does not offer: ORDER_ISSUE with the reason
    RESUME = "resume"  # WHOOP holds ORDER_CONFIRMED or further: wait for the lab from there
    SKIP = "skip"  # no work for the lab, nothing sent
    HOLD = "hold"  # unreadable: kept with its problems, nothing sent

    @property
    def starts_execution(self) -> bool:
        return self in (Decision.CONFIRM, Decision.REJECT, Decision.RESUME)


class UpdateKind(StrEnum):
    """What the lab's update carries to the execution (the ASL's `$.lab_event.kind`)."""

    STATUS = "status"
    REPORT = "report"


@dataclass(frozen=True)
class AcceptedStatus:
    """A status WHOOP accepted for a service request, as the bridge records it: the lab's
    update `event_id` it came from, the issue `reason` sent with it (None without one), the
    `workflow` state it leads to, the bus message announcing it (`outbox`, `{detail_type,
    detail}`) and, for final results, the end of the correction window (`times.iso` text)."""

    status: TaskBusinessStatus
    event_id: str
    workflow: WorkflowState
    outbox: dict[str, Any]
    reason: str | None = None
    correction_deadline: str | None = None

    def history_entry(self, at: str) -> dict[str, str]:
        """Its entry in `ServiceRequestRecord.history`, recorded at `at`."""
        entry = {"task_business_status": self.status.value, "at": at, "event_id": self.event_id}
        if self.reason:
            entry["reason"] = self.reason
        return entry


@dataclass
class ServiceRequestRecord:
    """One stored service request.

    `history` is `[{task_business_status, at, event_id, reason?}]`, the statuses WHOOP
    accepted, oldest first, and `{event: "resumed", at, execution, resending, failure}` for
    each resume (models/resume.py); `task_token` is the execution's wait (never shown); `outbox` a
    bus message still to publish `{detail_type, detail}`; `pending_update` the lab's update
    the execution is being resumed with; `failure` `{error, cause, at}`. Times are
    `times.iso` text.
    """

    service_request_id: str
    requisition_id: str
    code: str | None = None
    workflow: WorkflowState = WorkflowState.STARTING
    decision: Decision | None = None
    decision_reason: str | None = None
    task_description: str | None = None
    # WHOOP's FHIR status at intake (active, revoked, ...), as sent.
    fhir_status: str | None = None
    # As WHOOP sent it at intake: one of the seven, prose such as "Specimen collected", or null.
    whoop_task_business_status: str | None = None
    # The status WHOOP holds now, as far as the bridge knows (None: a new order).
    task_business_status: TaskBusinessStatus | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    # What the bridge could not read of a `held` test.
    problems: list[dict[str, str]] | None = None
    last_event_id: str | None = None
    task_token: str | None = None
    token_phase: TokenPhase | None = None
    pending_update: dict[str, Any] | None = None
    outbox: dict[str, Any] | None = None
    correction_deadline: str | None = None
    failure: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    closed_at: str | None = None
    closed_reason: str | None = None
    # How many times an operator resumed it after a failure (models/resume.py).
    resumes: int = 0

    # Rules ------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether the lab may still send anything for this test."""
        return self.workflow not in ENDED

    @property
    def is_moving(self) -> bool:
        """Between two waits: the execution will soon store a new task token."""
        return self.workflow in MOVING

    def correction_open(self, now: datetime | None = None) -> bool:
        """Whether the correction window (from the final report) is still open at `now`."""
        if not self.correction_deadline:
            return False
        return times.parse(self.correction_deadline) > (now or datetime.now(UTC))

    def allowed_statuses(self) -> list[TaskBusinessStatus]:
        """The statuses the lab may send as a bare status update now, in workflow order."""
        if not self.is_open or self.token_phase is TokenPhase.CORRECTION:
            return []
        return lab_update_statuses(self.task_business_status)

    def accepted_report_statuses(self, now: datetime | None = None) -> list[str]:
        """The diagnostic report statuses the lab may submit now."""
        if not self.is_open:
            return []
        if self.token_phase is TokenPhase.CORRECTION:
            return sorted(CORRECTION_REPORT_STATUSES) if self.correction_open(now) else []
        accepted = []
        if is_allowed(self.task_business_status, TaskBusinessStatus.PARTIAL_RESULTS_READY):
            accepted += ["partial", "preliminary"]
        if is_allowed(self.task_business_status, TaskBusinessStatus.FULL_RESULTS_READY):
            accepted.append("final")
        return accepted

    def already_recorded(self, status: TaskBusinessStatus, event_id: str) -> bool:
        """Whether `status` for the update `event_id` is the last status recorded (a retried step)."""
        return self.task_business_status == status and self.last_event_id == event_id

    def correction_seconds_left(self, now: datetime | None = None) -> int:
        """Whole seconds left in the correction window; 0 when closed or never opened."""
        if not self.correction_deadline:
            return 0
        remaining = times.parse(self.correction_deadline) - (now or datetime.now(UTC))
        return max(0, int(remaining.total_seconds()))
