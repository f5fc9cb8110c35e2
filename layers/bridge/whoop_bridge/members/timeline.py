"""One member's sync timeline (`GET /connections/{client_user_id}/timeline`): the backfill's
and the last reconciliation's steps as the sync progress store keeps them (per record type
and the profile: state, pages, records, when it started and last changed;
models/timeline.py gives the shape). Reads only; never a token or a record.
"""

from __future__ import annotations

import time

from whoop_bridge.members.ports import PORTS, MemberPorts
from whoop_bridge.members.views import NoConnection
from whoop_bridge.models import member_record as records
from whoop_bridge.models.sync_job import PROFILE_STEP, SyncCause, SyncProgress
from whoop_bridge.models.timeline import MemberTimeline, SyncJobTimeline, SyncStepSpan

# Steps in the order a job runs them; any other stored step after them, by name.
STEP_ORDER = (*records.RECORD_TYPES, PROFILE_STEP)


def member_timeline(client_user_id: str, ports: MemberPorts = PORTS) -> MemberTimeline:
    """The member's backfill and reconciliation, each left out when it never ran.
    NoConnection when the member never connected."""
    connection = ports.connections.get(client_user_id)
    if connection is None:
        raise NoConnection(client_user_id)
    jobs = []
    for cause in (SyncCause.BACKFILL, SyncCause.RECONCILIATION):
        progress = ports.progress.progress(client_user_id, cause)
        if progress:
            jobs.append(SyncJobTimeline(cause.value, [_span(step, progress[step]) for step in _ordered(progress)]))
    return MemberTimeline(
        client_user_id=client_user_id, status=connection.status_view(time.time())["status"], jobs=jobs
    )


def _ordered(progress: dict[str, SyncProgress]) -> list[str]:
    known = [step for step in STEP_ORDER if step in progress]
    return known + sorted(set(progress) - set(known))


def _span(step: str, found: SyncProgress) -> SyncStepSpan:
    return SyncStepSpan(
        step=step,
        state=str(found.state),
        pages=int(found.pages or 0),
        records=int(found.records or 0),
        started_at=found.started_at,
        updated_at=found.updated_at,
    )
