"""How many members stand in each status now: the gauge `MembersByStatus` (dimension
`status`: every status `GET /connections?status=` lists), written by member_sync's
10-minute upkeep beside the changes (`MemberConnectionChanges`) the dashboard plots.

Counted as the status index holds them (MemberTable `gsi2`, docs/data-model.md#status-index):
an `offline_not_granted` connection whose hour-long token has lapsed stays listed there (the
API shows it as `reauthorization_required`), and so it is counted; a connection written
before the index existed is not, until its next status change. A status that cannot be
counted now (DynamoDB throttled, ...) is logged and counted as `MembersNotCounted` and left
out of this run's gauge; it never fails the upkeep it runs in.
"""

from __future__ import annotations

import logging

from whoop_bridge import emf
from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.members.views import LISTED_STATUSES
from whoop_bridge.models.connect_attempt import NOT_CONNECTED
from whoop_bridge.models.connection import ConnectionStatus

GAUGE = "MembersByStatus"
NOT_COUNTED = "MembersNotCounted"

logger = logging.getLogger(__name__)


def count_status(status: str, ports: MemberPorts = PORTS) -> int:
    """The members the status index lists under `status` (one of LISTED_STATUSES) now."""
    if status == NOT_CONNECTED:
        return ports.attempts.count_not_connected()
    return ports.connections.count_by_status(ConnectionStatus(status))


def report_members_by_status(ports: MemberPorts = PORTS) -> dict[str, int]:
    """Count every listed status and write each count as the gauge; `{status: members}` for
    the statuses counted (a failed one is left out, logged and counted, never raised)."""
    counted: dict[str, int] = {}
    for status in LISTED_STATUSES:
        try:
            counted[status] = count_status(status, ports)
        except Exception as error:  # noqa: BLE001 - a missing count must not stop the token upkeep
            logger.warning("members not counted", extra={"status": status, "error_type": type(error).__name__})
            emf.put(NOT_COUNTED, {"status": status})
            continue
        emf.put(GAUGE, {"status": status}, counted[status])
    return counted
