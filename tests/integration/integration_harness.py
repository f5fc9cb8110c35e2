"""Integration harness: the real handlers on the project's own local stack.

`LocalStack` (local/stack.py) makes every AWS resource from template.yaml in moto, loads
each function's real `handler(event, context)` in-process and runs the real ASL in moto's
Step Functions interpreter; `WhoopEmulator` (local/emulator/) answers the partner API.

These are handler-level tests, so the queue pollers are left off: a test delivers an SQS
event to `requisition_processor` itself and can read `PartnerEventsQueue` without racing a
consumer. Step Functions executions still run in the background, so state that an
execution writes is awaited with `wait_until`.

One stack per test module (about two seconds to start); the module's last test tears it
down before the next module starts its own, since the stack owns the process's moto mock
and environment.
"""

from __future__ import annotations

import copy
import io
import json
import time
from pathlib import Path
from typing import Any

import boto3

from local.emulator import WhoopEmulator
from local.stack import DomainEvents, LambdaContext, LocalStack, wait_until

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"

# The fixed ids written in events/ (tests swap them for ids the emulator knows).
SAMPLE_REQUISITION_ID = "0f8b6c2e-4d1a-4c3b-9a7e-2b5d8e1f3a64"
SAMPLE_SERVICE_REQUEST_ID = "6d2e9f41-8b3c-4a5d-b7e6-1c0f9a2d4e83"
SAMPLE_REVIEW_ID = "a4c7e2d9-3f16-4b8a-9c05-7e1d2b6f8a30"
SAMPLE_REPORT_ID = "9b3f5e17-2c84-4d6a-8f0b-4e7c1a9d3b52"

ACCEPTED_TEST_CODES = "LIPID_PANEL,CBC"
# The return URL and member of the member_api_ / oauth_callback_ sample events.
SAMPLE_RETURN_URL = "https://platform.example/whoop/done"
SAMPLE_CLIENT_USER_ID = "platform-user-8841"
SAMPLE_STATE = "SAMPLE_STATE_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
SAMPLE_CODE = "SAMPLE_AUTHORIZATION_CODE"
# Service logger names (Powertools' `service`) whose output a test may read.
SERVICES = (
    "webhook_intake",
    "requisition_processor",
    "service_request_tasks",
    "lab_api",
    "member_api",
    "oauth_callback",
    "member_sync",
)


def load_event(name: str, **replace: str) -> dict[str, Any]:
    """An events/ file, with each fixed id in `replace` (old=new) swapped everywhere."""
    text = (EVENTS / name).read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return json.loads(text)


class Bridge:
    """The running stack and emulator, with the few helpers the tests share."""

    def __init__(self, stack: LocalStack, emulator: WhoopEmulator) -> None:
        self.stack = stack
        self.emulator = emulator
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.stepfunctions = boto3.client("stepfunctions", region_name="us-east-1")
        self.lab_table = boto3.resource("dynamodb", region_name="us-east-1").Table(stack.output("LabTable"))
        self.domain_events = DomainEvents(stack)

    # Invocation -------------------------------------------------------------------------

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """The function's real handler, as Lambda calls it (raises local.stack.HandlerError)."""
        return self.stack.invoke(logical_id, event)

    def handler(self, logical_id: str):
        """The function's handler and a Lambda context, to see its own exception types."""
        function = self.stack.functions[logical_id]
        return function.module, LambdaContext(function)

    def lab_api(self, event: dict[str, Any]) -> tuple[int, Any, str]:
        """Status, parsed JSON body and raw body text of a lab_api answer."""
        answer = self.invoke("LabApiFunction", event)
        text = answer.get("body") or ""
        return answer["statusCode"], json.loads(text) if text else None, text

    def tasks(self, event: dict[str, Any]) -> Any:
        return self.invoke("ServiceRequestTasksFunction", event)

    # State ------------------------------------------------------------------------------

    def item(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.lab_table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")

    def requisition_item(self, requisition_id: str) -> dict[str, Any] | None:
        return self.item(f"REQ#{requisition_id}", "REQ")

    def service_request_item(self, service_request_id: str) -> dict[str, Any]:
        item = self.item(f"SR#{service_request_id}", "SR")
        assert item is not None, f"service request {service_request_id} is not stored"
        return item

    def wait_for_workflow(self, service_request_id: str, *workflows: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_until(
            lambda: (
                (item := self.item(f"SR#{service_request_id}", "SR")) and item.get("workflow") in workflows and item
            ),
            timeout,
            what=f"service request workflow in {workflows}",
        )

    def executions(self) -> list[dict[str, Any]]:
        arn = self.stack.output("ServiceRequestStateMachine")
        executions: list[dict[str, Any]] = []
        for page in self.stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=arn):
            executions += page["executions"]
        return executions

    def queue_messages(self, logical_id: str = "PartnerEventsQueue") -> list[dict[str, Any]]:
        """Every message now on one of the stack's queues, taken off it."""
        return self.drain(self.stack.output(logical_id))

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Receive and delete every visible message of a queue (the next test starts empty)."""
        taken: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not batch:
                return taken
            for message in batch:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            taken += batch

    def delayed_messages(self, logical_id: str = "PartnerEventsQueue") -> list[tuple[dict[str, Any], float]]:
        """Each message still delayed on one of the stack's queues (SendMessage's DelaySeconds),
        with the seconds until it shows; read from moto, which SQS itself cannot do."""
        from moto.sqs.models import sqs_backends

        from local.stack import ACCOUNT, REGION

        queue = sqs_backends[ACCOUNT][REGION].get_queue(self.stack.output(logical_id).rsplit("/", 1)[-1])
        now_ms = time.time() * 1000
        return [
            (json.loads(message.body), (message.delayed_until - now_ms) / 1000)
            for message in list(queue._messages)
            if message.delayed
        ]

    def published(self, detail_type: str, **detail: Any) -> list[dict[str, Any]]:
        """Domain events of `detail_type` published so far whose detail holds `detail`."""
        return self.domain_events.published(detail_type, **detail)

    # Orders -----------------------------------------------------------------------------

    def process_requisition(self, codes: list[str]) -> dict[str, Any]:
        """An order created at the emulator and taken in by requisition_processor (the
        sample SQS event); returns the emulator's requisition once every execution waits
        for the lab or has closed."""
        requisition = self.emulator.create_requisition(codes)
        event = load_event("sqs_requisition_created.json", **{SAMPLE_REQUISITION_ID: requisition["id"]})
        assert self.invoke("RequisitionProcessorFunction", event) == {"batchItemFailures": []}
        for service_request in requisition["service_requests"]:
            self.wait_for_workflow(service_request["id"], "awaiting_lab_event", "closed")
        return requisition

    def store_order(self, codes: list[str]) -> dict[str, Any]:
        """An order the emulator knows, stored in LabTable as intake stores it, but with no
        execution: the state machine's steps are then driven by the test alone."""
        from whoop_bridge import times
        from whoop_bridge.models.service_request import Decision, ServiceRequestRecord, WorkflowState
        from whoop_bridge.store import requisition_store, service_request_store

        requisition = self.emulator.create_requisition(codes)
        ids = [service_request["id"] for service_request in requisition["service_requests"]]
        assert requisition_store.put_received(requisition, times.now_iso(), ids, [])
        for service_request in requisition["service_requests"]:
            assert service_request_store.put_if_new(
                ServiceRequestRecord(
                    service_request_id=service_request["id"],
                    requisition_id=requisition["id"],
                    code=service_request["code"],
                    task_description=service_request["task_description"],
                    fhir_status=service_request["status"],
                    decision=Decision.CONFIRM,
                    workflow=WorkflowState.STARTING,
                    created_at=times.now_iso(),
                )
            )
        return requisition


def start_bridge(
    secrets: dict[str, str] | None = None,
    member_secrets: dict[str, str] | None = None,
    parameters: dict[str, str] | None = None,
) -> tuple[LocalStack, WhoopEmulator]:
    emulator = WhoopEmulator().start()
    values = secrets or {
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "webhook_secret": emulator.webhook_secret,
    }
    member_values = member_secrets or {
        "client_id": emulator.member_client_id,
        "client_secret": emulator.member_client_secret,
    }
    # No queue consumers: the tests deliver queue events to the processor themselves.
    stack = LocalStack(
        whoop_base_url=emulator.base_url,
        consume_queues=False,
        # The partner webhook signing key has its own secret (PartnerWebhookSecret).
        secrets={
            "PartnerSecret": {key: value for key, value in values.items() if key != "webhook_secret"},
            "PartnerWebhookSecret": {key: value for key, value in values.items() if key == "webhook_secret"},
            "MemberAppSecret": member_values,
        },
        parameters={
            "AcceptedTestCodes": ACCEPTED_TEST_CODES,
            "AllowedReturnUrls": SAMPLE_RETURN_URL,
            **(parameters or {}),
        },
    )
    try:
        stack.start()
    except Exception:
        emulator.stop()
        raise
    return stack, emulator


def log_records(buffer: io.StringIO) -> list[dict[str, Any]]:
    """The JSON log lines written to `buffer`."""
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip().startswith("{")]


def with_body(event: dict[str, Any], body: str) -> dict[str, Any]:
    """A copy of an API event with another body."""
    changed = copy.deepcopy(event)
    changed["body"] = body
    return changed
