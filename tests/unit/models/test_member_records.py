"""WHOOP's member records as the bridge stores and announces them: WHOOP v2's own shapes,
nothing WHOOP adds later, timestamps that sort as text, and the event details."""

from __future__ import annotations

import copy

import pytest

from whoop_bridge.models import member_record as records
from whoop_bridge.models.member_record import RecordInvalid, normalize

# Hand-written from WHOOP v2's field lists (docs/whoop.md#records), with WHOOP's example values.
CYCLE = {
    "id": 93845,
    "user_id": 10129,
    "created_at": "2022-04-24T11:25:44.774Z",
    "updated_at": "2022-04-24T14:25:44.774Z",
    "start": "2022-04-24T02:25:44.774Z",
    "end": "2022-04-24T10:25:44.774Z",
    "timezone_offset": "-05:00",
    "score_state": "SCORED",
    "score": {"strain": 5.2951527, "kilojoule": 8288.297, "average_heart_rate": 68, "max_heart_rate": 141},
    "step_count": 8234,
}
SLEEP = {
    "id": "ecfc6a15-4661-442f-a9a4-f160dd7afae8",
    "cycle_id": 93845,
    "v1_id": 93845,
    "user_id": 10129,
    "created_at": "2022-04-24T11:25:44.774Z",
    "updated_at": "2022-04-24T14:25:44.774Z",
    "start": "2022-04-24T02:25:44.774Z",
    "end": "2022-04-24T10:25:44.774Z",
    "timezone_offset": "-05:00",
    "nap": False,
    "score_state": "SCORED",
    "score": {
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
}
RECOVERY = {
    "cycle_id": 93845,
    "sleep_id": "123e4567-e89b-12d3-a456-426614174000",
    "user_id": 10129,
    "created_at": "2022-04-24T11:25:44.774Z",
    "updated_at": "2022-04-24T14:25:44.774Z",
    "score_state": "SCORED",
    "score": {
        "user_calibrating": False,
        "recovery_score": 44.0,
        "resting_heart_rate": 64.0,
        "hrv_rmssd_milli": 31.813562,
        "spo2_percentage": 95.6875,
        "skin_temp_celsius": 33.7,
    },
}
WORKOUT = {
    "id": "ecfc6a15-4661-442f-a9a4-f160dd7afae8",
    "v1_id": 1043,
    "user_id": 9012,
    "created_at": "2022-04-24T11:25:44.774Z",
    "updated_at": "2022-04-24T14:25:44.774Z",
    "start": "2022-04-24T02:25:44.774Z",
    "end": "2022-04-24T10:25:44.774Z",
    "timezone_offset": "-05:00",
    "sport_name": "running",
    "sport_id": 1,
    "score_state": "SCORED",
    "score": {
        "strain": 8.2463,
        "average_heart_rate": 123,
        "max_heart_rate": 146,
        "kilojoule": 1569.34033203125,
        "percent_recorded": 100.0,
        "distance_meter": 1772.77035916,
        "altitude_gain_meter": 46.64384460449,
        "altitude_change_meter": -0.781372010707855,
        "zone_durations": {
            "zone_zero_milli": 300000,
            "zone_one_milli": 600000,
            "zone_two_milli": 900000,
            "zone_three_milli": 900000,
            "zone_four_milli": 600000,
            "zone_five_milli": 300000,
        },
    },
}
SAMPLES = {"cycle": CYCLE, "sleep": SLEEP, "recovery": RECOVERY, "workout": WORKOUT}
ID_FIELD = {"cycle": "id", "sleep": "id", "recovery": "sleep_id", "workout": "id"}


def test_the_four_record_types_are_whoops():
    assert records.RECORD_TYPES == ("cycle", "sleep", "recovery", "workout")
    assert records.RECORD_VERSION == 2


@pytest.mark.parametrize("record_type", records.RECORD_TYPES)
def test_a_whoop_v2_record_normalises_to_the_same_fields_and_values(record_type):
    raw = SAMPLES[record_type]

    record = normalize(record_type, copy.deepcopy(raw))

    assert record == raw


@pytest.mark.parametrize("record_type", records.RECORD_TYPES)
def test_fields_whoop_adds_later_are_dropped_at_every_level(record_type):
    raw = copy.deepcopy(SAMPLES[record_type])
    raw["mood"] = "great"
    raw["score"]["new_metric"] = 7

    record = normalize(record_type, raw)

    assert "mood" not in record and "new_metric" not in record["score"]
    del raw["mood"], raw["score"]["new_metric"]
    assert record == raw


@pytest.mark.parametrize("record_type", records.RECORD_TYPES)
def test_normalising_a_normalised_record_changes_nothing(record_type):
    once = normalize(record_type, SAMPLES[record_type])
    assert normalize(record_type, once) == once


@pytest.mark.parametrize("record_type", records.RECORD_TYPES)
@pytest.mark.parametrize("missing", ["id", "updated_at"])
def test_a_record_missing_its_id_or_updated_at_is_refused_by_field_name(record_type, missing):
    raw = copy.deepcopy(SAMPLES[record_type])
    field = ID_FIELD[record_type] if missing == "id" else missing
    del raw[field]

    with pytest.raises(RecordInvalid, match=field):
        normalize(record_type, raw)


def test_a_refusal_names_the_fields_and_the_record_but_never_their_values():
    raw = {**SLEEP, "updated_at": "last tuesday 21:07", "cycle_id": "cycle-93845-secret", "start": "GREAT"}

    with pytest.raises(RecordInvalid) as refused:
        normalize("sleep", raw)

    message = str(refused.value)
    assert "updated_at" in message and "cycle_id" in message and "start" in message
    assert "tuesday" not in message and "secret" not in message and "GREAT" not in message
    assert set(refused.value.fields) == {"updated_at", "cycle_id", "start"}
    assert refused.value.record_id == SLEEP["id"]


def test_a_workout_whose_start_is_not_a_time_is_refused_naming_start_and_its_id():
    with pytest.raises(RecordInvalid) as refused:
        normalize("workout", {**WORKOUT, "start": "not-a-time"})
    assert refused.value.fields == ("start",) and refused.value.record_id == WORKOUT["id"]


def test_a_score_state_whoop_adds_later_is_stored_as_received():
    for state in records.SCORE_STATES:
        assert normalize("cycle", {**CYCLE, "score_state": state})["score_state"] == state
    assert normalize("cycle", {**CYCLE, "score_state": "SCORE_REVISED"})["score_state"] == "SCORE_REVISED"
    assert normalize("sleep", {**SLEEP, "score_state": None})["score_state"] is None


def test_a_cycle_keeps_its_step_count_and_null_or_absent_is_none():
    assert normalize("cycle", CYCLE)["step_count"] == 8234
    assert normalize("cycle", {**CYCLE, "step_count": None})["step_count"] is None
    assert normalize("cycle", {key: value for key, value in CYCLE.items() if key != "step_count"})["step_count"] is None


@pytest.mark.parametrize(
    ("record_type", "field"),
    [
        ("sleep", "cycle_id"),
        ("sleep", "nap"),
        ("sleep", "end"),
        ("sleep", "timezone_offset"),
        ("workout", "sport_name"),
        ("workout", "end"),
        ("recovery", "cycle_id"),
        ("cycle", "timezone_offset"),
    ],
)
def test_a_null_where_whoop_promised_a_value_is_stored_as_received(record_type, field):
    record = normalize(record_type, {**SAMPLES[record_type], field: None})
    assert record[field] is None
    assert records.record_id(record_type, record) == records.record_id(
        record_type, normalize(record_type, SAMPLES[record_type])
    )


def test_raw_record_id_reads_the_key_of_a_record_the_bridge_cannot_otherwise_read():
    assert records.raw_record_id("cycle", {"id": 93845, "start": "soon"}) == "93845"
    assert records.raw_record_id("recovery", {"sleep_id": RECOVERY["sleep_id"]}) == RECOVERY["sleep_id"]
    assert records.raw_record_id("workout", {"id": "12"}) is None
    assert records.raw_record_id("cycle", {"id": "93845"}) is None and records.raw_record_id("sleep", None) is None


def test_a_partial_score_still_validates_with_the_missing_parts_none():
    raw = {**SLEEP, "score": {"respiratory_rate": 15.5, "stage_summary": {"sleep_cycle_count": 4}}}

    score = normalize("sleep", raw)["score"]

    assert score["respiratory_rate"] == 15.5 and score["sleep_needed"] is None
    assert (
        score["stage_summary"]["sleep_cycle_count"] == 4
        and score["stage_summary"]["total_rem_sleep_time_milli"] is None
    )


def test_a_pending_record_has_no_score_and_the_current_cycle_no_end():
    cycle = normalize("cycle", {**CYCLE, "end": None, "score_state": "PENDING_SCORE", "score": None})
    assert cycle["end"] is None and cycle["score"] is None

    unscored = {key: value for key, value in RECOVERY.items() if key != "score"}
    assert normalize("recovery", {**unscored, "score_state": "PENDING_SCORE"})["score"] is None


def test_optional_fields_whoop_may_leave_out_become_none():
    workout = {key: value for key, value in WORKOUT.items() if key not in ("v1_id", "sport_id")}
    workout["score"] = {
        key: value for key, value in WORKOUT["score"].items() if key not in ("distance_meter", "zone_durations")
    }

    record = normalize("workout", workout)

    assert record["v1_id"] is None and record["sport_id"] is None
    assert record["score"]["distance_meter"] is None and record["score"]["zone_durations"] is None


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2022-04-24T16:25:44.774+02:00", "2022-04-24T14:25:44.774Z"),
        ("2022-04-24T09:25:44.774-05:00", "2022-04-24T14:25:44.774Z"),
        ("2022-04-24T14:25:44Z", "2022-04-24T14:25:44.000Z"),
        ("2022-04-24T14:25:44.774912Z", "2022-04-24T14:25:44.774Z"),
        ("2022-04-24T14:25:44.7+00:00", "2022-04-24T14:25:44.700Z"),
        ("2022-04-25T00:25:44.774+10:00", "2022-04-24T14:25:44.774Z"),
    ],
)
def test_timestamps_become_utc_with_milliseconds_and_z(given, stored):
    record = normalize("sleep", {**SLEEP, "updated_at": given, "start": given})
    assert record["updated_at"] == stored and record["start"] == stored


def test_normalised_timestamps_sort_as_text_in_time_order():
    given = ["2022-04-24T16:00:00+02:00", "2022-04-24T13:30:00Z", "2022-04-24T09:45:00.5-05:00"]
    as_text = sorted(records.normalize_timestamp(value) for value in given)
    assert as_text == ["2022-04-24T13:30:00.000Z", "2022-04-24T14:00:00.000Z", "2022-04-24T14:45:00.500Z"]


@pytest.mark.parametrize("given", ["2022-04-24T14:25:44", "2022-04-24", "yesterday", "", 1650810344])
def test_a_timestamp_without_an_offset_or_not_a_date_time_is_refused(given):
    with pytest.raises(RecordInvalid, match="updated_at"):
        normalize("cycle", {**CYCLE, "updated_at": given})


@pytest.mark.parametrize("given", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_utc_cannot_hold_is_an_unreadable_record_not_a_crash(given):
    # Its UTC time falls outside years 1-9999: an OverflowError would stop the whole page.
    with pytest.raises(RecordInvalid, match="start"):
        normalize("workout", {**WORKOUT, "start": given})


def test_a_sleep_id_must_be_a_uuid():
    with pytest.raises(RecordInvalid, match="id"):
        normalize("sleep", {**SLEEP, "id": "12345"})


def test_an_unknown_record_type_or_a_non_object_is_refused():
    with pytest.raises(ValueError, match="unknown record type"):
        normalize("body_measurement", CYCLE)
    with pytest.raises(RecordInvalid):
        normalize("cycle", [CYCLE])  # type: ignore[arg-type]


def test_record_ids_are_the_cycle_id_as_text_the_uuid_and_a_recoverys_sleep_id():
    assert records.record_id("cycle", normalize("cycle", CYCLE)) == "93845"
    assert records.record_id("sleep", normalize("sleep", SLEEP)) == SLEEP["id"]
    assert records.record_id("workout", normalize("workout", WORKOUT)) == WORKOUT["id"]
    # WHOOP's recovery webhooks name the sleep, so a recovery is keyed by its sleep.
    assert records.record_id("recovery", normalize("recovery", RECOVERY)) == "123e4567-e89b-12d3-a456-426614174000"


def test_record_time_is_the_start_or_a_recoverys_sleep_start_as_whoop_windows_them():
    for record_type in ("cycle", "sleep", "workout"):
        assert (
            records.record_time(record_type, normalize(record_type, SAMPLES[record_type])) == "2022-04-24T02:25:44.774Z"
        )
    recovery = normalize("recovery", RECOVERY)
    assert records.record_time("recovery", recovery, "2022-04-23T23:25:44.774-03:00") == "2022-04-24T02:25:44.774Z"
    # Until its sleep is known, a recovery goes by its own created_at.
    assert records.record_time("recovery", recovery) == "2022-04-24T11:25:44.774Z"


@pytest.mark.parametrize("record_type", records.RECORD_TYPES)
def test_the_updated_event_carries_record_version_2_and_the_record(record_type):
    record = normalize(record_type, SAMPLES[record_type])

    detail_type, detail = records.updated_event("platform-user-8841", 10129, record_type, record, "webhook")

    assert detail_type == "member.record.updated"
    assert detail == {
        "client_user_id": "platform-user-8841",
        "user_id": 10129,
        "record_type": record_type,
        "record_id": records.record_id(record_type, record),
        "record_version": 2,
        "cause": "webhook",
        "record": record,
    }


def test_the_deleted_event_names_the_record_and_the_cause():
    detail_type, detail = records.deleted_event(
        "platform-user-8841", 10129, "recovery", RECOVERY["sleep_id"], "reconciliation"
    )

    assert detail_type == "member.record.deleted"
    assert detail == {
        "client_user_id": "platform-user-8841",
        "user_id": 10129,
        "record_type": "recovery",
        "record_id": RECOVERY["sleep_id"],
        "cause": "reconciliation",
    }


def test_an_event_cause_is_webhook_backfill_or_reconciliation():
    record = normalize("cycle", CYCLE)
    for cause in ("webhook", "backfill", "reconciliation"):
        assert records.updated_event("m", 1, "cycle", record, cause)[1]["cause"] == cause
    with pytest.raises(ValueError, match="cause"):
        records.updated_event("m", 1, "cycle", record, "manual")
    with pytest.raises(ValueError, match="cause"):
        records.deleted_event("m", 1, "cycle", "93845", "poll")


@pytest.mark.parametrize("record_type", sorted(SAMPLES))
def test_a_normalised_record_lists_its_fields_in_the_stored_order_whatever_order_whoop_sends(record_type):
    # record_json, the member API's records and member.record.updated carry the record as
    # JSON text: its fields stay in the order the bridge has always written (WHOOP's own,
    # as in SAMPLES), not the order the models' shared base classes declare them in.
    shuffled = dict(reversed(list(SAMPLES[record_type].items())))
    assert list(normalize(record_type, shuffled)) == list(SAMPLES[record_type])


@pytest.mark.parametrize("model", list(records.MODELS.values()), ids=list(records.MODELS))
def test_the_stored_order_names_every_field_once(model):
    assert sorted(model.FIELD_ORDER) == sorted(model.model_fields)
