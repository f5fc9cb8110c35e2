"""Member data sync: WHOOP's data webhooks, the backfill on connect and the daily
reconciliation, all through the app's one rate budget (whoop-api.md §3.2-3.4).

- A webhook names a record; `handle_webhook` fetches it (a recovery through its sleep's
  cycle) and upserts it, or deletes it. WHOOP may redeliver: the caller dedupes on
  `trace_id`, and upserts keep the newer `updated_at`, so a repeat changes nothing.
- Backfill and reconciliation are jobs on the jobs queue, one page each: a page is fetched,
  stored, and the next page queued, so a job that stops resumes at its page.
- When the budget has no call to give, `BudgetExhausted` reaches the handler, which puts
  the message back on its queue with a delay: deferred, never dropped.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from whoop_bridge import aws
from whoop_bridge.config import settings
from whoop_bridge.members import outbox, records
from whoop_bridge.members.tokens import NotConnected, ReauthorizationRequired, TokenService
from whoop_bridge.store import member_store, record_store
from whoop_bridge.whoop import budget
from whoop_bridge.whoop.budget import BACKGROUND, WEBHOOK, BudgetExhausted
from whoop_bridge.whoop.http import WhoopNotFound, WhoopUnauthorized
from whoop_bridge.whoop.member import MemberApi, member_api

logger = logging.getLogger(__name__)

WEBHOOK_CAUSE, BACKFILL, RECONCILIATION = "webhook", "backfill", "reconciliation"
SCOPES = {
    "cycle": "read:cycles",
    "sleep": "read:sleep",
    "recovery": "read:recovery",
    "workout": "read:workout",
    "profile": "read:profile",
    "body_measurement": "read:body_measurement",
}
SYNC_JOB = "sync"
# Pages one job runs before it hands the rest to a new message (well inside the timeout).
MAX_PAGES_PER_RUN = 20
# SQS delays a message by at most 15 minutes; a longer deferral is several hops.
MAX_DELAY_SECONDS = 900
# Reconciliation remembers the ids of its window to find deletes webhooks missed; past
# this many it repairs updates only.
MAX_SEEN_IDS = 2000


class _Skip(Exception):
    """This member's data cannot be fetched now and retrying will not help (an outcome)."""


# Webhooks ----------------------------------------------------------------------------------


def handle_webhook(message: dict[str, Any], tokens: TokenService | None = None) -> dict[str, Any]:
    """One WHOOP data webhook `{user_id, id, type, trace_id}`: fetch and upsert, or delete.

    Returns `{"outcome", "changed"}`; `BudgetExhausted` when it must wait for the budget.
    """
    record_kind, action = message["type"].split(".")
    user = member_store.get_user(int(message["user_id"]))
    if user is None:
        return {"outcome": "unknown_member", "changed": 0}
    connection = member_store.get_connection(user["client_user_id"])
    if connection is None or connection.get("user_id") != int(message["user_id"]):
        return {"outcome": "unknown_member", "changed": 0}
    session = _MemberSession(connection, tokens or TokenService(), WEBHOOK)
    try:
        if action == "deleted":
            changed = session.delete(record_kind, message["id"], WEBHOOK_CAUSE)
            if record_kind == "sleep":
                # WHOOP deletes a sleep's recovery with it; its own webhook may be missed.
                changed += session.delete("recovery", message["id"], WEBHOOK_CAUSE)
        elif record_kind == "recovery":
            changed = session.fetch_recovery(message["id"], WEBHOOK_CAUSE)
        else:
            changed = session.fetch(record_kind, message["id"], WEBHOOK_CAUSE)
    except _Skip as skip:
        return {"outcome": str(skip), "changed": 0}
    finally:
        session.publish()
    return {"outcome": "deleted" if action == "deleted" else "fetched", "changed": changed}


class _MemberSession:
    """One member's WHOOP calls for one message: a token (refreshed once on a 401), the
    scopes the member granted, and the stored records."""

    def __init__(self, connection: dict[str, Any], tokens: TokenService, priority: str, api: MemberApi | None = None) -> None:
        self.client_user_id = connection["client_user_id"]
        self.user_id = int(connection["user_id"])
        self._connection: dict[str, Any] | None = connection
        self._tokens = tokens
        self._priority = priority
        self._api = api or member_api()
        self._token: str | None = None
        self._scopes = set(connection.get("scopes") or ())
        self.events: list[dict[str, Any]] = []

    def _call(self, operation: Any, *args: Any, scope: str, **kwargs: Any) -> Any:
        if scope not in self._granted():
            raise _Skip("skipped_scope_not_granted")
        for attempt in (1, 2):
            token = self._access_token(force_refresh=attempt == 2)
            try:
                return operation(token, *args, priority=self._priority, **kwargs)
            except WhoopUnauthorized as error:
                if error.status == 403:
                    raise _Skip("skipped_forbidden") from None  # WHOOP: a deactivated membership
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _granted(self) -> set[str]:
        return self._scopes

    def _access_token(self, *, force_refresh: bool) -> str:
        if self._token is None or force_refresh:
            try:
                # A 401 on a token we believed good: refresh it (whatever its expiry) once.
                margin = math.inf if force_refresh else 300
                self._token = self._tokens.access_token(self.client_user_id, margin=margin, connection=self._connection)
                self._connection = None  # read afresh after this
            except ReauthorizationRequired:
                raise _Skip("skipped_reauthorization_required") from None
            except NotConnected:
                raise _Skip("skipped_not_connected") from None
        return self._token

    def store(self, record_type: str, raw: dict[str, Any], cause: str) -> int:
        """Upsert a record; 1 when it changed. Its event goes out with `publish`."""
        record = records.normalize(record_type, raw)
        stored = record_store.upsert(self.client_user_id, self.user_id, record_type, record, cause)
        self.events += stored
        return 1 if stored else 0

    def delete(self, record_type: str, record_id: str, cause: str) -> int:
        stored = record_store.delete(self.client_user_id, self.user_id, record_type, record_id, cause)
        self.events += stored
        return 1 if stored else 0

    def publish(self) -> None:
        """The events of every change so far, in as few calls as EventBridge allows."""
        outbox.publish_stored(self.events)
        self.events = []

    def fetch(self, record_type: str, record_id: str, cause: str) -> int:
        try:
            raw = self._call(self._api.record, record_type, record_id, scope=SCOPES[record_type])
        except WhoopNotFound:
            return self.delete(record_type, record_id, cause)  # gone at WHOOP since the webhook
        return self.store(record_type, raw, cause)

    def fetch_recovery(self, sleep_id: str, cause: str) -> int:
        """A recovery by its sleep: the sleep names the cycle, the cycle has the recovery."""
        if SCOPES["recovery"] not in self._granted():
            raise _Skip("skipped_scope_not_granted")
        try:
            sleep = self._call(self._api.record, "sleep", sleep_id, scope=SCOPES["sleep"])
        except WhoopNotFound:
            return self.delete("sleep", sleep_id, cause) + self.delete("recovery", sleep_id, cause)
        changed = self.store("sleep", sleep, cause)  # fetched anyway: keep it
        try:
            recovery = self._call(self._api.cycle_recovery, sleep["cycle_id"], scope=SCOPES["recovery"])
        except WhoopNotFound:
            return changed + self.delete("recovery", sleep_id, cause)
        return changed + self.store("recovery", recovery, cause)

    def page(self, job: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        return self._call(
            self._api.page, job["record_type"], start=job["start"], end=job["end"], next_token=job.get("next_token"), scope=SCOPES[job["record_type"]]
        )

    def profile(self) -> int:
        profile = self._call(self._api.basic_profile, scope=SCOPES["profile"])
        member_store.put_member_item(self.client_user_id, "PROFILE", {key: profile.get(key) for key in ("user_id", "email", "first_name", "last_name")})
        stored = 1
        try:
            body = self._call(self._api.body_measurement, scope=SCOPES["body_measurement"])
        except _Skip:
            return stored
        member_store.put_member_item(self.client_user_id, "BODY_MEASUREMENT", {key: body.get(key) for key in ("height_meter", "weight_kilogram", "max_heart_rate")})
        return stored + 1


# Jobs: backfill and reconciliation -----------------------------------------------------------
#
# One job per member walks its steps (each record type's pages, then the profile) in one
# window. A job carries its cursor (`steps`, `next_token`, `seen`): when the budget has no
# call for it, or it has run `MAX_PAGES_PER_RUN` pages, the rest goes back on the queue as
# a new job that starts where this one stopped.


class JobDeferred(BudgetExhausted):
    """The budget stopped a job part-way: `rest` is the job that continues it."""

    def __init__(self, exhausted: BudgetExhausted, rest: dict[str, Any]) -> None:
        super().__init__(exhausted.retry_after, exhausted.reason)
        self.rest = rest


def start_backfill(client_user_id: str) -> dict[str, Any]:
    """A newly connected member's backfill: `BackfillDays` of every record type, then the
    profile and body measurement. Runs at once as far as the budget lets it."""
    days = settings().backfill_days
    if days == 0:
        return {"outcome": "backfill_off", "records": 0, "repairs": 0}
    member_store.start_sync_progress(client_user_id, BACKFILL, (*records.RECORD_TYPES, "profile"))
    logger.info("backfill started", extra={"client_user_id": client_user_id, "days": days})
    return run_job(_job(client_user_id, days, BACKFILL))


def schedule_reconciliation() -> int:
    """The daily job: queue a reconciliation of the recent window for every connected member."""
    days = settings().reconciliation_days
    jobs = [_job(connection["client_user_id"], days, RECONCILIATION) for connection in member_store.connected_members()]
    enqueue_jobs(jobs)
    logger.info("reconciliation queued", extra={"jobs": len(jobs), "days": days})
    return len(jobs)


def _job(client_user_id: str, days: int, cause: str) -> dict[str, Any]:
    end = datetime.now(UTC)
    steps = list(records.RECORD_TYPES) + (["profile"] if cause == BACKFILL else [])
    job: dict[str, Any] = {
        "job": SYNC_JOB,
        "client_user_id": client_user_id,
        "cause": cause,
        "start": _iso(end - timedelta(days=days)),
        "end": _iso(end),
        "steps": steps,
        "next_token": None,
    }
    if cause == RECONCILIATION:
        job["seen"] = []  # every id of the window: what is stored but not listed was deleted
    return job


def run_job(job: dict[str, Any], tokens: TokenService | None = None) -> dict[str, Any]:
    """Run a backfill or reconciliation job from its cursor. Returns `{"outcome", "records",
    "repairs"}`; `JobDeferred` (with the rest of the job) when the budget stops it."""
    client_user_id = job["client_user_id"]
    connection = member_store.get_connection(client_user_id)
    if connection is None or connection.get("user_id") is None or connection.get("status") == "disconnected":
        return {"outcome": "skipped_not_connected", "records": 0, "repairs": 0}
    session = _MemberSession(connection, tokens or TokenService(), BACKGROUND)
    cursor = {key: job[key] for key in ("steps", "next_token") if key in job} | ({"seen": job["seen"]} if "seen" in job else {})
    totals = {"records": 0, "repairs": 0}
    try:
        for _ in range(MAX_PAGES_PER_RUN):
            if not cursor["steps"]:
                return {"outcome": "done", **totals}
            _step(session, job, cursor, totals)
        enqueue_jobs([{**job, **cursor, "deferrals": 0}])  # a long job yields the Lambda
        return {"outcome": "continued", **totals}
    except BudgetExhausted as exhausted:
        raise JobDeferred(exhausted, {**job, **cursor}) from None
    except _Skip as skip:
        for step in cursor["steps"]:
            member_store.note_sync_progress(client_user_id, job["cause"], step, pages=0, records=0, state=str(skip))
        return {"outcome": str(skip), **totals}
    finally:
        session.publish()


def _step(session: _MemberSession, job: dict[str, Any], cursor: dict[str, Any], totals: dict[str, int]) -> None:
    """One page of the current step (or the profile), advancing the cursor past it."""
    step, cause = cursor["steps"][0], job["cause"]
    if step == "profile":
        stored = session.profile()
        member_store.note_sync_progress(session.client_user_id, cause, "profile", pages=stored, records=stored, state="done")
        cursor["steps"] = cursor["steps"][1:]
        return
    page, next_token = session.page({"record_type": step, "start": job["start"], "end": job["end"], "next_token": cursor["next_token"]})
    changed = sum(session.store(step, raw, cause) for raw in page)
    seen = cursor.get("seen")
    if seen is not None:
        seen = seen + [records.record_id(step, records.normalize(step, raw)) for raw in page]
        if len(seen) > MAX_SEEN_IDS:
            seen = None  # too many to carry: repair updates only
        cursor["seen"] = seen
    if next_token:
        cursor["next_token"] = next_token
        state = "running"
    else:
        if seen is not None:
            # Stored in the window but no longer at WHOOP: a delete the webhooks missed.
            for record_id in record_store.ids_between(session.client_user_id, step, job["start"], job["end"]) - set(seen):
                changed += session.delete(step, record_id, cause)
            cursor["seen"] = []
        cursor.update(steps=cursor["steps"][1:], next_token=None)
        state = "done"
    member_store.note_sync_progress(session.client_user_id, cause, step, pages=1, records=len(page), state=state)
    totals["records"] += len(page)
    if cause == RECONCILIATION:
        totals["repairs"] += changed


# Queues --------------------------------------------------------------------------------------


def enqueue_jobs(jobs: Iterable[dict[str, Any]], delay_seconds: int = 0) -> None:
    """Put jobs on the jobs queue, ten to a call; raise if any is refused (the caller's
    message is then retried, and nothing is lost)."""
    config = settings()
    config.require("member_jobs_queue_url")
    _send(config.member_jobs_queue_url, [json.dumps(job) for job in jobs], delay_seconds)


def defer(queue_url: str, body: dict[str, Any], retry_after: float) -> int:
    """Put a message back on its queue to run after `retry_after` seconds of the budget's
    clock; how many real seconds it waits."""
    delay = min(MAX_DELAY_SECONDS, max(1, math.ceil(budget.clock().real_seconds(retry_after))))
    _send(queue_url, [json.dumps({**body, "deferrals": int(body.get("deferrals", 0)) + 1})], delay)
    return delay


def _send(queue_url: str, bodies: list[str], delay_seconds: int) -> None:
    sqs = aws.client("sqs")
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(index), "MessageBody": body, "DelaySeconds": delay_seconds} for index, body in enumerate(bodies[start : start + 10])]
        answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if answer.get("Failed"):
            raise RuntimeError(f"{len(answer['Failed'])} messages were not queued")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
