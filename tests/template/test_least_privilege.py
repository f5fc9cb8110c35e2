"""Least privilege, read from the transformed template (what CloudFormation deploys, SAM's
generated roles and policy templates expanded): per function, which actions on which of the
stack's resources its role allows, and the reachability matrix the README promises.

A statement reaches a resource when one of its actions belongs to the resource's service
(or is "*") and its Resource names the resource or is "*". The resource is found by the
logical ids the Resource refers to (Ref, Fn::GetAtt, Fn::Sub variables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import pytest
from sam_transform import transformed

from whoop_bridge.models.outbox_message import MemberMessage

LAB_FUNCTIONS = ("RequisitionProcessorFunction", "ServiceRequestTasksFunction", "LabApiFunction")
MEMBER_FUNCTIONS = ("OAuthCallbackFunction", "MemberApiFunction", "MemberSyncFunction")
INTAKE = "WebhookIntakeFunction"
LAB_RESOURCES = (
    "LabTable",
    "PartnerEventsQueue",
    "PartnerEventsDeadLetterQueue",
    "PartnerSecret",
    "PartnerWebhookSecret",
    "DocumentBucket",
    "ServiceRequestStateMachine",
)
MEMBER_RESOURCES = (
    "MemberTable",
    "MemberEventsQueue",
    "MemberEventsDeadLetterQueue",
    "MemberJobsQueue",
    "MemberJobsDeadLetterQueue",
    "MemberAppSecret",
    "BackfillOnConnectRule",
)
SERVICES = {
    "AWS::DynamoDB::Table": "dynamodb",
    "AWS::SQS::Queue": "sqs",
    "AWS::SecretsManager::Secret": "secretsmanager",
    "AWS::S3::Bucket": "s3",
    "AWS::StepFunctions::StateMachine": "states",
    "AWS::Events::EventBus": "events",
    "AWS::Events::Rule": "events",
    "AWS::KMS::Key": "kms",
}
TOKEN_CONTEXT = "kms:EncryptionContext:purpose"
SQS_MANAGED_POLICY = "AWSLambdaSQSQueueExecutionRole"


@dataclass(frozen=True)
class Grant:
    """One Allow statement of a function's role."""

    actions: tuple[str, ...]
    resources: frozenset[str]  # logical ids, or {"*"}
    condition: dict[str, Any]

    def allows(self, action: str) -> bool:
        return any(fnmatchcase(action, pattern) for pattern in self.actions)

    def touches(self, service: str) -> bool:
        return any(pattern == "*" or pattern.split(":", 1)[0] == service for pattern in self.actions)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _referenced(value: Any) -> set[str]:
    """The logical ids (and "*") a Resource value refers to."""
    if value == "*":
        return {"*"}
    if isinstance(value, list):
        return set().union(*(_referenced(item) for item in value)) if value else set()
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        if "Fn::Sub" in value:
            text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            found = set().union(*(_referenced(item) for item in variables.values())) if variables else set()
            names = {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= {name for name in names if not name.startswith("AWS::") and name not in variables}
            if text.endswith(":*") and not found:
                return {"*"}
            return found
        return set().union(*(_referenced(item) for item in value.values())) if value else set()
    return set()


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return transformed()


def _role(cfn: dict[str, Any], function: str) -> dict[str, Any]:
    role = cfn["Resources"][function]["Properties"]["Role"]
    return cfn["Resources"][role["Fn::GetAtt"][0]]["Properties"]


def grants(cfn: dict[str, Any], function: str) -> list[Grant]:
    """Every Allow statement of the function's role (inline policies; managed ones are
    checked apart: only AWSLambdaBasicExecutionRole, logs only, is allowed)."""
    found = []
    for policy in _role(cfn, function).get("Policies", []):
        for statement in _listed(policy["PolicyDocument"]["Statement"]):
            assert statement["Effect"] == "Allow", f"{function}: a Deny would need reading here"
            assert "NotAction" not in statement and "NotResource" not in statement, function
            found.append(
                Grant(
                    tuple(_listed(statement["Action"])),
                    frozenset(_referenced(statement["Resource"])),
                    statement.get("Condition", {}),
                )
            )
    return found


def reaches(cfn: dict[str, Any], function: str, resource: str) -> list[Grant]:
    """The grants that let `function` act on `resource` (a logical id)."""
    service = SERVICES[cfn["Resources"][resource]["Type"]]
    return [
        grant
        for grant in grants(cfn, function)
        if grant.touches(service) and (resource in grant.resources or "*" in grant.resources)
    ]


def opens_member_tokens(cfn: dict[str, Any], function: str, action: str = "kms:Decrypt") -> bool:
    """Whether the role may call KMS `action` directly (not through a service) on the key,
    which is how members/vault.py seals and opens a member's token pair."""
    for grant in reaches(cfn, function, "BridgeKey"):
        if not grant.allows(action):
            continue
        equals = grant.condition.get("StringEquals", {})
        if "kms:ViaService" in equals:
            continue  # only through Secrets Manager, SQS, S3, ...: never a direct call
        if TOKEN_CONTEXT in equals and equals[TOKEN_CONTEXT] != "whoop-member-tokens":
            continue
        return True
    return False


def test_the_matrix_reads_every_function_of_the_stack(cfn):
    functions = {name for name, spec in cfn["Resources"].items() if spec["Type"] == "AWS::Lambda::Function"}
    assert functions == {*LAB_FUNCTIONS, *MEMBER_FUNCTIONS, INTAKE}
    for resource in (*LAB_RESOURCES, *MEMBER_RESOURCES):
        assert cfn["Resources"][resource]["Type"] in SERVICES, resource


@pytest.mark.parametrize("function", LAB_FUNCTIONS)
@pytest.mark.parametrize("resource", MEMBER_RESOURCES)
def test_lab_functions_reach_no_member_resource(cfn, function, resource):
    assert reaches(cfn, function, resource) == []


@pytest.mark.parametrize("function", MEMBER_FUNCTIONS)
@pytest.mark.parametrize("resource", LAB_RESOURCES)
def test_member_functions_reach_no_lab_resource(cfn, function, resource):
    assert reaches(cfn, function, resource) == []


def test_the_sides_reach_their_own_resources(cfn):
    # The matrix above would pass on roles that reach nothing: each side does reach its own.
    assert reaches(cfn, "RequisitionProcessorFunction", "LabTable")
    assert reaches(cfn, "LabApiFunction", "DocumentBucket")
    assert reaches(cfn, "MemberSyncFunction", "MemberTable")
    assert reaches(cfn, "MemberApiFunction", "MemberAppSecret")


def test_the_webhook_intake_reads_the_signing_secrets_but_not_the_partner_client_secret(cfn):
    assert reaches(cfn, INTAKE, "PartnerSecret") == []
    assert reaches(cfn, INTAKE, "PartnerWebhookSecret")
    # WHOOP signs data webhooks with the member app's client secret itself.
    assert reaches(cfn, INTAKE, "MemberAppSecret")
    for table in ("LabTable", "MemberTable", "IdempotencyTable"):
        assert reaches(cfn, INTAKE, table) == [], table
    variables = cfn["Resources"][INTAKE]["Properties"]["Environment"]["Variables"]
    assert variables["PARTNER_WEBHOOK_SECRET_ARN"] == {"Ref": "PartnerWebhookSecret"}
    assert "PARTNER_SECRET_ARN" not in variables


def test_only_the_member_functions_that_use_tokens_can_open_them(cfn):
    openers = {name for name in (*LAB_FUNCTIONS, *MEMBER_FUNCTIONS, INTAKE) if opens_member_tokens(cfn, name)}
    assert openers == {"MemberApiFunction", "MemberSyncFunction"}
    # oauth_callback seals the pair it receives, and never opens one.
    assert opens_member_tokens(cfn, "OAuthCallbackFunction", "kms:Encrypt")
    assert not opens_member_tokens(cfn, "OAuthCallbackFunction", "kms:Decrypt")


def test_token_grants_name_the_member_token_encryption_context(cfn):
    from whoop_bridge.members import vault

    for function in ("OAuthCallbackFunction", "MemberApiFunction", "MemberSyncFunction"):
        direct = [
            grant
            for grant in reaches(cfn, function, "BridgeKey")
            if "kms:ViaService" not in grant.condition.get("StringEquals", {})
        ]
        assert direct, function
        for grant in direct:
            assert grant.condition == {"StringEquals": {TOKEN_CONTEXT: vault.PURPOSE}}, function


def _index_arns(resource: Any) -> list[str]:
    """The Fn::Sub texts of a Resource value that name an index of a table (`.../index/...`)."""
    texts = [value.get("Fn::Sub") for value in _listed(resource) if isinstance(value, dict)]
    return [text if isinstance(text, str) else text[0] for text in texts if text and "/index/" in str(text)]


def test_member_sync_may_count_members_on_the_status_index(cfn):
    # members/census.py: a Query (Select=COUNT) of MemberTable's status index every 10 minutes.
    from whoop_bridge.models.connection import STATUS_INDEX

    table_index_arn = f"arn:aws:dynamodb:eu-west-1:1:table/members/index/{STATUS_INDEX[0]}"
    allowed = []
    for policy in _role(cfn, "MemberSyncFunction").get("Policies", []):
        for statement in _listed(policy["PolicyDocument"]["Statement"]):
            if any(fnmatchcase("dynamodb:Query", action) for action in _listed(statement["Action"])):
                arns = [
                    text.replace("${MemberTable.Arn}", "arn:aws:dynamodb:eu-west-1:1:table/members")
                    for text in _index_arns(statement["Resource"])
                ]
                allowed += [arn for arn in arns if fnmatchcase(table_index_arn, arn)]
    assert allowed, "member_sync's role allows no Query on MemberTable's status index"


def test_oauth_callback_has_only_the_member_table_actions_and_keys_it_uses(cfn):
    (grant,) = reaches(cfn, "OAuthCallbackFunction", "MemberTable")
    assert sorted(grant.actions) == [
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    assert not grant.allows("dynamodb:Query") and not grant.allows("dynamodb:Scan")
    keys = grant.condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert sorted(keys) == ["MEMBER#*", "OUTBOX#*", "RATE_BUDGET#*", "STATE#*", "WHOOP_USER#*"]
    assert reaches(cfn, "OAuthCallbackFunction", "IdempotencyTable") == []


def test_the_leading_keys_are_the_ones_the_stores_write():
    from whoop_bridge.models.outbox_message import outbox_key
    from whoop_bridge.store import budget_store, connect_attempt_store, connection_store, oauth_state_store

    keys = [
        oauth_state_store.state_key("h")["pk"],
        connection_store.connection_key("m")["pk"],
        connect_attempt_store.attempt_key("m")["pk"],
        connection_store.user_key(1)["pk"],
        budget_store.budget_key("app")["pk"],
        outbox_key("o")["pk"],
    ]
    patterns = ["STATE#*", "MEMBER#*", "MEMBER#*", "WHOOP_USER#*", "RATE_BUDGET#*", "OUTBOX#*"]
    assert all(fnmatchcase(key, pattern) for key, pattern in zip(keys, patterns, strict=True))


@pytest.mark.parametrize(
    "function,name",
    [
        ("RequisitionProcessorFunction", "requisition-processor"),
        ("LabApiFunction", "lab-api"),
        ("MemberApiFunction", "member-api"),
        ("MemberSyncFunction", "member-sync"),
    ],
)
def test_each_function_reaches_only_its_own_idempotency_records(cfn, function, name):
    (grant,) = reaches(cfn, function, "IdempotencyTable")
    assert sorted(grant.actions) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    # Powertools keys a record "<AWS_LAMBDA_FUNCTION_NAME>.<function>#<hash>".
    assert grant.condition == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [{"Fn::Sub": "${AWS::StackName}-" + name + ".*"}]}
    }
    assert cfn["Resources"][function]["Properties"]["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-" + name}


def test_no_role_has_the_sqs_managed_policy_or_any_managed_policy_but_basic_logging(cfn):
    for name, spec in cfn["Resources"].items():
        if spec["Type"] != "AWS::IAM::Role":
            continue
        managed = [str(arn) for arn in spec["Properties"].get("ManagedPolicyArns", [])]
        assert not any(SQS_MANAGED_POLICY in arn for arn in managed), name
        assert all(arn.endswith(":policy/service-role/AWSLambdaBasicExecutionRole") for arn in managed), name


def test_each_queue_consumer_reaches_only_its_own_queues(cfn):
    consumed: dict[str, set[str]] = {}
    for spec in cfn["Resources"].values():
        if spec["Type"] == "AWS::Lambda::EventSourceMapping":
            function = spec["Properties"]["FunctionName"]["Ref"]
            consumed.setdefault(function, set()).add(spec["Properties"]["EventSourceArn"]["Fn::GetAtt"][0])
    assert consumed == {
        "RequisitionProcessorFunction": {"PartnerEventsQueue"},
        "MemberSyncFunction": {"MemberEventsQueue", "MemberJobsQueue"},
    }
    queues = [name for name, spec in cfn["Resources"].items() if spec["Type"] == "AWS::SQS::Queue"]
    for function in (*LAB_FUNCTIONS, *MEMBER_FUNCTIONS, INTAKE):
        receivable = {
            queue
            for queue in queues
            for grant in reaches(cfn, function, queue)
            if grant.allows("sqs:ReceiveMessage") or grant.allows("sqs:DeleteMessage")
        }
        assert receivable == consumed.get(function, set()), function
    assert not any("*" in grant.resources for grant in grants(cfn, "MemberSyncFunction") if grant.touches("sqs"))


def test_no_function_manages_the_bus_or_its_rules_and_every_one_puts_events_on_the_bus_only(cfn):
    for function in (*LAB_FUNCTIONS, *MEMBER_FUNCTIONS, INTAKE):
        assert reaches(cfn, function, "BackfillOnConnectRule") == [], function
        for grant in reaches(cfn, function, "EventBus"):
            assert grant.actions == ("events:PutEvents",), function


# Every detail type each side publishes (lab/intake.py, lab/lifecycle.py; the member outbox).
LAB_DETAIL_TYPES = {
    "RequisitionProcessorFunction": (
        "requisition.received",
        "requisition.unavailable",
        "clinical_report_review.requested",
    ),
    "ServiceRequestTasksFunction": (
        "service_request.status_changed",
        "service_request.report_submitted",
        "service_request.failed",
    ),
}
MEMBER_DETAIL_TYPES = tuple(str(message) for message in MemberMessage)


def _may_put(grant: Grant, detail_type: str) -> bool:
    """Whether the PutEvents grant admits a bus message of `detail_type` from the bridge."""
    equals = grant.condition.get("StringEquals", {})
    like = grant.condition.get("StringLike", {})
    assert set(grant.condition) <= {"StringEquals", "StringLike"}, grant
    if "events:source" in equals and _listed(equals["events:source"]) != ["whoop-bridge"]:
        return False
    patterns = _listed(like.get("events:detail-type", equals.get("events:detail-type", "*")))
    return any(fnmatchcase(detail_type, pattern) for pattern in patterns)


def _bus_grants(cfn: dict[str, Any], function: str) -> list[Grant]:
    return [grant for grant in reaches(cfn, function, "EventBus") if grant.allows("events:PutEvents")]


def test_each_side_puts_only_its_own_detail_types_on_the_bus(cfn):
    """A lab function able to put `member.connected` would start a backfill of any member
    (BackfillOnConnectRule); a member function could forge a service request's status."""
    publishers = {**LAB_DETAIL_TYPES, **dict.fromkeys(MEMBER_FUNCTIONS, MEMBER_DETAIL_TYPES)}
    for function in (*LAB_FUNCTIONS, *MEMBER_FUNCTIONS, INTAKE):
        bus = _bus_grants(cfn, function)
        own = publishers.get(function, ())
        assert bool(bus) == bool(own), function
        for grant in bus:
            assert grant.condition["StringEquals"]["events:source"] == "whoop-bridge", function
            assert "events:detail-type" in grant.condition["StringLike"], function
        for detail_type in own:
            assert any(_may_put(grant, detail_type) for grant in bus), (function, detail_type)
        others = (
            MEMBER_DETAIL_TYPES if function in LAB_FUNCTIONS else [t for ts in LAB_DETAIL_TYPES.values() for t in ts]
        )
        for detail_type in (*others, "member.connected", "service_request.status_changed"):
            if detail_type in own:
                continue
            assert not any(_may_put(grant, detail_type) for grant in bus), (function, detail_type)
        assert not any(_may_put(grant, "anything.else") for grant in bus), function


def test_wildcard_resources_are_only_the_ones_iam_cannot_scope(cfn):
    for function in (*LAB_FUNCTIONS, *MEMBER_FUNCTIONS, INTAKE):
        for grant in grants(cfn, function):
            if "*" in grant.resources:
                # Task-token callbacks cannot be scoped to a state machine in IAM.
                assert set(grant.actions) <= {
                    "states:SendTaskSuccess",
                    "states:SendTaskFailure",
                    "states:SendTaskHeartbeat",
                }, (
                    function,
                    grant,
                )


def test_powertools_keys_idempotency_records_by_the_lambda_function_name(monkeypatch):
    """The LeadingKeys prefix above is Powertools' key format: a Powertools upgrade that
    changed it would lock every function out of its idempotency records."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "whoop-bridge-sandbox-lab-api")
    layer = DynamoDBPersistenceLayer(table_name="idempotency")
    layer.configure(IdempotencyConfig(event_key_jmespath="id"), function_name="create")
    key = layer._get_hashed_idempotency_key({"id": "x"})
    assert fnmatchcase(key, "whoop-bridge-sandbox-lab-api.*")
    assert not fnmatchcase(key, "whoop-bridge-sandbox-member-api.*")


def test_only_the_lab_api_and_the_requisition_processor_read_the_code_map_parameter(cfn):
    for function in (*LAB_FUNCTIONS, *MEMBER_FUNCTIONS, INTAKE):
        ssm = [(grant.actions, grant.resources) for grant in grants(cfn, function) if grant.touches("ssm")]
        if function in ("LabApiFunction", "RequisitionProcessorFunction"):
            assert ssm == [(("ssm:GetParameter",), frozenset({"LisCodeMapParameter"}))], function
        else:
            assert ssm == [], function


def test_the_requisition_processor_reads_the_code_map_only_when_it_pushes_a_mapped_order(cfn):
    """OrderPushFormat none or json builds no FHIR or HL7: its ARN then names no parameter."""
    [statement] = [
        statement
        for policy in _role(cfn, "RequisitionProcessorFunction")["Policies"]
        for statement in _listed(policy["PolicyDocument"]["Statement"])
        if statement["Action"] == "ssm:GetParameter"
    ]
    condition, pushing, otherwise = statement["Resource"]["Fn::If"]
    assert _referenced(pushing) == {"LisCodeMapParameter"} and _referenced(otherwise) == set()
    assert otherwise["Fn::Sub"].endswith(":parameter")
    formats = {
        test["Fn::Equals"][1]
        for test in cfn["Conditions"][condition]["Fn::Or"]
        if test["Fn::Equals"][0] == {"Ref": "OrderPushFormat"}
    }
    assert formats == {"fhir", "hl7"}
    assert cfn["Parameters"]["OrderPushFormat"]["Default"] == "none"
