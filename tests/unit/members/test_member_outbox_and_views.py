"""The outbox (publish now, or later when EventBridge refuses) and the member API's views,
against in-memory ports."""

from __future__ import annotations

import time

import pytest
from fakes.members import member_ports

from whoop_bridge.members import outbox, views
from whoop_bridge.models.connection import ConnectionStatus
from whoop_bridge.models.member_record import RecordQuery
from whoop_bridge.models.outbox_message import OutboxMessage
from whoop_bridge.models.sync_job import SyncCause


def test_published_messages_leave_the_outbox_refused_ones_wait_for_the_schedule():
    fakes = member_ports()
    message = OutboxMessage("member.connected", {"client_user_id": "m"}, stored_at="2000-01-01T00:00:00.000Z")
    fakes.outbox.keep([message])
    fakes.bus.refusing = True

    outbox.publish_stored([message], fakes.ports)

    assert list(fakes.outbox.kept) == [message.id] and fakes.bus.published == []
    assert outbox.publish_pending(fakes.ports) == 1
    assert fakes.outbox.kept == {} and fakes.bus.published == [("member.connected", {"client_user_id": "m"})]


def test_a_message_younger_than_the_grace_period_is_left_to_its_own_call():
    fakes = member_ports()
    fakes.outbox.keep([OutboxMessage("member.connected", {})])

    assert outbox.publish_pending(fakes.ports) == 0 and len(fakes.outbox.kept) == 1


def test_the_connection_view_shows_no_token_and_the_backfill_progress():
    fakes = member_ports()
    fakes.connect()
    fakes.progress.start("member-1", SyncCause.BACKFILL, ("sleep",))

    view = views.connection_status("member-1", fakes.ports)

    assert view["status"] == "connected" and "sealed_tokens" not in view and view["access_token_expires_at"]
    assert view["backfill"] == {"sleep": {"state": "queued", "pages": 0, "records": 0, "updated_at": None}}
    assert views.connection_status("nobody", fakes.ports) is None


def test_an_offline_connection_whose_token_expired_shows_reauthorization_required():
    fakes = member_ports()
    fakes.connect(status=ConnectionStatus.OFFLINE_NOT_GRANTED, access_expires_at=int(time.time()) - 1)

    view = views.connection_status("member-1", fakes.ports)

    assert (view["status"], view["status_reason"]) == (
        "reauthorization_required",
        "access_token_expired_without_offline",
    )
    assert view["backfill"] is None


def test_records_of_a_member_never_connected_are_not_found():
    fakes = member_ports()

    with pytest.raises(views.NoConnection):
        views.record_page(RecordQuery("nobody", "sleep"), ports=fakes.ports)
    fakes.connect()
    assert views.record_page(RecordQuery("member-1", "sleep"), ports=fakes.ports) == {"records": [], "next_token": None}


def test_the_profile_view_keeps_the_profile_fields_and_when_they_were_read():
    fakes = member_ports()
    fakes.items.put(
        "member-1", "PROFILE", {"user_id": 1, "email": "m@example.com", "first_name": "M", "last_name": "P"}
    )

    view = views.profile("member-1", fakes.ports)

    assert set(view) == {"user_id", "email", "first_name", "last_name", "updated_at"} and view["user_id"] == 1
    assert views.profile("nobody", fakes.ports) is None
