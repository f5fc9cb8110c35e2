"""The demo: a lab order through every path, then a member connecting, as WHOOP sees it.

Lab: one requisition of three tests.
- LIPID_PANEL: attended, a partial report, then the final report.
- CBC: attended, the final report, then an amended report inside the correction window.
- HBA1C: attended, then RESULTS_ISSUE with a reason (the sample could not be analysed).

Member: a health platform asks for a connect link, the member's browser goes through
WHOOP's consent and back, the scheduled refresher renews the tokens, the platform
disconnects the member.

The lab and the platform talk to the bridge only through its HTTP API, as their systems would.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

from local import lis_messages
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
# The lab corrects one value of the final CBC: the haemoglobin.
CBC_AMENDED = {
    "status": "amended",
    "observations": [
        {**observation, "value_numeric": 14.0, "status": "amended"}
        if observation["code"] == "HEMOGLOBIN"
        else observation
        for observation in CBC_FINAL["observations"]
    ],
}
HBA1C_ISSUE = {"status": "RESULTS_ISSUE", "reason": "Sample haemolysed; HbA1c could not be measured."}
DEMO_RETURN_URL = "https://platform.example/whoop/done"
DEMO_MEMBER = "demo-member-1"
SVG = "image/svg+xml"
# The pictures the demo saves next to its log.
ORDER_PICTURE, MEMBER_PICTURE = "demo-order-timeline.svg", "demo-member-backfill.svg"


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

    def results_in(self, content_type: str, text: str) -> requests.Response:
        """Results as the LIS writes them (FHIR or HL7 v2) to POST /lab/results."""
        headers = {"Content-Type": content_type}
        answer = self.session.post(f"{self.base_url}/lab/results", data=text.encode(), headers=headers, timeout=30)
        if answer.status_code != 202:
            raise RuntimeError(f"POST /lab/results answered {answer.status_code}: {answer.text}")
        return answer

    def order_in(self, requisition_id: str, accept: str) -> str:
        """The order as the LIS imports it (FHIR Bundle or HL7 ORM^O01)."""
        answer = self.session.get(
            f"{self.base_url}/lab/requisitions/{requisition_id}", headers={"Accept": accept}, timeout=30
        )
        answer.raise_for_status()
        return answer.text

    def timeline(self, requisition_id: str, accept: str = "application/json") -> requests.Response:
        """`GET /lab/requisitions/{id}/timeline`: JSON, or the SVG picture with `accept=SVG`."""
        url = f"{self.base_url}/lab/requisitions/{requisition_id}/timeline"
        return self.session.get(url, headers={"Accept": accept}, timeout=30)

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


class Platform:
    """The health platform's backend, calling the bridge's /connections routes."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def connect_link(self, client_user_id: str, return_url: str | None = None) -> requests.Response:
        body = {"client_user_id": client_user_id} | ({"return_url": return_url} if return_url else {})
        return self.session.post(f"{self.base_url}/connections", json=body, timeout=30)

    def connection(self, client_user_id: str) -> requests.Response:
        return self.session.get(f"{self.base_url}/connections/{client_user_id}", timeout=30)

    def disconnect(self, client_user_id: str) -> requests.Response:
        return self.session.delete(f"{self.base_url}/connections/{client_user_id}", timeout=30)

    def timeline(self, client_user_id: str, accept: str = "application/json") -> requests.Response:
        """`GET /connections/{id}/timeline`: JSON, or the SVG picture with `accept=SVG`."""
        url = f"{self.base_url}/connections/{client_user_id}/timeline"
        return self.session.get(url, headers={"Accept": accept}, timeout=30)

    def records(self, client_user_id: str, record_type: str) -> list[dict[str, Any]]:
        """Every stored record of a type, through `GET /members/{id}/{type}`, newest first."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            answer = self.session.get(
                f"{self.base_url}/members/{client_user_id}/{record_type}", params=params, timeout=30
            )
            answer.raise_for_status()
            found += answer.json()["records"]
            if not answer.json()["next_token"]:
                return found
            params["next_token"] = answer.json()["next_token"]


def follow_consent(authorization_url: str) -> list[requests.Response]:
    """The member's browser: WHOOP's consent page (the emulator answers at once), then the
    bridge's callback. Every hop, the last one being where the member ends up; the return
    URL itself is not fetched (it is the platform's page)."""
    hops = []
    url = authorization_url
    with requests.Session() as browser:
        for _ in range(2):
            answer = browser.get(url, allow_redirects=False, timeout=30)
            hops.append(answer)
            if answer.status_code != 302:
                break
            url = answer.headers["Location"]
    return hops


def save_picture(answer: requests.Response, path: Path) -> str | None:
    """Write a timeline route's SVG answer to `path`; None when it wrote it, else the problem."""
    if answer.status_code != 200 or not answer.headers.get("Content-Type", "").startswith(SVG):
        return f"GET {answer.request.path_url} answered {answer.status_code} {answer.headers.get('Content-Type')}"
    path.write_text(answer.text, encoding="utf-8")
    return None


def timeline(emulator: WhoopEmulator, codes_by_id: dict[str, str], started: float) -> list[str]:
    """What WHOOP's partner API received, one line a call, labelled with the test's code."""
    lines = []
    for call in emulator.calls:
        path = call["path"]
        if path.endswith("/partner/token") or "/partner/" not in path:
            continue
        body = call.get("body") or {}
        resource = path.rstrip("/").split("/")
        subject = next((codes_by_id[part] for part in resource if part in codes_by_id), None)
        if "/requisition/" in path and subject is None:
            subject = "requisition"
        if path.endswith("/status"):
            what = f"PATCH {body.get('task_business_status')}" + (
                f"  (reason: {body['reason']})" if body.get("reason") else ""
            )
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
    saved_environment = dict(os.environ)
    emulator = WhoopEmulator().start()
    use_emulator_credentials(emulator)
    # The demo lab performs every code it is sent; a correction window of one day; the
    # demo platform sends members back to one page.
    parameters = {"CorrectionWindowDays": "1", "AllowedReturnUrls": DEMO_RETURN_URL, **parameters}
    with log_path.open("w") as log:
        stack = LocalStack(whoop_base_url=emulator.base_url, parameters=parameters, log_stream=log)
        stack.start()
        try:
            attach(emulator, stack)
            status = _walk_through(out, emulator, stack, log_path)
            return status or _member_walk_through(out, emulator, stack, log_path)
        finally:
            stack.stop()
            emulator.stop()
            os.environ.clear()
            os.environ.update(saved_environment)


def use_emulator_credentials(emulator: WhoopEmulator) -> None:
    """Local secrets default to the emulator's own credentials; variables already set win."""
    for name, value in (
        ("WHOOP_PARTNER_CLIENT_ID", emulator.client_id),
        ("WHOOP_PARTNER_CLIENT_SECRET", emulator.client_secret),
        ("WHOOP_PARTNER_WEBHOOK_SECRET", emulator.webhook_secret),
        ("WHOOP_MEMBER_CLIENT_ID", emulator.member_client_id),
        ("WHOOP_MEMBER_CLIENT_SECRET", emulator.member_client_secret),
    ):
        os.environ.setdefault(name, value)


def attach(emulator: WhoopEmulator, stack: LocalStack) -> None:
    """Point the emulator at the running bridge: its two webhook URLs and the app's
    registered redirect URI (the stack's OAuthRedirectUrl, here on localhost)."""
    emulator.partner_webhook_url = f"{stack.url}/webhooks/partner"
    emulator.member_webhook_url = f"{stack.url}/webhooks/whoop"
    emulator.redirect_uris.append(f"{stack.url}/v1/oauth/whoop/callback")


def _member_walk_through(out: Any, emulator: WhoopEmulator, stack: LocalStack, log_path: Path) -> int:
    platform = Platform(stack.url)
    print("\nA health platform connects a WHOOP member:", file=out)
    # A WHOOP member with a month of cycles, sleeps, recoveries and workouts signs in.
    user_id = emulator.add_member()["user_id"]
    emulator.generate_history(user_id, days=30)
    emulator.signed_in_user_id = user_id
    link = platform.connect_link(DEMO_MEMBER, DEMO_RETURN_URL)
    if link.status_code != 201:
        print(f"\nDEMO FAILED: POST /connections answered {link.status_code}: {link.text}", file=out)
        return 1
    print(
        f"7. POST /connections {{client_user_id: {DEMO_MEMBER}}} -> 201, a WHOOP link valid until {link.json()['expires_at']}",
        file=out,
    )
    hops = follow_consent(link.json()["authorization_url"])
    landing = hops[-1].headers.get("Location", "")
    print(f"8. The member approved at WHOOP and the bridge sent them back to {landing}", file=out)
    connection = platform.connection(DEMO_MEMBER).json()
    print(
        f"9. GET /connections/{DEMO_MEMBER} -> {connection['status']}, WHOOP user {connection['user_id']}, scopes: {' '.join(connection['scopes'])}",
        file=out,
    )
    backfill = wait_until(lambda: _backfilled(platform), timeout=60, what="the backfill")
    counts = {
        record_type: len(platform.records(DEMO_MEMBER, record_type))
        for record_type in ("cycle", "sleep", "recovery", "workout")
    }
    plural = {"cycle": "cycles", "sleep": "sleeps", "recovery": "recoveries", "workout": "workouts"}
    print(
        f"10. The backfill of {sum(p['pages'] for p in backfill.values())} pages stored "
        + ", ".join(f"{n} {plural[t]}" for t, n in counts.items()),
        file=out,
    )
    # Before the disconnect: it deletes the member's data, the backfill's progress with it.
    backfill_picture = log_path.with_name(MEMBER_PICTURE)
    picture_problem = save_picture(platform.timeline(DEMO_MEMBER, SVG), backfill_picture)
    pending = next(sleep for sleep in emulator.records(user_id, "sleep") if sleep["score_state"] == "PENDING_SCORE")
    emulator.score(user_id, "sleep", pending["id"])
    status = emulator.send_member_webhook(user_id, "sleep.updated", pending["id"])
    scored = wait_until(lambda: _stored_sleep(platform, pending["id"], "SCORED"), timeout=30, what="the scored sleep")
    print(
        f"11. WHOOP scored last night's sleep and sent sleep.updated -> {status}; GET /members/{DEMO_MEMBER}/sleep shows it {scored['score_state']}, "
        f"performance {scored['score']['sleep_performance_percentage']}%",
        file=out,
    )
    # WHOOP's token nears its end: the scheduled refresher (every 10 minutes) renews it.
    emulator.expire_member_tokens()
    age_tokens(stack, DEMO_MEMBER, 300)
    refreshes = emulator.member_refreshes
    stack.run_schedule("MemberSyncFunction", "RefreshTokens")
    print(
        f"12. The scheduled refresher renewed the member's tokens (WHOOP saw {emulator.member_refreshes - refreshes} refresh)",
        file=out,
    )
    disconnect = platform.disconnect(DEMO_MEMBER)
    after = platform.connection(DEMO_MEMBER).json()
    left = len(platform.records(DEMO_MEMBER, "sleep"))
    print(
        f"13. DELETE /connections/{DEMO_MEMBER} -> {disconnect.status_code}; WHOOP revoked the grant; status now {after['status']}, {left} sleeps kept",
        file=out,
    )

    print("\nWhat WHOOP's OAuth and member API received, in order:", file=out)
    for line in _condensed(emulator.timeline()):
        print(f"  {line}", file=out)
    problems = []
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 30 * 86400))
    expected_sleeps = sum(1 for sleep in emulator.records(user_id, "sleep") if sleep["start"] > since)
    if counts["sleep"] < expected_sleeps or not all(counts.values()):
        problems.append(
            f"the backfill stored {counts}, expected the {expected_sleeps} sleeps of the last 30 days and every type"
        )
    if left != 0:
        problems.append(f"{left} sleeps were kept after the disconnect, expected none (DeleteDataOnDisconnect)")
    if not landing.endswith("status=connected"):
        problems.append(f"the member landed on {landing!r}, expected status=connected")
    if connection["status"] != "connected" or after["status"] != "disconnected":
        problems.append(
            f"connection went {connection['status']} -> {after['status']}, expected connected -> disconnected"
        )
    if emulator.member_refreshes != refreshes + 1 or emulator.revocations != 1:
        problems.append(
            f"WHOOP saw {emulator.member_refreshes - refreshes} refreshes and {emulator.revocations} revocations, expected 1 and 1"
        )
    if picture_problem:
        problems.append(f"the backfill's picture: {picture_problem}")
    if problems:
        print("\nDEMO FAILED:\n  " + "\n  ".join(problems), file=out)
        return 1
    print(
        f"\nThe member's backfill as a picture (GET /connections/{DEMO_MEMBER}/timeline): {backfill_picture}", file=out
    )
    print("\nThe member connected, stayed fresh and disconnected as expected.", file=out)
    return 0


def _backfilled(platform: Platform) -> dict[str, Any] | None:
    backfill = platform.connection(DEMO_MEMBER).json().get("backfill") or {}
    return (
        backfill if len(backfill) == 5 and all(progress["state"] == "done" for progress in backfill.values()) else None
    )


def _stored_sleep(platform: Platform, sleep_id: str, score_state: str) -> dict[str, Any] | None:
    return next(
        (
            sleep
            for sleep in platform.records(DEMO_MEMBER, "sleep")
            if sleep["id"] == sleep_id and sleep["score_state"] == score_state
        ),
        None,
    )


def _condensed(lines: list[str]) -> list[str]:
    """WHOOP's member-side timeline, repeated calls folded into one line with a count."""
    member_paths = (" user/", "activity/", " cycle", " recovery")
    wanted = [
        line
        for line in lines
        if line.startswith(("GET oauth", "POST oauth")) or any(part in line for part in member_paths)
    ]
    folded: list[str] = []
    for line in wanted:
        if folded and folded[-1].split(" ×")[0] == line:
            count = int(folded[-1].split(" ×")[1]) + 1 if " ×" in folded[-1] else 2
            folded[-1] = f"{line} ×{count}"
        else:
            folded.append(line)
    return folded


def age_tokens(stack: LocalStack, client_user_id: str, seconds_left: int) -> None:
    """Make the stored pair look `seconds_left` from expiry (WHOOP's own token lives on), as
    it would be later in its life: the token service and the refresher then act on it."""
    import boto3

    expires_at = int(time.time()) + seconds_left
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(stack.output("MemberTable"))
    table.update_item(
        Key={"pk": f"MEMBER#{client_user_id}", "sk": "CONNECTION"},
        UpdateExpression="SET access_expires_at = :at, gsi1sk = :sort",
        ExpressionAttributeValues={":at": expires_at, ":sort": f"{expires_at:012d}#{client_user_id}"},
    )


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
    requisition_id = answer.json()["requisition_id"]
    # add-test-data announces nothing; WHOOP announces a real order with this webhook.
    status = emulator.send_partner_webhook("lab_requisition.created", requisition_id)
    print(
        f"\n1. WHOOP created requisition {requisition_id[:8]}… and sent lab_requisition.created -> {status}", file=out
    )

    confirmed = {
        code: lab.wait_for(requisition_id, code, lambda sr: sr["workflow"] == "awaiting_lab_event", "confirmed")
        for code in CODES
    }
    ids = {code: sr["id"] for code, sr in confirmed.items()}
    print("2. The bridge confirmed every test: " + ", ".join(f"{code} ORDER_CONFIRMED" for code in CODES), file=out)
    # The LIS imports the order in its own language (README "Connect your LIS").
    bundle = json.loads(lab.order_in(requisition_id, lis_messages.FHIR))
    print(
        f"   The order as FHIR: a Bundle of {', '.join(e['resource']['resourceType'] for e in bundle['entry'])}",
        file=out,
    )
    orm = lab.order_in(requisition_id, lis_messages.HL7)
    # The patient's segment is left out of the printout: health data stays out of the output.
    shown = [
        segment if not segment.startswith("PID|") else "PID|… (the patient)" for segment in orm.strip("\r").split("\r")
    ]
    print("   The order as HL7 v2:\n     " + "\n     ".join(shown), file=out)

    lab.requisition_event(requisition_id, {"status": "APPOINTMENT_ATTENDED"})
    for code in CODES:
        lab.wait_for(
            requisition_id,
            code,
            lambda sr: sr["task_business_status"] == "APPOINTMENT_ATTENDED" and sr["workflow"].startswith("awaiting"),
            "attended",
        )
    print("3. The lab marked the appointment attended (one event for the whole order)", file=out)

    lab.results(ids["LIPID_PANEL"], LIPID_PARTIAL)
    lab.wait_for(
        requisition_id,
        "LIPID_PANEL",
        lambda sr: sr["task_business_status"] == "PARTIAL_RESULTS_READY" and sr["workflow"].startswith("awaiting"),
        "partial",
    )
    lab.results_in(lis_messages.FHIR, lis_messages.fhir_report(ids["LIPID_PANEL"], LIPID_FINAL))
    print("4. LIPID_PANEL: a partial report, then the final report (as a FHIR DiagnosticReport)", file=out)

    ack = lab.results_in(lis_messages.HL7, lis_messages.oru(ids["CBC"], CBC_FINAL, "DEMO-CBC-1")).text
    print(f"   CBC's final report as an HL7 ORU^R01, acknowledged {ack.strip().split(chr(13))[1]}", file=out)
    lab.wait_for(requisition_id, "CBC", lambda sr: sr["workflow"] == "awaiting_correction", "final")
    lab.results(ids["CBC"], CBC_AMENDED)
    print("5. CBC: the final report, then an amended one inside the correction window", file=out)

    lab.event(ids["HBA1C"], HBA1C_ISSUE)
    print("6. HBA1C: RESULTS_ISSUE with a reason (terminal: WHOOP takes the next step)", file=out)

    ends = {
        "LIPID_PANEL": lambda sr: sr["workflow"] == "awaiting_correction" and len(sr["diagnostic_reports"]) == 2,
        "CBC": lambda sr: (
            sr["workflow"] == "awaiting_correction"
            and all(r["submitted_at"] for r in sr["diagnostic_reports"])
            and len(sr["diagnostic_reports"]) == 2
        ),
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
    order_picture = log_path.with_name(ORDER_PICTURE)
    picture_problem = save_picture(lab.timeline(requisition_id, SVG), order_picture)
    if picture_problem:
        problems.append(f"the order's picture: {picture_problem}")
    if problems:
        print("\nDEMO FAILED:\n  " + "\n  ".join(problems), file=out)
        return 1
    print(f"\nThe order as a picture (GET /lab/requisitions/{{id}}/timeline): {order_picture}", file=out)
    print("\nAll three paths reached WHOOP as expected.", file=out)
    return 0


def _check(emulator: WhoopEmulator, ids: dict[str, str]) -> list[str]:
    """What WHOOP must hold at the end of the demo; each difference is a problem."""
    expected = {
        "LIPID_PANEL": (
            ["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED", "PARTIAL_RESULTS_READY", "FULL_RESULTS_READY"],
            ["partial", "final"],
        ),
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
