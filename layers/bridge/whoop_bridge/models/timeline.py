"""Timelines: one order's tests, and one member's sync jobs, as timed entries (the JSON of
`GET /lab/requisitions/{id}/timeline` and `GET /connections/{id}/timeline`, and what the
SVG pictures draw; whoop_bridge/pictures). Times are `times.iso` text (UTC, `Z`).

An order's timeline holds ids, codes, statuses, report statuses, error names and times;
an issue's `reason` only in the JSON (the lab wrote it), never in a picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from whoop_bridge.models.sync_job import StepState


class EntryKind(StrEnum):
    """What happened to a test at one time."""

    STATUS = "status"  # WHOOP accepted a task_business_status (history)
    ISSUE = "issue"  # ... an issue status (ORDER_ISSUE, APPOINTMENT_ISSUE, RESULTS_ISSUE), with its reason
    REPORT = "report"  # a diagnostic report: submitted to WHOOP (`submitted_at`), or received only
    FAILURE = "failure"  # the test's execution failed (`error`)
    RESUME = "resume"  # a failed execution was resumed
    DOCUMENT = "document"  # a document the test is based on was fetched (stored, linked) or given up
    CLOSED = "closed"  # nothing more accepted (the correction window ended, or the wait)


@dataclass(frozen=True)
class TimelineEntry:
    """One timed entry: `at`, its `kind`, a short `label` (a status name, a report status, an
    error name, a document state: what a picture writes next to its mark) and the kind's
    own fields (`details`), flattened into the JSON object."""

    at: str
    kind: EntryKind
    label: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind.value, "label": self.label, **self.details}


@dataclass
class TestTimeline:
    """One test (service request) of an order: where it stands and its entries, oldest first."""

    __test__ = False  # not a pytest class

    service_request_id: str
    code: str | None
    workflow: str
    task_business_status: str | None
    entries: list[TimelineEntry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "service_request_id": self.service_request_id,
            "code": self.code,
            "workflow": self.workflow,
            "task_business_status": self.task_business_status,
            "entries": [entry.as_dict() for entry in self.entries],
        }


def span(times: list[str | None]) -> tuple[str | None, str | None]:
    """The first and last of `times` (ISO text with `Z` compares as time), Nones left out."""
    known = sorted(moment for moment in times if moment)
    return (known[0], known[-1]) if known else (None, None)


@dataclass
class RequisitionTimeline:
    """One order: when it was received, what intake made of it (`outcome`, a
    RequisitionOutcome), whether any test is open, and each test's timeline."""

    requisition_id: str
    outcome: str
    received_at: str | None
    open: bool
    tests: list[TestTimeline] = field(default_factory=list)

    def span(self) -> tuple[str | None, str | None]:
        return span([self.received_at, *(entry.at for test in self.tests for entry in test.entries)])

    def as_dict(self) -> dict[str, Any]:
        start, end = self.span()
        return {
            "requisition_id": self.requisition_id,
            "received_at": self.received_at,
            "outcome": self.outcome,
            "open": self.open,
            "start": start,
            "end": end,
            "service_requests": [test.as_dict() for test in self.tests],
        }


# A step that is neither queued nor running has ended: done, or a `skipped_*` outcome.
_UNFINISHED = frozenset({StepState.QUEUED.value, StepState.RUNNING.value})


@dataclass(frozen=True)
class SyncStepSpan:
    """One step (a record type, or `profile`) of a sync job: its state (a StepState or a
    `skipped_*` outcome), pages and records stored, when it started (None when it never
    ran a page: e.g. skipped) and when it last changed."""

    step: str
    state: str
    pages: int
    records: int
    started_at: str | None
    updated_at: str | None

    @property
    def finished(self) -> bool:
        return self.state not in _UNFINISHED

    @property
    def ended_at(self) -> str | None:
        return self.updated_at if self.finished else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "state": self.state,
            "pages": self.pages,
            "records": self.records,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "updated_at": self.updated_at,
        }


@dataclass
class SyncJobTimeline:
    """One kind of sync job of a member (`cause`: backfill or reconciliation), its last run's steps."""

    cause: str
    steps: list[SyncStepSpan] = field(default_factory=list)

    @property
    def state(self) -> str:
        """`done` when every step ended done, `finished_with_skips` when some were skipped,
        `running` while any is queued or running."""
        if not all(step.finished for step in self.steps):
            return "running"
        return "done" if all(step.state == StepState.DONE.value for step in self.steps) else "finished_with_skips"

    def as_dict(self) -> dict[str, Any]:
        started, _ = span([step.started_at or step.updated_at for step in self.steps])
        _, last = span([step.updated_at for step in self.steps])
        return {
            "cause": self.cause,
            "state": self.state,
            "started_at": started,
            "ended_at": last if self.state != "running" else None,
            "pages": sum(step.pages for step in self.steps),
            "records": sum(step.records for step in self.steps),
            "steps": [step.as_dict() for step in self.steps],
        }


@dataclass
class MemberTimeline:
    """One member's sync jobs (backfill first, then reconciliation; a kind never run is left out)."""

    client_user_id: str
    status: str
    jobs: list[SyncJobTimeline] = field(default_factory=list)

    def span(self) -> tuple[str | None, str | None]:
        return span(
            [moment for job in self.jobs for step in job.steps for moment in (step.started_at, step.updated_at)]
        )

    def as_dict(self) -> dict[str, Any]:
        start, end = self.span()
        return {
            "client_user_id": self.client_user_id,
            "status": self.status,
            "start": start,
            "end": end,
            "jobs": [job.as_dict() for job in self.jobs],
        }
