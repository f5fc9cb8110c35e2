"""The intake's rules on what WHOOP sends: what each test of a new order leads to, how a
test the bridge cannot read is kept, and how long a 404 is fetched again (read lag)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whoop_bridge.lab.intake import decide, read_service_requests, retry_delay
from whoop_bridge.models.lab_order import ServiceRequest

OFFERED = {"LIPID_PANEL", "CBC"}


def accepts(code: str) -> bool:
    return code in OFFERED


def service_request(**fields) -> ServiceRequest:
    return ServiceRequest.model_validate({"id": "sr-1", "status": "active", "intent": "order", "code": "CBC", **fields})


@pytest.mark.parametrize("value", [None, "Specimen collected", "Results pending", "SAMPLE_LOST", "order_confirmed"])
def test_a_new_or_unrecognised_task_business_status_is_confirmed(value):
    assert decide(service_request(task_business_status=value), accepts) == ("confirm", None)


@pytest.mark.parametrize("value", [None, "Specimen collected"])
def test_a_code_the_lab_does_not_offer_is_the_one_order_issue(value):
    decision, reason = decide(service_request(code="HBA1C", task_business_status=value), accepts)
    assert decision == "reject"
    assert reason == "Test code HBA1C is not offered by this lab."


@pytest.mark.parametrize("value", ["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED", "PARTIAL_RESULTS_READY"])
def test_a_test_whoop_holds_as_confirmed_or_further_resumes_without_confirming_again(value):
    assert decide(service_request(task_business_status=value), accepts) == ("resume", None)


@pytest.mark.parametrize("value", ["FULL_RESULTS_READY", "APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"])
def test_a_test_whoop_holds_as_final_is_left_alone_even_when_not_offered(value):
    assert decide(service_request(task_business_status=value), accepts) == ("skip", None)
    assert decide(service_request(code="HBA1C", task_business_status=value), accepts) == ("skip", None)


@pytest.mark.parametrize("status", ["revoked", "completed", "on-hold", "entered-in-error", None, "ACTIVE"])
def test_a_fhir_status_other_than_active_is_no_work_and_nothing_sent(status):
    # A code the lab does not offer is not rejected either: there is nothing to fulfil.
    assert decide(service_request(status=status, code="HBA1C"), accepts) == ("skip", None)


def test_every_readable_test_is_kept_with_its_decision_and_whoops_value_as_received():
    items, unreadable = read_service_requests(
        [
            {
                "id": "sr-1",
                "status": "active",
                "code": "CBC",
                "task_business_status": "Specimen collected",
                "based_on": [],
                "priority": 1,
            },
            {"id": "sr-2", "status": "active", "code": "LIPID_PANEL", "task_business_status": "APPOINTMENT_ATTENDED"},
            {"id": "sr-3", "code": "HBA1C", "task_business_status": None, "task_description": None},
        ],
        "req-1",
        accepts,
    )
    assert unreadable == []
    by_id = {item.service_request_id: item for item in items}
    assert [item.service_request_id for item in items] == ["sr-1", "sr-2", "sr-3"]
    assert by_id["sr-1"].decision == "confirm"
    assert by_id["sr-1"].whoop_task_business_status == "Specimen collected"
    assert by_id["sr-1"].task_business_status is None  # nothing sent yet
    assert (by_id["sr-2"].decision, by_id["sr-2"].task_business_status) == ("resume", "APPOINTMENT_ATTENDED")
    assert (by_id["sr-3"].decision, by_id["sr-3"].decision_reason) == (
        "reject",
        "Test code HBA1C is not offered by this lab.",
    )
    assert all(item.requisition_id == "req-1" for item in items)


def test_a_test_without_a_readable_code_is_held_and_one_without_an_id_only_named():
    items, unreadable = read_service_requests(
        [{"id": "sr-1", "code": None}, {"code": "CBC"}, "not an object", {"id": "sr-4", "code": "CBC"}],
        "req-1",
        accepts,
    )
    assert [(item.service_request_id, item.decision, item.workflow) for item in items] == [
        ("sr-1", "hold", "held"),
        ("sr-4", "confirm", "starting"),
    ]
    assert items[0].problems == [{"field": "service_requests.0.code", "problem": "Input should be a valid string"}]
    assert {problem["field"] for problem in unreadable} == {
        "service_requests.0.code",
        "service_requests.1.id",
        "service_requests.2",
    }


START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_404_is_fetched_again_with_doubling_delays_until_fifteen_minutes_have_passed():
    now, attempt, delays = START, 1, []
    while (delay := retry_delay(attempt, START, now, 900)) is not None:
        delays.append(delay)
        now += timedelta(seconds=delay)
        attempt += 1
    assert delays == [30, 60, 120, 240, 450]
    assert now == START + timedelta(seconds=900)


def test_no_delay_exceeds_what_sqs_allows_and_a_zero_bound_gives_up_at_once():
    assert retry_delay(10, START, START, 86_400) == 900
    assert retry_delay(1, START, START, 0) is None
    assert retry_delay(3, START, START + timedelta(seconds=901), 900) is None
    assert retry_delay(1, START, START, 5) == 1
