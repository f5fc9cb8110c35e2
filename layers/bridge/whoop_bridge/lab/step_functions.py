"""The service request state machine as the lab rules use it: start one execution per
service request, and resume an execution's wait with its task token
(statemachines/service_request.asl.json)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from whoop_bridge import aws
from whoop_bridge.config import settings

# SendTaskSuccess errors that mean the wait is over (timed out or the execution ended).
WAIT_ENDED = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


class WaitEnded(Exception):  # noqa: N818 - a state, not a fault
    """The task token's wait is over: it timed out or its execution ended (`code` says which)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def start(name: str, execution_input: dict[str, Any]) -> bool:
    """Start an execution named `name` (a service request id); False when it exists already
    (same name, same input: AWS answers with the running one)."""
    config = settings()
    config.require("state_machine_arn")
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=config.state_machine_arn, name=name, input=json.dumps(execution_input, sort_keys=True)
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        return False
    return True


def is_running(name: str) -> bool:
    """Whether the execution named `name` is running (False when there is none by that name)."""
    config = settings()
    config.require("state_machine_arn")
    # arn:...:stateMachine:<machine> -> arn:...:execution:<machine>:<name>
    arn = config.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name
    try:
        # Its status only: the input and output are encrypted with the stack key.
        described = aws.client("stepfunctions").describe_execution(executionArn=arn, includedData="METADATA_ONLY")
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
            raise
        return False
    return described["status"] == "RUNNING"


def resume(task_token: str, output: dict[str, Any]) -> None:
    """Resume the wait of `task_token` with `output` (its result in the execution). Raises
    WaitEnded when that wait is over; any other error as the client raised it."""
    try:
        aws.client("stepfunctions").send_task_success(taskToken=task_token, output=json.dumps(output))
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in WAIT_ENDED:
            raise WaitEnded(code) from None
        raise
