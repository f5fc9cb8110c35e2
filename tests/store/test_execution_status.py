"""lab/step_functions.py on moto's Step Functions: whether an execution named after a test
(or one of its resumes) is still running, as the resume asks before it starts another."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from whoop_bridge import aws
from whoop_bridge.config import settings
from whoop_bridge.lab import step_functions


@pytest.fixture
def machine(monkeypatch):
    with mock_aws():
        client = boto3.client("stepfunctions", region_name="us-east-1")
        arn = client.create_state_machine(
            name="bridge-service-request",
            definition=json.dumps(
                {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
            ),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", arn)
        settings.cache_clear()
        aws.reset()
        yield client
        settings.cache_clear()
        aws.reset()


def test_a_started_execution_is_running_until_it_ends_and_an_unknown_name_is_not(machine):
    assert step_functions.start("sr-1-resume-1", {"service_request_id": "sr-1"})

    assert step_functions.is_running("sr-1-resume-1")
    assert not step_functions.is_running("sr-1-resume-2")  # never started
    assert not step_functions.is_running("sr-1")

    [execution] = machine.list_executions(stateMachineArn=settings().state_machine_arn)["executions"]
    machine.stop_execution(executionArn=execution["executionArn"])
    assert not step_functions.is_running("sr-1-resume-1")
