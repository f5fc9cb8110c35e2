"""The audit trail and the guarded front door, as template.yaml declares them (issue 11,
items 4 and 5): the audit log group and who may write it, the optional access logs and
WAF, the throttles and the body-size limit the API functions are told."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from local.cfn import load_template
from local.resources import Resources

ROOT = Path(__file__).resolve().parents[2]
API_FUNCTIONS = ("LabApiFunction", "MemberApiFunction")
# CloudWatch Logs' accepted retentions (PutRetentionPolicy).
CLOUDWATCH_RETENTIONS = {
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _resolved(template: dict[str, Any], value: Any, **parameters: str) -> Any:
    """`value` with its intrinsics evaluated for `parameters` (the local stack's resolver)."""
    resources = Resources(template, parameters=parameters, stack_name="s")
    resources.physical.update({name: name for name in template["Resources"]})
    return resources.resolver().resolve(value)


def _mentions(value: Any, logical_id: str) -> bool:
    text = json.dumps(value)
    return f'"{logical_id}"' in text or re.search(r"\$\{" + logical_id + r"[.}]", text) is not None


def test_audit_retention_is_a_cloudwatch_retention_of_six_years_by_default(template):
    parameter = template["Parameters"]["AuditRetentionDays"]
    assert parameter["Default"] == 2192 and 2192 >= 6 * 365 + 1  # six years, leap day included
    assert set(parameter["AllowedValues"]) == CLOUDWATCH_RETENTIONS


def test_the_audit_log_group_is_kept_for_the_audit_period_encrypted_and_outlives_the_stack(template):
    group = template["Resources"]["AuditLogGroup"]
    assert group["Properties"]["RetentionInDays"] == {"Ref": "AuditRetentionDays"}
    assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["BridgeKey", "Arn"]}
    assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"
    # No fixed name: a retained group cannot block the next stack of the same name.
    assert "LogGroupName" not in group["Properties"]
    assert template["Outputs"]["AuditLogGroupName"]["Value"] == {"Ref": "AuditLogGroup"}


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_each_api_function_is_told_the_audit_group_and_may_only_append_to_it(template, function):
    variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    assert variables["AUDIT_LOG_GROUP"] == {"Ref": "AuditLogGroup"}
    assert variables["API_MAX_BODY_BYTES"] == {"Ref": "ApiMaxBodyBytes"}
    policies = template["Resources"][function]["Properties"]["Policies"]
    audit = [s for p in policies if "Statement" in p for s in p["Statement"] if _mentions(s, "AuditLogGroup")]
    assert len(audit) == 1
    assert sorted(audit[0]["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert audit[0]["Resource"] == {"Fn::GetAtt": ["AuditLogGroup", "Arn"]}


def test_no_other_function_can_reach_the_audit_group(template):
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function" and name not in API_FUNCTIONS:
            assert not _mentions(resource["Properties"], "AuditLogGroup"), name


def test_access_logs_are_off_by_default_and_log_no_body_query_or_raw_path(template):
    assert template["Parameters"]["AccessLogging"]["Default"] == "false"
    api = template["Resources"]["BridgeApi"]["Properties"]
    condition, setting, otherwise = api["AccessLogSetting"]["Fn::If"]
    assert condition == "HasAccessLogging" and otherwise == {"Ref": "AWS::NoValue"}
    assert _resolved(template, template["Conditions"]["HasAccessLogging"]) is False
    assert _resolved(template, template["Conditions"]["HasAccessLogging"], AccessLogging="true") is True
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(setting["Format"])
    assert fields["resourcePath"] == "$context.resourcePath" and fields["userArn"] == "$context.identity.userArn"
    for value in fields.values():
        assert value.startswith("$context.")
        assert not re.search(r"requestBody|querystring|\$context\.path\b|responseBody|authorizer", value), value
    group = template["Resources"]["ApiAccessLogGroup"]
    assert group["Condition"] == "HasAccessLogging"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "AuditRetentionDays"}


def test_the_stage_and_each_public_route_are_throttled_by_parameters(template):
    settings = {
        (s["ResourcePath"], s["HttpMethod"]): s
        for s in template["Resources"]["BridgeApi"]["Properties"]["MethodSettings"]
    }
    expected = {
        ("/*", "*"): "Api",
        ("/~1webhooks~1whoop", "POST"): "Webhook",
        ("/~1webhooks~1partner", "POST"): "Webhook",
        ("/~1oauth~1whoop~1callback", "GET"): "OAuthCallback",
    }
    assert set(settings) == set(expected)
    for key, prefix in expected.items():
        assert settings[key]["ThrottlingRateLimit"] == {"Ref": f"{prefix}ThrottleRateLimit"}
        assert settings[key]["ThrottlingBurstLimit"] == {"Ref": f"{prefix}ThrottleBurstLimit"}
        rate = template["Parameters"][f"{prefix}ThrottleRateLimit"]["Default"]
        assert rate <= template["Parameters"][f"{prefix}ThrottleBurstLimit"]["Default"]
    # Each throttled route is one the API has.
    paths = {
        (event["Properties"]["Path"], event["Properties"]["Method"].upper())
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "Api"
    }
    for path, method in settings:
        if path != "/*":
            assert (path[1:].replace("~1", "/"), method) in paths


def test_the_waf_is_optional_off_by_default_and_on_in_the_production_config(template):
    assert template["Parameters"]["EnableWaf"]["Default"] == "false"
    for name in ("ApiWebAcl", "ApiWebAclAssociation"):
        assert template["Resources"][name]["Condition"] == "HasWaf"
    assert _resolved(template, template["Conditions"]["HasWaf"]) is False
    assert _resolved(template, template["Conditions"]["HasWaf"], EnableWaf="true") is True
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = config["production"]["deploy"]["parameters"]["parameter_overrides"].split()
    assert "EnableWaf=true" in overrides
    sandbox = config["sandbox"]["deploy"]["parameters"]["parameter_overrides"].split()
    assert "EnableWaf=true" not in sandbox


def test_the_waf_guards_the_api_stage_with_a_rate_a_body_size_and_the_known_bad_inputs_rules(template):
    association = template["Resources"]["ApiWebAclAssociation"]["Properties"]
    # SAM resolves ${BridgeApi.Stage} to the stage it makes (and depends on it).
    assert association["ResourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${BridgeApi}/stages/${BridgeApi.Stage}"
    }
    acl = template["Resources"]["ApiWebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    assert len({rule["Priority"] for rule in acl["Rules"]}) == len(rules) == 3

    rate = rules["RateLimitPerIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {"Limit": {"Ref": "WafRateLimit"}, "AggregateKeyType": "IP"}

    size, results_route = rules["BodySizeLimit"]["Statement"]["AndStatement"]["Statements"]
    assert rules["BodySizeLimit"]["Action"] == {"Block": {}}
    constraint = size["SizeConstraintStatement"]
    assert constraint["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    assert (constraint["ComparisonOperator"], constraint["Size"]) == ("GT", {"Ref": "WafMaxBodyBytes"})
    assert template["Parameters"]["WafMaxBodyBytes"]["MaxValue"] == 8192  # what the WAF inspects
    # Lab reports are exempt: the functions limit them (ApiMaxBodyBytes) with a 413 naming it.
    pattern = re.compile(results_route["NotStatement"]["Statement"]["RegexMatchStatement"]["RegexString"])
    assert pattern.match("/v1/lab/service-requests/abc-1/results")
    assert pattern.match("/lab/service-requests/abc-1/results")
    for path in ("/v1/webhooks/whoop", "/v1/lab/service-requests/abc-1/events", "/v1/lab/service-requests/a/results/x"):
        assert not pattern.match(path), path

    managed = rules["AWSManagedRulesKnownBadInputsRuleSet"]
    assert managed["Statement"]["ManagedRuleGroupStatement"] == {
        "VendorName": "AWS",
        "Name": "AWSManagedRulesKnownBadInputsRuleSet",
    }
    assert managed["OverrideAction"] == {"None": {}}  # the group's own block actions apply


def test_the_body_limit_default_holds_a_big_lab_report():
    template = load_template()
    limit = template["Parameters"]["ApiMaxBodyBytes"]
    from whoop_bridge.config import Settings

    assert limit["Default"] == Settings.api_max_body_bytes == 256 * 1024
    assert limit["MaxValue"] == 10 * 1024 * 1024  # API Gateway's own payload limit
