"""The member models' own rules: a connection's usability and view, a sync job's cursor and
message, an OAuth state's outcome."""

from __future__ import annotations

from datetime import UTC, datetime

from whoop_bridge.models.connection import Connection, ConnectionStatus
from whoop_bridge.models.oauth_state import CallbackStatus, OAuthState
from whoop_bridge.models.sync_job import SyncCause, SyncJob, SyncOutcome


def test_a_reconnect_continues_the_token_version_count():
    previous = Connection("m", ConnectionStatus.DISCONNECTED, token_version=7)

    new = Connection.consented(
        "m", 1, scopes=["offline"], refreshable=True, now="t", expires_at=10, sealed_tokens=b"x", previous=previous
    )

    assert (new.token_version, new.status, new.refreshable, new.usable) == (8, "connected", True, True)


def test_only_a_usable_status_with_a_sealed_pair_hands_out_tokens():
    assert not Connection("m", ConnectionStatus.CONNECTED).usable  # no pair
    assert not Connection("m", ConnectionStatus.REAUTHORIZATION_REQUIRED, sealed_tokens=b"x").usable
    assert Connection("m", ConnectionStatus.OFFLINE_NOT_GRANTED, sealed_tokens=b"x").usable


def test_the_status_view_never_holds_the_sealed_pair():
    view = Connection("m", ConnectionStatus.CONNECTED, sealed_tokens=b"secret", access_expires_at=0).status_view(1.0)

    assert b"secret" not in [value for value in view.values() if isinstance(value, bytes)]
    assert view["access_token_expires_at"] == "1970-01-01T00:00:00Z"


def test_a_lease_lapses_at_its_time():
    connection = Connection("m", ConnectionStatus.CONNECTED, refresh_lease_until=100.0)

    assert not connection.lease_lapsed(99.0) and connection.lease_lapsed(100.5)


def test_a_sync_job_round_trips_as_its_queue_message():
    job = SyncJob.new("m", SyncCause.RECONCILIATION, 3, ("cycle", "sleep"), datetime(2026, 11, 30, tzinfo=UTC))
    message = job.to_message()

    assert message == {
        "job": "sync",
        "client_user_id": "m",
        "cause": "reconciliation",
        "start": "2026-11-27T00:00:00.000Z",
        "end": "2026-11-30T00:00:00.000Z",
        "steps": ["cycle", "sleep"],
        "next_token": None,
        "seen": [],
    }
    assert SyncJob.is_message(message) and SyncJob.from_message(message) == job


def test_a_backfill_ends_with_the_profile_and_carries_no_seen_list():
    job = SyncJob.new("m", SyncCause.BACKFILL, 30, ("cycle",), datetime(2026, 11, 30, tzinfo=UTC))

    assert job.steps == ["cycle", "profile"] and "seen" not in job.to_message()


def test_a_reconciliation_step_that_lists_too_many_ids_repairs_updates_only():
    job = SyncJob("m", SyncCause.RECONCILIATION, "a", "b", ["sleep", "cycle"], seen=[])

    job.listed(["1", "2"], limit=3)
    assert job.seen == ["1", "2"]
    job.listed(["3", "4"], limit=3)
    assert job.seen is None
    job.next_step()
    assert (job.steps, job.seen, job.next_token) == (["cycle"], [], None)
    job.listed(["5", None], limit=3)  # an id that cannot be read: it could be any stored one
    assert job.seen is None


def test_skipped_outcomes_say_so():
    assert SyncOutcome.SKIPPED_FORBIDDEN.skipped and not SyncOutcome.DONE.skipped


def test_a_taken_states_outcome_is_answered_until_it_lapses():
    state = OAuthState("m", "https://x", taken_at=1, outcome=CallbackStatus.DENIED, outcome_until=100)

    assert state.taken and state.outcome_current(99) and not state.outcome_current(100)
