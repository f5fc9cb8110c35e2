"""Failures that are silent without an alarm: a stuck queue, a schedule run or bus message
never delivered, webhooks refused for a bad signature, 4xx answers, throttles. Each raises
an alarm on the stack's alarm topic (template.yaml read through local/cfn.py)."""

from __future__ import annotations

from typing import Any

import pytest

from local.cfn import load_template, resources_of
from whoop_bridge.api.audit import NOT_WRITTEN_METRIC
from whoop_bridge.webhooks import SIGNATURE_REFUSED_METRIC

TOPIC = {"Ref": "AlarmTopic"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec["Properties"] for name, spec in resources_of(template, "AWS::CloudWatch::Alarm").items()}


def _metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric an alarm reads, as {Namespace, MetricName, Dimensions}: its own or its math's."""
    if "MetricName" in alarm:
        return [{key: alarm.get(key) for key in ("Namespace", "MetricName", "Dimensions")}]
    return [query["MetricStat"]["Metric"] for query in alarm.get("Metrics", []) if "MetricStat" in query]


def _dimensions(metric: dict[str, Any]) -> dict[str, Any]:
    return {dimension["Name"]: dimension["Value"] for dimension in metric.get("Dimensions") or []}


def _alarms_on(template: dict[str, Any], namespace: str, metric_name: str, **dimensions: Any) -> list[str]:
    """The alarms that read `metric_name` in `namespace` with exactly these dimensions."""
    return [
        name
        for name, alarm in _alarms(template).items()
        for metric in _metric_stats(alarm)
        if metric["Namespace"] == namespace
        and metric["MetricName"] == metric_name
        and _dimensions(metric) == dimensions
    ]


def _queue_name(queue: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [queue, "QueueName"]}


def _queue_of(arn: Any) -> str:
    """The logical id of the queue an `!GetAtt Queue.Arn` names."""
    assert isinstance(arn, dict) and "Fn::GetAtt" in arn, arn
    queue, attribute = arn["Fn::GetAtt"]
    assert attribute == "Arn"
    return queue


def _delivery_targets(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every schedule and EventBridge rule target of the stack, by a readable name."""
    targets: dict[str, dict[str, Any]] = {}
    for name, spec in template["Resources"].items():
        if spec["Type"] == "AWS::Events::Rule":
            for target in spec["Properties"]["Targets"]:
                targets[f"{name}/{target['Id']}"] = target
        if spec["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for event, source in (spec["Properties"].get("Events") or {}).items():
                if source["Type"] in ("Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent"):
                    targets[f"{name}/{event}"] = source["Properties"]
        if spec["Type"] == "AWS::Scheduler::Schedule":
            targets[name] = spec["Properties"]["Target"]
    return targets


def test_every_alarm_notifies_the_alarm_topic_both_ways(template):
    for name, alarm in _alarms(template).items():
        assert alarm["AlarmActions"] == [TOPIC], name
        assert alarm["OKActions"] == [TOPIC], name


def test_every_queue_has_an_age_of_oldest_message_alarm_with_a_threshold_parameter(template):
    queues = resources_of(template, "AWS::SQS::Queue")
    assert len(queues) >= 7
    for queue in queues:
        alarms = _alarms_on(template, "AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName=_queue_name(queue))
        assert len(alarms) == 1, queue
        threshold = _alarms(template)[alarms[0]]["Threshold"]
        # The operator tunes it per stack: a parameter with a default.
        assert set(threshold) == {"Ref"}, queue
        assert int(template["Parameters"][threshold["Ref"]]["Default"]) > 0


def test_dead_letter_queues_keep_their_messages_longer_than_their_age_alarm(template):
    retention = {
        name: spec["Properties"]["MessageRetentionPeriod"]
        for name, spec in resources_of(template, "AWS::SQS::Queue").items()
    }
    parameter = template["Parameters"]["DeadLetterAgeAlarmSeconds"]
    assert parameter["MaxValue"] <= min(retention.values())
    assert parameter["Default"] < min(retention.values())


def test_every_schedule_and_rule_target_has_a_retry_policy_and_an_alarmed_dead_letter_queue(template):
    targets = _delivery_targets(template)
    assert {
        "MemberSyncFunction/Reconcile",
        "MemberSyncFunction/RefreshTokens",
        "BackfillOnConnectRule/member-jobs",
    } <= set(targets)
    for name, target in targets.items():
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1, name
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 60, name
        queue = _queue_of(target["DeadLetterConfig"]["Arn"])
        assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue", name
        visible = _alarms_on(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=_queue_name(queue))
        assert len(visible) == 1, name
        alarm = _alarms(template)[visible[0]]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold"), name


def test_webhooks_refused_for_a_bad_signature_raise_an_alarm_per_webhook(template):
    # The dimensions the intake writes (tests/integration/test_webhook_intake.py checks the line).
    for webhook in ("partner", "member"):
        alarms = _alarms_on(
            template, "WhoopBridge", SIGNATURE_REFUSED_METRIC, service="webhook_intake", webhook=webhook
        )
        assert len(alarms) == 1, webhook
        alarm = _alarms(template)[alarms[0]]
        assert alarm["Statistic"] == "Sum"
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert template["Parameters"][alarm["Threshold"]["Ref"]]["Default"] >= 1


def test_an_audit_record_not_written_raises_an_alarm_from_either_api(template):
    # The service dimension each API function writes (its POWERTOOLS_SERVICE_NAME).
    functions = {"LabApiFunction": "lab_api", "MemberApiFunction": "member_api"}
    resources = template["Resources"]
    for function, service in functions.items():
        assert resources[function]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == service
        assert _alarms_on(template, "WhoopBridge", NOT_WRITTEN_METRIC, service=service) == [
            "AuditRecordNotWrittenAlarm"
        ], service
    alarm = _alarms(template)["AuditRecordNotWrittenAlarm"]
    assert {query["MetricStat"]["Period"] for query in alarm["Metrics"] if "MetricStat" in query} == {300}
    assert {query["MetricStat"]["Stat"] for query in alarm["Metrics"] if "MetricStat" in query} == {"Sum"}
    assert (alarm["EvaluationPeriods"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        1,
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["TreatMissingData"] == "notBreaching"


def test_every_api_has_a_4xx_rate_alarm(template):
    apis = resources_of(template, "AWS::Serverless::Api")
    assert apis
    for name, api in apis.items():
        dimensions = {"ApiName": api["Properties"]["Name"], "Stage": api["Properties"]["StageName"]}
        alarms = set(_alarms_on(template, "AWS/ApiGateway", "4XXError", **dimensions))
        assert len(alarms) == 1, name
        # A rate: the same alarm reads the request count of the same API and stage.
        assert alarms == set(_alarms_on(template, "AWS/ApiGateway", "Count", **dimensions)), name


def test_every_function_is_watched_for_throttles(template):
    for name in resources_of(template, "AWS::Serverless::Function"):
        assert len(_alarms_on(template, "AWS/Lambda", "Throttles", FunctionName={"Ref": name})) == 1, name
    for alarm in _alarms(template).values():
        queries = alarm.get("Metrics") or []
        # Metric math: exactly one query is the alarm's value, and an alarm reads at most 10 metrics.
        if queries:
            assert sum(query.get("ReturnData", True) for query in queries) == 1
            assert len(queries) <= 10
            expression = next(query for query in queries if query.get("ReturnData", True))["Expression"]
            text = expression if isinstance(expression, str) else expression["Fn::Sub"]
            for query in queries:
                if "MetricStat" in query:
                    assert query["Id"] in text
