"""Unit tests for the emulator's WHOOP v2 data API, rate limits and data webhooks (local/emulator/)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sys
import threading
import urllib.parse
import uuid
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

# The repo root holds the `local` package; make it importable however pytest is invoked.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fakes.clock import ManualClock

from local.clock import FastClock
from local.emulator import WhoopEmulator

V2 = "/developer/v2"
REDIRECT = "http://127.0.0.1:9/whoop/callback"  # port 9: never contacted, only the Location header is read
ALL_SCOPES = "offline read:profile read:cycles read:sleep read:recovery read:workout"
END = "2026-11-20T15:00:00Z"
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
COLLECTIONS = {"cycle": "/cycle", "sleep": "/activity/sleep", "recovery": "/recovery", "workout": "/activity/workout"}
FIELDS = {
    "cycle": {
        "id",
        "user_id",
        "created_at",
        "updated_at",
        "start",
        "end",
        "timezone_offset",
        "score_state",
        "step_count",
        "score",
    },
    "sleep": {
        "id",
        "cycle_id",
        "user_id",
        "created_at",
        "updated_at",
        "start",
        "end",
        "timezone_offset",
        "nap",
        "score_state",
        "score",
    },
    "recovery": {"cycle_id", "sleep_id", "user_id", "created_at", "updated_at", "score_state", "score"},
    "workout": {
        "id",
        "user_id",
        "created_at",
        "updated_at",
        "start",
        "end",
        "timezone_offset",
        "sport_name",
        "score_state",
        "score",
    },
}
SCORE_FIELDS = {
    "cycle": {"strain", "kilojoule", "average_heart_rate", "max_heart_rate"},
    "sleep": {
        "stage_summary",
        "sleep_needed",
        "respiratory_rate",
        "sleep_performance_percentage",
        "sleep_consistency_percentage",
        "sleep_efficiency_percentage",
    },
    "recovery": {
        "user_calibrating",
        "recovery_score",
        "resting_heart_rate",
        "hrv_rmssd_milli",
        "spo2_percentage",
        "skin_temp_celsius",
    },
    "workout": {"strain", "average_heart_rate", "max_heart_rate", "kilojoule", "percent_recorded", "zone_durations"},
}


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False  # never route loopback calls through a proxy from the environment
        yield session


@pytest.fixture
def emulator():
    with WhoopEmulator(redirect_uris=[REDIRECT]) as emu:
        yield emu


def connect(emu: WhoopEmulator, http: requests.Session, scope: str = ALL_SCOPES) -> tuple[int, str]:
    """A member approves the app through the real OAuth flow; returns (user_id, access token)."""
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": emu.member_client_id,
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": "state-0123456789",
        }
    )
    redirect = http.get(f"{emu.base_url}/oauth/oauth2/auth?{query}", allow_redirects=False, timeout=5)
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect.headers["Location"]).query))["code"]
    tokens = http.post(
        emu.base_url + "/oauth/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": emu.member_client_id,
            "client_secret": emu.member_client_secret,
        },
        timeout=5,
    )
    assert tokens.status_code == 200, tokens.text
    access = tokens.json()["access_token"]
    user_id = http.get(emu.base_url + V2 + "/user/profile/basic", headers=bearer(access), timeout=5).json()["user_id"]
    return user_id, access


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get(emu: WhoopEmulator, http: requests.Session, token: str, path: str, **params: str) -> requests.Response:
    return http.get(emu.base_url + V2 + path, params=params, headers=bearer(token), timeout=5)


@pytest.fixture
def member(emulator, http):
    user_id, token = connect(emulator, http)
    emulator.generate_history(user_id, 30, end=END)
    return user_id, token


def walk(emu, http, token, path, **params) -> list[dict]:
    """Every page with limit 25, following next_token until the last page, which has none."""
    records, next_token = [], None
    while True:
        page = get(emu, http, token, path, limit="25", **params, **({"nextToken": next_token} if next_token else {}))
        assert page.status_code == 200, page.text
        assert set(page.json()) <= {"records", "next_token"}
        records += page.json()["records"]
        next_token = page.json().get("next_token")
        assert next_token != ""
        if next_token is None:
            return records
        assert len(page.json()["records"]) == 25


def test_history_has_whoops_shapes_and_field_names(emulator, http, member):
    user_id, token = member
    assert [len(emulator.records(user_id, t)) for t in ("cycle", "sleep", "recovery")] == [30, 30, 30]
    for record_type, path in COLLECTIONS.items():
        records = walk(emulator, http, token, path)
        assert records == emulator.records(user_id, record_type)
        for record in records:
            # Absent, not null: a current cycle's end, a score that is not there yet.
            absent = ({"score"} if record["score_state"] != "SCORED" else set()) | (
                {"end"} if record is records[0] and record_type == "cycle" else set()
            )
            assert set(record) == FIELDS[record_type] - absent
            assert None not in (value for key, value in record.items() if key != "step_count")
            assert record["user_id"] == user_id and record["score_state"] in ("SCORED", "PENDING_SCORE")
            assert STAMP.fullmatch(record["created_at"]) and STAMP.fullmatch(record["updated_at"])
            assert record["updated_at"] >= record["created_at"]
            if "score" in record:
                assert SCORE_FIELDS[record_type] <= set(record["score"]) and None not in record["score"].values()
    cycles, sleeps, recoveries = (emulator.records(user_id, t) for t in ("cycle", "sleep", "recovery"))
    assert "end" not in cycles[0] and all(c["end"] == newer["start"] for c, newer in zip(cycles[1:], cycles))
    assert all(c["step_count"] is None or (isinstance(c["step_count"], int) and c["step_count"] >= 0) for c in cycles)
    assert any(isinstance(c["step_count"], int) for c in cycles)
    assert all(isinstance(c["id"], int) and c["id"] >= 93845 for c in cycles)
    assert [s["cycle_id"] for s in sleeps] == [c["id"] for c in cycles]
    assert all(
        c["start"] < s["start"] < s["end"] and s["nap"] is False and "v1_id" not in s for c, s in zip(cycles, sleeps)
    )
    assert all(uuid.UUID(s["id"]).version == 4 for s in sleeps)
    assert [(r["sleep_id"], r["cycle_id"]) for r in recoveries] == [(s["id"], s["cycle_id"]) for s in sleeps]
    assert sleeps[0]["score_state"] == recoveries[0]["score_state"] == "PENDING_SCORE"
    assert set(sleeps[1]["score"]["stage_summary"]) == {
        "total_in_bed_time_milli",
        "total_awake_time_milli",
        "total_no_data_time_milli",
        "total_light_sleep_time_milli",
        "total_slow_wave_sleep_time_milli",
        "total_rem_sleep_time_milli",
        "sleep_cycle_count",
        "disturbance_count",
    }
    assert set(sleeps[1]["score"]["sleep_needed"]) == {
        "baseline_milli",
        "need_from_sleep_debt_milli",
        "need_from_recent_strain_milli",
        "need_from_recent_nap_milli",
    }
    for workout in emulator.records(user_id, "workout"):
        assert isinstance(workout["sport_name"], str) and "sport_id" not in workout and "v1_id" not in workout
        assert sum(workout["score"]["zone_durations"].values()) > 0
        # Distance only for sports that have one: absent otherwise, never null.
        assert ("distance_meter" in workout["score"]) == (
            workout["sport_name"] in ("running", "cycling", "rowing", "swimming", "walking")
        )


def test_pagination_walks_every_record_once_newest_first(emulator, http, member):
    user_id, token = member
    for record_type, path in COLLECTIONS.items():
        first = get(emulator, http, token, path).json()
        assert len(first["records"]) == 10 and first["next_token"]  # default limit
        records = walk(emulator, http, token, path)
        ids = [r.get("id", r.get("sleep_id")) for r in records]
        assert len(ids) == len(set(ids)) == len(emulator.records(user_id, record_type))
        starts = (
            [r["start"] for r in records]
            if record_type != "recovery"
            else [emulator.record(user_id, "sleep", r["sleep_id"])["start"] for r in records]
        )
        assert starts == sorted(starts, reverse=True)


def test_start_is_inclusive_and_end_exclusive(emulator, http, member):
    user_id, token = member
    cycles = emulator.records(user_id, "cycle")
    window = {"start": cycles[5]["start"], "end": cycles[2]["start"]}
    assert [c["id"] for c in walk(emulator, http, token, "/cycle", **window)] == [c["id"] for c in cycles[3:6]]
    recoveries = walk(emulator, http, token, "/recovery", **window)
    assert [r["cycle_id"] for r in recoveries] == [c["id"] for c in cycles[3:6]]
    # The same instant written with an offset selects the same records.
    shifted = cycles[5]["start"].replace("Z", "")
    moment = get(emulator, http, token, "/cycle", start=shifted + "+00:00", end=window["end"]).json()["records"]
    assert [c["id"] for c in moment] == [c["id"] for c in cycles[3:6]]


def test_start_includes_records_in_progress_and_recoveries_follow_their_sleep(emulator, http, member):
    # WHOOP: a collection's start returns records that "occurred after or during" it; a
    # recovery has no start and is windowed and sorted by its sleep's.
    user_id, token = member
    cycles, sleeps = emulator.records(user_id, "cycle"), emulator.records(user_id, "sleep")
    asleep = datetime.fromisoformat(sleeps[4]["start"]) + timedelta(minutes=1)
    window = {"start": asleep.isoformat().replace("+00:00", "Z"), "end": cycles[2]["start"]}

    got_sleeps = [s["id"] for s in walk(emulator, http, token, "/activity/sleep", **window)]
    assert got_sleeps == [s["id"] for s in sleeps[3:5]]  # the one in progress at `start` included
    assert [c["id"] for c in walk(emulator, http, token, "/cycle", **window)] == [c["id"] for c in cycles[3:5]]
    assert [r["sleep_id"] for r in walk(emulator, http, token, "/recovery", **window)] == got_sleeps


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "26"},
        {"limit": "ten"},
        {"limit": ""},
        {"limit": "-1"},
        {"start": "yesterday"},
        {"start": "2026-11-01"},
        {"end": "2026-11-01T00:00:00"},
        {"nextToken": "forged"},
    ],
)
def test_bad_query_is_400(emulator, http, member, params):
    response = get(emulator, http, member[1], "/activity/sleep", **params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_next_token_only_works_for_the_query_that_issued_it(emulator, http, member):
    token = get(emulator, http, member[1], "/cycle", limit="5").json()["next_token"]
    assert get(emulator, http, member[1], "/cycle", nextToken=token).status_code == 200
    assert get(emulator, http, member[1], "/cycle", nextToken=token, start="2026-11-01T00:00:00Z").status_code == 400
    assert get(emulator, http, member[1], "/activity/workout", nextToken=token).status_code == 400


def test_wrong_scope_is_403_and_no_token_401(emulator, http):
    _, token = connect(emulator, http, scope="read:profile read:cycles")
    assert get(emulator, http, token, "/cycle").status_code == 200
    for path in ("/recovery", "/activity/sleep", "/activity/workout", "/cycle/93845/sleep", "/cycle/93845/recovery"):
        response = get(emulator, http, token, path)
        assert response.status_code == 403, path
        assert response.json() == {"error": "insufficient_scope"}
    assert http.get(emulator.base_url + V2 + "/cycle", timeout=5).status_code == 401


def test_a_member_only_sees_their_own_records(emulator, http, member):
    owner, _ = member
    other, other_token = connect(emulator, http)
    assert other != owner
    sleep = emulator.records(owner, "sleep")[1]
    workout = emulator.records(owner, "workout")[0]
    for path in (
        f"/activity/sleep/{sleep['id']}",
        f"/activity/workout/{workout['id']}",
        f"/cycle/{sleep['cycle_id']}",
        f"/cycle/{sleep['cycle_id']}/sleep",
        f"/cycle/{sleep['cycle_id']}/recovery",
        f"/activity/sleep/{uuid.uuid4()}",
        "/cycle/not-a-number",
    ):
        response = get(emulator, http, other_token, path)
        assert (response.status_code, response.json()) == (404, {"error": "not_found"}), path
    assert get(emulator, http, other_token, "/activity/sleep").json() == {"records": []}


def test_recovery_is_only_reachable_through_its_cycle(emulator, http, member):
    user_id, token = member
    recovery = emulator.records(user_id, "recovery")[3]
    assert get(emulator, http, token, f"/recovery/{recovery['sleep_id']}").status_code == 404
    by_cycle = get(emulator, http, token, f"/cycle/{recovery['cycle_id']}/recovery")
    assert by_cycle.status_code == 200 and by_cycle.json() == recovery
    sleep = get(emulator, http, token, f"/cycle/{recovery['cycle_id']}/sleep").json()
    assert sleep["id"] == recovery["sleep_id"]
    assert get(emulator, http, token, f"/activity/sleep/{sleep['id']}").json() == sleep


def test_scoring_a_pending_sleep_adds_a_score_and_bumps_updated_at(emulator, http, member):
    user_id, token = member
    pending = emulator.records(user_id, "sleep")[0]
    assert pending["score_state"] == "PENDING_SCORE" and "score" not in pending
    scored = emulator.score(user_id, "sleep", pending["id"])
    assert scored["score_state"] == "SCORED" and set(scored["score"]) == SCORE_FIELDS["sleep"]
    assert scored["updated_at"] > pending["updated_at"]
    assert get(emulator, http, token, f"/activity/sleep/{pending['id']}").json() == scored
    rescored = emulator.score(user_id, "sleep", pending["id"])
    assert rescored["updated_at"] > scored["updated_at"]


def test_updated_at_strictly_increases_even_when_the_clock_stands_still(monkeypatch):
    # Records are stamped on wall-clock time; freeze it.
    monkeypatch.setattr("local.emulator.member_data.time.time", lambda: 1_790_000_000.0)
    emu = WhoopEmulator()
    user_id = emu.add_member()["user_id"]
    emu.add_record(user_id, "cycle", start=1_789_990_000)
    sleep = emu.add_record(user_id, "sleep")
    first = emu.update_record(user_id, "sleep", sleep["id"], nap=True)
    second = emu.score(user_id, "sleep", sleep["id"])
    assert sleep["updated_at"] == "2026-09-21T14:13:20.000Z"
    assert (first["updated_at"], second["updated_at"]) == ("2026-09-21T14:13:20.001Z", "2026-09-21T14:13:20.002Z")
    assert first["nap"] is True


def test_added_records_attach_to_the_newest_cycle_and_its_sleep(emulator, member):
    user_id, _ = member
    newest = emulator.records(user_id, "cycle")[0]
    cycle = emulator.add_record(user_id, "cycle", start="2026-11-20T23:00:00Z")
    assert cycle["id"] > newest["id"] and "end" not in cycle and cycle["score_state"] == "PENDING_SCORE"
    assert emulator.record(user_id, "cycle", newest["id"])["end"] == "2026-11-20T23:00:00.000Z"
    sleep = emulator.add_record(user_id, "sleep", start="2026-11-20T23:10:00Z", pending=False)
    assert sleep["cycle_id"] == cycle["id"] and sleep["score_state"] == "SCORED" and "score" in sleep
    recovery = emulator.add_record(user_id, "recovery", sleep_id=sleep["id"])
    assert (recovery["cycle_id"], recovery["sleep_id"]) == (cycle["id"], sleep["id"])
    with pytest.raises(ValueError):
        emulator.add_record(user_id, "recovery", sleep_id=sleep["id"])  # one recovery per sleep


def test_deleting_a_sleep_deletes_its_recovery(emulator, http, member):
    user_id, token = member
    sleep = emulator.records(user_id, "sleep")[2]
    assert emulator.delete_record(user_id, "sleep", sleep["id"]) == ["sleep.deleted", "recovery.deleted"]
    assert get(emulator, http, token, f"/activity/sleep/{sleep['id']}").status_code == 404
    assert get(emulator, http, token, f"/cycle/{sleep['cycle_id']}/recovery").status_code == 404
    with pytest.raises(KeyError):
        emulator.record(user_id, "recovery", sleep["id"])
    lone = emulator.add_record(user_id, "sleep", cycle_id=sleep["cycle_id"])
    assert emulator.delete_record(user_id, "sleep", lone["id"]) == ["sleep.deleted"]
    workout = emulator.records(user_id, "workout")[0]
    assert emulator.delete_record(user_id, "workout", workout["id"]) == ["workout.deleted"]


def test_minute_limit_answers_429_then_the_next_window_serves(http):
    clock = FastClock(120)  # a minute in half a second
    with WhoopEmulator(redirect_uris=[REDIRECT], clock=clock) as emu:
        emu.rate_limit_per_minute = 5
        _, token = connect(emu, http)  # the OAuth token endpoint is not rate limited; the profile call is
        clock.sleep(60 - clock.time() % 60 + 1)  # the start of a fresh minute window
        responses = [get(emu, http, token, "/cycle") for _ in range(6)]
        assert [r.status_code for r in responses] == [200] * 5 + [429]
        assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["4", "3", "2", "1", "0", "0"]
        assert all(r.headers["X-RateLimit-Limit"] == "5, 5;window=60, 10000;window=86400" for r in responses)
        assert responses[-1].json() == {"error": "too_many_requests"}
        reset = int(responses[-1].headers["X-RateLimit-Reset"])
        assert 0 < reset <= 60
        clock.sleep(reset)
        again = get(emu, http, token, "/cycle")
        assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "4"
        assert len(emu.rate_limited_calls()) == 1


def test_refused_calls_do_not_count_and_the_closest_limit_is_reported(http):
    clock = ManualClock(1_790_000_000.0)  # 14:13:20 UTC: 20 s into a minute
    with WhoopEmulator(redirect_uris=[REDIRECT], clock=clock) as emu:
        emu.rate_limit_per_minute, emu.rate_limit_per_day = 5, 8
        _, token = connect(emu, http)  # one call: the profile
        statuses = [get(emu, http, token, "/cycle").status_code for _ in range(6)]
        assert statuses == [200] * 4 + [429, 429]
        clock.sleep(40)
        served = get(emu, http, token, "/activity/workout")
        assert served.status_code == 200
        assert served.headers["X-RateLimit-Limit"] == "8, 5;window=60, 8;window=86400"
        assert served.headers["X-RateLimit-Remaining"] == "2"  # 6 served today: refusals did not count
        assert served.headers["X-RateLimit-Reset"] == "35160"  # seconds from 14:14:00 to midnight UTC


def test_burst_429_and_member_api_calls(emulator, http, member):
    user_id, token = member
    emulator.burst_429(2, reset_seconds=7)
    burst = [get(emulator, http, token, "/recovery") for _ in range(3)]
    assert [r.status_code for r in burst] == [429, 429, 200]
    assert [r.headers["X-RateLimit-Reset"] for r in burst[:2]] == ["7", "7"]
    assert all(r.headers["X-RateLimit-Remaining"] == "0" for r in burst[:2])
    assert "X-RateLimit-Limit" in burst[2].headers
    emulator.inject_fault("GET", r"/v2/cycle$", status=503)
    assert get(emulator, http, token, "/cycle").status_code == 503
    assert http.get(emulator.base_url + V2 + "/cycle", timeout=5).status_code == 401
    calls = emulator.member_api_calls()
    assert [(c["path"], c["status"], c["user_id"]) for c in calls[-5:]] == [
        (V2 + "/recovery", 429, user_id),
        (V2 + "/recovery", 429, user_id),
        (V2 + "/recovery", 200, user_id),
        (V2 + "/cycle", 503, user_id),
        (V2 + "/cycle", 401, None),
    ]
    assert calls[0]["path"] == V2 + "/user/profile/basic" and isinstance(calls[0]["time"], float)
    assert len(emulator.rate_limited_calls()) == 2


class Receiver:
    """Records (headers, body) of each POST and answers 204."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append((dict(self.headers.items()), self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/whoop/data"


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def test_member_webhook_is_signed_with_the_client_secret(emulator, member, receiver):
    user_id, _ = member
    emulator.member_webhook_url = receiver.url
    sleep = emulator.records(user_id, "sleep")[0]
    assert emulator.send_member_webhook(user_id, "recovery.updated", sleep["id"], trace_id="trace-1") == 204
    headers, body = receiver.deliveries[0]
    assert json.loads(body) == {
        "user_id": user_id,
        "id": sleep["id"],
        "type": "recovery.updated",
        "trace_id": "trace-1",
    }
    assert headers["Content-Type"] == "application/json"
    timestamp = headers["X-WHOOP-Signature-Timestamp"]
    expected = base64.b64encode(
        hmac.new(emulator.member_client_secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    ).decode()
    assert hmac.compare_digest(headers["X-WHOOP-Signature"], expected)
    assert abs(int(timestamp) - emulator.member_webhook_deliveries[0]["time"] * 1000) < 5000

    emulator.send_member_webhook(user_id, "sleep.deleted", sleep["id"], signature="forged", timestamp_ms=1234)
    headers, body = receiver.deliveries[1]
    assert (headers["X-WHOOP-Signature"], headers["X-WHOOP-Signature-Timestamp"]) == ("forged", "1234")
    assert uuid.UUID(json.loads(body)["trace_id"])
    deliveries = emulator.member_webhook_deliveries
    assert [(d["type"], d["id"], d["status"]) for d in deliveries] == [
        ("recovery.updated", sleep["id"], 204),
        ("sleep.deleted", sleep["id"], 204),
    ]
    assert emulator.member_client_secret not in json.dumps(deliveries)
    with pytest.raises(ValueError):
        emulator.send_member_webhook(user_id, "cycle.updated", sleep["id"])


def test_control_api_for_history_records_and_webhooks(http, receiver):
    with WhoopEmulator(member_webhook_url=receiver.url) as emu:
        control = emu.base_url + "/_emulator/members"
        user_id = http.post(control, json={}, timeout=5).json()["user_id"]
        counts = http.post(f"{control}/{user_id}/history", json={"days": 3}, timeout=5)
        assert counts.status_code == 200 and counts.json()["cycle"] == counts.json()["recovery"] == 3
        records = http.get(f"{control}/{user_id}/records/sleep", timeout=5).json()["records"]
        assert records == emu.records(user_id, "sleep")
        sent = http.post(
            f"{control}/{user_id}/webhooks", json={"type": "sleep.updated", "id": records[0]["id"]}, timeout=5
        )
        assert sent.json() == {"status": 204} and len(receiver.deliveries) == 1
        assert (
            http.post(f"{control}/{user_id}/webhooks", json={"type": "bogus", "id": "x"}, timeout=5).status_code == 400
        )
        assert http.get(f"{control}/999/records/sleep", timeout=5).status_code == 404
