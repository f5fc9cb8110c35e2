"""The lab demo: one requisition of three tests through every path, as WHOOP sees it.

- LIPID_PANEL: attended, a partial report, then the final report.
- CBC: attended, the final report, then an amended report inside the correction window.
- HBA1C: attended, then RESULTS_ISSUE with a reason (the sample could not be analysed).

The lab's side talks to the bridge only through its HTTP API, as a lab's LIS would.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

from local.emulator import WhoopEmulator
from local.stack import LocalStack, wait_until

CODES = ("LIPID_PANEL", "CBC", "HBA1C")
LIPID_PARTIAL = {
    "status": "partial",
    "observations": [{"code": "TOTAL_CHOLESTEROL", "value_numeric": 185, "unit": "mg/dL", "status": "final"}],
}
LIPID_FINAL = {
    "status": "final",
    "observations": [
        {"code": "TOTAL_CHOLESTEROL", "value_numeric": 185, "unit": "mg/dL", "status": "final"},
        {"code": "HDL_CHOLESTEROL", "value_numeric": 52, "unit": "mg/dL", "status": "final"},
        {"code": "LDL_CHOLESTEROL", "value_numeric": 110, "unit": "mg/dL", "status": "final"},
        {"code": "TRIGLYCERIDES", "value_numeric": 115, "unit": "mg/dL", "status": "final"},
    ],
}
CBC_FINAL = {
    "status": "final",
    "observations": [
        {"code": "WBC", "value_numeric": 6.1, "unit": "10^3/uL", "status": "final"},
        {"code": "HEMOGLOBIN", "value_numeric": 14.2, "unit": "g/dL", "status": "final"},
        {"code": "BLOOD_TYPE", "value_text": "A+", "status": "final"},
    ],
}
CBC_AMENDED = {
    "status": "amended",
    "observations": [
        {"code": "WBC", "value_numeric": 6.1, "unit": "10^3/uL", "status": "final"},
        {"code": "HEMOGLOBIN", "value_numeric": 14.0, "unit": "g/dL", "status": "amended"},
        {"code": "BLOOD_TYPE", "value_text": "A+", "status": "final"},
    ],
}
HBA1C_ISSUE = {"status": "RESULTS_ISSUE", "reason": "Sample haemolysed; HbA1c could not be measured."}


class Lab:
    """The lab's LIS, calling the bridge's /lab routes."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def requisition(self, requisition_id: str) -> dict[str, Any] | None:
        answer = self.session.get(f"{self.base_url}/lab/requisitions/{requisition_id}", timeout=30)
        return answer.json() if answer.status_code == 200 else None

    def event(self, service_request_id: str, body: dict[str, Any]) -> requests.Response:
        return self._post(f"/lab/service-requests/{service_request_id}/events", body)

    def requisition_event(self, requisition_id: str, body: dict[str, Any]) -> requests.Response:
        return self._post(f"/lab/requisitions/{requisition_id}/events", body)

    def results(self, service_request_id: str, report: dict[str, Any]) -> requests.Response:
        return self._post(f"/lab/service-requests/{service_request_id}/results", report)

    def _post(self, path: str, body: dict[str, Any]) -> requests.Response:
        answer = self.session.post(f"{self.base_url}{path}", json=body, timeout=30)
        if answer.status_code != 202:
            raise RuntimeError(f"POST {path} answered {answer.status_code}: {answer.text}")
        return answer

    def wait_for(self, requisition_id: str, code: str, predicate: Any, what: str) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            requisition = self.requisition(requisition_id)
            for service_request in (requisition or {}).get("service_requests", []):
                if service_request["code"] == code and predicate(service_request):
                    return service_request
            return None

        return wait_until(found, timeout=60, what=f"{code} {what}")


def timeline(emulator: WhoopEmulator, codes_by_id: dict[str, str], started: float) -> list[str]:
    """What WHOOP received, one line a call, labelled with the test's code."""
    lines = []
    for call in emulator.calls:
        path = call["path"]
        if path.endswith("/partner/token"):
            continue
        body = call.get("body") or {}
        resource = path.rstrip("/").split("/")
        subject = next((codes_by_id[part] for part in resource if part in codes_by_id), None)
        if "/requisition/" in path and subject is None:
            subject = "requisition"
        if path.endswith("/status"):
            what = f"PATCH {body.get('task_business_status')}" + (f"  (reason: {body['reason']})" if body.get("reason") else "")
        elif path.endswith("/results"):
            what = f"POST results: {body.get('status')} report, {len(body.get('observations', []))} observations"
        elif path.endswith("add-test-data"):
            what = "POST add-test-data"
        else:
            what = f"{call['method']} {'/'.join(resource[-2:])}"
        lines.append(f"  +{call['time'] - started:6.2f}s  {subject or '':<12} {what:<60} -> {call['status']}")
    return lines


def run_demo(*, log_path: Path, parameters: dict[str, str]) -> int:
    out = sys.stdout
    emulator = WhoopEmulator().start()
    for name, value in (
        ("WHOOP_PARTNER_CLIENT_ID", emulator.client_id),
        ("WHOOP_PARTNER_CLIENT_SECRET", emulator.client_secret),
        ("WHOOP_PARTNER_WEBHOOK_SECRET", emulator.webhook_secret),
    ):
        os.environ.setdefault(name, value)
    # The demo lab performs every code it is sent; a correction window of one day.
    parameters = {"CorrectionWindowDays": "1", **parameters}
    with log_path.open("w") as log:
        stack = LocalStack(whoop_base_url=emulator.base_url, parameters=parameters, log_stream=log)
        stack.start()
        try:
            emulator.partner_webhook_url = f"{stack.url}/webhooks/partner"
            return _walk_through(out, emulator, stack, log_path)
        finally:
            stack.stop()
            emulator.stop()


def _walk_through(out: Any, emulator: WhoopEmulator, stack: LocalStack, log_path: Path) -> int:
    started = time.time()
    lab = Lab(stack.url)
    print(f"WHOOP Bridge local demo: API {stack.url}, WHOOP emulator {emulator.base_url}", file=out)
    print(f"Handler logs (JSON, redacted): {log_path}", file=out)

    # WHOOP: a test member and a requisition of three tests, announced by a signed webhook.
    emulator.test_codes = CODES
    token = requests.post(
        f"{emulator.base_url}/developer/v2/partner/token",
        json={
            "grant_type": "client_credentials",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "scope": "whoop-partner/token",
        },
        timeout=10,
    ).json()["access_token"]
    answer = requests.post(
        f"{emulator.base_url}/developer/v2/partner/development/add-test-data",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    answer.raise_for_status()
    delivery = emulator.webhook_deliveries[-1]
    requisition_id = delivery["resource_id"]
    print(f"\n1. WHOOP created requisition {requisition_id[:8]}… and sent lab_requisition.created -> {delivery['status']}", file=out)

    confirmed = {
        code: lab.wait_for(requisition_id, code, lambda sr: sr["workflow"] == "awaiting_lab_event", "confirmed")
        for code in CODES
    }
    ids = {code: sr["id"] for code, sr in confirmed.items()}
    print("2. The bridge confirmed every test: " + ", ".join(f"{code} ORDER_CONFIRMED" for code in CODES), file=out)

    lab.requisition_event(requisition_id, {"status": "APPOINTMENT_ATTENDED"})
    for code in CODES:
        lab.wait_for(requisition_id, code, lambda sr: sr["task_business_status"] == "APPOINTMENT_ATTENDED" and sr["workflow"].startswith("awaiting"), "attended")
    print("3. The lab marked the appointment attended (one event for the whole order)", file=out)

    lab.results(ids["LIPID_PANEL"], LIPID_PARTIAL)
    lab.wait_for(requisition_id, "LIPID_PANEL", lambda sr: sr["task_business_status"] == "PARTIAL_RESULTS_READY" and sr["workflow"].startswith("awaiting"), "partial")
    lab.results(ids["LIPID_PANEL"], LIPID_FINAL)
    print("4. LIPID_PANEL: a partial report, then the final report", file=out)

    lab.results(ids["CBC"], CBC_FINAL)
    lab.wait_for(requisition_id, "CBC", lambda sr: sr["workflow"] == "awaiting_correction", "final")
    lab.results(ids["CBC"], CBC_AMENDED)
    print("5. CBC: the final report, then an amended one inside the correction window", file=out)

    lab.event(ids["HBA1C"], HBA1C_ISSUE)
    print("6. HBA1C: RESULTS_ISSUE with a reason (terminal: WHOOP takes the next step)", file=out)

    ends = {
        "LIPID_PANEL": lambda sr: sr["workflow"] == "awaiting_correction" and len(sr["diagnostic_reports"]) == 2,
        "CBC": lambda sr: sr["workflow"] == "awaiting_correction" and all(r["submitted_at"] for r in sr["diagnostic_reports"]) and len(sr["diagnostic_reports"]) == 2,
        "HBA1C": lambda sr: sr["workflow"] == "closed",
    }
    final = {code: lab.wait_for(requisition_id, code, predicate, "done") for code, predicate in ends.items()}

    codes_by_id = {service_request_id: code for code, service_request_id in ids.items()}
    print("\nWhat WHOOP received, in order:", file=out)
    for line in timeline(emulator, codes_by_id, started):
        print(line, file=out)

    print("\nEach test as the lab API shows it:", file=out)
    for code, service_request in final.items():
        statuses = " -> ".join(entry["task_business_status"] for entry in service_request["history"])
        reports = ", ".join(report["status"] for report in service_request["diagnostic_reports"]) or "none"
        print(f"  {code:<12} {statuses}   reports: {reports}   workflow: {service_request['workflow']}", file=out)

    problems = _check(emulator, ids)
    if problems:
        print("\nDEMO FAILED:\n  " + "\n  ".join(problems), file=out)
        return 1
    print("\nAll three paths reached WHOOP as expected.", file=out)
    return 0


def _check(emulator: WhoopEmulator, ids: dict[str, str]) -> list[str]:
    """What WHOOP must hold at the end of the demo; each difference is a problem."""
    expected = {
        "LIPID_PANEL": (["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED", "PARTIAL_RESULTS_READY", "FULL_RESULTS_READY"], ["partial", "final"]),
        "CBC": (["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED", "FULL_RESULTS_READY"], ["final", "amended"]),
        "HBA1C": (["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED", "RESULTS_ISSUE"], []),
    }
    problems = []
    for code, (statuses, reports) in expected.items():
        seen = [entry["status"] for entry in emulator.status_history(ids[code])]
        if seen != statuses:
            problems.append(f"{code}: WHOOP has statuses {seen}, expected {statuses}")
        sent = [report["status"] for report in emulator.reports(ids[code])]
        if sent != reports:
            problems.append(f"{code}: WHOOP has reports {sent}, expected {reports}")
    return problems
