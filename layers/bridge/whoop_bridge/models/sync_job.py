"""A member sync job (a backfill or a reconciliation), its progress, and the outcomes of
sync work.

A job walks its steps (each record type's pages, then for a backfill the profile) over one
window. It carries its own cursor (`steps`, `next_token`, and for a reconciliation `seen`,
the ids WHOOP listed in the current step), so the rest of a job that stops is a new job
message that starts where it stopped. The message is JSON on the member jobs queue:

    {"job": "sync", "client_user_id", "cause", "start", "end", "steps": [...],
     "next_token": str | null, "seen": [...] | null (reconciliation only),
     "deferrals": int (once continued or deferred)}

`start` and `end` are UTC ISO 8601 (`times.iso`); the window is [start, end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from whoop_bridge.times import iso

SYNC_JOB = "sync"
PROFILE_STEP = "profile"
# The member jobs queue's idempotency key: one run per job position (not per deferral).
IDEMPOTENCY_KEY = "[job, client_user_id, cause, start, end, steps, next_token]"


class SyncCause(StrEnum):
    """Why records were fetched (the `cause` of a record bus message and of a job)."""

    WEBHOOK = "webhook"  # a WHOOP data webhook
    BACKFILL = "backfill"  # the first fetch of a member's history, on connect
    RECONCILIATION = "reconciliation"  # the daily poll that catches webhooks WHOOP never delivered


class SyncOutcome(StrEnum):
    """What became of one piece of sync work (a webhook, a job run, a queue message). The
    `skipped_*` ones are also a step's stored progress state."""

    FETCHED = "fetched"
    DELETED = "deleted"
    UNKNOWN_MEMBER = "unknown_member"
    UNREADABLE = "unreadable"
    NOT_FOUND = "not_found"
    DONE = "done"
    CONTINUED = "continued"
    BACKFILL_OFF = "backfill_off"
    SKIPPED_SCOPE_NOT_GRANTED = "skipped_scope_not_granted"
    SKIPPED_FORBIDDEN = "skipped_forbidden"
    SKIPPED_REAUTHORIZATION_REQUIRED = "skipped_reauthorization_required"
    SKIPPED_NOT_CONNECTED = "skipped_not_connected"
    # Outcomes of a queue message that did not run to an answer.
    MALFORMED = "malformed"
    DEFERRED = "deferred"
    READ_LAG = "read_lag"

    @property
    def skipped(self) -> bool:
        return self.value.startswith("skipped_")


class StepState(StrEnum):
    """A step's progress state, besides a `skipped_*` SyncOutcome."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


@dataclass
class SyncJob:
    """A job and its cursor. `seen` is None for a backfill, and for a reconciliation whose
    step listed more ids than it remembers (it then repairs updates only)."""

    client_user_id: str
    cause: SyncCause
    start: str
    end: str
    steps: list[str]
    next_token: str | None = None
    seen: list[str] | None = None
    deferrals: int | None = None
    job: str = field(default=SYNC_JOB, repr=False)

    @classmethod
    def new(
        cls, client_user_id: str, cause: SyncCause, days: int, record_types: tuple[str, ...], now: datetime
    ) -> SyncJob:
        """A job over the `days` before `now`: every record type, then the profile for a backfill."""
        steps = list(record_types) + ([PROFILE_STEP] if cause == SyncCause.BACKFILL else [])
        # A reconciliation remembers every id of the window: stored but not listed is deleted.
        seen: list[str] | None = [] if cause == SyncCause.RECONCILIATION else None
        return cls(client_user_id, cause, iso(now - timedelta(days=days)), iso(now), steps, seen=seen)

    @staticmethod
    def is_message(message: Any) -> bool:
        """The message is a sync job (the shape the jobs queue carries)."""
        return (
            isinstance(message, dict)
            and message.get("job") == SYNC_JOB
            and isinstance(message.get("client_user_id"), str)
            and isinstance(message.get("steps"), list)
        )

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> SyncJob:
        return cls(
            client_user_id=message["client_user_id"],
            cause=SyncCause(message["cause"]),
            start=message["start"],
            end=message["end"],
            steps=list(message["steps"]),
            next_token=message.get("next_token"),
            seen=message.get("seen"),
            deferrals=message.get("deferrals"),
        )

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "job": self.job,
            "client_user_id": self.client_user_id,
            "cause": str(self.cause),
            "start": self.start,
            "end": self.end,
            "steps": list(self.steps),
            "next_token": self.next_token,
        }
        if self.tracks_deletes:
            message["seen"] = None if self.seen is None else list(self.seen)
        if self.deferrals is not None:
            message["deferrals"] = self.deferrals
        return message

    @property
    def tracks_deletes(self) -> bool:
        """A reconciliation: what is stored in the window but no longer listed was deleted."""
        return self.cause == SyncCause.RECONCILIATION

    @property
    def done(self) -> bool:
        return not self.steps

    @property
    def step(self) -> str:
        return self.steps[0]

    def next_step(self) -> None:
        """The current step is finished (or skipped): the next one starts from its first page."""
        self.steps = self.steps[1:]
        self.next_token = None
        if self.tracks_deletes:
            self.seen = []  # the next step starts its own list

    def listed(self, ids: list[str | None], limit: int) -> None:
        """Remember the ids of a page. Past `limit` ids, or with a record whose id cannot be
        read (it could be any stored one), this step repairs updates only: `seen` is None."""
        if self.seen is not None:
            self.seen = None if None in ids or len(self.seen) + len(ids) > limit else self.seen + ids  # type: ignore[operator]


@dataclass
class SyncProgress:
    """A job step's progress for the connection view: a StepState or `skipped_*` outcome,
    pages and records so far, and when it last changed."""

    state: str
    pages: int = 0
    records: int = 0
    updated_at: str | None = None
    started_at: str | None = None

    def view(self) -> dict[str, Any]:
        return {"state": self.state, "pages": self.pages, "records": self.records, "updated_at": self.updated_at}
