"""Two stacks in one account (sandbox and production side by side) deploy without a name
clash: every explicit physical name of the transformed template carries the stack name
(issue 11, item 7). Names CloudFormation generates (tables, queues, topics, buckets,
rules, roles left unnamed) are unique by construction."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sam_transform import transformed

# Properties that give a resource its account-wide (or region-wide) name.
NAME_PROPERTIES = {
    "Name",
    "FunctionName",
    "LogGroupName",
    "TableName",
    "QueueName",
    "TopicName",
    "AlarmName",
    "AliasName",
    "StateMachineName",
    "BucketName",
    "RoleName",
    "LayerName",
    "ManagedPolicyName",
    "DomainName",
    "GroupName",
    "ScheduleGroupName",
    "KeyName",
    "DashboardName",
}
# Names that only have to be unique inside another resource of the same stack.
SCOPED = {("AWS::ApiGateway::Stage", "StageName")}
# Names the operator gives as parameters: each stack is deployed with its own value.
OPERATOR_GIVEN = {"RedirectDomainName"}
STACKS = ("whoop-bridge-sandbox", "whoop-bridge-production")
PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}


def explicit_names(cfn: dict[str, Any]) -> dict[tuple[str, str, str], Any]:
    """(type, logical id, property) -> the name's template value, for every name a stack
    sets itself (references to the stack's own resources are not names)."""
    names = {}
    for logical_id, spec in cfn["Resources"].items():
        for key, value in spec.get("Properties", {}).items():
            if key not in NAME_PROPERTIES or (spec["Type"], key) in SCOPED:
                continue
            if isinstance(value, dict) and ("Fn::GetAtt" in value or value.get("Ref") in cfn["Resources"]):
                continue
            names[(spec["Type"], logical_id, key)] = value
    return names


def render(value: Any, stack: str) -> str | None:
    """The name in a stack called `stack`; None for an operator-given parameter."""
    if isinstance(value, str):
        return value
    if value.get("Ref") in OPERATOR_GIVEN:
        return None
    text = value["Fn::Sub"]
    assert isinstance(text, str), value
    values = {**PSEUDO, "AWS::StackName": stack}
    return re.sub(r"\$\{([^}]+)\}", lambda match: values[match.group(1)], text)


@pytest.fixture(scope="module")
def names() -> dict[tuple[str, str, str], Any]:
    return explicit_names(transformed())


def test_the_stack_sets_the_names_it_needs_to_know(names):
    named = {logical_id for _, logical_id, _ in names}
    # Function names (their log groups are declared), secrets, the bus, the state machine, schedules.
    for logical_id in ("MemberSyncFunction", "MemberSyncFunctionLogGroup", "PartnerWebhookSecret", "EventBus"):
        assert logical_id in named
    assert "ServiceRequestStateMachine" in named and "MemberSyncFunctionReconcile" in named


def test_every_explicit_name_carries_the_stack_name(names):
    for where, value in names.items():
        for stack in STACKS:
            rendered = render(value, stack)
            assert rendered is None or stack in rendered, (where, rendered)


def test_a_sandbox_and_a_production_stack_share_no_name(names):
    rendered = {stack: {(kind, render(value, stack)) for (kind, _, _), value in names.items()} for stack in STACKS}
    sandbox, production = (rendered[stack] - {(kind, None) for kind, _ in rendered[stack]} for stack in STACKS)
    assert sandbox and production
    assert sandbox.isdisjoint(production), sandbox & production
    # Nor do two names clash inside one stack.
    assert len(sandbox) == len([value for value in names.values() if render(value, STACKS[0]) is not None])


def test_a_literal_name_would_be_caught():
    cfn = {"Resources": {"Schedule": {"Type": "AWS::Scheduler::Schedule", "Properties": {"Name": "Reconcile"}}}}
    (value,) = explicit_names(cfn).values()
    assert STACKS[0] not in render(value, STACKS[0])
