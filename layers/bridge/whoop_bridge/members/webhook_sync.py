"""WHOOP's data webhooks: a webhook names a record; it is fetched (a recovery through its
sleep's cycle) and upserted, or deleted (docs/whoop.md#data-webhooks).

WHOOP may redeliver: the caller dedupes on `trace_id`, and upserts keep the newer
`updated_at`, so a repeat changes nothing. WHOOP may answer 404 for a record right after
its own `*.updated` webhook (read lag): the webhook is asked again every
`READ_LAG_RETRY_SECONDS` for `READ_LAG_SECONDS` before the record is declared missing, and a
404 never deletes by itself: only a `*.deleted` webhook, or reconciliation after WHOOP's
own GET answers 404, deletes a stored record.
"""

from __future__ import annotations

import logging
from typing import Any

from whoop_bridge.clock import clock
from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.members.session import MemberSession, NotYetReadable, Skip, log_unreadable
from whoop_bridge.members.tokens import TokenService
from whoop_bridge.models import member_record as records
from whoop_bridge.models.sync_job import SyncCause, SyncOutcome
from whoop_bridge.whoop.budget import WEBHOOK

logger = logging.getLogger(__name__)

# Read lag: how long a record WHOOP answers 404 for after its `*.updated` webhook is asked
# for again (on the budget's clock), and how often.
READ_LAG_SECONDS = 600
READ_LAG_RETRY_SECONDS = 60


class ReadLagRetry(Exception):
    """Ask WHOOP again after `retry_after` seconds (the budget's clock): `rest` is the
    webhook message to queue again, carrying when WHOOP first answered 404."""

    def __init__(self, rest: dict[str, Any], retry_after: float) -> None:
        super().__init__("WHOOP does not show the record yet")
        self.rest = rest
        self.retry_after = retry_after


def handle_webhook(
    message: dict[str, Any], tokens: TokenService | None = None, ports: MemberPorts = PORTS
) -> dict[str, Any]:
    """One WHOOP data webhook `{user_id, id, type, trace_id}`: fetch and upsert, or delete.

    Returns `{"outcome", "changed"}` (and `"unreadable": 1`); raises `BudgetExhausted` when
    it must wait for the budget, `ReadLagRetry` when WHOOP does not show the record yet.
    """
    record_kind, action = message["type"].split(".")
    user_id = int(message["user_id"])
    owner = ports.connections.whoop_user_owner(user_id)
    connection = ports.connections.get(owner) if owner is not None else None
    if connection is None or connection.user_id != user_id:
        return {"outcome": SyncOutcome.UNKNOWN_MEMBER, "changed": 0}
    session = MemberSession(connection, tokens or TokenService(ports=ports), WEBHOOK, ports)
    cause = SyncCause.WEBHOOK
    try:
        if action == "deleted":
            changed = session.delete(record_kind, message["id"], cause)
            if record_kind == "sleep":
                # WHOOP deletes a sleep's recovery with it; its own webhook may be missed.
                changed += session.delete("recovery", message["id"], cause)
        elif record_kind == "recovery":
            changed = session.fetch_recovery(message["id"], cause)
        else:
            changed = session.fetch(record_kind, message["id"], cause)
    except Skip as skip:
        return {"outcome": skip.outcome, "changed": 0}
    except records.RecordInvalid as error:
        # Asking again returns the same record: counted and logged, not retried.
        log_unreadable(error, record_kind)
        return {"outcome": SyncOutcome.UNREADABLE, "changed": 0, "unreadable": 1}
    except NotYetReadable:
        return _read_lag(message)
    finally:
        session.publish()
    return {"outcome": SyncOutcome.DELETED if action == "deleted" else SyncOutcome.FETCHED, "changed": changed}


def _read_lag(message: dict[str, Any]) -> dict[str, Any]:
    """WHOOP answered 404 for the record of a `*.updated` webhook: ask again later, until
    READ_LAG_SECONDS after the first 404; then it is declared missing, and nothing stored is
    deleted (a `*.deleted` webhook or reconciliation does that)."""
    now = clock().time()
    first = message.get("not_found_since")
    first = float(first) if isinstance(first, (int, float)) else now
    if now - first >= READ_LAG_SECONDS:
        logger.warning(
            "WHOOP record still not found after read-lag retries; nothing deleted",
            extra={"event_type": message["type"], "record_id": message["id"]},
        )
        return {"outcome": SyncOutcome.NOT_FOUND, "changed": 0}
    raise ReadLagRetry({**message, "not_found_since": first}, READ_LAG_RETRY_SECONDS)
