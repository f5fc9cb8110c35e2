"""The lab side's domain errors, as the lab API maps them to answers (one place, so the
API's shared error mapping imports them from here)."""

from __future__ import annotations


class NotFound(LookupError):
    """No such requisition, service request or document for this lab (404)."""


class TransitionForbidden(Exception):
    """The workflow's rules forbid this status update or report now (409); `allowed` lists
    the statuses that may come next, `current` the test's `task_business_status`."""

    def __init__(self, message: str, allowed: list[str], current: str | None) -> None:
        super().__init__(message)
        self.allowed = allowed
        self.current = current


class Busy(Exception):
    """The execution is still sending the previous update to WHOOP; retry shortly (409, Retry-After)."""


class BadQuery(ValueError):
    """A query parameter the API cannot use (400)."""


class TestDataUnavailable(Exception):  # noqa: N818 - WHOOP's answer, not a fault
    """WHOOP makes test data only outside production (409)."""

    __test__ = False  # not a pytest class


class ServiceRequestMissing(RuntimeError):
    """An execution names a service request (or report) that is not stored: a defect, not
    transient (the state machine records it as the failure)."""


class NotResumable(Exception):  # noqa: N818 - a state, not a fault
    """Only a failed test, or a requisition that failed intake, can be resumed (409);
    `state` names where it is now (a workflow state, or a requisition's outcome)."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


class ReportUncertain(Exception):  # noqa: N818 - a state, not a fault
    """The test's pending report was sent and WHOOP's answer lost: WHOOP may hold it (409
    `report_uncertain`). The operator checks with WHOOP and resumes with
    `resend_uncertain_report` or `report_taken`; `report_id`, `submission_started_at` name it."""

    def __init__(self, report_id: str, submission_started_at: str) -> None:
        super().__init__(
            f"report {report_id} was sent to WHOOP at {submission_started_at} and its answer was lost: WHOOP may "
            'hold it. Ask WHOOP, then resume with {"report_taken": true} if it has the report, or '
            '{"resend_uncertain_report": true} if it does not'
        )
        self.report_id = report_id
        self.submission_started_at = submission_started_at
