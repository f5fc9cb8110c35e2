"""`python -m whoop_bridge.ops --local URL`, run as an operator runs it (another process),
against the local stack: a poisoned message in a dead-letter queue, listed with ids only,
replayed after its cause is fixed, and its order then confirmed; a failed intake resumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.stack import REGION, wait_until
from tests.e2e.conftest import Harness, running_harness
from tests.e2e.test_member_data import backfill_done, connect

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# The WHOOP client's in-call retries are not what these tests are about: fail fast.
FAST_FAILURES = {"WHOOP_MAX_RETRIES": "0", "WHOOP_BACKOFF_SECONDS": "0"}


@pytest.fixture(scope="module")
def _module_bridge() -> Iterator[Harness]:
    saved = {name: os.environ.get(name) for name in FAST_FAILURES}
    os.environ.update(FAST_FAILURES)
    try:
        yield from running_harness({"AcceptedTestCodes": "LIPID_PANEL,CBC,HBA1C"}, local_retry_seconds=0.2, aws_port=0)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ops(bridge: Harness, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whoop_bridge.ops", "--local", bridge.stack.url, *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "layers" / "bridge")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def depth(bridge: Harness, logical_id: str) -> int:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=bridge.stack.output(logical_id),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def patient_values(requisition: dict[str, Any]) -> list[str]:
    return [value for value in requisition["patient"].values() if isinstance(value, str) and len(value) > 3]


def test_a_poisoned_partner_event_is_listed_with_ids_only_and_replayed_once_whoop_answers(bridge):
    requisition = bridge.emulator.create_requisition(["CBC"])
    # WHOOP fails every read of the order: the partner event fails five times, then is dead.
    bridge.emulator.inject_fault("GET", f"/requisition/{requisition['id']}$", status=500, count=1000)
    assert (
        bridge.emulator.send_partner_webhook("lab_requisition.created", requisition["id"], url=bridge.webhook_url)
        == 204
    )
    wait_until(lambda: depth(bridge, "PartnerEventsDeadLetterQueue") == 1, timeout=60, what="the dead letter")

    listed = ops(bridge, "dead-letters", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "partner-events (PartnerEventsDeadLetterQueue -> PartnerEventsQueue): 1 message, 0 in flight" in lines
    assert f"    ids: event_type=lab_requisition.created resource_id={requisition['id']}" in lines
    assert "    error: not recorded" in lines
    assert "member-events (MemberEventsDeadLetterQueue -> MemberEventsQueue): 0 messages, 0 in flight" in lines
    assert "schedule (ScheduleDeadLetterQueue (no source queue)): 0 messages, 0 in flight" in lines
    assert not [value for value in patient_values(requisition) if value in listed.stdout]
    # Listing consumed nothing: the message is still there, visible.
    assert depth(bridge, "PartnerEventsDeadLetterQueue") == 1
    assert bridge.lab.requisition(requisition["id"]) is None

    bridge.emulator.clear_faults()  # the cause is fixed
    replayed = ops(bridge, "dead-letters", "replay", "partner-events")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines() == [
        "partner-events: moving 1 message to PartnerEventsQueue",
        "move task COMPLETED: 1 moved of 1",
        "partner-events now holds 0 messages, 0 in flight",
    ]
    confirmed = bridge.wait_confirmed(requisition["id"], 1)
    assert [test["task_business_status"] for test in confirmed["service_requests"]] == ["ORDER_CONFIRMED"]
    assert depth(bridge, "PartnerEventsDeadLetterQueue") == 0

    again = ops(bridge, "dead-letters", "replay", "partner-events")
    assert (again.returncode, again.stdout) == (0, "partner-events: empty (0 in flight), nothing to replay\n")


def test_the_schedules_dead_letters_are_listed_but_not_replayed(bridge):
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=bridge.stack.output("ScheduleDeadLetterQueue"),
        MessageBody=json.dumps({"action": "reconcile"}),
        MessageAttributes={"ERROR_CODE": {"DataType": "String", "StringValue": "AWS.Lambda.Throttled"}},
    )
    listed = ops(bridge, "dead-letters", "list")
    assert "    ids: action=reconcile" in listed.stdout
    assert "    error: ERROR_CODE=AWS.Lambda.Throttled" in listed.stdout
    refused = ops(bridge, "dead-letters", "replay", "schedule")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: schedule has no source queue to replay to")
    assert "Traceback" not in refused.stderr
    assert depth(bridge, "ScheduleDeadLetterQueue") == 1


def test_a_poisoned_member_webhook_is_replayed_and_its_record_stored(bridge):
    user_id = connect(bridge, "ops-member-1", days=1)
    wait_until(lambda: backfill_done(bridge, "ops-member-1"), timeout=60, what="the backfill")
    workout = bridge.emulator.add_record(user_id, "workout")
    bridge.emulator.inject_fault("GET", f"activity/workout/{workout['id']}$", status=503, count=1000)
    assert bridge.emulator.send_member_webhook(user_id, "workout.updated", workout["id"], trace_id="trace-ops-1") == 204
    wait_until(lambda: depth(bridge, "MemberEventsDeadLetterQueue") == 1, timeout=60, what="the member dead letter")

    listed = ops(bridge, "dead-letters", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"    ids: user_id={user_id} id={workout['id']} type=workout.updated trace_id=trace-ops-1" in listed.stdout
    assert depth(bridge, "MemberEventsDeadLetterQueue") == 1

    bridge.emulator.clear_faults()
    replayed = ops(bridge, "dead-letters", "replay", "member-events")
    assert replayed.returncode == 0, replayed.stderr
    assert "move task COMPLETED: 1 moved of 1" in replayed.stdout
    wait_until(
        lambda: any(record["id"] == workout["id"] for record in bridge.platform.records("ops-member-1", "workout")),
        timeout=60,
        what="the replayed workout stored",
    )
    assert depth(bridge, "MemberEventsDeadLetterQueue") == 0


def test_a_failed_intake_is_resumed_by_the_operator_command(bridge):
    from whoop_bridge.store import requisition_store

    requisition = bridge.emulator.create_requisition(["CBC"])
    order_id = requisition["id"]
    # WHOOP answers one unreadable order: intake records it `invalid`, sends nothing.
    bridge.emulator.inject_fault(
        "GET", f"/requisition/{order_id}$", status=200, body={"id": order_id, "unexpected": True}, count=1
    )
    assert bridge.emulator.send_partner_webhook("lab_requisition.created", order_id, url=bridge.webhook_url) == 204

    def outcome() -> str | None:
        record = requisition_store.get(order_id)
        return str(record.outcome.value) if record else None

    wait_until(lambda: outcome() == "invalid", timeout=60, what="the failed intake")

    resumed = ops(bridge, "resume", "requisition", order_id)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(
        f"resumed requisition {order_id}: 202 requisition_id={order_id} outcome=awaiting_whoop "
        "resumed_from=invalid retry_until="
    )
    (test,) = bridge.wait_confirmed(order_id, 1)["service_requests"]

    again = ops(bridge, "resume", "requisition", order_id)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.startswith("error: 409 error=not_resumable ") and "state=received" in again.stderr
    not_failed = ops(bridge, "resume", "service-request", test["id"])
    assert not_failed.returncode == 1 and "state=awaiting_lab_event (resume service-request)" in not_failed.stderr
    unknown = ops(bridge, "resume", "service-request", "no-such-test")
    assert (unknown.returncode, unknown.stderr) == (
        1,
        "error: 404 error=not_found message=no service request no-such-test (resume service-request)\n",
    )
    assert "Traceback" not in again.stderr + not_failed.stderr + unknown.stderr


def test_an_orders_timeline_is_a_table_and_a_picture_with_a_lane_per_test(bridge, tmp_path):
    import xml.etree.ElementTree as ET

    requisition = bridge.new_requisition(["CBC", "LIPID_PANEL"])
    order_id = requisition["id"]
    ids = {test["code"]: test["id"] for test in bridge.wait_confirmed(order_id, 2)["service_requests"]}
    reason = 'Specimen haemolysed & <relabelled> by "lab"'
    issue = bridge.post(f"/lab/service-requests/{ids['CBC']}/events", {"status": "ORDER_ISSUE", "reason": reason})
    assert issue.status_code == 202, issue.text
    wait_until(
        lambda: "ORDER_ISSUE" in ops(bridge, "timeline", "requisition", order_id).stdout, timeout=60, what="the issue"
    )

    table = ops(bridge, "timeline", "requisition", order_id)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"requisition {order_id}  outcome=received  received=")
    assert lines[0].endswith("open=True")
    cbc = lines.index(f"  {ids['CBC']}  CBC  workflow=closed  status=ORDER_ISSUE")
    assert [line.split()[1:] for line in lines[cbc + 1 : cbc + 3]] == [
        ["status", "ORDER_CONFIRMED"],
        ["issue", "ORDER_ISSUE"],
    ]
    assert f"  {ids['LIPID_PANEL']}  LIPID_PANEL  workflow=awaiting_lab_event  status=ORDER_CONFIRMED" in lines
    assert "haemolysed" not in table.stdout

    target = tmp_path / "order.svg"
    saved = ops(bridge, "timeline", "requisition", order_id, "--svg", str(target))
    assert (saved.returncode, saved.stdout) == (
        0,
        f"saved the timeline picture of requisition {order_id} to {target}\n",
    )
    root = ET.fromstring(target.read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    lanes = {
        lane.get("data-service-request-id"): lane.get("data-code")
        for lane in root.iter("{http://www.w3.org/2000/svg}g")
        if lane.get("class") == "lane"
    }
    assert lanes == {ids["CBC"]: "CBC", ids["LIPID_PANEL"]: "LIPID_PANEL"}
    picture = target.read_text()
    assert "haemolysed" not in picture
    assert not [value for value in patient_values(requisition) if value in picture + table.stdout]

    unwritable = ops(bridge, "timeline", "requisition", order_id, "--svg", str(tmp_path / "missing" / "order.svg"))
    assert (unwritable.returncode, unwritable.stdout) == (2, "")
    assert unwritable.stderr.startswith("error: cannot write ") and "Traceback" not in unwritable.stderr
