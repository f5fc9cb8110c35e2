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

import base64
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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local.cfn import ROOT, Resolver, load_template, resources_of
from whoop_bridge import caches
from whoop_bridge.clock import use_clock

REGION = "us-east-1"
ACCOUNT = "123456789012"
STAGE = "v1"
LAYER = ROOT / "layers" / "bridge"

# What the template's secrets hold locally, from the environment (see README).
SECRET_ENVIRONMENT = {
    "PartnerSecret": {
        "client_id": "WHOOP_PARTNER_CLIENT_ID",
        "client_secret": "WHOOP_PARTNER_CLIENT_SECRET",
        "webhook_secret": "WHOOP_PARTNER_WEBHOOK_SECRET",
    },
    "MemberAppSecret": {
        "client_id": "WHOOP_MEMBER_CLIENT_ID",
        "client_secret": "WHOOP_MEMBER_CLIENT_SECRET",
    },
}
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
RATE_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass
class Function:
    """One AWS::Serverless::Function of the template, loaded in-process."""

    logical_id: str
    name: str
    folder: Path
    environment: dict[str, str]
    timeout: int
    routes: list[tuple[str, str, bool]] = field(default_factory=list)  # (method, path, iam)
    queues: list[tuple[str, int]] = field(default_factory=list)  # (queue logical id, batch size)
    schedules: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # event name -> (expression, input)
    module: ModuleType | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.name}"


class LambdaContext:
    """The parts of Lambda's context object the handlers and Powertools read."""

    def __init__(self, function: Function) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + function.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class HandlerError(Exception):
    """A handler raised: carries Lambda's error shape for Step Functions."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


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
    ) -> None:
        self.whoop_base_url = whoop_base_url.rstrip("/")
        self.parameters = dict(parameters or {})
        self.secret_values = secrets
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
        self.template = load_template()
        self.physical: dict[str, str] = {}
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
        self._create_resources()
        self._load_functions()
        if self.clock is not None:
            use_clock(self.clock)
        self._patch_step_functions_lambda()
        self._serialise_dynamodb_writes()
        if self.consume_queues:
            self._start_queue_pollers()
        if self.run_schedules:
            self._start_schedules()
        self._start_api()
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

    def output(self, name: str) -> str:
        """Physical ids by the template's logical id (table names, queue URLs, ARNs)."""
        return self.physical[name]

    # Resources from the template -----------------------------------------------------

    def _resolver(self) -> Resolver:
        return Resolver(
            self.template,
            {**self.parameters, "WhoopApiBaseUrl": self.whoop_base_url},
            self.physical,
            self._attribute,
            {
                "AWS::StackName": self.stack_name,
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
        )

    def _attribute(self, resource: str, attribute: str) -> str:
        kind = self.template["Resources"][resource]["Type"]
        physical = self.physical.get(resource, "")
        if kind == "AWS::Serverless::Function" and attribute == "Arn":
            return (
                self.functions[resource].arn
                if resource in self.functions
                else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self._function_name(resource)}"
            )
        if kind == "AWS::SQS::Queue":
            name = physical.rsplit("/", 1)[-1]
            return {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", "QueueName": name, "QueueUrl": physical}[attribute]
        if kind == "AWS::Serverless::StateMachine":
            return {"Arn": physical, "Name": physical.rsplit(":", 1)[-1]}[attribute]
        if kind == "AWS::KMS::Key" and attribute == "Arn":
            return physical
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}"
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{physical}"
        raise KeyError(f"!GetAtt {resource}.{attribute} is not emulated")

    def _function_name(self, logical_id: str) -> str:
        spec = self.template["Resources"][logical_id]["Properties"]
        if "FunctionName" in spec:
            return str(self._resolver().resolve(spec["FunctionName"]))
        return f"{self.stack_name}-{logical_id}"

    def _create_resources(self) -> None:
        import boto3

        resolve = self._resolver().resolve
        kms = boto3.client("kms", region_name=REGION)
        for logical_id in resources_of(self.template, "AWS::KMS::Key"):
            self.physical[logical_id] = kms.create_key(Description=logical_id)["KeyMetadata"]["Arn"]

        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for logical_id, spec in resources_of(self.template, "AWS::DynamoDB::Table").items():
            properties = spec["Properties"]
            name = f"{self.stack_name}-{logical_id}"
            table: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": properties["AttributeDefinitions"],
                "KeySchema": properties["KeySchema"],
                "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if properties.get("GlobalSecondaryIndexes"):
                table["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
            dynamodb.create_table(**table)
            if properties.get("TimeToLiveSpecification"):
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"]
                )
            self.physical[logical_id] = name

        sqs = boto3.client("sqs", region_name=REGION)
        queues = resources_of(self.template, "AWS::SQS::Queue")
        # Dead-letter queues first: the others' redrive policies point at them.
        for logical_id in sorted(queues, key=lambda name: "RedrivePolicy" in queues[name].get("Properties", {})):
            properties = resolve(queues[logical_id].get("Properties", {}))
            attributes = {"VisibilityTimeout": str(properties.get("VisibilityTimeout", 30))}
            if "RedrivePolicy" in properties:
                attributes["RedrivePolicy"] = json.dumps(properties["RedrivePolicy"])
            url = sqs.create_queue(QueueName=f"{self.stack_name}-{logical_id}", Attributes=attributes)["QueueUrl"]
            self.physical[logical_id] = url

        events = boto3.client("events", region_name=REGION)
        for logical_id, spec in resources_of(self.template, "AWS::Events::EventBus").items():
            name = resolve(spec["Properties"]["Name"])
            events.create_event_bus(Name=name)
            self.physical[logical_id] = name

        for logical_id, spec in resources_of(self.template, "AWS::Events::Rule").items():
            properties = resolve(spec["Properties"])
            name = f"{self.stack_name}-{logical_id}"
            bus = properties.get("EventBusName", "default")
            events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(properties["EventPattern"]))
            events.put_targets(
                Rule=name,
                EventBusName=bus,
                Targets=[{"Id": target["Id"], "Arn": target["Arn"]} for target in properties["Targets"]],
            )
            self.physical[logical_id] = name

        self._create_buckets(boto3.client("s3", region_name=REGION))

        secrets = boto3.client("secretsmanager", region_name=REGION)
        for logical_id, spec in resources_of(self.template, "AWS::SecretsManager::Secret").items():
            value = self._secret_value(logical_id, spec)
            arn = secrets.create_secret(Name=resolve(spec["Properties"]["Name"]), SecretString=json.dumps(value))["ARN"]
            self.physical[logical_id] = arn

        # Functions need names before the state machine's substitutions resolve.
        for logical_id in resources_of(self.template, "AWS::Serverless::Function"):
            self.physical[logical_id] = self._function_name(logical_id)

        stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        for logical_id, spec in resources_of(self.template, "AWS::Serverless::StateMachine").items():
            properties = spec["Properties"]
            definition = (ROOT / properties["DefinitionUri"]).read_text()
            for name, value in resolve(properties.get("DefinitionSubstitutions", {})).items():
                definition = definition.replace("${" + name + "}", str(value))
            arn = stepfunctions.create_state_machine(
                name=resolve(properties.get("Name", logical_id)),
                definition=definition,
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/{logical_id}",
                type=properties.get("Type", "STANDARD"),
            )["stateMachineArn"]
            self.physical[logical_id] = arn

    def _create_buckets(self, s3: Any) -> None:
        """Each bucket with the template's encryption, versioning, public access block,
        ownership, lifecycle and policy (moto keeps them; it enforces none of them)."""
        resolve = self._resolver().resolve
        for logical_id, spec in resources_of(self.template, "AWS::S3::Bucket").items():
            properties = resolve(spec.get("Properties", {}))
            name = f"{self.stack_name}-{logical_id}".lower()
            s3.create_bucket(Bucket=name)
            self.physical[logical_id] = name
            if "BucketEncryption" in properties:
                rules = [
                    {
                        "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                        "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled")),
                    }
                    for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
            if "VersioningConfiguration" in properties:
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=properties["VersioningConfiguration"])
            if "PublicAccessBlockConfiguration" in properties:
                s3.put_public_access_block(
                    Bucket=name, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
                )
            if "OwnershipControls" in properties:
                s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=properties["OwnershipControls"])
            if "LifecycleConfiguration" in properties:
                s3.put_bucket_lifecycle_configuration(
                    Bucket=name,
                    LifecycleConfiguration={
                        "Rules": [_lifecycle_rule(rule) for rule in properties["LifecycleConfiguration"]["Rules"]]
                    },
                )
        for spec in resources_of(self.template, "AWS::S3::BucketPolicy").values():
            properties = resolve(spec["Properties"])
            document = properties["PolicyDocument"]
            # moto denies every request a conditional Deny names (the TLS-only statement
            # would refuse all): those are left to AWS.
            statements = [st for st in document["Statement"] if not (st.get("Effect") == "Deny" and "Condition" in st)]
            if statements:
                s3.put_bucket_policy(
                    Bucket=properties["Bucket"], Policy=json.dumps({**document, "Statement": statements})
                )

    def _secret_value(self, logical_id: str, spec: dict[str, Any]) -> dict[str, str]:
        placeholder = json.loads(spec["Properties"]["SecretString"])
        if self.secret_values and logical_id in self.secret_values:
            return {**placeholder, **self.secret_values[logical_id]}
        names = SECRET_ENVIRONMENT.get(logical_id, {})
        # Unset variables keep the template's placeholder: the bridge then fails closed.
        return {key: os.environ.get(names.get(key, ""), value) for key, value in placeholder.items()}

    # Functions --------------------------------------------------------------------------

    def _load_functions(self) -> None:
        resolver = self._resolver()
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

    # Step Functions' Lambda tasks -------------------------------------------------------

    def _patch_step_functions_lambda(self) -> None:
        """moto's interpreter calls Lambda through boto3; answer those calls in-process."""
        from unittest import mock

        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        original = lambda_eval_utils.boto_client_for
        stack = self

        class InProcessLambda:
            def invoke(self, FunctionName: str, Payload: Any = None, **_: Any) -> dict[str, Any]:  # noqa: N803 - boto3's names
                event = json.loads(Payload) if Payload else {}
                function = stack.function_by_name(FunctionName)
                try:
                    result = stack.invoke(function.logical_id, event)
                except HandlerError as error:
                    body = {"errorType": error.error_type, "errorMessage": str(error)}
                    return {
                        "StatusCode": 200,
                        "FunctionError": "Unhandled",
                        "Payload": io.BytesIO(json.dumps(body).encode()),
                    }
                return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}

        def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            if service == "lambda":
                return InProcessLambda()
            return original(region=region, service=service, state_credentials=state_credentials)

        patch = mock.patch.object(lambda_eval_utils, "boto_client_for", client_for)
        patch.start()
        self._patches.append(patch)

    def _serialise_dynamodb_writes(self) -> None:
        """DynamoDB applies each write, conditions included, atomically; moto's in-process
        backend does not lock, so concurrent conditional writes from threads could both
        pass. One lock around every item operation gives back DynamoDB's guarantee."""
        from unittest import mock

        from moto.dynamodb.models import DynamoDBBackend

        lock = threading.RLock()

        def locked(method: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                with lock:
                    return method(*args, **kwargs)

            return call

        for name in ("put_item", "update_item", "delete_item", "get_item", "query", "scan", "batch_write_item"):
            patch = mock.patch.object(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))
            patch.start()
            self._patches.append(patch)
        patches = _cheap_transaction_rollback(locked)
        for patch in patches:
            patch.start()
        self._patches += patches

    def _stop_executions(self) -> None:
        try:
            import boto3

            stepfunctions = boto3.client("stepfunctions", region_name=REGION)
            for logical_id in resources_of(self.template, "AWS::Serverless::StateMachine"):
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
        arn = self._attribute(queue_logical_id, "Arn")
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

    def _start_api(self) -> None:
        stack = self
        compiled = [
            (
                method,
                path,
                iam,
                function,
                re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"),
            )
            for method, path, iam, function in self.routes()
        ]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: the demo prints its own timeline
                return

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                if path.startswith(f"/{STAGE}/"):
                    path = path[len(STAGE) + 1 :]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if path == "/_local/health" and self.command == "GET":
                    status = 200 if stack.ready.is_set() else 503
                    return self._reply(
                        status,
                        {"Content-Type": "application/json"},
                        json.dumps({"ready": stack.ready.is_set()}).encode(),
                    )
                for method, template_path, iam, function, pattern in compiled:
                    match = pattern.match(path)
                    if match and method == self.command:
                        if iam and stack.require_authorization and not self.headers.get("Authorization"):
                            return self._reply(
                                403, {"Content-Type": "application/json"}, b'{"message":"Missing Authentication Token"}'
                            )
                        # API Gateway hands path parameters over percent-decoded.
                        parameters = {name: unquote(value) for name, value in match.groupdict().items()}
                        event = _api_event(self, template_path, path, parameters, parts.query, body)
                        try:
                            answer = stack.invoke(function.logical_id, event)
                        except HandlerError as error:
                            print(f"local: {function.logical_id} raised {error.error_type}: {error}", file=sys.stderr)
                            return self._reply(
                                502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
                            )
                        return self._answer(answer)
                # API Gateway's answer for a route it does not have.
                self._reply(403, {"Content-Type": "application/json"}, b'{"message":"Missing Authentication Token"}')

            def _answer(self, answer: dict[str, Any]) -> None:
                headers = dict(answer.get("headers") or {})
                for key, values in (answer.get("multiValueHeaders") or {}).items():
                    headers[key] = ", ".join(str(value) for value in values)
                body = answer.get("body") or ""
                data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
                self._reply(int(answer.get("statusCode", 200)), headers, data)

            def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            # Every method reaches the route table: API Gateway answers 403 to what it lacks.
            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        thread.start()
        self._threads.append(thread)


def _cheap_transaction_rollback(locked: Callable[[Callable[..., Any]], Callable[..., Any]]) -> list[Any]:
    """moto backs up a whole table (a deep copy) for every item of a transaction, so a
    transaction costs time in proportion to the table. Back up only the items it touches,
    and put them back when it is cancelled, as DynamoDB leaves them."""
    import copy
    from unittest import mock

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        backups = []
        for entry in transact_items:
            (operation, arguments), *_ = entry.items()
            table = self.tables.get(arguments.get("TableName"))
            if table is None:
                continue
            key = arguments.get("Key") or arguments.get("Item") or {}
            if table.hash_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = (
                DynamoType(key[table.range_key_attr]) if table.range_key_attr and table.range_key_attr in key else None
            )
            if table.has_range_key and range_value is None:
                continue
            backups.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(backups):
                holder = table.items[hash_value] if range_value is not None else table.items
                slot = range_value if range_value is not None else hash_value
                if item is None:
                    holder.pop(slot, None)
                else:
                    holder[slot] = item
            raise

    return [
        mock.patch.object(DynamoDBBackend, "transact_write_items", locked(transact_write_items)),
        # The whole-table backup moto would take becomes the table itself (never restored).
        mock.patch.object(Table, "__deepcopy__", lambda table, memo: table, create=True),
    ]


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in S3's API shape."""
    api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return api


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


def _api_event(
    request: BaseHTTPRequestHandler, resource: str, path: str, path_parameters: dict[str, str], query: str, body: bytes
) -> dict[str, Any]:
    """API Gateway's REST proxy event (payload 1.0) for one request, body byte-exact."""
    # API Gateway adds X-Forwarded-Proto; locally the scheme is plain http.
    received = [*request.headers.items(), ("X-Forwarded-Proto", "http")]
    headers = dict(received)
    multi_headers: dict[str, list[str]] = {}
    for key, value in received:
        multi_headers.setdefault(key, []).append(value)
    multi_query = parse_qs(query, keep_blank_values=True) if query else {}
    try:
        text: str | None = body.decode("utf-8") if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": resource,
        # Percent-decoded, as API Gateway hands it over.
        "path": unquote(path),
        "httpMethod": request.command,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {key: values[-1] for key, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": request.command,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": request.headers.get("Host") or f"127.0.0.1:{request.server.server_address[1]}",
            "identity": {"sourceIp": request.client_address[0], "userAgent": request.headers.get("User-Agent")},
        },
        "body": text,
        "isBase64Encoded": encoded,
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
