"""What a deployer of template.yaml would notice: runtime, encryption, auth, alarms, names."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from whoop_bridge.config import DEFAULT_OAUTH_SCOPES, OAUTH_SCOPES
from whoop_bridge.members.connections import CALLBACK_PATH
from whoop_bridge.store import connection_store

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
KEY = "BridgeKey"
# Routes WHOOP or a member's browser call without AWS credentials; every other route is IAM.
PUBLIC_PATHS = {"/webhooks/partner", "/webhooks/whoop", "/oauth/whoop/callback"}
LAB_FUNCTIONS = ("RequisitionProcessorFunction", "ServiceRequestTasksFunction", "LabApiFunction")
MEMBER_FUNCTIONS = ("OAuthCallbackFunction", "MemberApiFunction", "MemberSyncFunction")
# The intake takes both kinds of webhook: it reads both signing secrets and reaches no table.
INTAKE = "WebhookIntakeFunction"


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags (!Ref, !Sub, ...) into their long form."""


def _cfn_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def _load_template() -> dict[str, Any]:
    return yaml.load(TEMPLATE_PATH.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load_template()


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def _refers_to(value: Any, logical_id: str) -> bool:
    """True when value (any intrinsic, at any depth) references logical_id."""
    if isinstance(value, dict):
        if value.get("Ref") == logical_id:
            return True
        getatt = value.get("Fn::GetAtt")
        if isinstance(getatt, list) and getatt and getatt[0] == logical_id:
            return True
        sub = value.get("Fn::Sub")
        template_text = sub[0] if isinstance(sub, list) else sub
        if isinstance(template_text, str) and re.search(
            r"\$\{" + re.escape(logical_id) + r"(\.[^}]*)?\}", template_text
        ):
            return True
        return any(_refers_to(v, logical_id) for v in value.values())
    if isinstance(value, list):
        return any(_refers_to(v, logical_id) for v in value)
    return False


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _of_type(template, "AWS::Serverless::Function")


def _api_events(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(function, event name, event properties) of every API Gateway route."""
    return [
        (name, event_name, event["Properties"])
        for name, fn in _functions(template).items()
        for event_name, event in fn["Properties"].get("Events", {}).items()
        if event["Type"] == "Api"
    ]


def test_every_function_and_the_layer_run_python313_on_arm64(template):
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    for name, fn in _functions(template).items():
        props = fn["Properties"]
        assert props.get("Runtime", "python3.13") == "python3.13", name
        assert props.get("Architectures", ["arm64"]) == ["arm64"], name
    layer = template["Resources"]["BridgeLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    intake_layer = template["Resources"]["IntakeLayer"]
    assert intake_layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert intake_layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert intake_layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}


def test_the_intake_loads_only_its_own_layer_and_every_other_function_the_bridge_layer(template):
    # SAM adds a function's Layers to the global ones: none may be global, or the intake
    # would load the bridge layer too.
    assert "Layers" not in template["Globals"]["Function"]
    for name, fn in _functions(template).items():
        expected = [{"Ref": "IntakeLayer"}] if name == INTAKE else [{"Ref": "BridgeLayer"}]
        assert fn["Properties"]["Layers"][: len(expected)] == expected, name
        assert ({"Ref": "BridgeLayer"} in fn["Properties"]["Layers"]) is (name != INTAKE), name


def test_every_queue_has_a_dead_letter_queue_with_an_alarm(template):
    queues = _of_type(template, "AWS::SQS::Queue")
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    dead_letter_ids = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    # Queues that only take what a schedule could not deliver (test_alarms.py checks those).
    dead_letter_ids |= {
        source["Properties"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        for function in _of_type(template, "AWS::Serverless::Function").values()
        for source in (function["Properties"].get("Events") or {}).values()
        if source["Type"] == "ScheduleV2" and "DeadLetterConfig" in source["Properties"]
    }
    work_queues = set(queues) - dead_letter_ids
    assert work_queues, "no work queue found"
    for name in work_queues:
        redrive = queues[name]["Properties"].get("RedrivePolicy")
        assert redrive, f"{name} has no dead-letter queue"
        assert redrive["maxReceiveCount"] >= 1
    for dlq in dead_letter_ids:
        watching = [
            alarm
            for alarm in alarms.values()
            if alarm["Properties"].get("Namespace") == "AWS/SQS"
            and alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
            and _refers_to(alarm["Properties"]["Dimensions"], dlq)
        ]
        assert watching, f"no alarm on dead-letter queue {dlq}"
        assert watching[0]["Properties"]["Threshold"] == 1


def test_tables_queues_secret_logs_topic_and_env_vars_use_the_bridge_key(template):
    resources = template["Resources"]
    for name, table in _of_type(template, "AWS::DynamoDB::Table").items():
        sse = table["Properties"]["SSESpecification"]
        assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS", name
        assert _refers_to(sse["KMSMasterKeyId"], KEY), name
    for name, queue in _of_type(template, "AWS::SQS::Queue").items():
        assert _refers_to(queue["Properties"].get("KmsMasterKeyId"), KEY), name
    for name, secret in _of_type(template, "AWS::SecretsManager::Secret").items():
        assert _refers_to(secret["Properties"].get("KmsKeyId"), KEY), name
    log_groups = _of_type(template, "AWS::Logs::LogGroup")
    assert len(log_groups) >= len(_functions(template)) + 1
    for name, group in log_groups.items():
        assert _refers_to(group["Properties"].get("KmsKeyId"), KEY), name
        # The audit trail and the access logs are kept for the audit period (test_front_door.py).
        retention = "AuditRetentionDays" if name in ("AuditLogGroup", "ApiAccessLogGroup") else "LogRetentionDays"
        assert _refers_to(group["Properties"].get("RetentionInDays"), retention), name
    for name, topic in _of_type(template, "AWS::SNS::Topic").items():
        assert _refers_to(topic["Properties"].get("KmsMasterKeyId"), KEY), name
    assert _refers_to(template["Globals"]["Function"]["KmsKeyArn"], KEY)
    assert resources[KEY]["Properties"]["EnableKeyRotation"] is True


def test_the_key_and_the_lab_table_survive_stack_deletion(template):
    for name in (KEY, "LabTable"):
        resource = template["Resources"][name]
        assert resource["DeletionPolicy"] == "Retain", name
        assert resource["UpdateReplacePolicy"] == "Retain", name
    lab_table = template["Resources"]["LabTable"]["Properties"]
    assert lab_table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_member_table_is_sealed_with_the_bridge_key_recoverable_retained_and_expires_oauth_states(template):
    table = template["Resources"]["MemberTable"]
    # Member connections and their sealed tokens are the platform's records: never dropped with the stack.
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    sse = props["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    assert _refers_to(sse["KMSMasterKeyId"], KEY)
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    # OAuth states are written with a `ttl` attribute: DynamoDB sweeps expired connect links.
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    assert connection_store.INDEX in indexes
    assert indexes[connection_store.INDEX]["KeySchema"] == [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    assert indexes[connection_store.INDEX]["Projection"] == {"ProjectionType": "ALL"}
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]


def _policies(template: dict[str, Any], function: str) -> list[Any]:
    """The function's SAM policies, or its explicit role's policy documents (queue consumers
    have their own role; tests/template/test_least_privilege.py reads the transformed roles)."""
    properties = template["Resources"][function]["Properties"]
    if "Role" in properties:
        role = template["Resources"][properties["Role"]["Fn::GetAtt"][0]]["Properties"]
        return [policy["PolicyDocument"] for policy in role.get("Policies", [])]
    return properties.get("Policies", [])


def _policy_names(template: dict[str, Any], function: str, logical_id: str) -> bool:
    return _refers_to(_policies(template, function), logical_id)


@pytest.mark.parametrize("function", LAB_FUNCTIONS)
def test_lab_functions_have_no_access_to_member_tokens_or_the_member_app_secret(template, function):
    assert function in template["Resources"]
    for member_resource in ("MemberTable", "MemberAppSecret"):
        assert not _policy_names(template, function, member_resource), f"{function} may reach {member_resource}"


@pytest.mark.parametrize("function", MEMBER_FUNCTIONS)
def test_member_functions_have_no_access_to_lab_records_or_the_partner_secret(template, function):
    assert _policy_names(template, function, "MemberTable"), f"{function} cannot reach its own table"
    assert _policy_names(template, function, "MemberAppSecret"), f"{function} cannot read the member-app secret"
    for lab_resource in ("LabTable", "PartnerSecret"):
        assert not _policy_names(template, function, lab_resource), f"{function} may reach {lab_resource}"


def test_every_function_is_either_a_lab_or_a_member_function(template):
    # A new function must be placed on one side of the lab/member split above.
    assert set(_functions(template)) == set(LAB_FUNCTIONS) | set(MEMBER_FUNCTIONS) | {INTAKE}


def test_the_webhook_intake_reads_both_signing_secrets_enqueues_both_kinds_and_reaches_no_table(template):
    for secret in ("PartnerWebhookSecret", "MemberAppSecret"):
        assert _policy_names(template, INTAKE, secret)
    # The partner's webhook signing key has its own secret: never the partner client secret.
    assert not _policy_names(template, INTAKE, "PartnerSecret")
    for queue in ("PartnerEventsQueue", "MemberEventsQueue"):
        assert _policy_names(template, INTAKE, queue)
    for table in ("LabTable", "MemberTable", "IdempotencyTable"):
        assert not _policy_names(template, INTAKE, table), f"the intake may reach {table}"
    variables = template["Resources"][INTAKE]["Properties"]["Environment"]["Variables"]
    assert variables["MEMBER_EVENTS_QUEUE_URL"] == {"Ref": "MemberEventsQueue"}
    assert variables["MEMBER_SECRET_ARN"] == {"Ref": "MemberAppSecret"}


def test_the_requisition_processor_puts_read_lag_retries_back_on_its_own_queue_for_the_parameters_time(template):
    processor = "RequisitionProcessorFunction"
    variables = template["Resources"][processor]["Properties"]["Environment"]["Variables"]
    assert variables["PARTNER_EVENTS_QUEUE_URL"] == {"Ref": "PartnerEventsQueue"}
    assert variables["REQUISITION_FETCH_RETRY_SECONDS"] == {"Ref": "RequisitionFetchRetrySeconds"}
    assert _policy_names(template, processor, "PartnerEventsQueue")
    parameter = template["Parameters"]["RequisitionFetchRetrySeconds"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (900, 0, 86400)


def test_the_lab_api_asks_for_test_data_with_iam_the_partner_secret_and_the_partner_queue_only(template):
    routes = {
        (props["Path"], props["Method"]): props
        for function, _, props in _api_events(template)
        if function == "LabApiFunction"
    }
    assert "Auth" not in routes[("/lab/test-data", "post")]  # the API's default authorizer: AWS_IAM
    variables = template["Resources"]["LabApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["PARTNER_EVENTS_QUEUE_URL"] == {"Ref": "PartnerEventsQueue"}
    assert variables["PARTNER_SECRET_ARN"] == {"Ref": "PartnerSecret"}
    for reachable in ("PartnerSecret", "PartnerEventsQueue"):
        assert _policy_names(template, "LabApiFunction", reachable)
    for unreachable in ("MemberEventsQueue", "MemberJobsQueue", "MemberAppSecret"):
        assert not _policy_names(template, "LabApiFunction", unreachable), unreachable


@pytest.mark.parametrize("queue", ["MemberEventsQueue", "MemberJobsQueue"])
def test_member_queues_dead_letter_after_five_receives_into_an_alarmed_queue(template, queue):
    properties = template["Resources"][queue]["Properties"]
    dead_letter = properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert properties["RedrivePolicy"]["maxReceiveCount"] == 5
    # Lambda's advice: six times the consumer's timeout.
    assert properties["VisibilityTimeout"] >= 6 * template["Resources"]["MemberSyncFunction"]["Properties"]["Timeout"]
    alarms = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and _refers_to(resource["Properties"].get("Dimensions"), dead_letter)
    ]
    assert alarms and all(alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] for alarm in alarms)
    events = template["Resources"]["MemberSyncFunction"]["Properties"]["Events"].values()
    sources = [
        event["Properties"]
        for event in events
        if event["Type"] == "SQS" and _refers_to(event["Properties"]["Queue"], queue)
    ]
    assert sources and sources[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_member_connected_events_start_a_backfill_through_the_jobs_queue(template):
    rule = template["Resources"]["BackfillOnConnectRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["EventPattern"] == {"source": ["whoop-bridge"], "detail-type": ["member.connected"]}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["MemberJobsQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["MemberJobsDeadLetterQueue", "Arn"]}
    policy = template["Resources"]["MemberJobsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Principal"] == {"Service": "events.amazonaws.com"}
    assert policy["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["BackfillOnConnectRule", "Arn"]}


def test_member_sync_is_told_the_data_settings_from_the_stack_parameters(template):
    variables = template["Resources"]["MemberSyncFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["BACKFILL_DAYS"] == {"Ref": "BackfillDays"}
    assert variables["RECONCILIATION_DAYS"] == {"Ref": "ReconciliationDays"}
    assert variables["MEMBER_JOBS_QUEUE_URL"] == {"Ref": "MemberJobsQueue"}
    assert variables["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
    assert template["Parameters"]["BackfillDays"]["Default"] == 30
    # Every function that calls WHOOP's member API shares the one budget, with the same limits.
    for function in MEMBER_FUNCTIONS:
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["WHOOP_RATE_LIMIT_PER_MINUTE"] == {"Ref": "WhoopRateLimitPerMinute"}
        assert variables["WHOOP_RATE_LIMIT_PER_DAY"] == {"Ref": "WhoopRateLimitPerDay"}
    assert template["Parameters"]["WhoopRateLimitPerMinute"]["Default"] == 100
    assert template["Parameters"]["WhoopRateLimitPerDay"]["Default"] == 10000


@pytest.mark.parametrize("function", MEMBER_FUNCTIONS)
def test_member_functions_are_told_their_table_secret_and_key(template, function):
    variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    assert variables["MEMBER_TABLE_NAME"] == {"Ref": "MemberTable"}
    assert variables["MEMBER_SECRET_ARN"] == {"Ref": "MemberAppSecret"}
    assert _refers_to(variables["BRIDGE_KEY_ARN"], KEY)
    assert variables["BRIDGE_KEY_ARN"]["Fn::GetAtt"][1] == "Arn"


def test_member_api_reads_the_connect_settings_from_the_stack_parameters(template):
    variables = template["Resources"]["MemberApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["OAUTH_SCOPES"] == {"Ref": "OAuthScopes"}
    assert variables["ALLOWED_RETURN_URLS"] == {"Ref": "AllowedReturnUrls"}
    assert variables["DELETE_DATA_ON_DISCONNECT"] == {"Ref": "DeleteDataOnDisconnect"}
    # With a custom domain, the connect link names the very URL the stack tells the operator to
    # register at WHOOP; without one, the member API derives it from the request (empty value).
    condition, with_domain, without_domain = variables["OAUTH_REDIRECT_URL"]["Fn::If"]
    assert condition == "HasRedirectDomain"
    assert without_domain == ""
    assert with_domain == template["Outputs"]["OAuthRedirectUrl"]["Value"]["Fn::If"][1]
    parameters = template["Parameters"]
    assert parameters["DeleteDataOnDisconnect"]["AllowedValues"] == ["true", "false"]
    assert parameters["DeleteDataOnDisconnect"]["Default"] == "true"
    assert parameters["AllowedReturnUrls"]["Default"] == ""


def test_member_sync_renews_tokens_every_ten_minutes_and_reconciles_daily(template):
    events = template["Resources"]["MemberSyncFunction"]["Properties"]["Events"]
    schedules = {
        event["Properties"]["ScheduleExpression"]: event["Properties"]
        for event in events.values()
        if event["Type"] == "ScheduleV2"
    }
    assert set(schedules) == {"rate(10 minutes)", "rate(1 day)"}
    # The handler refuses any other action.
    assert json.loads(schedules["rate(10 minutes)"]["Input"]) == {"action": "refresh_tokens"}
    assert json.loads(schedules["rate(1 day)"]["Input"]) == {"action": "reconcile"}


def test_default_oauth_scopes_are_the_bridges_and_pass_the_parameters_own_pattern(template):
    parameter = template["Parameters"]["OAuthScopes"]
    pattern = parameter["AllowedPattern"]
    assert parameter["Default"] == " ".join(DEFAULT_OAUTH_SCOPES)
    assert re.fullmatch(pattern, parameter["Default"])
    assert re.fullmatch(pattern, "read:profile")
    assert re.fullmatch(pattern, "offline read:profile")
    # read:profile gives WHOOP's user_id: a stack without it would refuse every connect link.
    for refused in (
        "read:everything",
        "read:profile read:everything",
        "offline,read:profile",
        "",
        "offline read:recovery",
        "read:profiles",
    ):
        assert not re.fullmatch(pattern, refused), refused
    # The pattern names exactly the scopes the bridge knows, no more, no fewer.
    listed = re.search(r"\(\(([^()]*)\)", pattern).group(1).split("|")
    assert set(listed) == OAUTH_SCOPES


def test_oauth_redirect_url_output_matches_the_callback_route_on_either_domain(template):
    output = template["Outputs"]["OAuthRedirectUrl"]
    assert output.get("Description")
    condition, custom_domain, execute_api = output["Value"]["Fn::If"]
    assert condition == "HasRedirectDomain"
    stage = template["Resources"]["BridgeApi"]["Properties"]["StageName"]
    assert CALLBACK_PATH == "/oauth/whoop/callback"
    assert execute_api["Fn::Sub"].endswith(f"/{stage}{CALLBACK_PATH}")
    assert (
        execute_api["Fn::Sub"]
        == "https://${BridgeApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1/oauth/whoop/callback"
    )
    # The custom domain maps the stage at its root: no stage in the path.
    assert custom_domain["Fn::Sub"] == f"https://${{RedirectDomainName}}{CALLBACK_PATH}"
    routes = {props["Path"]: name for name, _, props in _api_events(template)}
    assert routes[CALLBACK_PATH] == "OAuthCallbackFunction"


def test_custom_redirect_domain_exists_only_when_named_and_needs_a_certificate(template):
    assert template["Conditions"]["HasRedirectDomain"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "RedirectDomainName"}, ""]}]
    }
    resources = template["Resources"]
    for name in ("RedirectDomain", "RedirectDomainMapping"):
        assert resources[name]["Condition"] == "HasRedirectDomain", name
    assert template["Outputs"]["RedirectDomainTarget"]["Condition"] == "HasRedirectDomain"
    domain = resources["RedirectDomain"]["Properties"]
    assert domain["DomainName"] == {"Ref": "RedirectDomainName"}
    assert domain["RegionalCertificateArn"] == {"Ref": "RedirectCertificateArn"}
    mapping = resources["RedirectDomainMapping"]["Properties"]
    assert _refers_to(mapping["RestApiId"], "BridgeApi")
    assert "BasePath" not in mapping  # the API at the domain's root, as OAuthRedirectUrl says
    rule = template["Rules"]["RedirectDomainNeedsCertificate"]
    assert rule["RuleCondition"] == template["Conditions"]["HasRedirectDomain"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RedirectCertificateArn"}, ""]}]}
    pattern = template["Parameters"]["RedirectDomainName"]["AllowedPattern"]
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(pattern, "whoop.example.com")
    for refused in ("https://whoop.example.com", "whoop.example.com/", "Whoop.Example.com", "localhost"):
        assert not re.fullmatch(pattern, refused), refused


def test_each_function_logs_json_to_its_own_log_group(template):
    for name, fn in _functions(template).items():
        props = fn["Properties"]
        logging_config = props["LoggingConfig"]
        assert logging_config["LogFormat"] == "JSON", name
        group_id = logging_config["LogGroup"]["Ref"]
        group_name = template["Resources"][group_id]["Properties"]["LogGroupName"]["Fn::Sub"]
        function_name = props["FunctionName"]["Fn::Sub"]
        assert group_name == f"/aws/lambda/{function_name}", name


def test_state_machine_logs_no_execution_data(template):
    logging = template["Resources"]["ServiceRequestStateMachine"]["Properties"]["LoggingConfiguration"]
    assert logging["IncludeExecutionData"] is False
    assert logging["Level"] in {"ERROR", "FATAL", "OFF"}


def test_state_machine_substitutions_cover_the_definition(template):
    props = template["Resources"]["ServiceRequestStateMachine"]["Properties"]
    definition = (ROOT / props["DefinitionS3Location"]).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", definition))
    assert placeholders <= set(props["DefinitionSubstitutions"])


def test_webhook_and_oauth_callback_are_the_only_public_routes_and_every_other_route_requires_iam(template):
    api = template["Resources"]["BridgeApi"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    events = _api_events(template)
    routes = {props["Path"]: props for _, _, props in events}
    assert routes["/webhooks/partner"]["Method"] == "post"
    assert routes["/webhooks/partner"]["Auth"]["Authorizer"] == "NONE"
    # The member's browser arrives from WHOOP's consent page with no AWS credentials.
    assert routes["/oauth/whoop/callback"]["Method"] == "get"
    assert routes["/oauth/whoop/callback"]["Auth"]["Authorizer"] == "NONE"
    public = {props["Path"] for _, _, props in events if props.get("Auth", {}).get("Authorizer") == "NONE"}
    assert public == PUBLIC_PATHS
    lab_routes = [p for p in routes if p.startswith("/lab/")]
    assert len(lab_routes) >= 7
    for function_name, event_name, props in events:
        assert _refers_to(props["RestApiId"], "BridgeApi"), event_name
        authorizer = props.get("Auth", {}).get("Authorizer", "AWS_IAM")
        if props["Path"] in PUBLIC_PATHS:
            assert authorizer == "NONE", event_name
        else:
            assert authorizer == "AWS_IAM", f"{function_name}.{event_name} {props['Path']}"


def test_every_connections_and_members_route_keeps_the_default_iam_authorizer(template):
    member_routes = {
        (props["Method"], props["Path"]): props
        for _, _, props in _api_events(template)
        if props["Path"].startswith(("/connections", "/members"))
    }
    assert {
        ("post", "/connections"),
        ("get", "/connections/{client_user_id}"),
        ("delete", "/connections/{client_user_id}"),
        ("get", "/members/{client_user_id}/profile"),
    } <= set(member_routes)
    served_by = {
        function_name
        for function_name, _, props in _api_events(template)
        if props["Path"].startswith(("/connections", "/members"))
    }
    assert served_by == {"MemberApiFunction"}
    for route, props in member_routes.items():
        # No override at all: an Auth block here could open the route (Authorizer NONE).
        assert "Auth" not in props, route


def test_api_has_no_access_log_of_request_bodies(template):
    api = template["Resources"]["BridgeApi"]["Properties"]
    access_log = api.get("AccessLogSetting")
    if access_log:
        assert "$context.requestBody" not in json.dumps(access_log)
    for setting in api.get("MethodSettings", []):
        assert not setting.get("DataTraceEnabled", False)


def test_partner_secret_starts_as_replace_me_placeholders(template):
    secret = template["Resources"]["PartnerSecret"]["Properties"]
    values = json.loads(secret["SecretString"])
    assert set(values) == {"client_id", "client_secret", "webhook_secret"}
    assert set(values.values()) == {"REPLACE_ME"}


def test_member_app_secret_starts_as_replace_me_placeholders(template):
    secret = template["Resources"]["MemberAppSecret"]["Properties"]
    values = json.loads(secret["SecretString"])
    assert set(values) == {"client_id", "client_secret"}
    assert set(values.values()) == {"REPLACE_ME"}
    assert _refers_to(secret["KmsKeyId"], KEY)


def test_every_alarm_notifies_the_alarm_topic(template):
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert _refers_to(props["AlarmActions"], "AlarmTopic"), name
        assert _refers_to(props["OKActions"], "AlarmTopic"), name
        assert props["TreatMissingData"] == "notBreaching", name
    for fn in _functions(template):
        assert f"{fn}ErrorsAlarm" in alarms, fn
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"


@pytest.mark.parametrize(
    ("alarm_name", "function", "metric"),
    [
        ("RequisitionNotFoundAlarm", "RequisitionProcessorFunction", "RequisitionNotFound"),
        ("RequisitionInvalidAlarm", "RequisitionProcessorFunction", "RequisitionInvalid"),
        ("TokenRefreshFailedAlarm", "MemberSyncFunction", "TokenRefreshFailed"),
        ("MemberWebhookDeferredLongAlarm", "MemberSyncFunction", "MemberWebhookDeferredLong"),
        ("DocumentUnavailableAlarm", "RequisitionProcessorFunction", "DocumentUnavailable"),
        ("OAuthAuthorizationFailedAlarm", "OAuthCallbackFunction", "OAuthAuthorizationFailed"),
    ],
)
def test_custom_metric_alarms_match_the_functions_metrics(template, alarm_name, function, metric):
    # Powertools Metrics publishes under POWERTOOLS_METRICS_NAMESPACE with a `service`
    # dimension of POWERTOOLS_SERVICE_NAME: the alarm must watch exactly that metric.
    alarm = template["Resources"][alarm_name]["Properties"]
    global_env = template["Globals"]["Function"]["Environment"]["Variables"]
    props = template["Resources"][function]["Properties"]
    service_name = props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert alarm["MetricName"] == metric
    assert alarm["Namespace"] == global_env["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service_name}]
    handler_source = (ROOT / props["CodeUri"] / "app.py").read_text() + "".join(
        path.read_text() for path in (ROOT / "layers" / "bridge" / "whoop_bridge").rglob("*.py")
    )
    assert f'name="{metric}"' in handler_source


def test_outputs_give_the_webhook_url_for_whoop(template):
    outputs = template["Outputs"]
    webhook_url = outputs["PartnerWebhookUrl"]["Value"]["Fn::Sub"]
    assert webhook_url.endswith("/v1/webhooks/partner")
    assert _refers_to(outputs["PartnerWebhookUrl"]["Value"], "BridgeApi")
    for output in outputs.values():
        assert output.get("Description"), output


@pytest.mark.parametrize(
    "code_uri",
    sorted(
        {
            fn["Properties"]["CodeUri"]
            for fn in _load_template()["Resources"].values()
            if fn["Type"] == "AWS::Serverless::Function"
        }
    ),
)
def test_each_function_folder_has_a_handler(code_uri):
    folder = ROOT / code_uri
    # An empty folder is not in git either: the handler has not been written yet.
    if not folder.is_dir() or not any(folder.iterdir()):
        pytest.skip(f"{code_uri} not written yet")
    assert (folder / "app.py").is_file(), f"{code_uri} has no app.py"


def test_samconfig_deploys_sandbox_and_production_as_separate_stacks():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    sandbox = config["sandbox"]["deploy"]["parameters"]
    production = config["production"]["deploy"]["parameters"]
    assert sandbox["stack_name"] != production["stack_name"]
    assert "Environment=sandbox" in sandbox["parameter_overrides"]
    assert "Environment=production" in production["parameter_overrides"]
    for env in ("default", "sandbox", "production"):
        assert "CAPABILITY_IAM" in config[env]["deploy"]["parameters"]["capabilities"], env


# Partner documents ------------------------------------------------------------------------

DOCUMENT_BUCKET = "DocumentBucket"
DOCUMENT_WRITER = "RequisitionProcessorFunction"
DOCUMENT_READER = "LabApiFunction"


def _statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """The inline IAM statements of a function's policies."""
    return [
        statement
        for policy in _policies(template, function)
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_the_document_bucket_is_private_kms_encrypted_with_the_bridge_key_versioned_and_retained(template):
    bucket = template["Resources"][DOCUMENT_BUCKET]
    # Documents belong to the lab's orders, like LabTable: never dropped with the stack.
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = bucket["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert _refers_to(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"], KEY)
    assert rule["BucketKeyEnabled"] is True
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "WebsiteConfiguration" not in props and "CorsConfiguration" not in props


def test_the_document_bucket_expires_old_versions_and_unfinished_uploads_and_keeps_documents_unless_told(template):
    rules = {
        rule["Id"]: rule
        for rule in template["Resources"][DOCUMENT_BUCKET]["Properties"]["LifecycleConfiguration"]["Rules"]
    }
    assert rules["ExpireOldVersions"]["Status"] == "Enabled"
    assert rules["ExpireOldVersions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 1
    assert rules["ExpireOldVersions"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    # Current documents expire only when the operator sets DocumentRetentionDays (default 0: kept).
    expire = rules["ExpireDocuments"]
    assert expire["Status"] == {"Fn::If": ["HasDocumentRetention", "Enabled", "Disabled"]}
    assert expire["ExpirationInDays"]["Fn::If"][1] == {"Ref": "DocumentRetentionDays"}
    assert template["Parameters"]["DocumentRetentionDays"]["Default"] == 0
    assert template["Conditions"]["HasDocumentRetention"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DocumentRetentionDays"}, "0"]}]
    }


def test_the_document_bucket_refuses_every_request_without_tls(template):
    policies = [
        resource["Properties"]
        for resource in _of_type(template, "AWS::S3::BucketPolicy").values()
        if resource["Properties"]["Bucket"] == {"Ref": DOCUMENT_BUCKET}
    ]
    (policy,) = policies
    denials = [
        statement
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    (deny,) = denials
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert {"Fn::GetAtt": [DOCUMENT_BUCKET, "Arn"]} in deny["Resource"]
    assert {"Fn::Sub": "${DocumentBucket.Arn}/*"} in deny["Resource"]


def test_only_the_requisition_processor_writes_documents_and_only_lab_api_reads_them(template):
    for name in _functions(template):
        s3_statements = [
            statement
            for statement in _statements(template, name)
            if any(action.startswith("s3:") for action in _actions(statement))
        ]
        actions = sorted(action for statement in s3_statements for action in _actions(statement))
        if name == DOCUMENT_WRITER:
            assert actions == ["s3:PutObject"], name
        elif name == DOCUMENT_READER:
            assert actions == ["s3:GetObject", "s3:GetObjectVersion"], name
        else:
            assert actions == [], f"{name} may reach the document bucket"
            assert not _policy_names(template, name, DOCUMENT_BUCKET), name
        for statement in s3_statements:
            assert statement["Effect"] == "Allow"
            assert statement["Resource"] == {"Fn::Sub": "${DocumentBucket.Arn}/documents/*"}, name
    # The writer encrypts with the stack's key through S3; the reader's links decrypt with it.
    s3_service = {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}
    for name, needed in ((DOCUMENT_WRITER, "kms:GenerateDataKey"), (DOCUMENT_READER, "kms:Decrypt")):
        through_s3 = [
            statement
            for statement in _statements(template, name)
            if needed in _actions(statement)
            and s3_service in statement.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService", [])
        ]
        assert through_s3, name


def test_the_document_functions_are_told_the_bucket_and_the_writer_its_key_queue_and_retries(template):
    for name in (DOCUMENT_WRITER, DOCUMENT_READER):
        variables = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["DOCUMENT_BUCKET_NAME"] == {"Ref": DOCUMENT_BUCKET}, name
    writer = template["Resources"][DOCUMENT_WRITER]["Properties"]
    variables = writer["Environment"]["Variables"]
    assert variables["BRIDGE_KEY_ARN"] == {"Fn::GetAtt": [KEY, "Arn"]}
    assert variables["PARTNER_EVENTS_QUEUE_URL"] == {"Ref": "PartnerEventsQueue"}
    assert variables["DOCUMENT_RETRY_DELAYS"] == {"Ref": "DocumentRetryDelays"}
    assert any(
        "sqs:SendMessage" in _actions(statement) and _refers_to(statement["Resource"], "PartnerEventsQueue")
        for statement in _statements(template, DOCUMENT_WRITER)
    )
    # Every delay fits SQS's longest message delay (900 s), default included.
    parameter = template["Parameters"]["DocumentRetryDelays"]
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])
    assert all(0 <= int(delay) <= 900 for delay in parameter["Default"].split(","))
    assert not re.fullmatch(parameter["AllowedPattern"], "30,1000")


def test_the_lab_reads_documents_through_an_iam_route(template):
    events = template["Resources"][DOCUMENT_READER]["Properties"]["Events"]
    routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"]): event["Properties"]
        for event in events.values()
        if event["Type"] == "Api"
    }
    route = routes[("get", "/lab/documents/{document_id}")]
    assert "Auth" not in route  # the API's default authorizer: AWS_IAM


def test_the_document_bucket_name_is_an_output(template):
    assert template["Outputs"]["DocumentBucketName"]["Value"] == {"Ref": DOCUMENT_BUCKET}


def test_both_api_functions_keep_idempotency_keys_in_the_idempotency_table(template):
    """`Idempotency-Key` on every POST: each API function is told the table and may use it."""
    for function in ("LabApiFunction", "MemberApiFunction"):
        properties = template["Resources"][function]["Properties"]
        assert properties["Environment"]["Variables"]["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
        # Its own records only (tests/template/test_least_privilege.py checks the keys).
        assert any(
            "dynamodb:PutItem" in _actions(statement) and _refers_to(statement["Resource"], "IdempotencyTable")
            for statement in _statements(template, function)
        ), function
