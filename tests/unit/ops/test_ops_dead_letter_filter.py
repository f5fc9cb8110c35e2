"""What `dead-letters list` may print of a message: allow-listed ids, never anything else."""

from __future__ import annotations

import json

from whoop_bridge.ops.dead_letters import DeadLetterQueue, select, short_name, shown
from whoop_bridge.ops.errors import FAILED, OpsError


def test_a_partner_webhook_shows_its_event_type_resource_id_and_attempt():
    ids, hidden = shown(json.dumps({"event_type": "lab_requisition.created", "resource_id": "req-1", "attempt": 2}))
    assert ids == {"event_type": "lab_requisition.created", "resource_id": "req-1", "attempt": 2}
    assert hidden == 0


def test_a_key_outside_the_allow_list_is_counted_and_never_shown():
    body = {"event_type": "x", "patient": {"first_name": "Jordan"}, "first_name": "Jordan", "email": "j@example.com"}
    ids, hidden = shown(json.dumps(body))
    assert ids == {"event_type": "x"}
    assert hidden == 3
    assert "Jordan" not in json.dumps(ids)


def test_an_allowed_key_holding_an_object_or_a_long_text_shows_no_content():
    ids, hidden = shown(json.dumps({"id": {"first_name": "Jordan"}, "resource_id": "r" * 500}))
    assert "id" not in ids
    assert hidden == 1
    assert len(ids["resource_id"]) <= 81 and ids["resource_id"].endswith("…")


def test_an_allowed_key_holding_free_text_or_markup_shows_none_of_it():
    body = {
        "resource_id": "Jordan Rivera <script>",
        "cause": "Jordan's record, 1988-04-17",
        "id": ["Jordan Rivera"],
        "steps": ["sleep", "Jordan R"],
        "trace_id": "8fc65919-3139-4a7c-85df-c58ecaf2cbbe",
    }
    ids, hidden = shown(json.dumps(body))
    assert ids == {"trace_id": "8fc65919-3139-4a7c-85df-c58ecaf2cbbe"}
    assert hidden == 4
    assert "Jordan" not in json.dumps(ids)


def test_a_sync_job_shows_its_cursor_and_only_the_count_of_the_ids_it_has_seen():
    job = {
        "job": "sync",
        "client_user_id": "user-8841",
        "cause": "reconciliation",
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-11-02T00:00:00Z",
        "steps": ["sleep", "recovery"],
        "next_token": "abc",
        "seen": ["a", "b", "c"],
    }
    ids, hidden = shown(json.dumps(job))
    assert ids["steps"] == "sleep,recovery"
    assert ids["seen"] == "3 ids"
    assert ids["client_user_id"] == "user-8841" and hidden == 0


def test_a_bus_message_shows_its_type_and_the_allowed_keys_of_its_detail():
    message = {
        "id": "evt-1",
        "detail-type": "member.connected",
        "detail": {"client_user_id": "user-8841", "user_id": 10129, "scopes": ["read:recovery"], "email": "x@y"},
        "resources": [],
    }
    ids, hidden = shown(json.dumps(message))
    assert ids == {
        "id": "evt-1",
        "detail-type": "member.connected",
        "detail.client_user_id": "user-8841",
        "detail.user_id": 10129,
    }
    assert hidden == 3  # resources, detail.scopes, detail.email


def test_a_body_that_is_not_a_json_object_shows_nothing():
    assert shown("Jordan Rivera, 1988-04-17") == ({}, 1)
    assert shown(json.dumps(["req-1"])) == ({}, 1)


def test_queue_names_are_the_logical_ids_shortened():
    assert short_name("PartnerEventsDeadLetterQueue") == "partner-events"
    assert short_name("ScheduleDeadLetterQueue") == "schedule"


def test_a_queue_is_selected_by_short_name_or_logical_id_and_an_unknown_name_lists_the_names():
    queues = [
        DeadLetterQueue("partner-events", "PartnerEventsDeadLetterQueue", "u1", "a1", "PartnerEventsQueue", "s1"),
        DeadLetterQueue("schedule", "ScheduleDeadLetterQueue", "u2", "a2"),
    ]
    assert select(queues, "partner-events") is queues[0]
    assert select(queues, "ScheduleDeadLetterQueue") is queues[1]
    try:
        select(queues, "member-events")
    except OpsError as error:
        assert error.exit_code == FAILED
        assert "partner-events, schedule" in str(error)
    else:
        raise AssertionError("an unknown queue was selected")
