"""The template's functions as the local stack runs them: each one loaded in-process, the
Lambda context its handler gets, and a handler's failure as Lambda reports it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local.resources import ACCOUNT, REGION


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
