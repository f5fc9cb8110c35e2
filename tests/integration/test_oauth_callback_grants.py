"""oauth_callback's role is cut to what it uses (tests/template/test_least_privilege.py): the
callback's real AWS calls, recorded on the local stack, fit that grant. Every DynamoDB call
is an allowed action on MemberTable with an allowed partition key (no Query, no Scan, no
other table), and KMS is only asked to seal, never to open, a member's tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.client
import pytest
import requests

from integration_harness import SAMPLE_CODE, SAMPLE_STATE, load_event
from local.cfn import load_template

FUNCTION = "OAuthCallbackFunction"
TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _grant() -> tuple[set[str], list[str]]:
    """The actions and partition-key patterns the template gives the callback on MemberTable."""
    policies = load_template()["Resources"][FUNCTION]["Properties"]["Policies"]
    (statement,) = [
        statement
        for policy in policies
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
        if statement["Resource"] == {"Fn::GetAtt": ["MemberTable", "Arn"]}
    ]
    actions = {action.removeprefix("dynamodb:") for action in statement["Action"]}
    return actions, statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]


@pytest.fixture
def calls(monkeypatch) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """(service, operation, parameters) of every AWS call made while the test runs."""
    recorded: list[tuple[str, str, dict[str, Any]]] = []
    original = botocore.client.BaseClient._make_api_call

    def record(client: Any, operation: str, parameters: dict[str, Any]) -> Any:
        recorded.append((client.meta.service_model.service_name, operation, parameters))
        return original(client, operation, parameters)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    yield recorded


def _dynamodb_uses(operation: str, parameters: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(action, table, partition key value) of one DynamoDB call, item by item."""
    if operation == "TransactWriteItems":
        for item in parameters["TransactItems"]:
            ((kind, body),) = item.items()
            key = body.get("Key") or body.get("Item")
            yield TRANSACTION_ACTIONS[kind], body["TableName"], key["pk"]
    elif operation in ("BatchWriteItem", "BatchGetItem"):
        for table, requests_ in parameters["RequestItems"].items():
            for request in requests_ if isinstance(requests_, list) else requests_["Keys"]:
                key = (
                    request.get("DeleteRequest", {}).get("Key") or request.get("PutRequest", {}).get("Item") or request
                )
                yield operation, table, key["pk"]
    else:
        key = parameters.get("Key") or parameters.get("Item") or {}
        yield operation, parameters["TableName"], key.get("pk")


def _text(value: Any) -> str:
    return value["S"] if isinstance(value, dict) else str(value)


def test_a_callback_makes_only_the_calls_its_role_allows(bridge, calls):
    answer = bridge.invoke("MemberApiFunction", load_event("member_api_create_connection.json"))
    authorization_url = json.loads(answer["body"])["authorization_url"]
    bridge.emulator.redirect_uris[:] = [parse_qs(urlsplit(authorization_url).query)["redirect_uri"][0]]
    consent = requests.get(authorization_url, allow_redirects=False, timeout=10)
    redirect = {key: values[0] for key, values in parse_qs(urlsplit(consent.headers["Location"]).query).items()}
    calls.clear()

    event = load_event(
        "oauth_callback_approved.json", **{SAMPLE_STATE: redirect["state"], SAMPLE_CODE: redirect["code"]}
    )
    connected = bridge.invoke(FUNCTION, event)
    repeated = bridge.invoke(FUNCTION, event)  # a reload: the recorded outcome again

    assert connected["statusCode"] in (200, 302) and repeated["statusCode"] in (200, 302)
    actions, patterns = _grant()
    member_table = bridge.stack.output("MemberTable")
    used = [
        use
        for service, operation, parameters in calls
        if service == "dynamodb"
        for use in _dynamodb_uses(operation, parameters)
    ]
    assert {action for action, _, _ in used} >= {"GetItem", "PutItem", "UpdateItem"}
    for action, table, partition in used:
        assert action in actions, action
        assert table == member_table, table
        assert any(fnmatchcase(_text(partition), pattern) for pattern in patterns), _text(partition)
    kms = [(operation, parameters) for service, operation, parameters in calls if service == "kms"]
    assert [operation for operation, _ in kms] == ["Encrypt"]
    assert kms[0][1]["EncryptionContext"]["purpose"] == "whoop-member-tokens"
