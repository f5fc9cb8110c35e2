"""Backfill and reconciliation: sync jobs on the member jobs queue (models/sync_job.py),
all through the app's one rate budget (docs/whoop.md#rate-limits).

A job runs page by page: a page is fetched and stored and the cursor moves past it, so a
job that stops resumes at its page. When the budget has no call to give, `JobDeferred`
(with the rest of the job) reaches the caller, which queues it again with a delay: deferred,
never dropped. After `MAX_PAGES_PER_RUN` pages the rest goes back on the queue as a new job.
A record the bridge cannot read (`RecordInvalid`) is skipped, counted and logged by its id
and field names; the rest of its page and job goes on.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from whoop_bridge import times
from whoop_bridge.clock import clock
from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.members.session import MemberSession, Skip, log_unreadable
from whoop_bridge.members.tokens import TokenService
from whoop_bridge.models import member_record as records
from whoop_bridge.models.sync_job import PROFILE_STEP, StepState, SyncCause, SyncJob, SyncOutcome
from whoop_bridge.whoop.budget import BACKGROUND, BudgetExhausted

logger = logging.getLogger(__name__)

# Pages one job runs before it hands the rest to a new message (well inside the timeout).
MAX_PAGES_PER_RUN = 20
# SQS delays a message by at most 15 minutes; a longer deferral is several hops.
MAX_DELAY_SECONDS = 900
# Reconciliation remembers the ids of its window to find deletes webhooks missed; past
# this many it repairs updates only.
MAX_SEEN_IDS = 2000


class JobDeferred(BudgetExhausted):
    """The budget stopped a job part-way: `rest` is the job message that continues it."""

    def __init__(self, exhausted: BudgetExhausted, rest: dict[str, Any]) -> None:
        super().__init__(exhausted.retry_after, exhausted.reason)
        self.rest = rest


def start_backfill(client_user_id: str, ports: MemberPorts = PORTS) -> dict[str, Any]:
    """A newly connected member's backfill: `BackfillDays` of every record type, then the
    profile and body measurement. Runs at once as far as the budget lets it."""
    days = ports.settings().backfill_days
    if days == 0:
        return {"outcome": SyncOutcome.BACKFILL_OFF, "records": 0, "repairs": 0}
    ports.progress.start(client_user_id, SyncCause.BACKFILL, (*records.RECORD_TYPES, PROFILE_STEP))
    logger.info("backfill started", extra={"client_user_id": client_user_id, "days": days})
    job = SyncJob.new(client_user_id, SyncCause.BACKFILL, days, records.RECORD_TYPES, datetime.now(UTC))
    return run_job(job.to_message(), ports=ports)


def schedule_reconciliation(ports: MemberPorts = PORTS) -> int:
    """The daily job: queue a reconciliation of the recent window for every connected member."""
    days = ports.settings().reconciliation_days
    now = datetime.now(UTC)
    jobs = [
        SyncJob.new(connection.client_user_id, SyncCause.RECONCILIATION, days, records.RECORD_TYPES, now).to_message()
        for connection in ports.connections.refreshed_connections()
    ]
    enqueue_jobs(jobs, ports=ports)
    logger.info("reconciliation queued", extra={"jobs": len(jobs), "days": days})
    return len(jobs)


def run_job(message: dict[str, Any], tokens: TokenService | None = None, ports: MemberPorts = PORTS) -> dict[str, Any]:
    """Run a backfill or reconciliation job from its cursor. Returns `{"outcome", "records",
    "repairs", "unreadable"}`; `JobDeferred` (with the rest of the job) when the budget stops it."""
    job = SyncJob.from_message(message)
    connection = ports.connections.get(job.client_user_id)
    if connection is None or connection.user_id is None or connection.disconnected:
        return {"outcome": SyncOutcome.SKIPPED_NOT_CONNECTED, "records": 0, "repairs": 0}
    session = MemberSession(connection, tokens or TokenService(ports=ports), BACKGROUND, ports)
    totals = {"records": 0, "repairs": 0, "unreadable": 0}
    try:
        for _ in range(MAX_PAGES_PER_RUN):
            if job.done:
                return {"outcome": SyncOutcome.DONE, **totals}
            _step(session, job, totals, ports)
        job.deferrals = 0
        enqueue_jobs([job.to_message()], ports=ports)  # a long job yields the Lambda
        return {"outcome": SyncOutcome.CONTINUED, **totals}
    except BudgetExhausted as exhausted:
        raise JobDeferred(exhausted, job.to_message()) from None
    except Skip as skip:
        for step in job.steps:
            ports.progress.note(job.client_user_id, job.cause, step, pages=0, records=0, state=skip.outcome)
        return {"outcome": skip.outcome, **totals}
    finally:
        session.publish()


def _step(session: MemberSession, job: SyncJob, totals: dict[str, int], ports: MemberPorts) -> None:
    """One page of the current step (or the profile), advancing the job past it."""
    step, cause = job.step, job.cause
    # The step's first page of this run starts its progress afresh, from now.
    started_at = times.now_iso() if job.next_token is None else None
    if not session.granted(step):
        # This type only (OAuthScopes may leave it out): the job's other steps still run.
        ports.progress.note(
            session.client_user_id,
            cause,
            step,
            pages=0,
            records=0,
            state=SyncOutcome.SKIPPED_SCOPE_NOT_GRANTED,
            started_at=started_at,
        )
        job.next_step()
        return
    if step == PROFILE_STEP:
        stored = session.profile()
        ports.progress.note(
            session.client_user_id,
            cause,
            step,
            pages=stored,
            records=stored,
            state=StepState.DONE,
            started_at=started_at,
        )
        job.next_step()
        return
    page, next_token = session.page(step, job.start, job.end, job.next_token)
    # A job runs for minutes on one token: a member who disconnected meanwhile (their records
    # deleted) gets none of this page stored after that deletion.
    if not session.still_connected():
        raise Skip(SyncOutcome.SKIPPED_NOT_CONNECTED)
    changed = 0
    for raw in page:
        try:
            changed += session.store(step, raw, cause)
        except records.RecordInvalid as error:
            log_unreadable(error, step)  # the rest of the page and of the job go on
            totals["unreadable"] += 1
    job.listed([records.raw_record_id(step, raw) for raw in page], MAX_SEEN_IDS)
    if next_token:
        job.next_token = next_token
        state = StepState.RUNNING
    else:
        if job.seen is not None:
            # Stored in the window but no longer listed: a delete the webhooks missed, once
            # WHOOP's own GET confirms it.
            stored_ids = ports.records.ids_between(session.client_user_id, step, job.start, job.end)
            for record_id in sorted(stored_ids - set(job.seen)):
                changed += session.reconcile_missing(step, record_id, cause)
        job.next_step()
        state = StepState.DONE
    ports.progress.note(
        session.client_user_id, cause, step, pages=1, records=len(page), state=state, started_at=started_at
    )
    totals["records"] += len(page)
    if cause == SyncCause.RECONCILIATION:
        totals["repairs"] += changed


# Queues --------------------------------------------------------------------------------------


def enqueue_jobs(jobs: Iterable[dict[str, Any]], delay_seconds: int = 0, ports: MemberPorts = PORTS) -> None:
    """Put job messages on the jobs queue; raise if any is refused (the caller's message is
    then retried, and nothing is lost)."""
    config = ports.settings()
    config.require("member_jobs_queue_url")
    ports.queues.send(config.member_jobs_queue_url, [json.dumps(job) for job in jobs], delay_seconds)


def defer(queue_url: str, body: dict[str, Any], retry_after: float, ports: MemberPorts = PORTS) -> int:
    """Put a message back on its queue to run after `retry_after` seconds of the budget's
    clock, its `deferrals` counted; how many real seconds it waits."""
    delay = min(MAX_DELAY_SECONDS, max(1, math.ceil(clock().real_seconds(retry_after))))
    ports.queues.send(queue_url, [json.dumps({**body, "deferrals": int(body.get("deferrals", 0)) + 1})], delay)
    return delay
