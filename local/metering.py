"""What a scenario on the local stack would be billed for on AWS: a meter of the calls the
functions make and of the infrastructure that carries them.

`Meter(stack).start()` counts, until `stop()`:

- Lambda: invocations and their in-process durations (ms) per function, with the function's
  `MemorySize` from the template, and by trigger (API, queue, state machine, schedule);
- API Gateway: REST requests (invocations from an API event);
- Step Functions (Standard): state transitions, read afterwards from each execution's history
  (`*StateEntered` events), see `transitions`;
- DynamoDB: read and write request units from the item sizes, by DynamoDB's own rules (a write
  unit per started KB of the larger of the item before and after, a read unit per started 4 KB,
  half for eventually consistent reads, at least one unit per request, transactions twice);
- SQS: requests (each message consumed: its send, and per batch one receive and one delete, as
  Lambda's event source mapping makes them), counted from what the functions consume;
- EventBridge: events put by the functions, and schedule runs (EventBridge Scheduler);
- Secrets Manager and KMS: API calls the functions make;
- S3: PUT and GET requests the functions make;
- CloudWatch Logs: bytes the functions log (EMF metrics included).

Only calls made from inside a function count: the local stack's own set-up and the tests'
reads are not billed. Durations are wall time on this machine, in-process: a guide, not
Lambda's own figure.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
from collections import Counter, defaultdict
from typing import Any
from unittest import mock

import botocore.endpoint

from local.cfn import resources_of

KB = 1024
READ_UNIT_BYTES = 4 * KB
WRITE_UNIT_BYTES = KB
BILLED_SERVICES = ("dynamodb", "secretsmanager", "kms", "events", "s3", "sqs")
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


class Meter:
    """Counts what the functions of `stack` use; read `counts()` after `stop()`."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.lambda_ms: dict[str, list[float]] = defaultdict(list)
        self.triggers: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()  # "service:Operation"
        self.read_units = 0.0
        self.write_units = 0.0
        self.events_put = 0
        self.sqs_requests = 0
        self.log_bytes = 0
        self._inside = threading.local()
        self._patches: list[Any] = []
        self._original_invoke = stack.invoke
        self._original_run_schedule = stack.run_schedule
        self._memory = _memory_by_function(stack.template)
        self._indexes = _indexes_by_table(stack)
        self.units_by_table: Counter[str] = Counter()  # "table read|write" -> units

    # Lifecycle --------------------------------------------------------------------------

    def start(self) -> Meter:
        if isinstance(self.stack.log_stream, CountingStream):
            self.stack.log_stream.meters.append(self)
        self.stack.invoke = self._invoke
        self.stack.run_schedule = self._run_schedule
        patch = mock.patch.object(botocore.endpoint.Endpoint, "make_request", _metered(self))
        patch.start()
        self._patches.append(patch)
        return self

    def stop(self) -> None:
        for patch in reversed(self._patches):
            patch.stop()
        self._patches.clear()
        if isinstance(self.stack.log_stream, CountingStream) and self in self.stack.log_stream.meters:
            self.stack.log_stream.meters.remove(self)
        self.stack.invoke = self._original_invoke
        self.stack.run_schedule = self._original_run_schedule

    def __enter__(self) -> Meter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Hooks ------------------------------------------------------------------------------

    def memory(self, logical_id: str) -> float:
        """The function's memory in GB, as Lambda bills it."""
        return self._memory[logical_id] / 1024

    def _invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        if _unmetered(event):
            # The bench's own waiting: neither the request nor what it does is billed.
            self._inside.quiet = True
            try:
                return self._original_invoke(logical_id, event)
            finally:
                self._inside.quiet = False
        nested = getattr(self._inside, "function", None)
        self._inside.function = logical_id
        trigger = _trigger(event)
        self.triggers[trigger] += 1
        if trigger == "queue":
            messages = len(event["Records"])
            # Each message was sent once; Lambda's poller received the batch and deleted it.
            self.sqs_requests += messages + 2
        started = time.perf_counter()
        try:
            return self._original_invoke(logical_id, event)
        finally:
            self.lambda_ms[logical_id].append((time.perf_counter() - started) * 1000)
            self._inside.function = nested

    def _run_schedule(self, logical_id: str, event_name: str) -> Any:
        self.triggers["schedule_run"] += 1
        return self._original_run_schedule(logical_id, event_name)

    def inside_function(self) -> bool:
        return getattr(self._inside, "function", None) is not None and not getattr(self._inside, "quiet", False)

    def record(self, service: str, operation: str, body: dict[str, Any], parsed: dict[str, Any]) -> None:
        self.calls[f"{service}:{operation}"] += 1
        if service == "dynamodb":
            self._dynamodb(operation, body, parsed)
        elif service == "events" and operation == "PutEvents":
            self.events_put += sum(
                max(1, math.ceil(len(json.dumps(entry)) / (64 * KB))) for entry in body.get("Entries", [])
            )

    def log_written(self, text: str) -> None:
        self.log_bytes += len(text.encode())

    # DynamoDB ---------------------------------------------------------------------------

    def _dynamodb(self, operation: str, body: dict[str, Any], parsed: dict[str, Any]) -> None:
        reads, writes = self.read_units, self.write_units
        self._dynamodb_units(operation, body, parsed)
        first = next(iter(body.get("TransactItems", [{}])[0].values()), {}) if body.get("TransactItems") else {}
        table = body.get("TableName") or next(iter(body.get("RequestItems", {})), None) or first.get("TableName", "")
        name = self._indexes.get(table, {}).get("name", table)
        self.units_by_table[f"{name} read"] += self.read_units - reads
        self.units_by_table[f"{name} write"] += self.write_units - writes

    def _dynamodb_units(self, operation: str, body: dict[str, Any], parsed: dict[str, Any]) -> None:
        if operation == "GetItem":
            self.read_units += _read_units([parsed.get("Item")], body.get("ConsistentRead", False))
        elif operation in ("Query", "Scan"):
            self.read_units += _read_units(parsed.get("Items", []), body.get("ConsistentRead", False))
        elif operation == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                consistent = body.get("RequestItems", {}).get(table, {}).get("ConsistentRead", False)
                self.read_units += sum(_read_units([item], consistent) for item in items)
        elif operation == "PutItem":
            self.write_units += self._item_write(body["TableName"], body.get("Item", {}))
        elif operation == "UpdateItem":
            self.write_units += self._item_write(body["TableName"], self._stored(body["TableName"], body["Key"]))
        elif operation == "DeleteItem":
            self.write_units += _write_units(_item_size(body["Key"]))
        elif operation == "BatchWriteItem":
            for requests in body.get("RequestItems", {}).values():
                for request in requests:
                    item = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key", {})
                    self.write_units += _write_units(_item_size(item))
        elif operation == "TransactWriteItems":
            for entry in body.get("TransactItems", []):
                part = next(iter(entry.values()))
                item = part["Item"] if "Item" in part else self._stored(part["TableName"], part["Key"])
                self.write_units += 2 * self._item_write(part["TableName"], item)

    def _item_write(self, table: str, item: dict[str, Any]) -> int:
        """Write units of one item: the table's, plus each index the item is in (an index
        write bills the projected item's size, here the whole item: the template projects ALL)."""
        units = _write_units(_item_size(item))
        for keys in self._indexes.get(table, {}).get("indexes", []):
            if all(key in item for key in keys):
                units += _write_units(_item_size(item))
        return units

    def _stored(self, table: str, key: dict[str, Any]) -> dict[str, Any]:
        """The item after the call (an update bills the larger of before and after; after is
        what is left to read here): one unmetered read of moto's table."""
        import boto3

        self._inside.quiet = True
        try:
            item = boto3.client("dynamodb", region_name="us-east-1").get_item(TableName=table, Key=key).get("Item")
        finally:
            self._inside.quiet = False
        return item or key

    # Results ----------------------------------------------------------------------------

    def transitions(self) -> tuple[int, int]:
        """(state transitions so far, executions still waiting for the correction window).

        A test whose final report is in waits in `AwaitCorrection` until its window closes;
        that close is two more transitions (`CloseCorrectionWindow`, `Closed`) and one
        Lambda invocation, which the caller adds for each such execution."""
        import boto3

        stepfunctions = boto3.client("stepfunctions", region_name="us-east-1")
        entered = waiting = 0
        for logical_id in resources_of(self.stack.template, "AWS::StepFunctions::StateMachine"):
            arn = self.stack.physical[logical_id]
            for page in stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=arn):
                for execution in page["executions"]:
                    events = _history(stepfunctions, execution["executionArn"])
                    entered += sum(1 for event in events if event["type"].endswith("StateEntered"))
                    last_state = next(
                        (
                            event["stateEnteredEventDetails"]["name"]
                            for event in reversed(events)
                            if event["type"].endswith("StateEntered")
                        ),
                        None,
                    )
                    if execution["status"] == "RUNNING" and last_state == "AwaitCorrection":
                        waiting += 1
        return entered, waiting

    def counts(self) -> dict[str, Any]:
        """Every measured count, by AWS service (units as AWS bills them)."""
        gb_seconds = sum(
            sum(math.ceil(ms) for ms in durations) / 1000 * self._memory[logical_id] / 1024
            for logical_id, durations in self.lambda_ms.items()
        )
        return {
            "lambda_invocations": sum(len(durations) for durations in self.lambda_ms.values()),
            "lambda_gb_seconds": gb_seconds,
            "lambda_by_function": {
                logical_id: {"invocations": len(durations), "median_ms": _median(durations)}
                for logical_id, durations in sorted(self.lambda_ms.items())
            },
            "api_requests": self.triggers["api"],
            "schedule_runs": self.triggers["schedule_run"],
            "dynamodb_read_units": self.read_units,
            "dynamodb_write_units": self.write_units,
            "sqs_requests": self.sqs_requests,
            "events_put": self.events_put,
            "secretsmanager_calls": sum(n for call, n in self.calls.items() if call.startswith("secretsmanager:")),
            "kms_calls": sum(n for call, n in self.calls.items() if call.startswith("kms:")),
            "s3_put_requests": sum(self.calls[f"s3:{op}"] for op in ("PutObject", "CopyObject", "ListObjectsV2")),
            "s3_get_requests": sum(self.calls[f"s3:{op}"] for op in ("GetObject", "HeadObject")),
            "log_bytes": self.log_bytes,
            "dynamodb_units_by_table": dict(self.units_by_table.most_common()),
            "calls": dict(sorted(self.calls.items())),
        }


class CountingStream:
    """The stack's log stream: counts the bytes written for each running meter, then
    passes them on."""

    def __init__(self, target: Any) -> None:
        self.meters: list[Meter] = []
        self._target = target

    def write(self, text: str) -> int:
        for meter in self.meters:
            meter.log_written(text)
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _metered(meter: Meter) -> Any:
    original = botocore.endpoint.Endpoint.make_request

    def make_request(endpoint: Any, operation_model: Any, request_dict: dict[str, Any]) -> Any:
        answer = original(endpoint, operation_model, request_dict)
        service = operation_model.service_model.endpoint_prefix
        if service in BILLED_SERVICES and meter.inside_function() and service != "sqs":
            body = request_dict.get("body") or b"{}"
            try:
                sent = json.loads(body) if isinstance(body, (bytes, str)) and body[:1] in (b"{", "{") else {}
            except ValueError:
                sent = {}
            parsed = answer[1] if isinstance(answer, tuple) and isinstance(answer[1], dict) else {}
            meter.record(service, operation_model.name, sent, parsed)
        return answer

    return make_request


def _unmetered(event: Any) -> bool:
    headers = event.get("headers") or {} if isinstance(event, dict) else {}
    return any(name.lower() == "x-bench-unmetered" for name in headers)


def _trigger(event: Any) -> str:
    if isinstance(event, dict) and "httpMethod" in event:
        return "api"
    if isinstance(event, dict) and event.get("Records"):
        return "queue"
    return "other"


def _history(stepfunctions: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = stepfunctions.get_execution_history(executionArn=arn, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def _indexes_by_table(stack: Any) -> dict[str, dict[str, Any]]:
    """Physical table name -> its logical name and each index's key attributes."""
    tables = {}
    for logical_id, spec in resources_of(stack.template, "AWS::DynamoDB::Table").items():
        indexes = [
            [key["AttributeName"] for key in index["KeySchema"]]
            for index in spec["Properties"].get("GlobalSecondaryIndexes", [])
        ]
        tables[stack.physical[logical_id]] = {"name": logical_id, "indexes": indexes}
    return tables


def _memory_by_function(template: dict[str, Any]) -> dict[str, int]:
    default = int(template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    return {
        logical_id: int(spec["Properties"].get("MemorySize", default))
        for logical_id, spec in resources_of(template, "AWS::Serverless::Function").items()
    }


def _read_units(items: list[dict[str, Any] | None], consistent: bool) -> float:
    """One request's read units: its items' total size in started 4 KB, at least one unit;
    half for an eventually consistent read."""
    size = sum(_item_size(item) for item in items if item)
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return units if consistent else units / 2


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def _item_size(item: dict[str, Any]) -> int:
    """An item's size by DynamoDB's rules: each attribute's name plus its value."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    kind, content = next(iter(value.items()))
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return len(content.lstrip("-").replace(".", "")) // 2 + 2
    if kind == "B":
        return len(content) * 3 // 4  # base64 on the wire
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(part.encode()) for part in content)
    if kind == "NS":
        return sum(len(part) // 2 + 2 for part in content)
    if kind == "L":
        return 3 + sum(1 + _value_size(part) for part in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(part) for name, part in content.items())
    return len(json.dumps(content))


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
