"""moto, patched where the local stack needs AWS's own behaviour: Step Functions' Lambda
tasks run the handlers in-process, DynamoDB item operations are atomic (one lock), and a
cancelled transaction restores only the items it touched (cheaply); and, outside moto,
Powertools' metric flushes are atomic; and SQS's dead-letter redrive, which moto lacks. Each function starts its patches and returns them,
for the stack to stop."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from typing import Any
from unittest import mock


def in_process_lambda(invoke: Callable[[str, Any], dict[str, Any]]) -> list[Any]:
    """moto's interpreter calls Lambda through boto3; answer those calls with
    `invoke(function name or ARN, event)`, which returns Lambda's Invoke answer."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    original = lambda_eval_utils.boto_client_for

    class InProcessLambda:
        def invoke(self, FunctionName: str, Payload: Any = None, **_: Any) -> dict[str, Any]:  # noqa: N803 - boto3's names
            return invoke(FunctionName, json.loads(Payload) if Payload else {})

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if service == "lambda":
            return InProcessLambda()
        return original(region=region, service=service, state_credentials=state_credentials)

    return _started([mock.patch.object(lambda_eval_utils, "boto_client_for", client_for)])


def scaled_retry_waits(scale: float) -> list[Any]:
    """The ASL's Retry waits (IntervalSeconds, BackoffRate, MaxDelaySeconds, jitter) times
    `scale`, so a test can run a step past every retry in seconds; the attempts are as many."""
    import time

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    scaled = type("ScaledTime", (), {"sleep": staticmethod(lambda seconds: time.sleep(seconds * scale))})
    return _started([mock.patch.object(retrier_decl, "time", scaled)])


def serialised_dynamodb() -> list[Any]:
    """DynamoDB applies each write, conditions included, atomically; moto's in-process
    backend does not lock, so concurrent conditional writes from threads could both
    pass. One lock around every item operation gives back DynamoDB's guarantee."""
    from moto.dynamodb.models import DynamoDBBackend

    locked = _under(threading.RLock())

    operations = ("put_item", "update_item", "delete_item", "get_item", "query", "scan", "batch_write_item")
    patches = [mock.patch.object(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name))) for name in operations]
    return _started(patches + _cheap_transaction_rollback(locked))


def atomic_metric_flushes() -> list[Any]:
    """Lambda runs one invocation per container at a time; the local stack runs handlers as
    threads of one process, and Powertools keeps one metric set per process. Without a lock
    a handler can clear the set between another's check and its serialisation, which raises
    SchemaValidationError ("Must contain at least one metric") out of that handler."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    locked = _under(threading.RLock())

    names = ("add_metric", "flush_metrics")
    return _started(
        [
            mock.patch.object(AmazonCloudWatchEMFProvider, name, locked(getattr(AmazonCloudWatchEMFProvider, name)))
            for name in names
        ]
    )


def _under(lock: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator that runs a method holding `lock`."""

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    return locked


def _started(patches: list[Any]) -> list[Any]:
    for patch in patches:
        patch.start()
    return patches


def _cheap_transaction_rollback(locked: Callable[[Callable[..., Any]], Callable[..., Any]]) -> list[Any]:
    """moto backs up a whole table (a deep copy) for every item of a transaction, so a
    transaction costs time in proportion to the table. Back up only the items it touches,
    and put them back when it is cancelled, as DynamoDB leaves them."""
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


def message_move_tasks() -> list[Any]:
    """SQS's dead-letter redrive (StartMessageMoveTask, ListMessageMoveTasks,
    CancelMessageMoveTask), which moto 5.2.5 does not have. A task moves every visible
    message of the dead-letter queue (body and message attributes, as SQS keeps them) to the
    destination (by default the queue whose redrive policy names the source) and deletes it
    from the source; it runs to its end inside the call, so a listing shows it COMPLETED (or
    FAILED with SQS's reason). Tasks are listed newest first, as SQS does."""
    import time
    import uuid

    from moto.core.responses import ActionResult
    from moto.sqs.exceptions import QueueDoesNotExist, SQSException
    from moto.sqs.responses import SQSResponse

    tasks: dict[str, list[dict[str, Any]]] = {}  # by source ARN, newest first
    lock = threading.Lock()

    def queue_by_arn(backend: Any, arn: str) -> Any:
        for queue in backend.queues.values():
            if queue.queue_arn == arn:
                return queue
        raise QueueDoesNotExist()

    def move(backend: Any, source: Any, destination_arn: str | None) -> tuple[int, str | None]:
        if destination_arn is None:
            sources = [queue for queue in backend.queues.values() if _redrives_to(queue, source.queue_arn)]
            if len(sources) != 1:
                return 0, "the source queue is the dead-letter queue of no single queue: give DestinationArn"
            destination = sources[0]
        else:
            try:
                destination = queue_by_arn(backend, destination_arn)
            except QueueDoesNotExist:
                return 0, "the destination queue does not exist"
        moved = 0
        while True:
            messages = backend.receive_message(source.name, 10, 0, 30, ["All"])
            if not messages:
                return moved, None
            for message in messages:
                backend.send_message(destination.name, message.body, message_attributes=message.message_attributes)
                backend.delete_message(source.name, message.receipt_handle)
                moved += 1

    def start_message_move_task(self: Any) -> ActionResult:
        source_arn = self._get_param("SourceArn")
        source = queue_by_arn(self.sqs_backend, source_arn)
        if not any(_redrives_to(queue, source_arn) for queue in self.sqs_backend.queues.values()):
            raise SQSException("InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.")
        handle = uuid.uuid4().hex
        started = int(time.time() * 1000)
        with lock:
            to_move = len(source.messages)
            moved, failure = move(self.sqs_backend, source, self._get_param("DestinationArn"))
            task = {
                "Status": "FAILED" if failure else "COMPLETED",
                "SourceArn": source_arn,
                "ApproximateNumberOfMessagesMoved": moved,
                "ApproximateNumberOfMessagesToMove": to_move,
                "StartedTimestamp": started,
            }
            if self._get_param("DestinationArn"):
                task["DestinationArn"] = self._get_param("DestinationArn")
            if failure:
                task["FailureReason"] = failure
            tasks.setdefault(source_arn, []).insert(0, task)
        return ActionResult({"TaskHandle": handle})

    def list_message_move_tasks(self: Any) -> ActionResult:
        source_arn = self._get_param("SourceArn")
        queue_by_arn(self.sqs_backend, source_arn)
        limit = int(self._get_param("MaxResults") or 1)
        return ActionResult({"Results": [dict(task) for task in tasks.get(source_arn, [])[:limit]]})

    def cancel_message_move_task(self: Any) -> ActionResult:
        # Every task here has ended by the time its start call answered.
        raise SQSException("ResourceNotFoundException", "Task does not exist or is not running.")

    return _started(
        [
            mock.patch.object(SQSResponse, name, function, create=True)
            for name, function in (
                ("start_message_move_task", start_message_move_task),
                ("list_message_move_tasks", list_message_move_tasks),
                ("cancel_message_move_task", cancel_message_move_task),
            )
        ]
    )


def _redrives_to(queue: Any, dead_letter_arn: str) -> bool:
    return bool(queue.redrive_policy) and queue.redrive_policy.get("deadLetterTargetArn") == dead_letter_arn
