"""Dead-letter queues: found in the stack, listed without consuming, replayed to their source.

A dead-letter queue is a queue another queue's redrive policy names, or one whose logical
id ends in `DeadLetterQueue` (the schedules' queue, which EventBridge Scheduler feeds).
Its source is the queue whose redrive policy names it; the schedules' queue has none.

Message bodies hold ids only (docs/architecture.md), yet only the keys of `SHOWN_KEYS` are
ever printed, each value a short scalar: a body that changes shape cannot leak anything.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from whoop_bridge.ops.errors import FAILED, UNREACHABLE, OpsError
from whoop_bridge.ops.stack import Stack

# The keys a dead letter may show, by where they come from: a partner webhook
# (`lab/partner_queue`), a member webhook (`members/webhook_sync`), a sync job's cursor
# (models/sync_job.py), a bus message (`member.connected`, with its `detail`) and a
# schedule run.
SHOWN_KEYS = frozenset(
    {
        "event_type", "resource_id", "attempt",
        "user_id", "id", "type", "trace_id", "deferrals", "deferred_since", "not_found_since",
        "job", "client_user_id", "cause", "start", "end", "steps", "next_token",
        "detail-type", "source", "time",
        "action",
    }
)  # fmt: skip
# Keys whose value is only counted (a reconciliation's `seen` record ids).
COUNTED_KEYS = frozenset({"seen"})
NESTED_KEYS = frozenset({"detail"})
# The error a producer records on the message (EventBridge rule and Scheduler dead letters).
ERROR_ATTRIBUTES = ("ERROR_CODE", "ERROR_MESSAGE", "RETRY_ATTEMPTS")
MAX_VALUE_CHARS = 80
# Ids, event types, ISO times, page tokens (base64 included): never a space or markup.
ID_SHAPED = re.compile(r"[A-Za-z0-9._:@/+=-]*")
# A listing hides the messages it reads for this long at most; it shows them again at once.
PEEK_VISIBILITY_SECONDS = 30
DONE_STATUSES = ("COMPLETED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str  # short: partner-events, member-events, member-jobs, schedule
    logical_id: str
    url: str
    arn: str
    source_logical_id: str | None = None
    source_arn: str | None = None


@dataclass
class DeadLetter:
    message_id: str
    sent_at: str | None
    first_received_at: str | None
    receives: int  # SQS's count before this listing (earlier listings' reads included)
    ids: dict[str, Any]
    hidden_keys: int = 0
    error: dict[str, str] = field(default_factory=dict)


def short_name(logical_id: str) -> str:
    """`PartnerEventsDeadLetterQueue` -> `partner-events`."""
    stem = logical_id.removesuffix("DeadLetterQueue") or logical_id
    return re.sub(r"(?<!^)(?=[A-Z])", "-", stem).lower()


def find(stack: Stack) -> list[DeadLetterQueue]:
    """Every dead-letter queue of `stack`, with its source queue where it has one."""
    sqs = stack.client("sqs")
    queues = stack.physical_ids("AWS::SQS::Queue")
    arns: dict[str, str] = {}
    sources: dict[str, str] = {}  # dead-letter ARN -> source logical id
    for logical_id, url in queues.items():
        attributes = _call(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"])
        attributes = attributes.get("Attributes", {})
        arns[logical_id] = attributes["QueueArn"]
        if attributes.get("RedrivePolicy"):
            sources[json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]] = logical_id
    found = []
    for logical_id, url in sorted(queues.items()):
        source = sources.get(arns[logical_id])
        if source or logical_id.endswith("DeadLetterQueue"):
            found.append(
                DeadLetterQueue(
                    name=short_name(logical_id),
                    logical_id=logical_id,
                    url=url,
                    arn=arns[logical_id],
                    source_logical_id=source,
                    source_arn=arns[source] if source else None,
                )
            )
    if not found:
        raise OpsError(f"stack {stack.name} has no dead-letter queue", UNREACHABLE)
    return found


def select(queues: list[DeadLetterQueue], name: str) -> DeadLetterQueue:
    """The queue named `name` (short name or logical id, any case); OpsError listing the names."""
    for queue in queues:
        if name.lower() in (queue.name, queue.logical_id.lower()):
            return queue
    raise OpsError(f"no dead-letter queue {name!r}; the stack has: {', '.join(queue.name for queue in queues)}")


def shown(body: str) -> tuple[dict[str, Any], int]:
    """The allow-listed ids of a message body, and how many other keys were left out (a
    body that is not a JSON object shows nothing and counts as one)."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}, 1
    if not isinstance(data, dict):
        return {}, 1
    ids: dict[str, Any] = {}
    hidden = 0
    for key, value in data.items():
        if key in NESTED_KEYS and isinstance(value, dict):
            nested, nested_hidden = shown(json.dumps(value))
            ids.update({f"{key}.{name}": item for name, item in nested.items()})
            hidden += nested_hidden
        elif key in COUNTED_KEYS and isinstance(value, list):
            ids[key] = f"{len(value)} ids"
        elif key in SHOWN_KEYS and (safe := _scalar(value)) is not None:
            ids[key] = safe
        else:
            hidden += 1
    return ids, hidden


def _scalar(value: Any) -> Any:
    """A short printable value, or None: numbers, booleans, null, id-shaped strings (cut
    at MAX_VALUE_CHARS), and lists of short id-shaped strings (a job's steps). Free text
    (a space, markup, an apostrophe) is never an id: an allowed key holding it shows nothing."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and ID_SHAPED.fullmatch(value):
        return _cut(value)
    if isinstance(value, list) and all(
        isinstance(item, str) and len(item) <= MAX_VALUE_CHARS and ID_SHAPED.fullmatch(item) for item in value
    ):
        return ",".join(value)
    return None


def depth(stack: Stack, queue: DeadLetterQueue) -> tuple[int, int]:
    """(visible, in flight) messages, as SQS counts them (approximately)."""
    attributes = _call(
        stack.client("sqs").get_queue_attributes,
        QueueUrl=queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def peek(stack: Stack, queue: DeadLetterQueue, limit: int) -> list[DeadLetter]:
    """Up to `limit` messages of `queue`, read without consuming them: received with a short
    visibility timeout, then made visible again at once (ChangeMessageVisibility to 0), so a
    listing deletes nothing and a replay right after it moves every message. Reading adds
    one to SQS's receive count, which `receives` leaves out (an earlier listing's read
    stays counted: SQS cannot tell it from a consumer's); a message stays in the queue
    until its retention (counted from its first enqueue) ends."""
    sqs = stack.client("sqs")
    read: dict[str, dict[str, Any]] = {}
    try:
        while len(read) < limit:
            batch = _call(
                sqs.receive_message,
                QueueUrl=queue.url,
                MaxNumberOfMessages=min(10, limit - len(read)),
                VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
                WaitTimeSeconds=1,  # a short wait asks every SQS server, not a sample
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [message for message in batch if message["MessageId"] not in read]
            if not fresh:
                break
            read.update({message["MessageId"]: message for message in fresh})
    finally:
        _show_again(sqs, queue, list(read.values()))
    return [_dead_letter(message) for message in read.values()]


def _show_again(sqs: Any, queue: DeadLetterQueue, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
            for index, message in enumerate(messages[start : start + 10])
        ]
        _call(sqs.change_message_visibility_batch, QueueUrl=queue.url, Entries=entries)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("Attributes", {})
    ids, hidden = shown(message.get("Body", ""))
    error = {
        name: _cut(value.get("StringValue", ""))  # written by EventBridge or Scheduler
        for name, value in message.get("MessageAttributes", {}).items()
        if name in ERROR_ATTRIBUTES
    }
    return DeadLetter(
        message_id=message["MessageId"],
        sent_at=_time(attributes.get("SentTimestamp")),
        first_received_at=_time(attributes.get("ApproximateFirstReceiveTimestamp")),
        receives=max(int(attributes.get("ApproximateReceiveCount", 1)) - 1, 0),
        ids=ids,
        hidden_keys=hidden,
        error=error,
    )


def _time(milliseconds: str | None) -> str | None:
    if not milliseconds:
        return None
    return datetime.fromtimestamp(int(milliseconds) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class MoveResult:
    status: str  # COMPLETED, FAILED or CANCELLED
    moved: int
    to_move: int | None
    failure: str | None
    left: tuple[int, int]  # the dead-letter queue's (visible, in flight) afterwards


def check_replayable(queue: DeadLetterQueue) -> None:
    """OpsError when `queue` has no source queue to move its messages back to."""
    if queue.source_arn is None:
        raise OpsError(
            f"{queue.name} has no source queue to replay to: its messages are runs of a schedule, "
            "which the schedule's next run catches up; read them with `dead-letters list`, then purge the queue"
        )


def replay(
    stack: Stack,
    queue: DeadLetterQueue,
    timeout_seconds: float = 900,
    interval_seconds: float = 2,
    sleep: Callable[[float], None] = time.sleep,
) -> MoveResult:
    """Move every message of `queue` back to its source queue with an SQS message move task
    (StartMessageMoveTask), poll ListMessageMoveTasks until the task ends, and read the
    queue's depth afterwards. OpsError when the queue has no source, or the task does not
    end within `timeout_seconds` (it keeps running at SQS)."""
    check_replayable(queue)
    sqs = stack.client("sqs")
    _call(sqs.start_message_move_task, SourceArn=queue.arn, DestinationArn=queue.source_arn)
    waited = 0.0
    while True:
        # SQS runs one task per source queue at a time: the newest is the one just started.
        task = _call(sqs.list_message_move_tasks, SourceArn=queue.arn, MaxResults=1)["Results"][0]
        if task["Status"] in DONE_STATUSES:
            break
        if waited >= timeout_seconds:
            raise OpsError(
                f"the move task is still {task['Status']} after {timeout_seconds:.0f} s "
                f"({task.get('ApproximateNumberOfMessagesMoved', 0)} moved); it goes on at SQS"
            )
        sleep(interval_seconds)
        waited += interval_seconds
    return MoveResult(
        status=task["Status"],
        moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
        to_move=task.get("ApproximateNumberOfMessagesToMove"),
        failure=task.get("FailureReason"),
        left=depth(stack, queue),
    )


def _call(method: Callable[..., dict[str, Any]], **arguments: Any) -> dict[str, Any]:
    """An SQS call; its refusal as an OpsError naming the code (never the message's text)."""
    try:
        return method(**arguments)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise OpsError(f"SQS refused {error.operation_name}: {code}", FAILED) from None
    except BotoCoreError as error:
        raise OpsError(f"SQS could not be reached: {type(error).__name__}", UNREACHABLE) from None
