"""The guard of the raw API Gateway event (whoop_bridge.api.guard), without a stack."""

from __future__ import annotations

import base64
import json

import pytest

from whoop_bridge.api.guard import MAX_DEPTH, MAX_SAFE_INTEGER, Refused, guard, proxy_answer, resolve


def post(body: str | None, content_type: str | None = "application/json", **fields) -> dict:
    headers = {"Content-Type": content_type} if content_type else {}
    return {"httpMethod": "POST", "headers": headers, "body": body, **fields}


def refused(event: dict) -> Refused:
    with pytest.raises(Refused) as caught:
        guard(event)
    return caught.value


def test_a_json_object_passes_unchanged():
    event = post('{"a": [1, 2.5, "x", null, true]}')
    guard(event)
    assert event["body"] == '{"a": [1, 2.5, "x", null, true]}'


def test_reads_are_not_checked_for_a_body():
    guard({"httpMethod": "GET", "headers": {}, "body": "not json"})


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=utf-8", None),
        ('Application/JSON;charset="UTF8"', None),
        ("text/plain", 415),
        ("application/json; charset=latin-1", 415),
    ],
)
def test_the_media_type_must_be_json_in_utf8(content_type, status):
    event = post("{}", content_type)
    if status is None:
        guard(event)
    else:
        problem = refused(event)
        assert (problem.status, problem.field, problem.error) == (415, "header.Content-Type", "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (None, "body"),
        ("", "body"),
        ("[1]", "body"),
        ("{", "body"),
        ('{"a": 1, "a": 2}', "body"),
        ('{"n": NaN}', "n"),
        ('{"x": {"n": Infinity}}', "x.n"),
        ('{"n": 1e999}', "n"),
        (json.dumps({"items": [0, MAX_SAFE_INTEGER + 1]}), "items.1"),
        ('{"s": "\\ud800"}', "s"),
        ("[" * 5000 + "]" * 5000, "body"),
        (json.dumps({"a": None}), None),
    ],
)
def test_bodies_no_route_can_read_are_400_at_their_place(body, field):
    event = post(body)
    if field is None:
        guard(event)
        return
    problem = refused(event)
    assert (problem.status, problem.field) == (400, field)


def test_nesting_beyond_the_limit_is_refused():
    body = '{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1)
    assert refused(post(body)).text == f"nested deeper than {MAX_DEPTH} levels"


def test_a_base64_body_is_decoded_for_the_event_handler():
    event = post(base64.b64encode('{"é": 1}'.encode()).decode(), isBase64Encoded=True)
    guard(event)
    assert event["body"] == '{"é": 1}' and event["isBase64Encoded"] is False
    assert refused(post(base64.b64encode(b"\xff").decode(), isBase64Encoded=True)).text == "not UTF-8 text"


def test_a_query_parameter_given_twice_is_refused_by_name():
    event = {"httpMethod": "GET", "multiValueQueryStringParameters": {"limit": ["1", "2"], "since": ["x"]}}
    assert refused(event).field == "query.limit"


def test_a_refusal_is_a_problem_answer_without_running_the_app():
    class NeverCalled:
        def resolve(self, event, context):
            raise AssertionError("the app ran")

    answer = resolve(NeverCalled(), post("[]"), None)  # type: ignore[arg-type]
    assert answer["statusCode"] == 400
    assert answer["multiValueHeaders"]["Cache-Control"] == ["no-store"]
    assert json.loads(answer["body"]) == {
        "error": "invalid_request",
        "problems": [{"field": "body", "problem": "must be a JSON object"}],
    }


def test_a_proxy_answer_is_json_with_every_header():
    from whoop_bridge.api.bodies import busy

    answer = proxy_answer(busy("retry"))
    assert answer["multiValueHeaders"]["Retry-After"] == ["2"]
    assert answer["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert json.loads(answer["body"])["retryable"] is True
