"""What a deployer of template.yaml would notice: runtime, encryption, auth, alarms, names."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
KEY = "BridgeKey"
# Routes WHOOP or a member's browser call without AWS credentials; every other route is IAM.
PUBLIC_PATHS = {"/webhooks/partner", "/webhooks/whoop", "/oauth/whoop/callback"}


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
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}


def test_every_queue_has_a_dead_letter_queue_with_an_alarm(template):
    queues = _of_type(template, "AWS::SQS::Queue")
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    dead_letter_ids = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
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
            if alarm["Properties"]["Namespace"] == "AWS/SQS"
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
        assert _refers_to(group["Properties"].get("RetentionInDays"), "LogRetentionDays"), name
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
    logging = template["Resources"]["ServiceRequestStateMachine"]["Properties"]["Logging"]
    assert logging["IncludeExecutionData"] is False
    assert logging["Level"] in {"ERROR", "FATAL", "OFF"}


def test_state_machine_substitutions_cover_the_definition(template):
    props = template["Resources"]["ServiceRequestStateMachine"]["Properties"]
    definition = (ROOT / props["DefinitionUri"]).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", definition))
    assert placeholders <= set(props["DefinitionSubstitutions"])


def test_webhook_route_is_public_and_every_lab_route_requires_iam(template):
    api = template["Resources"]["BridgeApi"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    events = _api_events(template)
    routes = {props["Path"]: props for _, _, props in events}
    assert routes["/webhooks/partner"]["Method"] == "post"
    assert routes["/webhooks/partner"]["Auth"]["Authorizer"] == "NONE"
    lab_routes = [p for p in routes if p.startswith("/lab/")]
    assert len(lab_routes) >= 7
    for function_name, event_name, props in events:
        assert _refers_to(props["RestApiId"], "BridgeApi"), event_name
        authorizer = props.get("Auth", {}).get("Authorizer", "AWS_IAM")
        if props["Path"] in PUBLIC_PATHS:
            assert authorizer == "NONE", event_name
        else:
            assert authorizer == "AWS_IAM", f"{function_name}.{event_name} {props['Path']}"


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


def test_requisition_not_found_alarm_matches_the_processors_metrics(template):
    # Powertools Metrics publishes under POWERTOOLS_METRICS_NAMESPACE with a `service`
    # dimension of POWERTOOLS_SERVICE_NAME: the alarm must watch exactly that metric.
    alarm = template["Resources"]["RequisitionNotFoundAlarm"]["Properties"]
    global_env = template["Globals"]["Function"]["Environment"]["Variables"]
    processor = template["Resources"]["RequisitionProcessorFunction"]["Properties"]
    service_name = processor["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert alarm["Namespace"] == global_env["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service_name}]


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
