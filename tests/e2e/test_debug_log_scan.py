"""No secret, token or patient field in any log line at DEBUG (issue 11, item 1).

The lab flow (an order of three tests, attended, results, a results issue with a reason)
and the member flow (connect through WHOOP's consent, backfill, a scored sleep by webhook,
the member API's reads, the scheduled token refresh, disconnect) run on the local stack
with `LogLevel=DEBUG`. Every line is captured: the handlers' JSON logs (the stack's log
stream), everything that reaches the root logger at DEBUG (what Lambda's own handler
would send to CloudWatch: botocore's, urllib3's, Powertools' internal loggers), and the
process's stdout and stderr. Each line is scanned for the values that must never be
logged: both apps' secrets, every token and code the emulator issued, the OAuth state,
the functions' AWS session token, the patient's fields, the tests' descriptions, the
observation values and the issue's reason, the member's profile and WHOOP's scores.

Error paths run too, each with values planted where an error's text or a raw body would
carry them: a results POST the lab API refuses (400) whose invalid value and extra patient
fields are patient-like; WHOOP refusing the results with a 422 whose body echoes the
patient, so the Step Functions task fails and its failure is recorded; a member record
fetch answered with a 500 whose body quotes the member (the client retries) and one
answered 200 with a record the bridge cannot read (its bad field holds a planted value).
The lab's own languages run too: the order read as FHIR and as HL7 v2, results sent as an
HL7 ORU^R01 and as a FHIR DiagnosticReport (accepted), and one malformed message of each
kind carrying planted patient-like values (refused in the sender's language).
"""

from __future__ import annotations

import io
import logging
import os
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import requests

from local import lis_messages
from local.demo import DEMO_MEMBER, DEMO_RETURN_URL, age_tokens, follow_consent
from local.stack import HandlerError, wait_until
from tests.e2e.conftest import Harness, running_harness
from whoop_bridge import caches

SESSION_TOKEN = f"debugscan-session-{uuid.uuid4().hex}"
CODES = ["LIPID_PANEL", "CBC", "HBA1C"]
# Results with values no timestamp, id or count can contain: (code, value, unit).
RESULTS = {
    "LIPID_PANEL": [("TOTAL_CHOLESTEROL", 187.43, "mg/dL"), ("HDL_CHOLESTEROL", 52.71, "mg/dL")],
    "CBC": [("HEMOGLOBIN", 14.27, "g/dL"), ("BLOOD_TYPE", "Oneg-zq91-typed", None)],
}


def _report(code: str) -> dict[str, Any]:
    """A final report of `code`'s `RESULTS`."""
    observations = []
    for observation_code, value, unit in RESULTS[code]:
        observation = {"code": observation_code, "status": "final"}
        observation.update({"value_numeric": value, "unit": unit} if unit else {"value_text": value})
        observations.append(observation)
    return {"status": "final", "observations": observations}


ISSUE_REASON = "Sample haemolysed at the Qxv-clinic draw"
OBSERVED = [str(value) for results in RESULTS.values() for _, value, _ in results] + [ISSUE_REASON]
# Loggers of the local emulation itself (moto stands for AWS, the emulator for WHOOP):
# they do not run in Lambda.
NOT_IN_LAMBDA = ("moto", "responses", "local", "werkzeug")
# Planted in the error runs' requests and in WHOOP's error answers; never logged.
PLANTED = {
    "invalid result value": "Qvx-hemolysed-7731",
    "refused patient name": "Zorbanelle Quistrada",
    "refused patient emirates_id": "784-1979-8827361-4",
    "refused result": "221.93",
    "WHOOP error body": "Wexford-Pellinore-5520",
    "unreadable record field": "Kettleby-start-3391",
    "HL7 result": "Trelawney-sodium-4417",
    "FHIR result": "Ambergate-potassium-9023",
    "malformed HL7 value": "Quorndon-nm-6684",
    "malformed HL7 patient": "Ysolde Brackenridge",
    "malformed FHIR value": "Pellworth-qty-2209",
    "malformed FHIR patient": "Odalric Fenwhistle",
}


class _NotInLambda(logging.Filter):
    """Drops the emulation's records; counts the DEBUG records that reached the root."""

    def __init__(self) -> None:
        super().__init__()
        self.debug_records = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.debug_records += record.levelno == logging.DEBUG
        return record.name.split(".")[0] not in NOT_IN_LAMBDA


def _numbers(value: Any) -> list[str]:
    """The fractional numbers in a WHOOP score (ints are too common to scan for)."""
    if isinstance(value, dict):
        return [found for item in value.values() for found in _numbers(item)]
    if isinstance(value, list):
        return [found for item in value for found in _numbers(item)]
    if isinstance(value, float) and len(repr(value).partition(".")[2]) >= 2:
        return [repr(value)]
    return []


def _needle(text: str) -> re.Pattern[str]:
    """`text` not inside a longer word or number."""
    return re.compile(rf"(?<![\w.]){re.escape(text)}(?![\w]|\.\d)")


def _lab_flow(bridge: Harness) -> dict[str, Any]:
    requisition = bridge.new_requisition(CODES)
    confirmed = bridge.wait_confirmed(requisition["id"], len(CODES))
    ids = {sr["code"]: sr["id"] for sr in confirmed["service_requests"]}
    assert bridge.lab.requisition_event(requisition["id"], {"status": "APPOINTMENT_ATTENDED"}).status_code == 202
    for code in CODES:
        bridge.lab.wait_for(
            requisition["id"], code, lambda sr: sr["task_business_status"] == "APPOINTMENT_ATTENDED", "attended"
        )
    bridge.lab.results(ids["LIPID_PANEL"], _report("LIPID_PANEL"))
    bridge.lab.results(ids["CBC"], _report("CBC"))
    bridge.lab.event(ids["HBA1C"], {"status": "RESULTS_ISSUE", "reason": ISSUE_REASON})
    ends = {
        "LIPID_PANEL": lambda sr: sr["workflow"] == "awaiting_correction",
        "CBC": lambda sr: sr["workflow"] == "awaiting_correction",
        "HBA1C": lambda sr: sr["workflow"] == "closed",
    }
    for code, predicate in ends.items():
        bridge.lab.wait_for(requisition["id"], code, predicate, "done")
    return requisition


def _lab_errors(bridge: Harness) -> tuple[dict[str, Any], str]:
    """A results POST refused with a 400, then WHOOP refusing results with a 422: the task
    fails without a retry (a rejection is not transient) and the failure is recorded."""
    requisition = bridge.new_requisition(["LIPID_PANEL"])
    sr_id = bridge.wait_confirmed(requisition["id"], 1)["service_requests"][0]["id"]
    invalid = {
        "status": "final",
        "observations": [
            {"code": "TOTAL_CHOLESTEROL", "status": "final", "value_numeric": PLANTED["invalid result value"]}
        ],
        "patient": {"name": PLANTED["refused patient name"], "emirates_id": PLANTED["refused patient emirates_id"]},
    }
    refused = bridge.post(f"/lab/service-requests/{sr_id}/results", invalid)
    assert refused.status_code == 400, refused.text
    echo = {"name": PLANTED["refused patient name"], "emirates_id": PLANTED["refused patient emirates_id"]}
    bridge.emulator.inject_fault(
        "POST",
        f"/service-request/{sr_id}/results$",
        status=422,
        body={"error": "unprocessable_report", "message": f"refused for {echo}", "patient": echo},
    )
    report = {
        "status": "final",
        "observations": [
            {
                "code": "TOTAL_CHOLESTEROL",
                "status": "final",
                "value_numeric": float(PLANTED["refused result"]),
                "unit": "mg/dL",
            }
        ],
    }
    assert bridge.post(f"/lab/service-requests/{sr_id}/results", report).status_code == 202
    bridge.wait_service_request(requisition["id"], sr_id, lambda sr: sr["workflow"] == "failed", "the failure")
    statuses = [call["status"] for call in bridge.emulator.calls_to("POST", f"/service-request/{sr_id}/results$")]
    assert statuses == [422]
    return requisition, sr_id


def _lis_runs(bridge: Harness) -> dict[str, Any]:
    """The order read as FHIR and HL7, results in both (accepted), and a malformed message
    of each kind with patient-like values (refused in the sender's language)."""
    requisition = bridge.new_requisition(["LIPID_PANEL", "CBC"])
    ids = {sr["code"]: sr["id"] for sr in bridge.wait_confirmed(requisition["id"], 2)["service_requests"]}
    url = f"{bridge.stack.url}/lab/requisitions/{requisition['id']}"
    for accept in (lis_messages.FHIR, lis_messages.HL7):
        assert requests.get(url, headers={"Accept": accept}, timeout=30).status_code == 200
    assert bridge.lab.requisition_event(requisition["id"], {"status": "APPOINTMENT_ATTENDED"}).status_code == 202
    for code in ids:
        bridge.lab.wait_for(
            requisition["id"], code, lambda sr: sr["task_business_status"] == "APPOINTMENT_ATTENDED", "attended"
        )

    def send(content_type: str, text: str) -> requests.Response:
        headers = {"Content-Type": content_type}
        return requests.post(f"{bridge.stack.url}/lab/results", data=text.encode(), headers=headers, timeout=30)

    hl7_report = {"status": "final", "observations": [{"code": "NA", "value_text": PLANTED["HL7 result"]}]}
    fhir_report = {"status": "final", "observations": [{"code": "K", "value_text": PLANTED["FHIR result"]}]}
    # Malformed: an NM value that is no number, a patient segment; an unknown element
    # holding a name, a quantity whose value is text.
    bad_hl7 = lis_messages.oru(ids["CBC"], hl7_report, "CTRL-BAD").replace(
        f"OBX|1|ST|NA||{PLANTED['HL7 result']}", f"OBX|1|NM|NA||{PLANTED['malformed HL7 value']}"
    )
    bad_hl7 = bad_hl7.replace("\rOBR|", f"\rPID|1||X||{PLANTED['malformed HL7 patient']}\rOBR|")
    bad_fhir = lis_messages.fhir_report(ids["LIPID_PANEL"], fhir_report).replace(
        f'"valueString": "{PLANTED["FHIR result"]}"',
        f'"valueQuantity": {{"value": "{PLANTED["malformed FHIR value"]}"}}, '
        f'"patientName": "{PLANTED["malformed FHIR patient"]}"',
    )
    assert PLANTED["malformed HL7 value"] in bad_hl7 and PLANTED["malformed HL7 patient"] in bad_hl7
    assert PLANTED["malformed FHIR value"] in bad_fhir and PLANTED["malformed FHIR patient"] in bad_fhir
    refused_hl7, refused_fhir = send(lis_messages.HL7, bad_hl7), send(lis_messages.FHIR, bad_fhir)
    assert refused_hl7.status_code == 400 and "MSA|AE" in refused_hl7.text, refused_hl7.text
    assert refused_fhir.status_code == 400 and "OperationOutcome" in refused_fhir.text, refused_fhir.text

    assert send(lis_messages.HL7, lis_messages.oru(ids["CBC"], hl7_report, "CTRL-1")).status_code == 202
    assert send(lis_messages.FHIR, lis_messages.fhir_report(ids["LIPID_PANEL"], fhir_report)).status_code == 202
    for code in ids:
        bridge.lab.wait_for(requisition["id"], code, lambda sr: sr["workflow"] == "awaiting_correction", "reported")
    return requisition


def _member_errors(bridge: Harness, user_id: int) -> None:
    """A record fetch answered 500 with a body quoting the member (retried, then stored),
    and one answered 200 with a record whose start is not a time (skipped)."""
    emulator, platform = bridge.emulator, bridge.platform
    retried, unreadable = (emulator.add_record(user_id, "workout", pending=False) for _ in range(2))
    emulator.inject_fault(
        "GET",
        f"activity/workout/{retried['id']}$",
        status=500,
        body={"error": "server_error", "message": f"failed for {PLANTED['WHOOP error body']}"},
    )
    broken = {**unreadable, "start": PLANTED["unreadable record field"]}
    emulator.inject_fault("GET", f"activity/workout/{unreadable['id']}$", status=200, body=broken)
    for workout in (retried, unreadable):
        assert emulator.send_member_webhook(user_id, "workout.updated", workout["id"]) == 204
    wait_until(
        lambda: retried["id"] in {workout["id"] for workout in platform.records(DEMO_MEMBER, "workout")},
        timeout=30,
        what="the retried workout",
    )
    wait_until(lambda: "WHOOP record skipped" in bridge.log.getvalue(), timeout=30, what="the skipped workout")
    assert [call["status"] for call in emulator.calls_to("GET", f"activity/workout/{retried['id']}$")][:2] == [500, 200]
    assert unreadable["id"] not in {workout["id"] for workout in platform.records(DEMO_MEMBER, "workout")}


def _member_flow(bridge: Harness) -> tuple[dict[str, Any], str, int]:
    emulator, platform = bridge.emulator, bridge.platform
    profile = emulator.add_member()
    user_id = profile["user_id"]
    emulator.generate_history(user_id, days=5)
    emulator.signed_in_user_id = user_id
    link = platform.connect_link(DEMO_MEMBER, DEMO_RETURN_URL)
    assert link.status_code == 201, link.text
    state = parse_qs(urlsplit(link.json()["authorization_url"]).query)["state"][0]
    hops = follow_consent(link.json()["authorization_url"])
    assert hops[-1].headers["Location"].endswith("status=connected")

    def backfilled() -> bool:
        progress = platform.connection(DEMO_MEMBER).json().get("backfill") or {}
        return len(progress) == 5 and all(part["state"] == "done" for part in progress.values())

    wait_until(backfilled, timeout=60, what="the backfill")
    pending = next(sleep for sleep in emulator.records(user_id, "sleep") if sleep["score_state"] == "PENDING_SCORE")
    emulator.score(user_id, "sleep", pending["id"])
    assert emulator.send_member_webhook(user_id, "sleep.updated", pending["id"]) == 204
    wait_until(
        lambda: any(
            sleep["id"] == pending["id"] and sleep["score_state"] == "SCORED"
            for sleep in platform.records(DEMO_MEMBER, "sleep")
        ),
        timeout=30,
        what="the scored sleep",
    )
    for record_type in ("cycle", "recovery", "workout"):
        assert platform.records(DEMO_MEMBER, record_type)
    _member_errors(bridge, user_id)
    emulator.expire_member_tokens()
    age_tokens(bridge.stack, DEMO_MEMBER, 300)
    refreshes = emulator.member_refreshes
    bridge.stack.run_schedule("MemberSyncFunction", "RefreshTokens")
    assert emulator.member_refreshes == refreshes + 1
    assert platform.disconnect(DEMO_MEMBER).status_code in (200, 202, 204)
    return profile, state, user_id


def _forbidden(
    bridge: Harness, requisitions: list[dict[str, Any]], profile: dict[str, Any], state: str, user_id: int
) -> list[tuple[str, str]]:
    """(what, value) pairs no log line may hold."""
    emulator = bridge.emulator
    pairs = [("credential", value) for value in emulator.issued_credentials()]
    pairs += [("OAuth state", state), ("AWS session token", SESSION_TOKEN)]
    for requisition in requisitions:
        patient = requisition["patient"]
        pairs += [
            (f"patient {key}", str(value)) for key, value in patient.items() if key != "gender" and len(str(value)) >= 4
        ]
        pairs += [("task_description", sr["task_description"]) for sr in requisition["service_requests"]]
    pairs += [("result", value) for value in OBSERVED]
    pairs += [(f"member {key}", str(profile[key])) for key in ("email", "first_name", "last_name")]
    pairs += list(PLANTED.items())
    for record_type in ("cycle", "sleep", "recovery", "workout"):
        for record in emulator.records(user_id, record_type):
            pairs += [(f"{record_type} score", number) for number in _numbers(record.get("score"))]
    return pairs


def test_no_secret_token_or_patient_field_in_any_line_at_debug(capfd):
    captured = io.StringIO()
    root = logging.getLogger()
    handler = logging.StreamHandler(captured)
    handler.setLevel(logging.DEBUG)
    seen = _NotInLambda()
    handler.addFilter(seen)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    saved_level = root.level
    escaped: list[str] = []
    harness = running_harness({"AcceptedTestCodes": ",".join(CODES), "LogLevel": "DEBUG"})
    bridge = next(harness)
    try:
        # The functions' credentials carry a session token, as Lambda's do: new clients use it.
        os.environ["AWS_SESSION_TOKEN"] = SESSION_TOKEN
        boto3.DEFAULT_SESSION = None
        caches.reset_all()
        # Lambda's runtime writes an error escaping a handler (a failed Step Functions task,
        # a queue batch) to the function's log: keep its lines as the runtime would.
        run = bridge.stack.invoke

        def invoke_as_lambda(logical_id: str, event: dict[str, Any]) -> Any:
            try:
                return run(logical_id, event)
            except HandlerError as error:
                escaped.append(f"[ERROR] {error.error_type}: {error}")
                raise

        bridge.stack.invoke = invoke_as_lambda  # type: ignore[method-assign]
        # Lambda's own handler on the root logger at the function's level (ALC DEBUG).
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        assert logging.getLogger("whoop_bridge").getEffectiveLevel() == logging.DEBUG

        requisition = _lab_flow(bridge)
        refused, failed_sr_id = _lab_errors(bridge)
        spoken = _lis_runs(bridge)
        profile, state, user_id = _member_flow(bridge)
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        harness.close()
        boto3.DEFAULT_SESSION = None
    printed = capfd.readouterr()
    sources = {
        "handler log": bridge.log.getvalue(),
        "root logger": captured.getvalue(),
        "stdout": printed.out,
        "stderr": printed.err,
        "Lambda runtime": "\n".join(escaped),
    }
    # The capture is live: ids are kept in the handlers' lines, and DEBUG records reached
    # the root handler (the emulation's own, dropped above; the SDK's are capped).
    assert requisition["id"] in sources["handler log"]
    # The error runs were logged (by id and kind, never by value).
    assert re.search(rf'"service request failed".*"{failed_sr_id}"', sources["handler log"])
    assert any(line.startswith("[ERROR] WhoopRequestRejected") for line in escaped), escaped
    assert f'"client_user_id":"{DEMO_MEMBER}"' in sources["handler log"].replace(" ", "")
    assert seen.debug_records > 0

    leaks = []
    for what, value in _forbidden(bridge, [requisition, refused, spoken], profile, state, user_id):
        pattern = _needle(value)
        for source, text in sources.items():
            for line in text.splitlines():
                if pattern.search(line):
                    leaks.append(f"{what} {value!r} in {source}: {line[:300]}")
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(leaks[:20])
