"""lab_api: the lab's routes through the real handler, on orders taken in by
requisition_processor and run by the real ASL (moto's interpreter, in the background).

Orders hold LIPID_PANEL and CBC (accepted: executions wait for the lab) and HBA1C (not
offered: ORDER_ISSUE, closed).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from integration_harness import SAMPLE_REQUISITION_ID, SAMPLE_SERVICE_REQUEST_ID, load_event, with_body
from local.stack import wait_until

CODES = ["LIPID_PANEL", "CBC", "HBA1C"]
LAB_EVENT_STATUSES_AFTER_CONFIRMED = ["APPOINTMENT_ATTENDED", "APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"]


@pytest.fixture
def order(bridge) -> dict:
    requisition = bridge.process_requisition(CODES)
    requisition["by_code"] = {sr["code"]: sr["id"] for sr in requisition["service_requests"]}
    return requisition


def requisition_route(name: str, requisition_id: str) -> dict:
    return load_event(name, **{SAMPLE_REQUISITION_ID: requisition_id})


def service_request_route(name: str, service_request_id: str) -> dict:
    return load_event(name, **{SAMPLE_SERVICE_REQUEST_ID: service_request_id})


def whoop_statuses(bridge, service_request_id: str) -> list[str]:
    return [entry["status"] for entry in bridge.emulator.status_history(service_request_id)]


def wait_for_whoop(bridge, service_request_id: str, status: str) -> list[str]:
    return wait_until(
        lambda: status in (history := whoop_statuses(bridge, service_request_id)) and history,
        20,
        what=f"{status} at WHOOP",
    )


def task_tokens(bridge, requisition: dict) -> list[str]:
    return [
        token
        for sr in requisition["service_requests"]
        if (token := bridge.service_request_item(sr["id"]).get("task_token"))
    ]


def test_list_requisitions_shows_each_test_with_status_and_history_and_no_token(bridge, order):
    status, body, text = bridge.lab_api(load_event("lab_api_list_requisitions.json"))

    assert status == 200
    assert set(body) == {"requisitions", "next_token"}
    listed = {requisition["id"]: requisition for requisition in body["requisitions"]}
    requisition = listed[order["id"]]
    assert requisition["open"] is True
    by_code = {sr["code"]: sr for sr in requisition["service_requests"]}
    assert set(by_code) == set(CODES)
    assert by_code["LIPID_PANEL"]["task_business_status"] == "ORDER_CONFIRMED"
    assert [entry["task_business_status"] for entry in by_code["LIPID_PANEL"]["history"]] == ["ORDER_CONFIRMED"]
    assert by_code["HBA1C"]["task_business_status"] == "ORDER_ISSUE"
    assert "HBA1C" in by_code["HBA1C"]["history"][0]["reason"]
    tokens = task_tokens(bridge, order)
    assert len(tokens) == 2  # the two accepted tests wait for the lab
    assert "task_token" not in text
    assert not any(token in text for token in tokens)


def test_get_requisition_shows_the_order_as_the_lab_needs_it(bridge, order):
    status, body, text = bridge.lab_api(requisition_route("lab_api_get_requisition.json", order["id"]))

    assert status == 200
    assert body["id"] == order["id"]
    assert body["patient"] == order["patient"]
    assert body["appointments"] == order["appointments"]
    assert body["open"] is True
    by_code = {sr["code"]: sr for sr in body["service_requests"]}
    lipid = by_code["LIPID_PANEL"]
    assert lipid["id"] == order["by_code"]["LIPID_PANEL"]
    assert lipid["task_description"] == "Fasting lipid panel"
    assert lipid["workflow"] == "awaiting_lab_event"
    assert lipid["next_statuses"] == LAB_EVENT_STATUSES_AFTER_CONFIRMED
    assert lipid["accepts_results"] == ["partial", "preliminary", "final"]
    assert lipid["diagnostic_reports"] == []
    assert [entry["task_business_status"] for entry in lipid["history"]] == ["ORDER_CONFIRMED"]
    assert by_code["HBA1C"]["workflow"] == "closed"
    assert by_code["HBA1C"]["next_statuses"] == []
    assert "task_token" not in text
    assert not any(token in text for token in task_tokens(bridge, order))


def test_unknown_ids_are_404(bridge):
    unknown = str(uuid.uuid4())
    for event in (
        requisition_route("lab_api_get_requisition.json", unknown),
        requisition_route("lab_api_requisition_event_attended.json", unknown),
        service_request_route("lab_api_service_request_event_attended.json", unknown),
        service_request_route("lab_api_results_final.json", unknown),
    ):
        status, body, _ = bridge.lab_api(event)
        assert (event["path"], status) == (event["path"], 404)
        assert body["error"] == "not_found"


def test_an_id_longer_than_any_whoop_id_is_a_400_naming_it(bridge):
    # On AWS a key over DynamoDB's 2 KB is a ValidationException (a 500); moto does not check it.
    too_long = "x" * 3000
    for event, field in (
        (requisition_route("lab_api_get_requisition.json", too_long), "path.requisition_id"),
        (requisition_route("lab_api_requisition_event_attended.json", too_long), "path.requisition_id"),
        (service_request_route("lab_api_service_request_event_attended.json", too_long), "path.service_request_id"),
        (service_request_route("lab_api_results_final.json", too_long), "path.service_request_id"),
    ):
        status, body, _ = bridge.lab_api(event)
        assert (event["resource"], status) == (event["resource"], 400), body
        assert [problem["field"] for problem in body["problems"]] == [field]
        assert too_long not in json.dumps(body)


def test_attended_reaches_whoop_and_attended_again_is_409(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    event = service_request_route("lab_api_service_request_event_attended.json", lipid)

    status, body, _ = bridge.lab_api(event)

    assert status == 202
    assert body["service_request_id"] == lipid
    assert body["accepted"] == "status"
    assert wait_for_whoop(bridge, lipid, "APPOINTMENT_ATTENDED") == ["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED"]
    # The other test of the order is untouched.
    assert whoop_statuses(bridge, order["by_code"]["CBC"]) == ["ORDER_CONFIRMED"]

    status, body, _ = bridge.lab_api(event)

    assert status == 409
    assert body["error"] == "transition_forbidden"
    assert body["task_business_status"] == "APPOINTMENT_ATTENDED"
    assert body["allowed_next_statuses"] == ["APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"]
    assert whoop_statuses(bridge, lipid) == ["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED"]
    # The execution still waits for the lab's next event.
    assert bridge.wait_for_workflow(lipid, "awaiting_lab_event")["task_token"]


def test_requisition_event_applies_to_every_open_test_of_the_order(bridge, order):
    status, body, _ = bridge.lab_api(requisition_route("lab_api_requisition_event_attended.json", order["id"]))

    assert status == 202
    assert body["requisition_id"] == order["id"]
    outcomes = {entry["code"]: entry["outcome"] for entry in body["service_requests"]}
    assert outcomes == {"LIPID_PANEL": "applied", "CBC": "applied", "HBA1C": "unchanged"}
    for code in ("LIPID_PANEL", "CBC"):
        wait_for_whoop(bridge, order["by_code"][code], "APPOINTMENT_ATTENDED")
    assert whoop_statuses(bridge, order["by_code"]["HBA1C"]) == ["ORDER_ISSUE"]


def test_requisition_event_applies_where_it_is_a_step_forward_and_reports_the_rest_unchanged(bridge, order):
    lipid, cbc = order["by_code"]["LIPID_PANEL"], order["by_code"]["CBC"]
    assert bridge.lab_api(service_request_route("lab_api_service_request_event_attended.json", lipid))[0] == 202
    wait_for_whoop(bridge, lipid, "APPOINTMENT_ATTENDED")
    bridge.wait_for_workflow(lipid, "awaiting_lab_event")
    event = requisition_route("lab_api_requisition_event_attended.json", order["id"])

    status, body, _ = bridge.lab_api(event)

    assert status == 202
    by_code = {entry["code"]: entry for entry in body["service_requests"]}
    assert by_code["CBC"]["outcome"] == "applied" and by_code["CBC"]["event_id"]
    assert (by_code["LIPID_PANEL"]["outcome"], by_code["LIPID_PANEL"]["task_business_status"]) == (
        "unchanged",
        "APPOINTMENT_ATTENDED",
    )
    assert by_code["LIPID_PANEL"]["allowed_next_statuses"] == ["APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"]
    assert (by_code["HBA1C"]["outcome"], by_code["HBA1C"]["task_business_status"]) == ("unchanged", "ORDER_ISSUE")
    assert wait_for_whoop(bridge, cbc, "APPOINTMENT_ATTENDED") == ["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED"]
    assert whoop_statuses(bridge, lipid) == ["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED"]  # not sent twice

    # Now it is a step forward for none: 409.
    bridge.wait_for_workflow(cbc, "awaiting_lab_event")
    status, body, _ = bridge.lab_api(event)
    assert status == 409
    assert body["error"] == "transition_forbidden"


def test_requisition_event_waits_for_busy_tests_once_in_all(bridge, monkeypatch):
    """Three tests whose executions never wait for the lab: they share one wait (the old
    code waited BUSY_WAIT_SECONDS for each in turn, 30 s for three, past API Gateway's 29)."""
    from whoop_bridge.lab import executions

    monkeypatch.setattr(executions, "BUSY_WAIT_SECONDS", 1.0)
    requisition = bridge.store_order(CODES)  # stored "starting", with no execution behind it
    started = time.monotonic()

    answer = bridge.invoke(
        "LabApiFunction", requisition_route("lab_api_requisition_event_attended.json", requisition["id"])
    )

    elapsed = time.monotonic() - started
    assert answer["statusCode"] == 409
    assert json.loads(answer["body"])["error"] == "busy"
    headers = answer.get("headers") or {
        key: values[-1] for key, values in (answer.get("multiValueHeaders") or {}).items()
    }
    assert headers["Retry-After"] == "2"
    assert elapsed < 2.0, elapsed


def test_bare_results_status_is_409_naming_what_may_come_next(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    event = service_request_route("lab_api_service_request_event_attended.json", lipid)

    status, body, _ = bridge.lab_api(with_body(event, json.dumps({"status": "PARTIAL_RESULTS_READY"})))

    assert status == 409
    assert body["task_business_status"] == "ORDER_CONFIRMED"
    assert body["allowed_next_statuses"] == LAB_EVENT_STATUSES_AFTER_CONFIRMED
    assert bridge.service_request_item(lipid)["workflow"] == "awaiting_lab_event"
    assert whoop_statuses(bridge, lipid) == ["ORDER_CONFIRMED"]


def test_issue_status_without_a_reason_is_400(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    event = service_request_route("lab_api_service_request_event_attended.json", lipid)

    status, body, _ = bridge.lab_api(with_body(event, json.dumps({"status": "APPOINTMENT_ISSUE"})))

    assert status == 400
    assert body["error"] == "invalid_request"
    assert any("reason" in problem["problem"] for problem in body["problems"])
    assert whoop_statuses(bridge, lipid) == ["ORDER_CONFIRMED"]


def test_issue_status_with_a_reason_reaches_whoop_and_ends_the_test(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    event = service_request_route("lab_api_service_request_event_attended.json", lipid)
    issue = {"status": "APPOINTMENT_ISSUE", "reason": "Member cancelled the appointment."}

    status, _, _ = bridge.lab_api(with_body(event, json.dumps(issue)))

    assert status == 202
    wait_for_whoop(bridge, lipid, "APPOINTMENT_ISSUE")
    assert bridge.emulator.status_history(lipid)[-1]["reason"] == issue["reason"]
    bridge.wait_for_workflow(lipid, "closed")
    status, body, _ = bridge.lab_api(event)
    assert status == 409
    assert body["allowed_next_statuses"] == []


def test_final_results_reach_whoop_as_written_then_only_corrections_are_accepted(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    event = service_request_route("lab_api_results_final.json", lipid)

    status, body, _ = bridge.lab_api(event)

    assert status == 202
    assert body["accepted"] == "report"
    report_id = body["report_id"]
    received = wait_until(lambda: bridge.emulator.reports(lipid), 20, what="the report at WHOOP")
    assert [json.dumps(report, sort_keys=True) for report in received] == [
        json.dumps(json.loads(event["body"]), sort_keys=True)
    ]
    wait_for_whoop(bridge, lipid, "FULL_RESULTS_READY")
    bridge.wait_for_workflow(lipid, "awaiting_correction")

    status, view, _ = bridge.lab_api(requisition_route("lab_api_get_requisition.json", order["id"]))
    assert status == 200
    (service_request,) = [sr for sr in view["service_requests"] if sr["id"] == lipid]
    assert service_request["task_business_status"] == "FULL_RESULTS_READY"
    assert [report["report_id"] for report in service_request["diagnostic_reports"]] == [report_id]
    assert service_request["diagnostic_reports"][0]["submitted_at"]
    assert service_request["correction_deadline"]
    assert service_request["next_statuses"] == []
    assert service_request["accepts_results"] == ["amended", "cancelled", "corrected"]

    # A second final report is refused; the lab is told what is still accepted.
    status, body, _ = bridge.lab_api(event)
    assert status == 409
    assert len(bridge.emulator.reports(lipid)) == 1


def test_invalid_results_are_400_listing_every_problem_and_nothing_is_kept(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]

    status, body, _ = bridge.lab_api(service_request_route("lab_api_results_invalid.json", lipid))

    assert status == 400
    assert body["error"] == "invalid_request"
    fields = [problem["field"] for problem in body["problems"]]
    assert len(body["problems"]) >= 2
    assert "status" in fields
    assert any(field.startswith("observations.0") for field in fields)
    # Values the lab sent (results) are not echoed back.
    assert "LDL_CHOLESTEROL" not in json.dumps(body)
    item = bridge.service_request_item(lipid)
    assert item["workflow"] == "awaiting_lab_event"
    assert item["task_token"]
    status, view, _ = bridge.lab_api(requisition_route("lab_api_get_requisition.json", order["id"]))
    assert all(sr["diagnostic_reports"] == [] for sr in view["service_requests"])
    assert bridge.emulator.reports(lipid) == []


@pytest.mark.parametrize(
    ("value", "field"),
    [
        # Not JSON numbers: refused before the model sees them (whoop_bridge.api), named by place.
        ('"value_numeric": NaN', "observations.0.value_numeric"),
        ('"value_numeric": Infinity', "observations.0.value_numeric"),
        ('"value_numeric": 1e999', "observations.0.value_numeric"),  # parses as infinity
        ('"value_numeric": "185"', "observations.0.value_numeric"),  # sent as written: a string is no number
        ('"value_text": ""', "observations.0.value_text"),
    ],
)
def test_results_whoop_could_not_take_are_400_before_anything_is_kept(bridge, order, value, field):
    """Python's JSON parser takes NaN and Infinity; WHOOP's JSON does not."""
    lipid = order["by_code"]["LIPID_PANEL"]
    body = '{"status": "final", "observations": [{"code": "TOTAL_CHOLESTEROL", ' + value + ', "status": "final"}]}'

    status, answer, _ = bridge.lab_api(with_body(service_request_route("lab_api_results_final.json", lipid), body))

    assert status == 400
    assert [problem["field"] for problem in answer["problems"]] == [field]
    assert bridge.service_request_item(lipid)["task_token"]
    assert bridge.emulator.reports(lipid) == []


def test_what_whoop_accepts_is_accepted_an_observation_without_status_with_a_bundle(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    report = {
        "status": "final",
        "observations": [
            {
                "code": "LDL_CHOLESTEROL",
                "value_numeric": 100,
                "unit": "mg/dL",
                "bundle_id": "3f2c1a9e-7b6d-4e5f-8a1b-2c3d4e5f6a7b",
            },
            {"code": "HDL_CHOLESTEROL", "value_numeric": 52.5, "unit": "mg/dL"},
        ],
    }

    status, body, _ = bridge.lab_api(
        with_body(service_request_route("lab_api_results_final.json", lipid), json.dumps(report))
    )

    assert status == 202, body
    assert wait_until(lambda: bridge.emulator.reports(lipid), 20, what="the report at WHOOP") == [report]
    wait_for_whoop(bridge, lipid, "FULL_RESULTS_READY")
    assert [v for v in bridge.emulator.contract_violations() if lipid in v["path"]] == []


def test_a_cancelled_report_without_observations_is_accepted_in_the_correction_window(bridge, order):
    lipid = order["by_code"]["LIPID_PANEL"]
    route = service_request_route("lab_api_results_final.json", lipid)
    assert bridge.lab_api(route)[0] == 202
    bridge.wait_for_workflow(lipid, "awaiting_correction")

    status, body, _ = bridge.lab_api(with_body(route, json.dumps({"status": "cancelled"})))

    assert status == 202, body
    received = wait_until(
        lambda: len(bridge.emulator.reports(lipid)) == 2 and bridge.emulator.reports(lipid), 20, what="the cancellation"
    )
    assert received[1] == {"status": "cancelled"}
    status, view, _ = bridge.lab_api(requisition_route("lab_api_get_requisition.json", order["id"]))
    (service_request,) = [sr for sr in view["service_requests"] if sr["id"] == lipid]
    assert [(r["status"], r["observation_count"]) for r in service_request["diagnostic_reports"]] == [
        ("final", 2),
        ("cancelled", 0),
    ]


@pytest.mark.parametrize("status", ["final", "partial"])
def test_a_report_other_than_cancelled_still_needs_results(bridge, order, status):
    lipid = order["by_code"]["LIPID_PANEL"]
    route = service_request_route("lab_api_results_final.json", lipid)

    code, body, _ = bridge.lab_api(with_body(route, json.dumps({"status": status, "observations": []})))

    assert code == 400
    assert [problem["field"] for problem in body["problems"]] == ["observations"]
    assert bridge.service_request_item(lipid)["task_token"]


def test_a_400_lists_the_missing_value_beside_the_missing_code(bridge, order):
    """The first observation has no value and no status, the second no code: one answer
    names both (pydantic alone skips the value rule once a field fails)."""
    lipid = order["by_code"]["LIPID_PANEL"]
    report = {
        "status": "final",
        "observations": [{"code": "LDL_CHOLESTEROL", "unit": "mg/dL"}, {"value_numeric": 52.5, "status": "final"}],
    }

    status, body, _ = bridge.lab_api(
        with_body(service_request_route("lab_api_results_final.json", lipid), json.dumps(report))
    )

    assert status == 400
    assert {(problem["field"], problem["problem"]) for problem in body["problems"]} == {
        ("observations.0", "an observation needs value_numeric or value_text (or both)"),
        ("observations.1.code", "Field required"),
    }
    assert bridge.emulator.reports(lipid) == []


def list_route(name: str = "lab_api_list_requisitions.json", **query: str) -> dict:
    event = load_event(name)
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {key: [value] for key, value in query.items()} or None
    return event


def test_since_with_an_offset_whose_plus_api_gateway_decoded_to_a_space(bridge, order):
    received = datetime.fromisoformat(bridge.requisition_item(order["id"])["received_at"].replace("Z", "+00:00"))

    def listed(moment: datetime) -> list[str]:
        # 2026-01-01T00:00:00+01:00 arrives as "2026-01-01T00:00:00 01:00".
        since = (
            moment.astimezone(timezone(timedelta(hours=1))).replace(tzinfo=None).isoformat(timespec="seconds")
            + " 01:00"
        )
        status, body, _ = bridge.lab_api(list_route(since=since, limit="100"))
        assert status == 200, body
        return [requisition["id"] for requisition in body["requisitions"]]

    assert order["id"] in listed(received - timedelta(minutes=5))
    assert order["id"] not in listed(received + timedelta(minutes=5))


@pytest.mark.parametrize(
    "since", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00 01:00", "9999-12-31T23:59:59-01:00"]
)
def test_a_since_whose_utc_time_is_outside_the_calendar_is_a_400(bridge, since):
    status, body, _ = bridge.lab_api(list_route(since=since))

    assert status == 400, body
    (problem,) = body["problems"]
    assert body["error"] == "invalid_request" and "since" in problem["problem"]


def test_an_unknown_status_filter_is_a_400_naming_the_allowed_values(bridge):
    status, body, _ = bridge.lab_api(list_route(status="complete"))

    assert status == 400
    (problem,) = body["problems"]
    assert "ORDER_CONFIRMED" in problem["problem"] and "open" in problem["problem"] and "closed" in problem["problem"]


def test_a_page_token_is_refused_with_another_window_or_filter_or_when_made_up(bridge, order):
    bridge.process_requisition(["CBC"])
    status, first, _ = bridge.lab_api(list_route(limit="1", since="2000-01-01T00:00:00Z", status="open"))
    assert status == 200 and first["next_token"]
    token = first["next_token"]

    status, page, _ = bridge.lab_api(
        list_route(limit="1", since="2000-01-01T00:00:00Z", status="open", next_token=token)
    )
    assert status == 200, page
    assert page["requisitions"] != first["requisitions"]

    stale_key = {
        "pk": f"REQ#{order['id']}",
        "sk": "REQ",
        "gsi1pk": "REQUISITION",
        "gsi1sk": f"2001-01-01T00:00:00.000Z#{order['id']}",
    }
    for query in (
        {"since": "2001-01-01T00:00:00Z", "status": "open", "next_token": token},  # another window
        {"since": "2000-01-01T00:00:00Z", "status": "closed", "next_token": token},  # another filter
        {"next_token": token},
        {"next_token": "bm90LWEtdG9rZW4"},  # made up
        {"next_token": "%%%"},
        {
            "next_token": base64.urlsafe_b64encode(json.dumps(stale_key).encode()).decode()
        },  # a bare key, as tokens used to be
    ):
        status, body, _ = bridge.lab_api(list_route(**query))
        assert status == 400, (query, body)
        assert body["problems"][0]["field"] == "query"
        assert "next_token" in body["problems"][0]["problem"]

    status, body, _ = bridge.lab_api(list_route("lab_api_clinical_report_reviews.json", next_token=token))
    assert status == 400  # a requisitions token on the reviews listing


def test_test_data_starts_the_normal_intake_from_whoops_answer_once(bridge):
    status, body, _ = bridge.lab_api(load_event("lab_api_test_data.json"))

    assert status == 202, body
    requisition_id = body["requisition_id"]
    made = bridge.emulator.requisition(requisition_id)
    assert [appointment["type"] for appointment in made["appointments"]] == ["MOBILE"]
    (message,) = [m for m in bridge.queue_messages() if json.loads(m["Body"])["resource_id"] == requisition_id]
    assert json.loads(message["Body"]) == {"event_type": "lab_requisition.created", "resource_id": requisition_id}
    queued = load_event("sqs_requisition_created.json", **{SAMPLE_REQUISITION_ID: requisition_id})
    assert bridge.invoke("RequisitionProcessorFunction", queued) == {"batchItemFailures": []}
    for service_request in made["service_requests"]:
        bridge.wait_for_workflow(service_request["id"], "awaiting_lab_event", "closed")
    status, view, _ = bridge.lab_api(requisition_route("lab_api_get_requisition.json", requisition_id))
    assert status == 200 and view["id"] == requisition_id
    # Should WHOOP send its webhook for it too, the order is not taken in twice.
    queued["Records"][0]["messageId"] = str(uuid.uuid4())
    assert bridge.invoke("RequisitionProcessorFunction", queued) == {"batchItemFailures": []}
    assert len(bridge.emulator.calls_to("GET", f"/requisition/{requisition_id}$")) == 1
    assert [v for v in bridge.emulator.contract_violations() if "add-test-data" in v["path"]] == []


def test_test_data_in_production_is_a_409_not_a_server_error(bridge):
    bridge.emulator.production = True
    try:
        status, body, _ = bridge.lab_api(with_body(load_event("lab_api_test_data.json"), "{}"))
    finally:
        bridge.emulator.production = False

    assert status == 409
    assert body["error"] == "test_data_unavailable"
    assert "sandbox" in body["message"]
    assert bridge.queue_messages() == []


def test_test_data_with_an_unknown_appointment_type_is_a_400(bridge):
    calls = len(bridge.emulator.calls_to("POST", "add-test-data"))

    status, body, _ = bridge.lab_api(with_body(load_event("lab_api_test_data.json"), '{"appointment_type": "HOME"}'))

    assert status == 400
    assert [problem["field"] for problem in body["problems"]] == ["appointment_type"]
    assert len(bridge.emulator.calls_to("POST", "add-test-data")) == calls


def test_test_data_when_whoop_cannot_be_reached_is_a_retryable_503(bridge):
    bridge.emulator.inject_fault("POST", "add-test-data", status=503, count=5)

    status, body, _ = bridge.lab_api(load_event("lab_api_test_data.json"))

    assert status == 503
    assert (body["error"], body["retryable"]) == ("whoop_unavailable", True)
    assert bridge.queue_messages() == []


def test_openapi_schema_describes_the_lab_routes(bridge):
    status, body, _ = bridge.lab_api(load_event("lab_api_openapi.json"))

    assert status == 200
    assert body["openapi"].startswith("3.")
    assert {
        "/lab/requisitions",
        "/lab/requisitions/{requisition_id}",
        "/lab/requisitions/{requisition_id}/events",
        "/lab/service-requests/{service_request_id}/events",
        "/lab/service-requests/{service_request_id}/results",
        "/lab/clinical-report-reviews",
        "/lab/test-data",
    } <= set(body["paths"])


def test_a_page_token_nested_past_the_recursion_limit_is_a_400_not_a_500(bridge):
    nested = base64.urlsafe_b64encode(b"[" * 1100 + b"]" * 1100).decode()  # ~3 KB: within API Gateway's URL limit

    for route in ("lab_api_list_requisitions.json", "lab_api_clinical_report_reviews.json"):
        status, body, _ = bridge.lab_api(list_route(route, next_token=nested))

        assert status == 400, (route, body)
        assert "next_token" in body["problems"][0]["problem"]
