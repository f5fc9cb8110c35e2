"""SQS's dead-letter redrive as the local stack plays it (moto 5.2.5 lacks it), and the
operator command's listing and replay against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import moto_patches
from whoop_bridge.ops import dead_letters
from whoop_bridge.ops.stack import Resource, Stack


@pytest.fixture
def queues() -> Iterator[dict[str, Any]]:
    with mock_aws():
        patches = moto_patches.message_move_tasks()
        try:
            sqs = boto3.client("sqs", region_name="us-east-1")
            dead = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
            dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            source = sqs.create_queue(
                QueueName="events",
                Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 5})},
            )["QueueUrl"]
            source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            yield {"sqs": sqs, "dead": dead, "dead_arn": dead_arn, "source": source, "source_arn": source_arn}
        finally:
            for patch in patches:
                patch.stop()


def bodies(sqs: Any, url: str) -> list[tuple[str, dict[str, Any]]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages", []
    )
    return [(message["Body"], message.get("MessageAttributes", {})) for message in messages]


def test_a_move_task_moves_every_message_with_its_attributes_and_is_listed_completed(queues):
    sqs = queues["sqs"]
    for index in range(12):
        sqs.send_message(
            QueueUrl=queues["dead"],
            MessageBody=json.dumps({"resource_id": f"r{index}"}),
            MessageAttributes={"trace": {"DataType": "String", "StringValue": f"t{index}"}},
        )
    handle = sqs.start_message_move_task(SourceArn=queues["dead_arn"])["TaskHandle"]
    assert handle
    task = sqs.list_message_move_tasks(SourceArn=queues["dead_arn"], MaxResults=1)["Results"][0]
    assert task["Status"] == "COMPLETED"
    assert (task["ApproximateNumberOfMessagesMoved"], task["ApproximateNumberOfMessagesToMove"]) == (12, 12)
    assert (
        sqs.get_queue_attributes(QueueUrl=queues["dead"], AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )
    moved = bodies(sqs, queues["source"]) + bodies(sqs, queues["source"])
    assert sorted(json.loads(body)["resource_id"] for body, _ in moved) == sorted(f"r{i}" for i in range(12))
    assert all(attributes["trace"]["StringValue"].startswith("t") for _, attributes in moved)


def test_a_queue_that_is_no_dead_letter_queue_is_refused_as_sqs_refuses_it(queues):
    with pytest.raises(ClientError) as refused:
        queues["sqs"].start_message_move_task(SourceArn=queues["source_arn"])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_the_operator_command_lists_without_consuming_then_replays(queues):
    sqs = queues["sqs"]
    sqs.send_message(
        QueueUrl=queues["dead"], MessageBody=json.dumps({"event_type": "e", "resource_id": "r1", "patient": {}})
    )
    stack = Stack(
        "s",
        "us-east-1",
        {},
        [
            Resource("EventsQueue", "AWS::SQS::Queue", queues["source"]),
            Resource("EventsDeadLetterQueue", "AWS::SQS::Queue", queues["dead"]),
        ],
        boto3.Session(region_name="us-east-1"),
    )
    (queue,) = dead_letters.find(stack)
    assert (queue.name, queue.source_logical_id) == ("events", "EventsQueue")
    for _ in range(2):  # listing twice shows the message twice: nothing consumed, nothing hidden
        (letter,) = dead_letters.peek(stack, queue, 10)
        assert letter.ids == {"event_type": "e", "resource_id": "r1"} and letter.hidden_keys == 1
        assert dead_letters.depth(stack, queue) == (1, 0)
    result = dead_letters.replay(stack, queue, sleep=lambda seconds: None)
    assert (result.status, result.moved, result.left) == ("COMPLETED", 1, (0, 0))
    assert [json.loads(body)["resource_id"] for body, _ in bodies(sqs, queues["source"])] == ["r1"]
