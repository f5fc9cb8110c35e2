"""A diagnostic report (the lab's results) as the bridge keeps it before and after WHOOP accepts it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from whoop_bridge.models.task_status import TaskBusinessStatus, status_after_report


class ReportKind(StrEnum):
    """What a report does to the test (the ASL's `RouteAfterReport` reads it)."""

    PARTIAL = "partial"  # then PARTIAL_RESULTS_READY
    FINAL = "final"  # then FULL_RESULTS_READY and the correction window
    CORRECTION = "correction"  # amended, corrected or cancelled: no status change

    @classmethod
    def of(cls, report_status: str) -> ReportKind:
        """The kind of a report with WHOOP's DiagnosticReport `status` `report_status`."""
        target = status_after_report(report_status)
        if target is None:
            return cls.CORRECTION
        return cls.FINAL if target is TaskBusinessStatus.FULL_RESULTS_READY else cls.PARTIAL


# Answers that do not settle whether WHOOP holds a report: a timeout (408), a conflict (409:
# possibly the report an earlier attempt, whose answer was lost, already gave it), the rate
# limit (429), and any 5xx (past in-call retries, an earlier attempt may have been taken).
UNSETTLING_STATUSES = frozenset({408, 409, 429})


def refusal_settles(status: int) -> bool:
    """True when WHOOP's answer `status` (HTTP) says it does not hold the report: a 4xx other
    than 408, 409 and 429. Anything else leaves a started submission uncertain."""
    return 400 <= status < 500 and status not in UNSETTLING_STATUSES


@dataclass
class DiagnosticReportRecord:
    """One stored report: `body` exactly as the lab wrote it (WHOOP receives it so),
    `submitted_at` once WHOOP accepted it, `outbox` a bus message still to publish.
    `submission_started_at` is written before each POST of it to WHOOP and
    `submission_answer` (WHOOP's HTTP status refusing it) when WHOOP answered no: a report
    started and neither accepted nor refused is `uncertain` (its answer was lost: WHOOP may
    hold it, and has no idempotency key to tell, docs/whoop.md)."""

    service_request_id: str
    report_id: str
    report_status: str
    report_kind: ReportKind
    observation_count: int
    body: dict[str, Any]
    received_at: str
    submitted_at: str | None = None
    outbox: dict[str, Any] | None = None
    submission_started_at: str | None = None
    submission_answer: int | None = None

    @property
    def uncertain(self) -> bool:
        """A submission started whose answer never came: WHOOP may or may not hold it."""
        return bool(self.submission_started_at) and not self.submitted_at and self.submission_answer is None

    def summary(self) -> dict[str, Any]:
        """As the lab API shows it with its service request (no results)."""
        return {
            "report_id": self.report_id,
            "status": self.report_status,
            "observation_count": self.observation_count,
            "received_at": self.received_at,
            "submitted_at": self.submitted_at,
        }
