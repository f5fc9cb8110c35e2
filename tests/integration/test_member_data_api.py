"""Member records on the local stack (moto from template.yaml): the store keeps the newest
version of each record and announces each change once, and member_api's data routes read
them back by window and page."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timedelta

import boto3
import pytest

from integration_harness import SAMPLE_CLIENT_USER_ID, load_event

RECORD_TYPES = ("cycle", "sleep", "recovery", "workout")
UPDATED = "member.record.updated"
DELETED = "member.record.deleted"
# One WHOOP user per connected member, as WHOOP maps them.
_USER_IDS = itertools.count(20001)


# Helpers ----------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sleep(
    start: str,
    *,
    sleep_id: str | None = None,
    updated_at: str | None = None,
    score_state: str = "SCORED",
    user_id: int = 10129,
    **extra,
) -> dict:
    begins = datetime.fromisoformat(start)
    return {
        "id": sleep_id or str(uuid.uuid4()),
        "cycle_id": 93845,
        "v1_id": None,
        "user_id": user_id,
        "created_at": _iso(begins + timedelta(hours=8)),
        "updated_at": updated_at or _iso(begins + timedelta(hours=9)),
        "start": start,
        "end": _iso(begins + timedelta(hours=8)),
        "timezone_offset": "-05:00",
        "nap": False,
        "score_state": score_state,
        "score": None
        if score_state != "SCORED"
        else {
            "stage_summary": {
                "total_in_bed_time_milli": 30272735,
                "total_awake_time_milli": 1403507,
                "total_no_data_time_milli": 0,
                "total_light_sleep_time_milli": 14905851,
                "total_slow_wave_sleep_time_milli": 6630370,
                "total_rem_sleep_time_milli": 5879573,
                "sleep_cycle_count": 3,
                "disturbance_count": 12,
            },
            "sleep_needed": {
                "baseline_milli": 27395716,
                "need_from_sleep_debt_milli": 352230,
                "need_from_recent_strain_milli": 208595,
                "need_from_recent_nap_milli": -12312,
            },
            "respiratory_rate": 16.11328125,
            "sleep_performance_percentage": 98.0,
            "sleep_consistency_percentage": 90.0,
            "sleep_efficiency_percentage": 91.69533848,
        },
        **extra,
    }


def _record(record_type: str, start: str, number: int = 1) -> dict:
    """A small scored record of any type whose record time is `start`."""
    common = {"user_id": 10129, "created_at": start, "updated_at": start, "score_state": "SCORED"}
    if record_type == "sleep":
        return _sleep(start)
    if record_type == "cycle":
        return {
            **common,
            "id": 90000 + number,
            "start": start,
            "end": None,
            "timezone_offset": "+00:00",
            "score": {"strain": 5.2951527},
        }
    if record_type == "recovery":
        return {
            **common,
            "cycle_id": 90000 + number,
            "sleep_id": str(uuid.uuid4()),
            "score": {"recovery_score": 44.0, "hrv_rmssd_milli": 31.813562},
        }
    return {
        **common,
        "id": str(uuid.uuid4()),
        "start": start,
        "end": start,
        "timezone_offset": "+00:00",
        "sport_name": "running",
        "score": {"strain": 8.2463},
    }


def _connect(client_user_id: str, user_id: int | None = None) -> None:
    """A connected member, stored as the OAuth callback stores one (no tokens needed here),
    with a WHOOP user of its own."""
    from whoop_bridge.models.connection import Connection, ConnectionStatus
    from whoop_bridge.store import connection_store
    from whoop_bridge.times import now_iso

    user_id = user_id or next(_USER_IDS)
    connection = Connection(client_user_id, ConnectionStatus.CONNECTED, 1, user_id, connected_at=now_iso())
    connection_store.save(connection, None, moved_from=None, released_user_id=None, messages=[])


def _store(client_user_id: str, record_type: str, record: dict, cause: str = "webhook") -> list:
    """Upsert and publish, as member_sync does; the stored outbox messages."""
    from whoop_bridge.members import outbox
    from whoop_bridge.store import record_store

    stored = record_store.upsert(client_user_id, record["user_id"], record_type, record, cause)
    outbox.publish_stored(stored)
    return stored


def _records_event(client_user_id: str, record_type: str = "sleep", **query: str) -> dict:
    event = load_event(
        "member_api_get_sleep.json", **{SAMPLE_CLIENT_USER_ID: client_user_id, "/sleep": f"/{record_type}"}
    )
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {key: [value] for key, value in query.items()} or None
    return event


def _get(bridge, event: dict) -> tuple[int, dict, dict]:
    answer = bridge.invoke("MemberApiFunction", event)
    headers = {key: values[-1] for key, values in (answer.get("multiValueHeaders") or {}).items()} | (
        answer.get("headers") or {}
    )
    return answer["statusCode"], json.loads(answer["body"]), headers


def _read(bridge, client_user_id: str, record_type: str = "sleep", **query: str) -> tuple[int, dict]:
    status, body, _headers = _get(bridge, _records_event(client_user_id, record_type, **query))
    return status, body


def _read_all(bridge, client_user_id: str, record_type: str, **query: str) -> tuple[list[dict], int]:
    """Every page of a listing; the records in the order given and how many pages it took."""
    found: list[dict] = []
    pages = 0
    token = None
    while True:
        status, body = _read(bridge, client_user_id, record_type, **query, **({"next_token": token} if token else {}))
        assert status == 200, body
        pages += 1
        found += body["records"]
        token = body["next_token"]
        if token is None:
            return found, pages
        assert pages < 50, "the listing never ends"


def _outbox_left(bridge) -> list[dict]:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(bridge.stack.output("MemberTable"))
    return [item for item in table.scan()["Items"] if item["pk"].startswith("OUTBOX#")]


# The sample event ---------------------------------------------------------------------------


def test_sample_sleep_event_reads_its_window_newest_first_two_at_a_time(bridge):
    _connect(SAMPLE_CLIENT_USER_ID)
    starts = {
        "before": "2026-10-31T23:59:59.999Z",
        "at_start": "2026-11-01T00:00:00.000Z",  # start is inclusive
        "early": "2026-11-05T23:10:00.000Z",
        "late": "2026-11-20T22:45:00.000Z",
        "at_end": "2026-11-22T00:00:00.000Z",  # end is exclusive
    }
    stored = {name: _sleep(start) for name, start in starts.items()}
    for sleep in stored.values():
        assert _store(SAMPLE_CLIENT_USER_ID, "sleep", sleep)

    status, first, headers = _get(bridge, load_event("member_api_get_sleep.json"))

    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert [record["id"] for record in first["records"]] == [stored["late"]["id"], stored["early"]["id"]]
    assert first["records"][0] == stored["late"]  # the normalised record, floats exact
    assert first["next_token"]
    follow = load_event("member_api_get_sleep.json")
    follow["queryStringParameters"]["next_token"] = first["next_token"]
    follow["multiValueQueryStringParameters"]["next_token"] = [first["next_token"]]
    status, second, _headers = _get(bridge, follow)
    assert status == 200
    assert [record["id"] for record in second["records"]] == [stored["at_start"]["id"]]
    assert second["next_token"] is None


# Upsert and delete --------------------------------------------------------------------------


def test_an_older_version_changes_nothing_and_announces_nothing(bridge):
    from whoop_bridge.store import record_store

    member = "records-older"
    newer = _sleep("2026-11-10T23:00:00.000Z", updated_at="2026-11-11T09:00:00.000Z", respiratory_rate_note="x")
    older = {**newer, "updated_at": "2026-11-11T08:59:59.999Z", "nap": True}

    assert len(_store(member, "sleep", newer)) == 1
    assert _store(member, "sleep", older) == []
    assert _store(member, "sleep", newer) == []  # the same version again: a duplicate webhook

    stored = record_store.get(member, "sleep", newer["id"])
    assert stored["nap"] is False and stored["updated_at"] == "2026-11-11T09:00:00.000Z"
    assert len(bridge.published(UPDATED, client_user_id=member, record_id=newer["id"])) == 1

    newest = {**newer, "updated_at": "2026-11-11T10:00:00.000+01:00", "nap": True}  # 09:00Z: not newer
    assert _store(member, "sleep", newest) == []
    newest["updated_at"] = "2026-11-11T10:00:00.001+01:00"
    assert len(_store(member, "sleep", newest)) == 1
    assert record_store.get(member, "sleep", newer["id"])["nap"] is True
    assert len(bridge.published(UPDATED, client_user_id=member, record_id=newer["id"])) == 2


def test_a_scored_record_replaces_a_pending_one_of_the_same_updated_at(bridge):
    from whoop_bridge.store import record_store

    member = "records-pending"
    pending = _sleep("2026-11-12T23:00:00.000Z", updated_at="2026-11-13T07:00:00.000Z", score_state="PENDING_SCORE")
    scored = _sleep("2026-11-12T23:00:00.000Z", sleep_id=pending["id"], updated_at="2026-11-13T07:00:00.000Z")

    assert len(_store(member, "sleep", pending)) == 1
    assert len(_store(member, "sleep", scored)) == 1
    assert record_store.get(member, "sleep", pending["id"])["score_state"] == "SCORED"
    # ... but never the other way round, and a pending one never replaces a pending one.
    assert _store(member, "sleep", pending) == []
    assert record_store.get(member, "sleep", pending["id"])["score"]["respiratory_rate"] == 16.11328125
    unscorable = {**scored, "score_state": "UNSCORABLE", "score": None}
    assert _store(member, "sleep", unscorable) == []

    published = bridge.published(UPDATED, client_user_id=member, record_id=pending["id"])
    assert [detail["record"]["score_state"] for detail in published] == ["PENDING_SCORE", "SCORED"]


def test_the_updated_event_is_published_with_the_record_and_leaves_the_outbox(bridge):
    member = "records-event"
    recovery = _record("recovery", "2026-11-14T07:30:00.000+02:00")

    (stored,) = _store(member, "recovery", recovery, cause="backfill")

    (detail,) = bridge.published(UPDATED, client_user_id=member)
    assert detail["version"] == "1" and detail["record_version"] == 2 and detail["cause"] == "backfill"
    assert detail["record_type"] == "recovery" and detail["record_id"] == recovery["sleep_id"]  # keyed by its sleep
    assert detail["user_id"] == 10129
    assert detail["record"]["created_at"] == "2026-11-14T05:30:00.000Z"
    assert detail["record"]["score"]["hrv_rmssd_milli"] == 31.813562
    assert all(item["pk"] != f"OUTBOX#{stored.id}" for item in _outbox_left(bridge))


def test_a_delete_is_announced_once(bridge):
    from whoop_bridge.members import outbox
    from whoop_bridge.store import record_store

    member = "records-delete"
    workout = _record("workout", "2026-11-15T17:00:00.000Z")
    _store(member, "workout", workout)

    first = record_store.delete(member, 10129, "workout", workout["id"], "webhook")
    outbox.publish_stored(first)
    second = record_store.delete(member, 10129, "workout", workout["id"], "webhook")
    outbox.publish_stored(second)

    assert len(first) == 1 and second == []
    assert record_store.get(member, "workout", workout["id"]) is None
    assert bridge.published(DELETED, client_user_id=member) == [
        {
            "version": "1",
            "client_user_id": member,
            "user_id": 10129,
            "record_type": "workout",
            "record_id": workout["id"],
            "cause": "webhook",
        }
    ]
    assert record_store.delete(member, 10129, "workout", str(uuid.uuid4()), "reconciliation") == []


def test_an_invalid_record_is_refused_and_nothing_is_stored(bridge):
    from whoop_bridge.models.member_record import RecordInvalid
    from whoop_bridge.store import record_store

    member = "records-invalid"
    sleep = _sleep("2026-11-16T23:00:00.000Z")
    del sleep["updated_at"]

    with pytest.raises(RecordInvalid, match="updated_at"):
        record_store.upsert(member, 10129, "sleep", sleep, "webhook")
    assert record_store.get(member, "sleep", sleep["id"]) is None


def test_ids_between_lists_every_stored_id_of_the_window(bridge):
    from whoop_bridge.store import record_store

    member = "records-ids"
    inside = [_record("cycle", f"2026-11-{day:02d}T04:00:00.000Z", day) for day in (2, 3, 4)]
    outside = [_record("cycle", "2026-11-01T03:59:59.999Z", 1), _record("cycle", "2026-11-05T04:00:00.000Z", 5)]
    for cycle in inside + outside:
        _store(member, "cycle", cycle)
    _store(member, "sleep", _sleep("2026-11-03T04:00:00.000Z"))

    found = record_store.ids_between(member, "cycle", "2026-11-01T04:00:00Z", "2026-11-05T05:00:00+01:00")

    assert found == {str(cycle["id"]) for cycle in inside}


# The data routes -----------------------------------------------------------------------------


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_each_route_answers_its_own_type_newest_first(bridge, record_type):
    member = f"records-route-{record_type}"
    _connect(member)
    mine = [_record(record_type, f"2026-11-{day:02d}T06:00:00.000Z", day) for day in (3, 9, 6)]
    for record in mine:
        _store(member, record_type, record)
    other_type = "cycle" if record_type != "cycle" else "sleep"
    _store(member, other_type, _record(other_type, "2026-11-07T06:00:00.000Z", 7))

    status, body = _read(bridge, member, record_type)

    assert status == 200 and body["next_token"] is None
    times = [record["created_at" if record_type == "recovery" else "start"] for record in body["records"]]
    assert times == ["2026-11-09T06:00:00.000Z", "2026-11-06T06:00:00.000Z", "2026-11-03T06:00:00.000Z"]


def test_pages_give_every_record_exactly_once(bridge):
    member = "records-pages"
    _connect(member)
    # Seven workouts, two of them starting at the same moment (ordered by id then).
    starts = [
        "2026-11-01T07:00:00.000Z",
        "2026-11-02T07:00:00.000Z",
        "2026-11-02T07:00:00.000Z",
        "2026-11-03T07:00:00.000Z",
    ]
    starts += ["2026-11-04T07:00:00.000Z", "2026-11-05T07:00:00.000Z", "2026-11-06T07:00:00.000Z"]
    workouts = [_record("workout", start) for start in starts]
    for workout in workouts:
        _store(member, "workout", workout)

    found, pages = _read_all(bridge, member, "workout", limit="3")

    expected = sorted(workouts, key=lambda workout: (workout["start"], workout["id"]), reverse=True)
    assert [workout["id"] for workout in found] == [workout["id"] for workout in expected]
    assert pages >= 3
    everything, one_page = _read_all(bridge, member, "workout", limit="100")
    assert len(everything) == 7 and one_page == 1


def test_a_window_with_pages_keeps_to_the_window(bridge):
    member = "records-window"
    _connect(member)
    cycles = [_record("cycle", f"2026-11-{day:02d}T05:00:00.000Z", day) for day in range(1, 11)]
    for cycle in cycles:
        _store(member, "cycle", cycle)

    found, _pages = _read_all(
        bridge, member, "cycle", start="2026-11-03T05:00:00+00:00", end="2026-11-08T06:00:00+01:00", limit="2"
    )

    assert [cycle["id"] for cycle in found] == [90007, 90006, 90005, 90004, 90003]
    status, body = _read(bridge, member, "cycle", start="2026-11-09T00:00:00Z")
    assert status == 200 and [cycle["id"] for cycle in body["records"]] == [90010, 90009]
    status, body = _read(bridge, member, "cycle", end="2026-11-02T05:00:00.000Z")
    assert status == 200 and [cycle["id"] for cycle in body["records"]] == [90001]


def test_a_connected_member_with_no_records_gets_an_empty_list(bridge):
    _connect("records-none")
    assert _read(bridge, "records-none", "recovery") == (200, {"records": [], "next_token": None})


def test_an_unknown_member_is_a_404(bridge):
    status, body = _read(bridge, "records-nobody", "sleep")
    assert status == 404 and body["error"] == "not_found"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "query.limit"),
        ({"limit": "101"}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"start": "last week"}, "query.start"),
        ({"start": "2026-11-01T00:00:00"}, "query.start"),  # no offset: ambiguous
        ({"end": "2026-13-01T00:00:00Z"}, "query.end"),
        # Valid date-times whose UTC time is outside the years 1-9999.
        ({"start": "0001-01-01T00:00:00+01:00"}, "query.start"),
        ({"start": "0001-01-01T00:30:00 01:00"}, "query.start"),
        ({"end": "9999-12-31T23:59:59-01:00"}, "query.end"),
        ({"start": "2026-11-02T00:00:00Z", "end": "2026-11-02T00:00:00Z"}, "query.end"),
        ({"start": "2026-11-02T01:00:00+01:00", "end": "2026-11-01T23:59:59Z"}, "query.end"),
        ({"next_token": "not-a-token"}, "query.next_token"),
        ({"next_token": "eyJwayI6Ik1FTUJFUiNzb21lb25lLWVsc2UifQ"}, "query.next_token"),
    ],
)
def test_bad_query_parameters_are_a_400_naming_them(bridge, query, field):
    _connect("records-bad-query")

    status, body = _read(bridge, "records-bad-query", "sleep", **query)

    assert status == 400, body
    assert body["error"] == "invalid_request"
    assert field in [problem["field"] for problem in body["problems"]]


def test_a_page_token_of_another_member_type_or_window_is_a_400(bridge):
    for member in ("records-token-a", "records-token-b"):
        _connect(member)
        for day in (1, 2, 3):
            _store(member, "sleep", _sleep(f"2026-11-{day:02d}T23:00:00.000Z"))
            _store(member, "cycle", _record("cycle", f"2026-11-{day:02d}T23:00:00.000Z", day))
    status, body = _read(bridge, "records-token-a", "sleep", limit="1")
    assert status == 200 and body["next_token"]
    token = body["next_token"]

    assert _read(bridge, "records-token-b", "sleep", next_token=token)[0] == 400
    assert _read(bridge, "records-token-a", "cycle", next_token=token)[0] == 400
    assert _read(bridge, "records-token-a", "sleep", next_token=token, end="2026-11-02T00:00:00Z")[0] == 400
    status, body = _read(bridge, "records-token-a", "sleep", next_token=token)
    assert status == 200 and len(body["records"]) == 2 and body["next_token"] is None


def test_the_profile_route_still_answers_beside_the_record_routes(bridge):
    from whoop_bridge.models.connection import Connection, ConnectionStatus
    from whoop_bridge.store import connection_store
    from whoop_bridge.times import now_iso

    member = "records-profile"
    connection = Connection(member, ConnectionStatus.CONNECTED, 1, 4471, connected_at=now_iso())
    connection_store.save(
        connection,
        {"user_id": 4471, "email": "m@example.com", "first_name": "M", "last_name": "P"},
        moved_from=None,
        released_user_id=None,
        messages=[],
    )
    event = load_event("member_api_get_profile.json", **{SAMPLE_CLIENT_USER_ID: member})

    answer = bridge.invoke("MemberApiFunction", event)

    assert answer["statusCode"] == 200 and json.loads(answer["body"])["user_id"] == 4471


# Disconnect -----------------------------------------------------------------------------------


def _disconnect(bridge, member: str) -> None:
    event = load_event("member_api_delete_connection.json", **{SAMPLE_CLIENT_USER_ID: member})
    assert bridge.invoke("MemberApiFunction", event)["statusCode"] == 204


def test_disconnect_with_delete_data_on_disconnect_removes_the_records(bridge):
    from whoop_bridge.store import record_store

    member = "records-disconnect"
    _connect(member)
    kept_elsewhere = "records-disconnect-other"
    _connect(kept_elsewhere)
    for record_type in RECORD_TYPES:
        _store(member, record_type, _record(record_type, "2026-11-18T06:00:00.000Z"))
        _store(kept_elsewhere, record_type, _record(record_type, "2026-11-18T06:00:00.000Z"))
    assert all(_read(bridge, member, record_type)[1]["records"] for record_type in RECORD_TYPES)

    _disconnect(bridge, member)  # DeleteDataOnDisconnect is "true" by default

    for record_type in RECORD_TYPES:
        assert _read(bridge, member, record_type) == (200, {"records": [], "next_token": None})
        assert record_store.ids_between(member, record_type, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z") == set()
        assert len(_read(bridge, kept_elsewhere, record_type)[1]["records"]) == 1
    assert bridge.published("member.disconnected", client_user_id=member, data_deleted=True)


def test_a_disconnected_member_whose_data_was_kept_still_reads_it(bridge, monkeypatch):
    from whoop_bridge.config import settings

    member = "records-kept"
    _connect(member)
    sleep = _sleep("2026-11-19T23:00:00.000Z")
    _store(member, "sleep", sleep)
    monkeypatch.setenv("DELETE_DATA_ON_DISCONNECT", "false")
    settings.cache_clear()
    try:
        _disconnect(bridge, member)
    finally:
        monkeypatch.undo()
        settings.cache_clear()

    status, body = _read(bridge, member, "sleep")

    assert status == 200 and [record["id"] for record in body["records"]] == [sleep["id"]]
    assert bridge.published("member.disconnected", client_user_id=member, data_deleted=False)


def test_the_openapi_schema_documents_the_four_data_routes_and_their_parameters(bridge):
    event = load_event(
        "member_api_get_sleep.json",
        **{
            "/members/{client_user_id}/sleep": "/members/openapi.json",
            f"/members/{SAMPLE_CLIENT_USER_ID}/sleep": "/members/openapi.json",
        },
    )
    event["pathParameters"] = event["queryStringParameters"] = event["multiValueQueryStringParameters"] = None

    status, schema, _headers = _get(bridge, event)

    assert status == 200
    for record_type in RECORD_TYPES:
        operation = schema["paths"][f"/members/{{client_user_id}}/{record_type}"]["get"]
        assert {parameter["name"] for parameter in operation["parameters"]} == {
            "client_user_id",
            "start",
            "end",
            "limit",
            "next_token",
        }
    assert "/members/{client_user_id}/profile" in schema["paths"]


def test_a_write_cancelled_by_a_concurrent_transaction_is_raised_not_taken_for_older(bridge, monkeypatch):
    from botocore.exceptions import ClientError

    from whoop_bridge.store import dynamo, record_store

    class Conflicting:
        def transact_write_items(self, **_arguments):
            reasons = [
                {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
                {"Code": "None"},
            ]
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )

    monkeypatch.setattr(dynamo, "client", Conflicting)
    sleep = _sleep("2026-11-21T23:00:00.000Z")

    # Raised, so the queue delivers the webhook again; [] would mean "stored is newer" and lose it.
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        record_store.upsert("records-conflict", 10129, "sleep", sleep, "webhook")
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        record_store.delete("records-conflict", 10129, "sleep", sleep["id"], "webhook")


def test_an_offset_whose_plus_api_gateway_decoded_to_a_space_means_plus(bridge):
    member = "records-plus-offset"
    _connect(member)
    cycles = [_record("cycle", f"2026-11-01T{hour:02d}:00:00.000Z", hour) for hour in (22, 23)]
    for cycle in cycles:
        _store(member, "cycle", cycle)

    # `start=2026-11-01T23:30:00+01:00` sent unescaped: 22:30 UTC, so only the 23:00 cycle.
    status, body = _read(bridge, member, "cycle", start="2026-11-01T23:30:00 01:00")
    assert status == 200, body
    assert [cycle["start"] for cycle in body["records"]] == ["2026-11-01T23:00:00.000Z"]
    status, body = _read(bridge, member, "cycle", start="2026-11-01T21:00:00 01:00", end="2026-11-01T23:30:00.000 0100")
    assert status == 200 and [cycle["start"] for cycle in body["records"]] == ["2026-11-01T22:00:00.000Z"]
    # A space anywhere else is still not a date-time.
    assert _read(bridge, member, "cycle", start="2026-11-01 23:30:00")[0] == 400


@pytest.mark.parametrize(
    "token",
    [
        "eyJnc2kxcGsiOiIiLCJnc2kxc2siOiIiLCJwayI6IiIsInNrIjoiIn0",  # every key value empty
        "%%%",
        "AAAA",
        "W10",  # []
        "bnVsbA",  # null
    ],
)
def test_a_made_up_page_token_is_a_400_never_a_5xx(bridge, token):
    import base64

    member = "records-made-up-token"
    _connect(member)
    _store(member, "sleep", _sleep("2026-11-01T23:00:00.000Z"))
    crafted = {"pk": f"MEMBER#{member}", "sk": "SLEEP#", "gsi1pk": f"RECORDS#{member}#sleep", "gsi1sk": ""}
    empty_values = base64.urlsafe_b64encode(json.dumps(crafted).encode()).decode().rstrip("=")

    for candidate in (token, empty_values):
        status, body = _read(bridge, member, "sleep", next_token=candidate)
        assert status == 400, body
        assert [problem["field"] for problem in body["problems"]] == ["query.next_token"]
