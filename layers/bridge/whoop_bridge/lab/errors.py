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
