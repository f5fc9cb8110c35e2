"""The service-request state machine as deployed (statemachines/service_request.asl.json
with the template's DefinitionSubstitutions applied).

What a deployer notices: the definition deploys (valid JSON, every state named exists and
is reachable), no wait lasts for ever, every WHOOP call retries transient failures, and
every failure ends in a recorded failure and a failed execution (which the alarm watches)
rather than a silent stop.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from local.cfn import load_template
from whoop_bridge.lab.lifecycle import STEPS
from whoop_bridge.whoop.http import WhoopTransientError

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachines" / "service_request.asl.json"
TASKS_APP = ROOT / "functions" / "service_request_tasks" / "app.py"
WAIT_FOR_TOKEN = "arn:aws:states:::lambda:invoke.waitForTaskToken"
WHOOP_ACTIONS = {"set_status", "submit_diagnostic_report"}
FAKE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fake-{key}"


def substitutions() -> dict[str, str]:
    resources = load_template()["Resources"]
    machine = resources["ServiceRequestStateMachine"]["Properties"]
    assert machine["DefinitionS3Location"] == "statemachines/service_request.asl.json"
    return {key: FAKE_ARN.format(key=key) for key in machine["DefinitionSubstitutions"]}


def rendered_text() -> str:
    text = ASL_PATH.read_text()
    for key, value in substitutions().items():
        text = text.replace("${" + key + "}", value)
    return text


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(rendered_text())


@pytest.fixture(scope="module")
def states(definition) -> dict[str, dict[str, Any]]:
    return definition["States"]


def successors(state: dict[str, Any]) -> list[str]:
    names = []
    if "Next" in state:
        names.append(state["Next"])
    if "Default" in state:
        names.append(state["Default"])
    names += [choice["Next"] for choice in state.get("Choices", [])]
    names += [catcher["Next"] for catcher in state.get("Catch", [])]
    return names


def tasks(states) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in states.items() if state["Type"] == "Task"}


def action_of(state: dict[str, Any]) -> str | None:
    parameters = state.get("Parameters", {})
    return parameters.get("action") or parameters.get("Payload", {}).get("action")


def whoop_tasks(states) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in tasks(states).items() if action_of(state) in WHOOP_ACTIONS}


def waiting_tasks(states) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in tasks(states).items() if state["Resource"] == WAIT_FOR_TOKEN}


def retried_errors(state: dict[str, Any]) -> set[str]:
    return {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}


def test_every_placeholder_is_substituted_and_the_result_is_json():
    assert substitutions(), "the template gives the state machine no substitutions"
    text = rendered_text()
    assert "${" not in text
    json.loads(text)


def test_every_placeholder_in_the_definition_is_one_the_template_provides():
    used = set(re.findall(r"\$\{([^}]+)\}", ASL_PATH.read_text()))
    assert used <= set(substitutions())


def test_start_and_every_transition_name_an_existing_state(definition, states):
    assert definition["StartAt"] in states
    for name, state in states.items():
        for target in successors(state):
            assert target in states, f"{name} goes to unknown state {target}"


def test_every_state_is_reachable_from_start(definition, states):
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += successors(states[name])
    assert set(states) - seen == set()


def test_every_non_terminal_state_moves_on(states):
    for name, state in states.items():
        if state["Type"] in ("Succeed", "Fail"):
            assert not successors(state), name
        elif state["Type"] == "Choice":
            assert state.get("Default"), f"{name} has no Default: an unmatched event would fail the execution"
        else:
            assert "Next" in state or state.get("End") is True, name


def test_every_task_retries_or_is_a_wait_with_a_timeout(states):
    for name, state in tasks(states).items():
        waits_with_timeout = state["Resource"] == WAIT_FOR_TOKEN and (
            "TimeoutSecondsPath" in state or "TimeoutSeconds" in state
        )
        assert state.get("Retry") or waits_with_timeout, name


def test_every_wait_for_the_lab_has_a_timeout(states):
    waits = waiting_tasks(states)
    assert set(waits) >= {"AwaitLabEvent", "AwaitCorrection"}
    for name, state in waits.items():
        assert "TimeoutSecondsPath" in state or "TimeoutSeconds" in state, name
        assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token", name


def test_every_wait_for_the_lab_catches_its_timeout(states):
    for name, state in waiting_tasks(states).items():
        catchers = state.get("Catch", [])
        timeout_catchers = [i for i, catcher in enumerate(catchers) if "States.Timeout" in catcher["ErrorEquals"]]
        assert timeout_catchers, f"{name} does not catch States.Timeout"
        all_catchers = [i for i, catcher in enumerate(catchers) if "States.ALL" in catcher["ErrorEquals"]]
        # Catchers are tried in order: a States.ALL before the timeout would swallow it.
        assert not all_catchers or timeout_catchers[0] < all_catchers[0], name


def test_states_all_is_alone_and_last_wherever_it_appears(states):
    # The ASL rule: otherwise the definition does not deploy.
    for name, state in states.items():
        for field in ("Retry", "Catch"):
            rules = state.get(field, [])
            for index, rule in enumerate(rules):
                if "States.ALL" in rule["ErrorEquals"]:
                    assert rule["ErrorEquals"] == ["States.ALL"], (name, field)
                    assert index == len(rules) - 1, (name, field)


def test_every_whoop_call_retries_transient_failures_and_records_a_final_failure(states):
    calls = whoop_tasks(states)
    assert {action_of(state) for state in calls.values()} == WHOOP_ACTIONS
    for name, state in calls.items():
        assert WhoopTransientError.__name__ in retried_errors(state), name
        retrier = next(r for r in state["Retry"] if WhoopTransientError.__name__ in r["ErrorEquals"])
        assert retrier["MaxAttempts"] >= 1 and retrier.get("BackoffRate", 1.0) > 1.0, name
        assert any(
            catcher["ErrorEquals"] == ["States.ALL"] and catcher["Next"] == "RecordFailure"
            for catcher in state.get("Catch", [])
        ), f"{name} can fail without recording the failure"


def test_every_way_into_record_failure_carries_the_error(states):
    # RecordFailure reads $.error.Error and $.error.Cause: a path that does not put them
    # there fails inside the failure handler itself.
    record = states["RecordFailure"]["Parameters"]
    assert record["error.$"] == "$.error.Error" and record["cause.$"] == "$.error.Cause"
    for name, state in states.items():
        for catcher in state.get("Catch", []):
            if catcher["Next"] == "RecordFailure":
                assert catcher.get("ResultPath") == "$.error", name
        if state.get("Next") == "RecordFailure" and state["Type"] == "Pass":
            assert state["ResultPath"] == "$.error", name
            assert {"Error", "Cause"} <= set(state["Parameters"]), name


def test_record_failure_ends_in_a_fail_state(states):
    assert not states["RecordFailure"].get("Catch"), "a failure to record must not loop back into itself"
    name, seen = "RecordFailure", set()
    while states[name]["Type"] != "Fail":
        assert name not in seen, "RecordFailure loops"
        seen.add(name)
        assert "Next" in states[name], f"after RecordFailure, {name} ends without a Fail state"
        name = states[name]["Next"]
    assert states[name]["Type"] == "Fail"


def test_every_task_action_is_one_service_request_tasks_performs(states):
    # service_request_tasks runs `lifecycle.run_step`, which knows the steps in STEPS.
    assert "lifecycle.run_step" in TASKS_APP.read_text()
    actions = set(STEPS)
    for name, state in tasks(states).items():
        assert action_of(state) in actions, f"{name} asks for an action the function does not have"
