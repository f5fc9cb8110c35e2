"""The bridge running on this machine without Docker.

moto (in-process) holds the AWS resources, made from template.yaml; the real handlers run
in-process: API routes from an HTTP server with API Gateway's REST proxy events, SQS
triggers from poller threads, and the real ASL from moto's Step Functions interpreter with
its Lambda tasks dispatched to the handlers here.

Schedules (EventBridge Scheduler) run when a test calls `run_schedule`, or on their own
rate with `run_schedules=True` (what `serve` does).

Differences from AWS, on purpose: IAM routes take unsigned calls; a failed SQS message comes
back after `local_retry_seconds` instead of the queue's visibility timeout; KMS encryption
of tables, queues and logs is not emulated (moto accepts the settings), while the KMS calls
the code makes itself (sealing member tokens) run against moto's KMS, which really encrypts.
S3 buckets keep the template's settings, but not its TLS-only bucket policy (moto cannot
evaluate a conditional Deny and would refuse every call); moto answers presigned links
in-process (through `requests`), not on a real socket.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local import moto_patches
from local.api_gateway import serve_api
from local.cfn import ROOT, STATE_MACHINE_TYPES, load_template, resources_of
from local.functions import Function, HandlerError, LambdaContext
from local.resources import ACCOUNT, REGION, Resources
from whoop_bridge import caches
from whoop_bridge.clock import use_clock

# Tests and tools import these from here.
__all__ = [
    "ACCOUNT",
    "REGION",
    "DomainEvents",
    "Function",
    "HandlerError",
    "LambdaContext",
    "LocalStack",
    "repo_path",
    "wait_until",
]

LAYER = ROOT / "layers" / "bridge"

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
RATE_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class LocalStack:
    """Start with `start()`; `url` is the API's base; stop with `stop()`."""

    def __init__(
        self,
        *,
        whoop_base_url: str,
        parameters: dict[str, str] | None = None,
        secrets: dict[str, dict[str, str]] | None = None,
        stack_name: str = "whoop-bridge-local",
        port: int = 0,
        local_retry_seconds: float = 1.0,
        log_stream: io.TextIOBase | None = None,
        consume_queues: bool = True,
        run_schedules: bool = False,
        clock: Any = None,
        queue_workers: int = 2,
        require_authorization: bool = False,
        aws_port: int | None = None,
        retry_wait_scale: float = 1.0,
    ) -> None:
        self.whoop_base_url = whoop_base_url.rstrip("/")
        self.parameters = dict(parameters or {})
        self.stack_name = stack_name
        self.port = port
        self.local_retry_seconds = local_retry_seconds
        self.log_stream = log_stream
        # Off for handler-level tests that deliver queue events to a handler themselves.
        self.consume_queues = consume_queues
        self.run_schedules = run_schedules
        # The WHOOP rate budget's clock (a FastClock runs its minutes faster); None: wall clock.
        self.clock = clock
        # Concurrent Lambdas per queue, as an SQS event source would run them.
        self.queue_workers = queue_workers
        # As API Gateway: an IAM route called without an Authorization header is a 403.
        # Locally any value passes (no SigV4 check); off by default, so unsigned calls work.
        self.require_authorization = require_authorization
        # With a port (0: any free one), moto's own server answers AWS calls from other
        # processes (`python -m whoop_bridge.ops --local`) against this stack's resources.
        self.aws_port = aws_port
        self.aws_url: str | None = None
        self._aws_server: Any = None
        # Step Functions' retry waits times this (a test of a step failing past every retry).
        self.retry_wait_scale = retry_wait_scale
        self.template = load_template()
        self.resources = Resources(
            self.template,
            parameters={**self.parameters, "WhoopApiBaseUrl": self.whoop_base_url},
            stack_name=stack_name,
            secrets=secrets,
        )
        self.physical = self.resources.physical
        self.functions: dict[str, Function] = {}
        self._mock: Any = None
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()
        self._sqs_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._saved_environ: dict[str, str] | None = None
        self._saved_stdout: Any = None
        self._patches: list[Any] = []
        self.ready = threading.Event()

    # Lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalStack:
        from moto import mock_aws

        self._saved_environ = dict(os.environ)
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
            }
        )
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        if self.log_stream is not None:
            # Handlers log (and Powertools prints metrics) to stdout: send it to the log file.
            self._saved_stdout = sys.stdout
            sys.stdout = self.log_stream
        if str(LAYER) not in sys.path:
            sys.path.insert(0, str(LAYER))
        self.resources.create()
        self._load_functions()
        if self.clock is not None:
            use_clock(self.clock)
        self._patches += moto_patches.in_process_lambda(self._lambda_invoke)
        self._patches += moto_patches.serialised_dynamodb()
        self._patches += moto_patches.atomic_metric_flushes()
        self._patches += moto_patches.message_move_tasks()
        if self.aws_port is not None:
            self._start_aws_server()
        if self.retry_wait_scale != 1.0:
            self._patches += moto_patches.scaled_retry_waits(self.retry_wait_scale)
        if self.consume_queues:
            self._start_queue_pollers()
        if self.run_schedules:
            self._start_schedules()
        self._server = serve_api(self, self.port)
        thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        thread.start()
        self._threads.append(thread)
        self.ready.set()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._stop_executions()
        if self._aws_server is not None:
            self._aws_server.stop()
        for patch in reversed(self._patches):
            patch.stop()
        if self._mock:
            self._mock.stop()
        if self._saved_stdout is not None:
            sys.stdout = self._saved_stdout
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
        self._reset_layer_caches()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _start_aws_server(self) -> None:
        """moto's server, in this process, so it serves the same backends the mock holds."""
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per AWS call otherwise
        self._aws_server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port or 0, verbose=False)
        self._aws_server.start()
        host, port = self._aws_server.get_host_and_port()
        self.aws_url = f"http://{host}:{port}"

    def description(self) -> dict[str, Any]:
        """What `GET /_local/stack` answers, as CloudFormation would describe the stack: its
        name and region, the API's URL as the `ApiUrl` output, every resource (logical id,
        type, physical id) and the AWS endpoint other processes reach its resources through."""
        return {
            "stack_name": self.stack_name,
            "region": REGION,
            "aws_endpoint": self.aws_url,
            "outputs": {"ApiUrl": f"{self.url}/v1"},
            "resources": [
                {"logical_id": logical_id, "type": spec["Type"], "physical_id": self.physical[logical_id]}
                for logical_id, spec in self.template["Resources"].items()
                if logical_id in self.physical
            ],
        }

    def output(self, name: str) -> str:
        """Physical ids by the template's logical id (table names, queue URLs, ARNs)."""
        return self.physical[name]

    # Functions --------------------------------------------------------------------------

    def _load_functions(self) -> None:
        resolver = self.resources.resolver()
        globals_ = self.template.get("Globals", {}).get("Function", {})
        shared = resolver.resolve(globals_.get("Environment", {}).get("Variables", {}))
        for logical_id, spec in resources_of(self.template, "AWS::Serverless::Function").items():
            properties = spec["Properties"]
            environment = {**shared, **resolver.resolve(properties.get("Environment", {}).get("Variables", {}))}
            function = Function(
                logical_id=logical_id,
                name=self.physical[logical_id],
                folder=ROOT / properties["CodeUri"],
                environment={key: str(value) for key, value in environment.items()},
                timeout=int(properties.get("Timeout", globals_.get("Timeout", 3))),
            )
            for name, event in properties.get("Events", {}).items():
                event_properties = event.get("Properties", {})
                if event["Type"] == "Api":
                    auth = event_properties.get("Auth", {}).get("Authorizer")
                    function.routes.append(
                        (event_properties["Method"].upper(), event_properties["Path"], auth != "NONE")
                    )
                elif event["Type"] == "SQS":
                    queue = event_properties["Queue"]["Fn::GetAtt"][0]
                    function.queues.append((queue, int(event_properties.get("BatchSize", 10))))
                elif event["Type"] in ("Schedule", "ScheduleV2"):
                    payload = json.loads(event_properties.get("Input") or "{}")
                    function.schedules[name] = (event_properties["ScheduleExpression"], payload)
            self.functions[logical_id] = function

        # One process holds every function: their variables differ only in the service
        # name, which each handler passes to Powertools itself.
        for function in self.functions.values():
            os.environ.update(
                {key: value for key, value in function.environment.items() if key != "POWERTOOLS_SERVICE_NAME"}
            )
        self._reset_layer_caches()
        for function in self.functions.values():
            # Powertools configures a service's logger once per process; a previous stack
            # in this process left its handler (and its stream) on it.
            logging.Logger.manager.loggerDict.pop(function.folder.name, None)
            module_name = f"local_function_{function.folder.name}"
            spec = importlib.util.spec_from_file_location(module_name, function.folder / "app.py")
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            function.module = module

    @staticmethod
    def _reset_layer_caches() -> None:
        """Layer caches hold clients and settings of the previous mock: drop them."""
        caches.reset_all()

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Run a function's handler in-process as Lambda would."""
        function = self.functions[logical_id]
        assert function.module is not None
        try:
            return function.module.handler(event, LambdaContext(function))
        except Exception as error:  # noqa: BLE001 - reported as Lambda reports it
            raise HandlerError(type(error).__name__, str(error)) from error

    def function_by_name(self, name_or_arn: str) -> Function:
        name = name_or_arn.rsplit(":", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        for function in self.functions.values():
            if function.name == name:
                return function
        raise KeyError(name_or_arn)

    def _lambda_invoke(self, function_name: str, event: Any) -> dict[str, Any]:
        """Lambda's Invoke answer (a Step Functions task): the result, or the handler's error
        as Lambda reports it."""
        function = self.function_by_name(function_name)
        try:
            result = self.invoke(function.logical_id, event)
        except HandlerError as error:
            body = {"errorType": error.error_type, "errorMessage": str(error)}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}

    # Step Functions' Lambda tasks -------------------------------------------------------

    def _stop_executions(self) -> None:
        try:
            import boto3

            stepfunctions = boto3.client("stepfunctions", region_name=REGION)
            for logical_id in resources_of(self.template, *STATE_MACHINE_TYPES):
                arn = self.physical.get(logical_id)
                if not arn:
                    continue
                for execution in stepfunctions.list_executions(stateMachineArn=arn, statusFilter="RUNNING")[
                    "executions"
                ]:
                    stepfunctions.stop_execution(executionArn=execution["executionArn"])
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass

    # Schedules --------------------------------------------------------------------------

    def run_schedule(self, logical_id: str, event_name: str) -> Any:
        """Invoke a function as its schedule would (EventBridge Scheduler passes `Input`)."""
        _expression, payload = self.functions[logical_id].schedules[event_name]
        return self.invoke(logical_id, dict(payload))

    def _start_schedules(self) -> None:
        for function in self.functions.values():
            for event_name, (expression, _payload) in function.schedules.items():
                match = RATE.match(expression)
                if not match:
                    print(f"local: schedule {event_name} ({expression}) is not run locally", file=sys.stderr)
                    continue
                period = int(match.group(1)) * RATE_SECONDS[match.group(2).rstrip("s")]
                thread = threading.Thread(
                    target=self._every,
                    args=(period, function.logical_id, event_name),
                    name=f"schedule-{event_name}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)

    def _every(self, period: float, logical_id: str, event_name: str) -> None:
        while not self._stopping.wait(period):
            try:
                self.run_schedule(logical_id, event_name)
            except HandlerError as error:
                print(f"local: schedule {event_name} raised {error.error_type}: {error}", file=sys.stderr)

    # SQS triggers ----------------------------------------------------------------------

    def _start_queue_pollers(self) -> None:
        for function in self.functions.values():
            for queue, batch_size in function.queues:
                for worker in range(self.queue_workers):
                    thread = threading.Thread(
                        target=self._poll,
                        args=(function, queue, batch_size),
                        name=f"sqs-{function.folder.name}-{worker}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)

    def _poll(self, function: Function, queue_logical_id: str, batch_size: int) -> None:
        import boto3

        sqs = boto3.client("sqs", region_name=REGION)
        url = self.physical[queue_logical_id]
        arn = self.resources.attribute(queue_logical_id, "Arn")
        idle = 0
        while not self._stopping.is_set():
            try:
                # moto's SQS is not thread-safe: two pollers receiving at once can be
                # handed the same message, which SQS itself never does.
                with self._sqs_lock:
                    messages = sqs.receive_message(
                        QueueUrl=url, MaxNumberOfMessages=min(batch_size, 10), WaitTimeSeconds=0, AttributeNames=["All"]
                    ).get("Messages", [])
            except Exception:  # noqa: BLE001 - the mock is shutting down
                return
            if not messages:
                # An idle queue is polled less often (every call into moto costs CPU the
                # busy pollers need), as Lambda's own pollers back off.
                idle = min(idle + 1, 4)
                self._stopping.wait(0.025 * 2**idle)
                continue
            idle = 0
            event = {"Records": [_sqs_record(message, arn) for message in messages]}
            try:
                answer = self.invoke(function.logical_id, event) or {}
                failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
            except HandlerError:
                failed = {message["MessageId"] for message in messages}
            try:
                with self._sqs_lock:
                    for message in messages:
                        if message["MessageId"] in failed:
                            sqs.change_message_visibility(
                                QueueUrl=url,
                                ReceiptHandle=message["ReceiptHandle"],
                                VisibilityTimeout=int(self.local_retry_seconds),
                            )
                        else:
                            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            except Exception:
                if self._stopping.is_set():
                    return  # the stack stopped while this batch ran: its queues are gone
                raise

    # API Gateway -----------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str, bool, Function]]:
        """Every (method, path, iam, function) the template declares."""
        return [
            (method, path, iam, function)
            for function in self.functions.values()
            for method, path, iam in function.routes
        ]


def _sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


class DomainEvents:
    """Every event the stack publishes on its bus, copied by a rule to a queue to read back."""

    def __init__(self, stack: LocalStack) -> None:
        import boto3

        self._sqs = boto3.client("sqs", region_name=REGION)
        self._url = self._sqs.create_queue(QueueName=f"domain-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events", region_name=REGION)
        bus = stack.output("EventBus")
        rule = f"capture-{uuid.uuid4().hex[:8]}"
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["whoop-bridge"]}))
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
        self.seen: list[dict[str, Any]] = []

    def published(self, detail_type: str, **detail: Any) -> list[dict[str, Any]]:
        """Details of the events of `detail_type` published so far that hold `detail`."""
        while True:
            batch = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not batch:
                break
            for message in batch:
                self.seen.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return [
            event["detail"]
            for event in self.seen
            if event["detail-type"] == detail_type
            and all(event["detail"].get(key) == value for key, value in detail.items())
        ]


def wait_until(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll until `predicate()` is truthy; its value, or TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def repo_path(*parts: str) -> Path:
    """A path inside the repository."""
    return ROOT.joinpath(*parts)
