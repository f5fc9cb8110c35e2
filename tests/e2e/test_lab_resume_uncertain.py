"""A report WHOOP took whose answer was lost, end to end over HTTP: the emulator handles the
results POST and holds its answer past the client's timeout, then lets every later attempt
time out unhandled, so the execution fails with WHOOP holding the report once. A plain resume
is a 409 `report_uncertain` (nothing sent); with `report_taken` the test reaches its next
status at WHOOP exactly once and WHOOP still holds the report once. The client's timeout is
1 s with one retry here, and Step Functions' retry waits run 500 times faster.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from local.stack import wait_until
from tests.e2e.conftest import running_harness

REPORT = {
    "status": "final",
    "observations": [{"code": "TOTAL_CHOLESTEROL", "value_numeric": 185, "unit": "mg/dL", "status": "final"}],
}
RESULTS = "/service-request/{}/results$"
LOST_ANSWER_DELAY = 3.0  # past the client's 1 s timeout
OUTAGE_CALLS = 1000


@pytest.fixture(scope="module")
def _module_bridge() -> Any:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WHOOP_BACKOFF_SECONDS", "0.01")
        env.setenv("WHOOP_TIMEOUT_SECONDS", "1")
        env.setenv("WHOOP_MAX_RETRIES", "1")
        yield from running_harness(
            {"AcceptedTestCodes": "LIPID_PANEL", "CorrectionWindowDays": "1"}, retry_wait_scale=0.002
        )


def _test(bridge, requisition_id: str, sr_id: str) -> dict[str, Any]:
    found = bridge.lab.requisition(requisition_id) or {}
    return next(sr for sr in found.get("service_requests", []) if sr["id"] == sr_id)


def _wait(bridge, requisition_id: str, sr_id: str, predicate: Any, what: str, timeout: float = 180) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        sr = _test(bridge, requisition_id, sr_id)
        return sr if predicate(sr) else None

    return wait_until(found, timeout=timeout, what=what)


def test_a_report_whose_answer_was_lost_is_not_sent_again_until_the_operator_confirms(bridge):
    requisition = bridge.new_requisition(["LIPID_PANEL"])
    sr_id = bridge.wait_confirmed(requisition["id"], 1)["service_requests"][0]["id"]
    results = RESULTS.format(sr_id)
    # WHOOP takes the first POST and its answer is lost; every later one times out unhandled.
    bridge.emulator.inject_fault("POST", results, status=None, delay=LOST_ANSWER_DELAY, after=True)
    bridge.emulator.inject_fault("POST", results, status=503, delay=LOST_ANSWER_DELAY, count=OUTAGE_CALLS)

    assert bridge.post(f"/lab/service-requests/{sr_id}/results", REPORT).status_code == 202
    failed = _wait(bridge, requisition["id"], sr_id, lambda sr: sr["workflow"] == "failed", "failed past every retry")
    assert failed["failure"]["error"] == "WhoopTransientError"
    assert bridge.emulator.reports(sr_id) == [REPORT]  # WHOOP holds it, the bridge cannot know
    bridge.emulator.clear_faults()
    time.sleep(LOST_ANSWER_DELAY)  # the held answers are all out
    posts_before = len(bridge.emulator.calls_to("POST", results))

    plain = bridge.post(f"/lab/service-requests/{sr_id}/resume", {})
    assert plain.status_code == 409, plain.text
    refused = plain.json()
    assert set(refused) == {"error", "message", "report_id", "submission_started_at"}
    assert refused["error"] == "report_uncertain" and refused["report_id"] in refused["message"]
    assert "185" not in plain.text and "TOTAL_CHOLESTEROL" not in plain.text  # no health data
    assert _test(bridge, requisition["id"], sr_id)["workflow"] == "failed"

    bad = bridge.post(f"/lab/service-requests/{sr_id}/resume", {"report_taken": "yes", "force": True})
    assert bad.status_code == 400, bad.text
    assert "report_taken" in bad.text and "force" in bad.text
    both = bridge.post(f"/lab/service-requests/{sr_id}/resume", {"report_taken": True, "resend_uncertain_report": True})
    assert both.status_code == 400 and "contradict" in both.text

    taken = bridge.post(f"/lab/service-requests/{sr_id}/resume", {"report_taken": True})
    assert taken.status_code == 202, taken.text
    assert taken.json()["resending"] == ["FULL_RESULTS_READY"]
    done = _wait(bridge, requisition["id"], sr_id, lambda sr: sr["workflow"] == "awaiting_correction", "final")
    time.sleep(1.0)  # a second send would have arrived by now

    assert done["task_business_status"] == "FULL_RESULTS_READY"
    assert bridge.emulator.reports(sr_id) == [REPORT]  # held once
    assert len(bridge.emulator.calls_to("POST", results)) == posts_before  # never posted again
    assert [entry["status"] for entry in bridge.emulator.status_history(sr_id)] == [
        "ORDER_CONFIRMED",
        "FULL_RESULTS_READY",
    ]
    [resumed] = [entry for entry in done["history"] if entry.get("event") == "resumed"]
    assert resumed["uncertain_report"] == "taken" and resumed["resending"] == ["FULL_RESULTS_READY"]
    [submitted] = bridge.domain_events.published("service_request.report_submitted", service_request_id=sr_id)
    assert submitted["report_id"] == refused["report_id"]
