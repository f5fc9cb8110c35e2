"""Everything the stack stores or carries is encrypted with its own KMS key, and every
queue, topic and bucket refuses requests without TLS (issue 11, item 3)."""

from __future__ import annotations

from typing import Any

import pytest
from sam_transform import transformed

from local.cfn import load_template

KEY_ARN = {"Fn::GetAtt": ["BridgeKey", "Arn"]}
TLS_ONLY = {"Bool": {"aws:SecureTransport": "false"}}
POLICY_TARGETS = {  # policy type: (the property listing its resources, the resource type)
    "AWS::SQS::QueuePolicy": ("Queues", "AWS::SQS::Queue"),
    "AWS::SNS::TopicPolicy": ("Topics", "AWS::SNS::Topic"),
    "AWS::S3::BucketPolicy": ("Bucket", "AWS::S3::Bucket"),
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: spec for name, spec in template["Resources"].items() if spec["Type"] == kind}


def test_the_event_bus_is_encrypted_with_the_stack_key(template):
    (bus,) = _of_type(template, "AWS::Events::EventBus").values()
    assert bus["Properties"]["KmsKeyIdentifier"] == KEY_ARN
    # EventBridge itself encrypts with it.
    statements = template["Resources"]["BridgeKey"]["Properties"]["KeyPolicy"]["Statement"]
    events = [st for st in statements if "events.amazonaws.com" in str(st.get("Principal"))]
    assert events and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(events[0]["Action"])


def test_the_state_machine_encrypts_its_execution_data_with_the_stack_key(template):
    machine = template["Resources"]["ServiceRequestStateMachine"]
    assert machine["Type"] == "AWS::StepFunctions::StateMachine"
    encryption = machine["Properties"]["EncryptionConfiguration"]
    assert encryption["Type"] == "CUSTOMER_MANAGED_KMS_KEY" and encryption["KmsKeyId"] == KEY_ARN
    role = template["Resources"][machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    key_grants = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if statement.get("Resource") == KEY_ARN
    ]
    (grant,) = key_grants
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    context = grant["Condition"]["StringEquals"]["kms:EncryptionContext:aws:states:stateMachineArn"]
    assert context["Fn::Sub"].endswith(":stateMachine:${AWS::StackName}-service-request")
    assert machine["Properties"]["StateMachineName"] == {"Fn::Sub": "${AWS::StackName}-service-request"}


def test_starters_and_callers_of_the_state_machine_may_use_the_key_through_step_functions():
    cfn = transformed()
    states = {"Fn::Sub": "states.${AWS::Region}.amazonaws.com"}
    for function in ("RequisitionProcessorFunction", "LabApiFunction"):
        role = cfn["Resources"][cfn["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        services = [
            service
            for policy in role["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
            for service in statement.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService", [])
        ]
        assert states in services, function


@pytest.mark.parametrize("kind", ["AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::S3::Bucket"])
def test_every_queue_topic_and_bucket_is_encrypted_with_the_stack_key(template, kind):
    for name, spec in _of_type(template, kind).items():
        properties = spec["Properties"]
        if kind == "AWS::S3::Bucket":
            (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == KEY_ARN, name
        else:
            assert properties["KmsMasterKeyId"] == {"Ref": "BridgeKey"}, name


@pytest.mark.parametrize("policy_type", sorted(POLICY_TARGETS))
def test_every_queue_topic_and_bucket_refuses_requests_without_tls(template, policy_type):
    listing, kind = POLICY_TARGETS[policy_type]
    covered: list[str] = []
    for spec in _of_type(template, policy_type).values():
        properties = spec["Properties"]
        targets = properties[listing] if isinstance(properties[listing], list) else [properties[listing]]
        statements = properties["PolicyDocument"]["Statement"]
        denials = [st for st in statements if st["Effect"] == "Deny" and st.get("Condition") == TLS_ONLY]
        if denials:
            assert all(st["Principal"] == "*" for st in denials)
            # Every action of the service, not only some: the README's "refuses requests".
            service = POLICY_TARGETS[policy_type][1].split("::")[1].lower()
            assert all(st["Action"] == f"{service}:*" for st in denials), (policy_type, denials)
            covered += [target["Ref"] for target in targets]
    # Each resource has one policy of its kind (a second would replace the first).
    assert len(covered) == len(set(covered))
    assert sorted(covered) == sorted(_of_type(template, kind)), policy_type


def _key_statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    statements = template["Resources"]["BridgeKey"]["Properties"]["KeyPolicy"]["Statement"]
    return {statement["Sid"]: statement for statement in statements}


def test_every_aws_service_the_key_policy_admits_acts_for_this_account_only(template):
    """A service principal with Resource "*" and no source condition would let that service
    use the key on behalf of any account's resources (the confused deputy)."""
    services = [
        statement
        for statement in _key_statements(template).values()
        if statement["Effect"] == "Allow" and "Service" in statement["Principal"]
    ]
    named = {str(service) for statement in services for service in _listed(statement["Principal"]["Service"])}
    assert {"delivery.logs.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com"} <= named
    assert any("logs.${AWS::Region}" in name for name in named)
    for statement in services:
        if "kms:EncryptionContext:aws:logs:arn" in statement.get("Condition", {}).get("ArnLike", {}):
            continue  # bound to this account's log groups by the context (next test)
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, statement[
            "Sid"
        ]


def test_cloudwatch_logs_still_names_the_log_group_encryption_context(template):
    logs = _key_statements(template)["CloudWatchLogsEncryptsThisAccountsLogGroups"]
    context = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    # The audit and access log groups have generated names (no stack prefix), so the
    # pattern stays the account's log groups; aws:SourceAccount is what narrows it.
    assert context == {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"}
    unnamed = [
        name
        for name, spec in _of_type(template, "AWS::Logs::LogGroup").items()
        if "LogGroupName" not in spec["Properties"]
    ]
    assert unnamed, "every log group is named now: narrow the pattern to the stack's prefix"


def test_the_alarm_topic_admits_only_this_accounts_alarms_and_refuses_every_action_without_tls(template):
    statements = template["Resources"]["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [st for st in statements if st["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and allow["Action"] == "sns:Publish"
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (deny,) = [st for st in statements if st["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and deny["Action"] == "sns:*" and deny["Condition"] == TLS_ONLY


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
