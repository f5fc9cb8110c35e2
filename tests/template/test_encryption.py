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
            covered += [target["Ref"] for target in targets]
    # Each resource has one policy of its kind (a second would replace the first).
    assert len(covered) == len(set(covered))
    assert sorted(covered) == sorted(_of_type(template, kind)), policy_type
