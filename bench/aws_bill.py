"""The AWS bill per 1,000 lab tests and per 1,000 member-days, from counts measured on the
local stack and AWS's list prices (bench/aws_prices.json: region, date, source).

Lab: requisitions of the demo's three tests, each test down its own path (LIPID_PANEL:
partial then final report; CBC: final then amended report; HBA1C: RESULTS_ISSUE). The lab
reads each order once (`GET /lab/requisitions/{id}`) and posts what the demo posts; the
bench's own waiting is not billed (its requests carry `X-Bench-Unmetered`). Each test that
ends waiting for its correction window is charged the window's close as well (two state
transitions and one invocation at the median task duration).

Members: members connect (the connect and the 30-day backfill are billed apart, once per
member); then one day of each: a sleep and a recovery created then scored (two webhooks
each), a workout, a nap every other member, every webhook answered and fetched, the daily
reconciliation once, and the token refresher. WHOOP's member tokens live an hour, so a
member's tokens are renewed 24 times a day: one refresh round is measured and counted 24
times, and the refresher's 144 daily runs are counted with it.

Prints every count, the cost by service and what dominates; exits 1 when a goal is missed
(< $1 per 1,000 lab tests, < $1 per 1,000 member-days).

Run: .venv/bin/python bench/aws_bill.py [--requisitions N] [--members M]   (--quick: 2 and 3)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "bridge")]

from local import demo  # noqa: E402
from local.emulator import WhoopEmulator  # noqa: E402
from local.metering import CountingStream, Meter  # noqa: E402
from local.stack import LocalStack, wait_until  # noqa: E402

PRICES = ROOT / "bench" / "aws_prices.json"
UNMETERED = {"X-Bench-Unmetered": "1"}
TESTS_PER_REQUISITION = len(demo.CODES)
REFRESHES_PER_DAY = 24  # WHOOP's member access token lives one hour (docs/whoop.md#oauth)
REFRESHER_RUNS_PER_DAY = 144  # the RefreshTokens schedule: rate(10 minutes)
GOAL_DOLLARS_PER_THOUSAND = 1.0


class QuietLab(demo.Lab):
    """The demo's lab, whose waiting (polling the order) the meter does not bill."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.session.headers.update(UNMETERED)

    def read_order(self, requisition_id: str) -> dict[str, Any]:
        """The LIS imports the order: one billed read."""
        answer = requests.get(f"{self.base_url}/lab/requisitions/{requisition_id}", timeout=30)
        answer.raise_for_status()
        return answer.json()

    def _post(self, path: str, body: dict[str, Any]) -> requests.Response:
        answer = requests.post(f"{self.base_url}{path}", json=body, timeout=30)
        if answer.status_code != 202:
            raise RuntimeError(f"POST {path} answered {answer.status_code}")
        return answer


# Scenarios ---------------------------------------------------------------------------------


def lab_scenario(emulator: WhoopEmulator, stack: LocalStack, requisitions: int) -> dict[str, Any]:
    lab = QuietLab(stack.url)
    meter = Meter(stack).start()
    try:
        for _ in range(requisitions):
            _one_requisition(emulator, lab)
        _settle(stack)
    finally:
        meter.stop()
    transitions, waiting = meter.transitions()
    counts = meter.counts()
    task_ms = counts["lambda_by_function"]["ServiceRequestTasksFunction"]["median_ms"]
    counts["stepfunctions_transitions"] = transitions + 2 * waiting
    counts["lambda_invocations"] += waiting
    counts["lambda_gb_seconds"] += waiting * math.ceil(task_ms) / 1000 * meter.memory("ServiceRequestTasksFunction")
    counts["windows_closed_by_arithmetic"] = waiting
    return {"units": requisitions * TESTS_PER_REQUISITION, "unit": "lab test", "counts": counts}


def _one_requisition(emulator: WhoopEmulator, lab: QuietLab) -> None:
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
    emulator.send_partner_webhook("lab_requisition.created", requisition_id)
    for code in demo.CODES:
        lab.wait_for(requisition_id, code, lambda sr: sr["workflow"] == "awaiting_lab_event", "confirmed")
    order = lab.read_order(requisition_id)
    ids = {sr["code"]: sr["id"] for sr in order["service_requests"]}
    lab.requisition_event(requisition_id, {"status": "APPOINTMENT_ATTENDED"})
    for code in demo.CODES:
        lab.wait_for(
            requisition_id,
            code,
            lambda sr: sr["task_business_status"] == "APPOINTMENT_ATTENDED" and sr["workflow"].startswith("awaiting"),
            "attended",
        )
    lab.results(ids["LIPID_PANEL"], demo.LIPID_PARTIAL)
    lab.wait_for(
        requisition_id,
        "LIPID_PANEL",
        lambda sr: sr["task_business_status"] == "PARTIAL_RESULTS_READY" and sr["workflow"].startswith("awaiting"),
        "partial",
    )
    lab.results(ids["LIPID_PANEL"], demo.LIPID_FINAL)
    lab.results(ids["CBC"], demo.CBC_FINAL)
    lab.wait_for(requisition_id, "CBC", lambda sr: sr["workflow"] == "awaiting_correction", "final")
    lab.results(ids["CBC"], demo.CBC_AMENDED)
    lab.event(ids["HBA1C"], demo.HBA1C_ISSUE)
    wait_until(lambda: not demo._check(emulator, ids), timeout=120, what="the demo's three paths at WHOOP")


def member_scenario(emulator: WhoopEmulator, stack: LocalStack, members: int) -> dict[str, Any]:
    platform = demo.Platform(stack.url)
    users: dict[str, int] = {}
    connect = Meter(stack).start()
    try:
        for number in range(members):
            client_user_id = f"bench-member-{number}"
            user_id = emulator.add_member()["user_id"]
            emulator.generate_history(user_id, days=30, pending_latest=False)
            emulator.signed_in_user_id = user_id
            link = platform.connect_link(client_user_id, demo.DEMO_RETURN_URL)
            link.raise_for_status()
            demo.follow_consent(link.json()["authorization_url"])
            users[client_user_id] = user_id
        _settle(stack)
    finally:
        connect.stop()

    day = Meter(stack).start()
    try:
        for number, user_id in enumerate(users.values()):
            _one_day(emulator, user_id, nap=number % 2 == 0)
        _settle(stack)
        stack.run_schedule("MemberSyncFunction", "Reconcile")
        _settle(stack)
    finally:
        day.stop()

    refresh = Meter(stack).start()
    try:
        emulator.expire_member_tokens()
        for client_user_id in users:
            demo.age_tokens(stack, client_user_id, 300)
        stack.run_schedule("MemberSyncFunction", "RefreshTokens")
        _settle(stack)
    finally:
        refresh.stop()
    idle = Meter(stack).start()
    try:
        stack.run_schedule("MemberSyncFunction", "RefreshTokens")  # nothing near expiry: a run that renews none
    finally:
        idle.stop()

    # The schedules' own runs (and the refresher's runs that renew nothing) are the stack's,
    # whatever its members: billed in the fixed part, not per member.
    counts = _sum(day.counts(), _scaled(refresh.counts(), REFRESHES_PER_DAY))
    counts["schedule_runs"] = 0
    counts["stepfunctions_transitions"] = 0
    schedules = _scaled(idle.counts(), (REFRESHER_RUNS_PER_DAY + 1) * 30)
    schedules["stepfunctions_transitions"] = 0
    once = connect.counts()
    once["stepfunctions_transitions"] = 0
    return {
        "units": members,
        "unit": "member-day",
        "counts": counts,
        "connect_and_backfill": {"units": members, "unit": "member connected", "counts": once},
        "schedules_monthly": schedules,
        "token_refreshes": {
            "units": members,
            "unit": "member-day",
            "counts": _scaled(refresh.counts(), REFRESHES_PER_DAY),
        },
    }


def _one_day(emulator: WhoopEmulator, user_id: int, *, nap: bool) -> None:
    """A member's day as WHOOP announces it: each record created, then scored."""
    emulator.add_record(user_id, "cycle", pending=False)
    sleep = emulator.add_record(user_id, "sleep")
    emulator.send_member_webhook(user_id, "sleep.updated", sleep["id"])
    emulator.score(user_id, "sleep", sleep["id"])
    emulator.send_member_webhook(user_id, "sleep.updated", sleep["id"])
    emulator.add_record(user_id, "recovery", sleep_id=sleep["id"])
    emulator.send_member_webhook(user_id, "recovery.updated", sleep["id"])
    emulator.score(user_id, "recovery", sleep["id"])
    emulator.send_member_webhook(user_id, "recovery.updated", sleep["id"])
    workout = emulator.add_record(user_id, "workout", pending=False)
    emulator.send_member_webhook(user_id, "workout.updated", workout["id"])
    if nap:
        short = emulator.add_record(user_id, "sleep", pending=False, start=time.time() - 3 * 3600, nap=True)
        emulator.send_member_webhook(user_id, "sleep.updated", short["id"])


def _settle(stack: LocalStack, quiet_checks: int = 3) -> None:
    """Until every queue of the stack is empty (none visible or in flight) a few checks running."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    urls = [url for logical_id, url in stack.physical.items() if logical_id.endswith("Queue")]
    quiet = 0
    deadline = time.monotonic() + 300
    while quiet < quiet_checks:
        if time.monotonic() > deadline:
            raise TimeoutError("the stack's queues did not empty")
        busy = 0
        for url in urls:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            busy += sum(int(value) for value in attributes.values())
        quiet = quiet + 1 if busy == 0 else 0
        time.sleep(0.3)


def _resources_by_type() -> dict[str, int]:
    from local.cfn import load_template

    counts: dict[str, int] = {}
    for spec in load_template()["Resources"].values():
        counts[spec["Type"]] = counts.get(spec["Type"], 0) + 1
    return counts


# Prices -------------------------------------------------------------------------------------


def _scaled(counts: dict[str, Any], factor: float) -> dict[str, Any]:
    """Numbers, and dicts of numbers, times `factor`; anything else is dropped."""
    scaled: dict[str, Any] = {}
    for key, value in counts.items():
        if isinstance(value, (int, float)):
            scaled[key] = value * factor
        elif isinstance(value, dict) and all(isinstance(units, (int, float)) for units in value.values()):
            scaled[key] = {name: units * factor for name, units in value.items()}
    return scaled


def _sum(*parts: dict[str, Any]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for part in map(lambda part: _scaled(part, 1), parts):
        for key, value in part.items():
            if isinstance(value, dict):
                for name, units in value.items():
                    total.setdefault(key, {})
                    total[key][name] = total[key].get(name, 0) + units
            else:
                total[key] = total.get(key, 0) + value
    return total


def bill(counts: dict[str, Any], prices: dict[str, Any]) -> dict[str, float]:
    """Dollars by service for the counts, at the list prices (each `per` units)."""
    items = prices["usage"]
    return {name: counts.get(item["count"], 0) * item["price"] / item["per"] for name, item in items.items()}


def report(name: str, scenario: dict[str, Any], prices: dict[str, Any], out: Any) -> float:
    counts, units = scenario["counts"], scenario["units"]
    dollars = bill(counts, prices)
    per_thousand = sum(dollars.values()) * 1000 / units
    print(f"\n{name}: {units} {scenario['unit']}s measured", file=out)
    for item_name, item in prices["usage"].items():
        value = counts.get(item["count"], 0)
        print(
            f"  {item_name:<34} {value / units:>12.3f} per {scenario['unit']}   "
            f"${dollars[item_name] * 1000 / units:.4f} per 1,000",
            file=out,
        )
    tables = sorted(counts.get("dynamodb_units_by_table", {}).items(), key=lambda pair: pair[1], reverse=True)
    if tables:
        print(
            "  DynamoDB units by table: "
            + ", ".join(f"{name} {value / units:.1f}" for name, value in tables[:4] if value),
            file=out,
        )
    ranked = sorted(dollars.items(), key=lambda pair: pair[1], reverse=True)
    total = sum(dollars.values()) or 1
    print(f"  total: ${per_thousand:.4f} per 1,000 {scenario['unit']}s", file=out)
    print(
        "  dominated by: " + ", ".join(f"{item} {cost / total:.0%}" for item, cost in ranked[:3] if cost),
        file=out,
    )
    return per_thousand


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requisitions", type=int, default=5, help="lab requisitions of three tests (default 5)")
    parser.add_argument("--members", type=int, default=6, help="members connected, then one day each (default 6)")
    parser.add_argument("--quick", action="store_true", help="2 requisitions and 3 members")
    parser.add_argument("--json", type=Path, help="also write every count and figure to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.requisitions, args.members = 2, 3
    prices = json.loads(PRICES.read_text())
    saved = dict(os.environ)
    emulator = WhoopEmulator().start()
    demo.use_emulator_credentials(emulator)
    with tempfile.TemporaryDirectory() as scratch, (Path(scratch) / "bench.log").open("w") as log:
        stack = LocalStack(
            whoop_base_url=emulator.base_url,
            parameters={"CorrectionWindowDays": "1", "AllowedReturnUrls": demo.DEMO_RETURN_URL},
            log_stream=CountingStream(log),
        )
        stack.start()
        try:
            demo.attach(emulator, stack)
            lab = lab_scenario(emulator, stack, args.requisitions)
            members = member_scenario(emulator, stack, args.members)
        finally:
            stack.stop()
            emulator.stop()
            os.environ.clear()
            os.environ.update(saved)
    out = sys.stdout
    print(f"AWS list prices: {prices['region']}, read {prices['date']} ({PRICES.relative_to(ROOT)})", file=out)
    lab_cost = report("Lab tests (the demo's three paths)", lab, prices, out)
    member_cost = report("Member-days", members, prices, out)
    refreshes = sum(bill(members["token_refreshes"]["counts"], prices).values()) * 1000 / members["units"]
    print(
        f"  of which the {REFRESHES_PER_DAY} token refreshes a day: ${refreshes:.4f} per 1,000 member-days "
        f"({refreshes / member_cost:.0%})",
        file=out,
    )
    once = report(
        "Connecting a member (once: the connect and a 30-day backfill)", members["connect_and_backfill"], prices, out
    )
    quantities = _resources_by_type()
    schedules = sum(bill(members["schedules_monthly"], prices).values())
    charged = {
        name: max(0, quantities.get(item["resource"], 0) - item.get("free", 0))
        for name, item in prices["monthly"].items()
    }
    fixed = schedules + sum(item["price"] * charged[name] for name, item in prices["monthly"].items())
    print(f"\nFixed each month, whatever the traffic (resources of template.yaml): ${fixed:.2f}", file=out)
    for name, item in prices["monthly"].items():
        print(f"  {name:<44} {charged[name]:>3} × ${item['price']:.2f}", file=out)
    print(f"  {'the schedules (145 runs a day, 30 days)':<44} ${schedules:.2f}", file=out)
    goals = [
        ("lab tests", lab_cost),
        ("member-days", member_cost),
    ]
    missed = [f"{name}: ${cost:.4f} per 1,000" for name, cost in goals if cost >= GOAL_DOLLARS_PER_THOUSAND]
    print(
        f"\nGoal < ${GOAL_DOLLARS_PER_THOUSAND:.2f} per 1,000: lab tests ${lab_cost:.4f} "
        f"({lab_cost / GOAL_DOLLARS_PER_THOUSAND:.2f}× the goal), member-days ${member_cost:.4f} "
        f"({member_cost / GOAL_DOLLARS_PER_THOUSAND:.2f}× the goal); connecting a member ${once / 1000:.5f} each",
        file=out,
    )
    if args.json:
        args.json.write_text(json.dumps({"lab": lab, "members": members, "prices": prices}, indent=2, default=str))
    if missed:
        print("GOAL MISSED: " + "; ".join(missed), file=out)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
