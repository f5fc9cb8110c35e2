"""Member data sync: WHOOP's data webhooks, the backfill on connect and the daily
reconciliation, all through the app's one rate budget (whoop-api.md §3.2-3.4).

- A webhook names a record; `handle_webhook` fetches it (a recovery through its sleep's
  cycle) and upserts it, or deletes it. WHOOP may redeliver: the caller dedupes on
  `trace_id`, and upserts keep the newer `updated_at`, so a repeat changes nothing.
- Backfill and reconciliation are jobs on the jobs queue, one page each: a page is fetched,
  stored, and the next page queued, so a job that stops resumes at its page.
- When the budget has no call to give, `BudgetExhausted` reaches the handler, which puts
  the message back on its queue with a delay: deferred, never dropped.
- WHOOP may answer 404 for a record right after its own `*.updated` webhook (read lag):
  the webhook is retried every `READ_LAG_RETRY_SECONDS` for `READ_LAG_SECONDS` before the
  record is declared missing, and a 404 never deletes by itself: only a `*.deleted`
  webhook, or reconciliation after WHOOP's own GET answers 404, deletes a stored record.
- A record the bridge cannot read (`records.RecordInvalid`) is skipped, counted and logged
  by its id and field names; the rest of its page, job or webhook goes on.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from whoop_bridge import aws
from whoop_bridge.clients import member_api
from whoop_bridge.config import settings
from whoop_bridge.members import outbox, records
from whoop_bridge.members.tokens import NotConnected, ReauthorizationRequired, TokenService
from whoop_bridge.store import member_store, record_store
from whoop_bridge.whoop import budget
from whoop_bridge.whoop.budget import BACKGROUND, WEBHOOK, BudgetExhausted
from whoop_bridge.whoop.http import WhoopNotFound, WhoopUnauthorized
from whoop_bridge.whoop.member import MemberApi

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
# Read lag: how long a record WHOOP answers 404 for after its `*.updated` webhook is asked
# for again (on the budget's clock), and how often.
READ_LAG_SECONDS = 600
READ_LAG_RETRY_SECONDS = 60


class _Skip(Exception):
    """This member's data cannot be fetched now and retrying will not help (an outcome)."""


class _NotYetReadable(Exception):
    """WHOOP answered 404 for the record a `*.updated` webhook named."""


class ReadLagRetry(Exception):
    """Ask WHOOP again after `retry_after` seconds (the budget's clock): `rest` is the
    webhook message to queue again, carrying when WHOOP first answered 404."""

    def __init__(self, rest: dict[str, Any], retry_after: float) -> None:
        super().__init__("WHOOP does not show the record yet")
        self.rest = rest
        self.retry_after = retry_after


def _unreadable(error: records.RecordInvalid, record_type: str) -> None:
    # The record's id and the fields it lacks; never a value (a record is health data).
    logger.warning(
        "WHOOP record skipped: the bridge cannot read it",
        extra={"record_type": record_type, "record_id": error.record_id, "fields": list(error.fields)},
    )


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
    except records.RecordInvalid as error:
        # Asking again returns the same record: counted and logged, not retried.
        _unreadable(error, record_kind)
        return {"outcome": "unreadable", "changed": 0, "unreadable": 1}
    except _NotYetReadable:
        return _read_lag(message)
    finally:
        session.publish()
    return {"outcome": "deleted" if action == "deleted" else "fetched", "changed": changed}


def _read_lag(message: dict[str, Any]) -> dict[str, Any]:
    """WHOOP answered 404 for the record of a `*.updated` webhook: ask again later, until
    READ_LAG_SECONDS after the first 404; then it is declared missing, and nothing stored is
    deleted (a `*.deleted` webhook or reconciliation does that)."""
    now = budget.clock().time()
    first = message.get("not_found_since")
    first = float(first) if isinstance(first, (int, float)) else now
    if now - first >= READ_LAG_SECONDS:
        logger.warning(
            "WHOOP record still not found after read-lag retries; nothing deleted",
            extra={"event_type": message["type"], "record_id": message["id"]},
        )
        return {"outcome": "not_found", "changed": 0}
    raise ReadLagRetry({**message, "not_found_since": first}, READ_LAG_RETRY_SECONDS)


class _MemberSession:
    """One member's WHOOP calls for one message: a token (refreshed once on a 401), the
    scopes the member granted, and the stored records."""

    def __init__(
        self, connection: dict[str, Any], tokens: TokenService, priority: str, api: MemberApi | None = None
    ) -> None:
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

    def store(self, record_type: str, raw: dict[str, Any], cause: str, *, sleep_start: str | None = None) -> int:
        """Upsert a record; 1 when it changed. Its event goes out with `publish`. A recovery
        is windowed by its sleep's start: `sleep_start`, or the stored sleep's."""
        record = records.normalize(record_type, raw)
        if record_type == "recovery" and sleep_start is None:
            sleep = record_store.get(self.client_user_id, "sleep", record["sleep_id"])
            sleep_start = sleep["start"] if sleep else None
        stored = record_store.upsert(
            self.client_user_id, self.user_id, record_type, record, cause, sleep_start=sleep_start
        )
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
        """The record a `*.updated` webhook names; `_NotYetReadable` on a 404 (read lag)."""
        try:
            raw = self._call(self._api.record, record_type, record_id, scope=SCOPES[record_type])
        except WhoopNotFound:
            raise _NotYetReadable() from None
        return self.store(record_type, raw, cause)

    def fetch_recovery(self, sleep_id: str, cause: str) -> int:
        """A recovery by its sleep: the sleep names the cycle, the cycle has the recovery.
        `_NotYetReadable` when WHOOP answers 404 for either."""
        if SCOPES["recovery"] not in self._granted():
            raise _Skip("skipped_scope_not_granted")
        sleep = self._sleep(sleep_id)
        changed = self.store("sleep", sleep, cause)  # fetched anyway: keep it
        try:
            recovery = self._call(self._api.cycle_recovery, sleep["cycle_id"], scope=SCOPES["recovery"])
        except WhoopNotFound:
            raise _NotYetReadable() from None
        return changed + self.store("recovery", recovery, cause, sleep_start=sleep["start"])

    def _sleep(self, sleep_id: str) -> dict[str, Any]:
        """A sleep, normalised and with the `cycle_id` its recovery is read by."""
        try:
            raw = self._call(self._api.record, "sleep", sleep_id, scope=SCOPES["sleep"])
        except WhoopNotFound:
            raise _NotYetReadable() from None
        sleep = records.normalize("sleep", raw)
        if sleep["cycle_id"] is None:
            raise records.RecordInvalid(
                "sleep record invalid: cycle_id: needed to read its recovery", ("cycle_id",), sleep_id
            )
        return sleep

    def reconcile_missing(self, record_type: str, record_id: str, cause: str) -> int:
        """A stored record WHOOP's listing of the window no longer shows: deleted only when
        WHOOP's own GET answers 404 (a recovery's through its sleep and cycle); when WHOOP
        still has it, its current version is stored instead. 1 when something changed."""
        try:
            if record_type == "recovery":
                sleep = self._sleep(record_id)
                raw = self._call(self._api.cycle_recovery, sleep["cycle_id"], scope=SCOPES["recovery"])
                return self.store("recovery", raw, cause, sleep_start=sleep["start"])
            return self.store(
                record_type, self._call(self._api.record, record_type, record_id, scope=SCOPES[record_type]), cause
            )
        except (WhoopNotFound, _NotYetReadable):
            return self.delete(record_type, record_id, cause)
        except records.RecordInvalid as error:
            _unreadable(error, record_type)  # WHOOP still has it: nothing is deleted
            return 0

    def page(self, job: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        return self._call(
            self._api.page,
            job["record_type"],
            start=job["start"],
            end=job["end"],
            next_token=job.get("next_token"),
            scope=SCOPES[job["record_type"]],
        )

    def profile(self) -> int:
        profile = self._call(self._api.basic_profile, scope=SCOPES["profile"])
        member_store.put_member_item(
            self.client_user_id,
            "PROFILE",
            {key: profile.get(key) for key in ("user_id", "email", "first_name", "last_name")},
        )
        stored = 1
        try:
            body = self._call(self._api.body_measurement, scope=SCOPES["body_measurement"])
        except _Skip:
            return stored
        member_store.put_member_item(
            self.client_user_id,
            "BODY_MEASUREMENT",
            {key: body.get(key) for key in ("height_meter", "weight_kilogram", "max_heart_rate")},
        )
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
    cursor = {key: job[key] for key in ("steps", "next_token") if key in job} | (
        {"seen": job["seen"]} if "seen" in job else {}
    )
    totals = {"records": 0, "repairs": 0, "unreadable": 0}
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
    if SCOPES[step] not in session._granted():
        # This type only (OAuthScopes may leave it out): the job's other steps still run.
        member_store.note_sync_progress(
            session.client_user_id, cause, step, pages=0, records=0, state="skipped_scope_not_granted"
        )
        if "seen" in cursor:
            cursor["seen"] = []
        cursor.update(steps=cursor["steps"][1:], next_token=None)
        return
    if step == "profile":
        stored = session.profile()
        member_store.note_sync_progress(
            session.client_user_id, cause, "profile", pages=stored, records=stored, state="done"
        )
        cursor["steps"] = cursor["steps"][1:]
        return
    page, next_token = session.page(
        {"record_type": step, "start": job["start"], "end": job["end"], "next_token": cursor["next_token"]}
    )
    # A job runs for minutes on one token: a member who disconnected meanwhile (their records
    # deleted) gets none of this page stored after that deletion.
    if (member_store.get_connection(session.client_user_id) or {}).get("status", "disconnected") == "disconnected":
        raise _Skip("skipped_not_connected")
    changed = 0
    for raw in page:
        try:
            changed += session.store(step, raw, cause)
        except records.RecordInvalid as error:
            _unreadable(error, step)  # the rest of the page and of the job go on
            totals["unreadable"] += 1
    seen = cursor.get("seen")
    if seen is not None:
        ids = [records.raw_record_id(step, raw) for raw in page]
        # Past MAX_SEEN_IDS, or with a record whose id cannot be read (it could be any stored
        # one), this step repairs updates only and deletes nothing.
        seen = None if None in ids or len(seen) + len(ids) > MAX_SEEN_IDS else seen + ids
        cursor["seen"] = seen
    if next_token:
        cursor["next_token"] = next_token
        state = "running"
    else:
        if seen is not None:
            # Stored in the window but no longer listed: a delete the webhooks missed, once
            # WHOOP's own GET confirms it.
            for record_id in sorted(
                record_store.ids_between(session.client_user_id, step, job["start"], job["end"]) - set(seen)
            ):
                changed += session.reconcile_missing(step, record_id, cause)
        if "seen" in cursor:
            cursor["seen"] = []  # the next step starts its own list
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
        entries = [
            {"Id": str(index), "MessageBody": body, "DelaySeconds": delay_seconds}
            for index, body in enumerate(bodies[start : start + 10])
        ]
        answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if answer.get("Failed"):
            raise RuntimeError(f"{len(answer['Failed'])} messages were not queued")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
