"""Sending to the bridge's SQS queues (the member jobs and events queues): the I/O behind
`members` sync's queue port, as `bus` is behind the outbox's publisher."""

from __future__ import annotations

from whoop_bridge import aws

# SQS takes at most ten messages per SendMessageBatch.
BATCH = 10


def send(queue_url: str, bodies: list[str], delay_seconds: int) -> None:
    """Queue `bodies` (JSON text), ten to a call, each delayed `delay_seconds` (0-900);
    RuntimeError if SQS refuses any, so the caller's own message is retried, never lost."""
    sqs = aws.client("sqs")
    for start in range(0, len(bodies), BATCH):
        entries = [
            {"Id": str(index), "MessageBody": body, "DelaySeconds": delay_seconds}
            for index, body in enumerate(bodies[start : start + BATCH])
        ]
        answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if answer.get("Failed"):
            raise RuntimeError(f"{len(answer['Failed'])} messages were not queued")
