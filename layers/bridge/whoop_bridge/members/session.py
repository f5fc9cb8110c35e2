"""One member's WHOOP calls for one queue message (a webhook or a job run): a token
(refreshed once on a 401), the scopes the member granted, and the stored records.

A member whose data cannot be fetched now, and for whom retrying will not help, ends the
work with `Skip` (its outcome); WHOOP answering 404 for a record a `*.updated` webhook
named is `NotYetReadable` (WHOOP's read lag; docs/whoop.md#data-webhooks).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from whoop_bridge.members import outbox
from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.members.tokens import NotConnected, ReauthorizationRequired, TokenService
from whoop_bridge.models import member_record as records
from whoop_bridge.models.connection import Connection
from whoop_bridge.models.member_profile import MemberItem, kept
from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.models.sync_job import SyncOutcome
from whoop_bridge.whoop.http import WhoopNotFound, WhoopUnauthorized

logger = logging.getLogger(__name__)

# The OAuth scope each record type (or single item) is read with.
SCOPES = {
    "cycle": "read:cycles",
    "sleep": "read:sleep",
    "recovery": "read:recovery",
    "workout": "read:workout",
    "profile": "read:profile",
    "body_measurement": "read:body_measurement",
}
# A data call refreshes the token inline when it expires within this.
CALL_MARGIN_SECONDS = 300


class Skip(Exception):
    """This member's data cannot be fetched now and retrying will not help: `outcome` says why."""

    def __init__(self, outcome: SyncOutcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class NotYetReadable(Exception):
    """WHOOP answered 404 for the record a `*.updated` webhook named."""


def log_unreadable(error: records.RecordInvalid, record_type: str) -> None:
    """A record the bridge cannot read: its id and the fields it lacks; never a value (a
    record is health data)."""
    logger.warning(
        "WHOOP record skipped: the bridge cannot read it",
        extra={"record_type": record_type, "record_id": error.record_id, "fields": list(error.fields)},
    )


class MemberSession:
    """One member's WHOOP calls at one budget priority; the bus messages of every change
    it stored go out with `publish`."""

    def __init__(self, connection: Connection, tokens: TokenService, priority: str, ports: MemberPorts = PORTS) -> None:
        self.client_user_id = connection.client_user_id
        self.user_id = int(connection.user_id or 0)
        self._connection: Connection | None = connection
        self._tokens = tokens
        self._priority = priority
        self._ports = ports
        self._api = ports.whoop()
        self._token: str | None = None
        self.scopes = frozenset(connection.scopes or ())
        self.messages: list[OutboxMessage] = []

    def granted(self, step: str) -> bool:
        """The member granted the scope this record type (or item) is read with."""
        return SCOPES[step] in self.scopes

    def _call(self, operation: Any, *args: Any, scope: str, **kwargs: Any) -> Any:
        if scope not in self.scopes:
            raise Skip(SyncOutcome.SKIPPED_SCOPE_NOT_GRANTED)
        for attempt in (1, 2):
            token = self._access_token(force_refresh=attempt == 2)
            try:
                return operation(token, *args, priority=self._priority, **kwargs)
            except WhoopUnauthorized as error:
                if error.status == 403:
                    raise Skip(SyncOutcome.SKIPPED_FORBIDDEN) from None  # WHOOP: a deactivated membership
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _access_token(self, *, force_refresh: bool) -> str:
        if self._token is None or force_refresh:
            try:
                # A 401 on a token we believed good: refresh it (whatever its expiry) once.
                margin = math.inf if force_refresh else CALL_MARGIN_SECONDS
                self._token = self._tokens.access_token(self.client_user_id, margin=margin, connection=self._connection)
                self._connection = None  # read afresh after this
            except ReauthorizationRequired:
                raise Skip(SyncOutcome.SKIPPED_REAUTHORIZATION_REQUIRED) from None
            except NotConnected:
                raise Skip(SyncOutcome.SKIPPED_NOT_CONNECTED) from None
        return self._token

    def still_connected(self) -> bool:
        """The member has not disconnected since this session began (read again now)."""
        connection = self._ports.connections.get(self.client_user_id)
        return connection is not None and not connection.disconnected

    def store(self, record_type: str, raw: dict[str, Any], cause: str, *, sleep_start: str | None = None) -> int:
        """Upsert a record; 1 when it changed. Its message goes out with `publish`. A
        recovery is windowed by its sleep's start: `sleep_start`, or the stored sleep's."""
        record = records.normalize(record_type, raw)
        if record_type == "recovery" and sleep_start is None:
            sleep = self._ports.records.get(self.client_user_id, "sleep", record["sleep_id"])
            sleep_start = sleep["start"] if sleep else None
        stored = self._ports.records.upsert(
            self.client_user_id, self.user_id, record_type, record, cause, sleep_start=sleep_start
        )
        self.messages += stored
        return 1 if stored else 0

    def delete(self, record_type: str, record_id: str, cause: str) -> int:
        stored = self._ports.records.delete(self.client_user_id, self.user_id, record_type, record_id, cause)
        self.messages += stored
        return 1 if stored else 0

    def publish(self) -> None:
        """The messages of every change so far, in as few calls as EventBridge allows."""
        outbox.publish_stored(self.messages, self._ports)
        self.messages = []

    def fetch(self, record_type: str, record_id: str, cause: str) -> int:
        """The record a `*.updated` webhook names; `NotYetReadable` on a 404 (read lag)."""
        try:
            raw = self._call(self._api.record, record_type, record_id, scope=SCOPES[record_type])
        except WhoopNotFound:
            raise NotYetReadable() from None
        return self.store(record_type, raw, cause)

    def fetch_recovery(self, sleep_id: str, cause: str) -> int:
        """A recovery by its sleep: the sleep names the cycle, the cycle has the recovery.
        `NotYetReadable` when WHOOP answers 404 for either."""
        if not self.granted("recovery"):
            raise Skip(SyncOutcome.SKIPPED_SCOPE_NOT_GRANTED)
        # The stored sleep names the cycle already (its own webhook came first): one call.
        sleep = self._ports.records.get(self.client_user_id, "sleep", sleep_id)
        changed = 0
        if sleep is None or sleep.get("cycle_id") is None or not sleep.get("start"):
            sleep = self._sleep(sleep_id)
            changed = self.store("sleep", sleep, cause)  # fetched anyway: keep it
        try:
            recovery = self._call(self._api.cycle_recovery, sleep["cycle_id"], scope=SCOPES["recovery"])
        except WhoopNotFound:
            raise NotYetReadable() from None
        return changed + self.store("recovery", recovery, cause, sleep_start=sleep["start"])

    def _sleep(self, sleep_id: str) -> dict[str, Any]:
        """A sleep, normalised and with the `cycle_id` its recovery is read by."""
        try:
            raw = self._call(self._api.record, "sleep", sleep_id, scope=SCOPES["sleep"])
        except WhoopNotFound:
            raise NotYetReadable() from None
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
        except (WhoopNotFound, NotYetReadable):
            return self.delete(record_type, record_id, cause)
        except records.RecordInvalid as error:
            log_unreadable(error, record_type)  # WHOOP still has it: nothing is deleted
            return 0

    def page(
        self, record_type: str, start: str, end: str, next_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of WHOOP's listing of a record type in [start, end), and the next token."""
        return self._call(
            self._api.page, record_type, start=start, end=end, next_token=next_token, scope=SCOPES[record_type]
        )

    def profile(self) -> int:
        """Store the member's profile and, when granted, body measurement; how many were stored."""
        profile = self._call(self._api.basic_profile, scope=SCOPES["profile"])
        self._ports.items.put(self.client_user_id, MemberItem.PROFILE, kept(MemberItem.PROFILE, profile))
        try:
            body = self._call(self._api.body_measurement, scope=SCOPES["body_measurement"])
        except Skip:
            return 1
        self._ports.items.put(self.client_user_id, MemberItem.BODY_MEASUREMENT, kept(MemberItem.BODY_MEASUREMENT, body))
        return 2
