"""The member_sync function's work: one queue message (a data webhook, a sync job, or
`member.connected`), or one schedule (the upkeep, the daily reconciliation).

The handler keeps Powertools' batch processing and idempotency (it wraps each kind's runner
once per key) and adds the metrics this module names; everything else is here: which kind
a message is, where work the budget cannot serve now goes back to, and what is counted.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from whoop_bridge.clock import clock
from whoop_bridge.members import census, disconnect, job_sync, outbox
from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.members.tokens import TokenService
from whoop_bridge.members.webhook_sync import ReadLagRetry
from whoop_bridge.models.outbox_message import MemberMessage
from whoop_bridge.models.sync_job import SyncJob, SyncOutcome
from whoop_bridge.webhooks import MEMBER_EVENT_TYPES
from whoop_bridge.whoop.budget import BudgetExhausted

logger = logging.getLogger(__name__)

WEBHOOK, JOB, CONNECTED = "webhook", "job", "connected"
# A webhook deferred this long by the rate budget (its clock) is past the 15 minutes in which
# a change is stored: every further deferral counts `MemberWebhookDeferredLong` (alarmed).
WEBHOOK_DEFERRED_ALARM_SECONDS = 900.0
Runner = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Count:
    """A metric to add (a count, in the function's metrics namespace)."""

    name: str
    value: int = 1


@dataclass
class Handled:
    """A message's outcome and the metrics to add for it."""

    outcome: str
    metrics: list[Count] = field(default_factory=list)


def kind_of(message: Any) -> str | None:
    """WEBHOOK, JOB or CONNECTED for the shapes the intake and this function enqueue; else None."""
    if not isinstance(message, dict):
        return None
    if SyncJob.is_message(message):
        return JOB
    if message.get("detail-type") == MemberMessage.CONNECTED and isinstance(
        (message.get("detail") or {}).get("client_user_id"), str
    ):
        return CONNECTED
    if (
        message.get("type") in MEMBER_EVENT_TYPES
        and isinstance(message.get("trace_id"), str)
        and isinstance(message.get("user_id"), int)
    ):
        return WEBHOOK
    return None


def handle_message(body: str, message_id: str, runners: Mapping[str, Runner], ports: MemberPorts = PORTS) -> Handled:
    """Run one queue message with the runner of its kind. Work the rate budget (or WHOOP's
    read lag) cannot serve now goes back on its queue with a delay; any other failure is
    raised, so the message comes back (5 times, then the dead-letter queue and its alarm)."""
    try:
        message = json.loads(body)
    except ValueError:
        message = None
    kind = kind_of(message)
    if kind is None:
        # Not ours to retry: the intake and this function only enqueue the shapes above.
        logger.error("queue message is not a member webhook or job", extra={"message_id": message_id})
        return Handled(SyncOutcome.MALFORMED, [Count(name="MemberMessageMalformed")])
    config = ports.settings()
    queue_url = config.member_events_queue_url if kind == WEBHOOK else config.member_jobs_queue_url
    try:
        result = runners[kind](message)
    except ReadLagRetry as retry:
        # WHOOP answered 404 right after its own webhook: ask again in a minute.
        delay = job_sync.defer(queue_url, retry.rest, retry.retry_after, ports)
        logger.info(
            "record not readable at WHOOP yet; asking again later",
            extra={"event_type": message.get("type"), "delay_seconds": delay},
        )
        return Handled(SyncOutcome.READ_LAG, [Count(name="MemberRecordNotYetReadable")])
    except BudgetExhausted as exhausted:
        # A job goes back from where the budget stopped it; anything else as it came.
        rest = exhausted.rest if isinstance(exhausted, job_sync.JobDeferred) else message
        counted = [Count(name="MemberWorkDeferred")]
        if kind == WEBHOOK:
            # Each deferral is a new message (no queue-age alarm sees it): its first time is
            # carried, and past the freshness window every deferral is counted for an alarm.
            rest = {**rest, "deferred_since": _deferred_since(rest)}
            if clock().time() - rest["deferred_since"] >= WEBHOOK_DEFERRED_ALARM_SECONDS:
                counted.append(Count(name="MemberWebhookDeferredLong"))
        delay = job_sync.defer(queue_url, rest, exhausted.retry_after, ports)
        logger.info(
            "deferred for the rate budget",
            extra={"kind": kind, "budget_reason": exhausted.reason, "delay_seconds": delay},
        )
        return Handled(SyncOutcome.DEFERRED, counted)
    except IdempotencyAlreadyInProgressError:
        raise  # a duplicate while the first is running: it comes back and finds the result
    except Exception:
        logger.exception("member message failed", extra={"kind": kind, "message_id": message_id})
        raise
    logger.info(
        "member message processed",
        extra={"kind": kind, "outcome": result["outcome"], "event_type": message.get("type")},
    )
    return Handled(result["outcome"], outcome_metrics(result))


def _deferred_since(message: dict[str, Any]) -> float:
    """When (the budget's clock, epoch seconds) the webhook was first deferred: now if never."""
    since = message.get("deferred_since")
    if isinstance(since, int | float) and not isinstance(since, bool) and math.isfinite(since):
        return float(since)
    return clock().time()


def outcome_metrics(result: dict[str, Any]) -> list[Count]:
    """The metrics of a finished message's result (`outcome`, and its counts)."""
    counted: list[Count] = []
    outcome = result["outcome"]
    if outcome == SyncOutcome.UNKNOWN_MEMBER:
        counted.append(Count(name="WebhookForUnknownMember"))
    elif outcome.startswith("skipped_"):
        counted.append(Count(name="MemberSyncSkipped"))
    elif outcome == SyncOutcome.NOT_FOUND:
        counted.append(Count(name="WebhookRecordNotFound"))
    if result.get("unreadable"):
        counted.append(Count(name="RecordsUnreadable", value=result["unreadable"]))
    if result.get("changed") or result.get("repairs"):
        counted.append(Count(name="RecordsChanged", value=result.get("changed") or result.get("repairs")))
    if result.get("repairs"):
        counted.append(Count(name="ReconciliationRepairs", value=result["repairs"]))
    return counted


# Schedules -------------------------------------------------------------------------------------


def upkeep(ports: MemberPorts = PORTS) -> tuple[dict[str, int], list[Count]]:
    """Every 10 minutes: renew tokens, finish deferred revocations, publish stored messages,
    then write the members per status (census.py: a failed count never fails the upkeep).
    The counts (`refreshed`, `reauthorization_required`, `failed`, `revoked`,
    `events_published`) and the metrics."""
    counts = TokenService(ports=ports).refresh_expiring()
    counts["revoked"] = disconnect.retry_pending_revocations(ports)
    counts["events_published"] = outbox.publish_pending(ports)
    logger.info("member upkeep done", extra=counts)
    census.report_members_by_status(ports)
    metrics = [
        Count(name="TokensRefreshed", value=counts["refreshed"]),
        Count(name="TokenRefreshFailed", value=counts["failed"]),
        Count(name="ReauthorizationRequired", value=counts["reauthorization_required"]),
    ]
    return counts, metrics


def reconcile(ports: MemberPorts = PORTS) -> tuple[dict[str, int], list[Count]]:
    """Once a day: queue a reconciliation job per connected member. `{"jobs_queued"}` and the metrics."""
    jobs = job_sync.schedule_reconciliation(ports)
    return {"jobs_queued": jobs}, [Count(name="ReconciliationJobsQueued", value=jobs)]


SCHEDULES: dict[str, Callable[[], tuple[dict[str, int], list[Count]]]] = {
    "refresh_tokens": upkeep,
    "reconcile": reconcile,
}


def run_schedule(action: Any) -> tuple[dict[str, int], list[Count]]:
    """The schedule named `action`; ValueError for an unknown one."""
    if action not in SCHEDULES:
        raise ValueError(f"unknown member_sync action: {str(action)[:64]!r}")
    return SCHEDULES[action]()
