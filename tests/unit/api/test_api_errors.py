"""The one mapping from the layer's exceptions to the APIs' answers (whoop_bridge.api.errors)
and the answer bodies (whoop_bridge.api.bodies), without a stack."""

from __future__ import annotations

import logging

import pytest

from whoop_bridge.api import errors
from whoop_bridge.api.bodies import busy, json_response, not_found, problem
from whoop_bridge.whoop.budget import BudgetExhausted


def answered(answers: errors.Answers, error: Exception) -> tuple[int, dict, dict]:
    """What the API answers for `error`: the entry for its class or its nearest base, as the event handler looks it up."""
    answer = next(answers[cls] for cls in type(error).__mro__ if cls in answers)
    response = answer(error)
    return response.status_code, response.body, response.headers


def by_name(answers: errors.Answers) -> dict[str, type[Exception]]:
    return {cls.__name__: cls for cls in answers}


def test_every_answer_is_json_and_never_cached():
    for response in (json_response(200, {}), problem(400, [{"field": "body", "problem": "x"}]), not_found("no x")):
        assert response.content_type == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
    assert busy("retry").headers["Retry-After"] == "2"


def test_the_lab_errors_and_their_answers():
    lab = errors.for_lab()
    kinds = by_name(lab)
    assert answered(lab, kinds["NotFound"]("service request x"))[:2] == (
        404,
        {"error": "not_found", "message": "no service request x"},
    )
    status, body, _ = answered(lab, kinds["TransitionForbidden"]("not now", ["ATTENDED"], "BOOKED"))
    assert status == 409 and body == {
        "error": "transition_forbidden",
        "message": "not now",
        "task_business_status": "BOOKED",
        "allowed_next_statuses": ["ATTENDED"],
    }
    status, body, headers = answered(lab, kinds["Busy"]())
    assert (status, body["error"], body["retryable"], headers["Retry-After"]) == (409, "busy", True, "2")
    assert answered(lab, kinds["BadQuery"]("since is not a time"))[:2] == (
        400,
        {"error": "invalid_request", "problems": [{"field": "query", "problem": "since is not a time"}]},
    )
    assert answered(lab, kinds["TestDataUnavailable"]("production"))[:2] == (
        409,
        {"error": "test_data_unavailable", "message": "production"},
    )
    assert answered(lab, kinds["NotResumable"]("the test's workflow is closed", "closed"))[:2] == (
        409,
        {"error": "not_resumable", "message": "the test's workflow is closed", "state": "closed"},
    )


def test_whoop_unreachable_or_the_budget_spent_is_a_retryable_503_on_the_lab_api():
    status, body, headers = answered(errors.for_lab(), BudgetExhausted(12.0, "minute"))
    assert (status, body["error"], body["retryable"], headers["Retry-After"]) == (503, "whoop_unavailable", True, "30")


@pytest.mark.parametrize("name", ["SecretNotConfigured", "ConfigurationError", "WhoopUnauthorized"])
def test_the_lab_api_fails_closed_on_its_credentials_and_logs_why(name):
    lab = errors.for_lab()
    error = by_name(lab)[name]("partner_secret_arn is not set")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    errors.logger.addHandler(handler)
    try:
        status, body, _ = answered(lab, error)
    finally:
        errors.logger.removeHandler(handler)
    assert status == 503 and body["error"] == "not_configured" and "partner credentials" in body["message"]
    assert [record.error_type for record in records] == [name]  # type: ignore[attr-defined]


def test_the_member_errors_and_their_answers():
    members = errors.for_members()
    kinds = by_name(members)
    status, body, _ = answered(members, kinds["ReturnUrlNotAllowed"]("https://evil.example"))
    assert status == 400 and body["problems"][0]["field"] == "return_url"
    assert "evil" not in str(body)
    assert answered(members, kinds["InvalidPageToken"]("not a page token"))[1]["problems"] == [
        {"field": "query.next_token", "problem": "not a page token"}
    ]
    assert answered(members, kinds["InvalidWindow"]("end must be after start"))[1]["problems"] == [
        {"field": "query.end", "problem": "end must be after start"}
    ]
    secret = answered(members, kinds["SecretNotConfigured"]("member secret holds placeholders"))
    setting = answered(members, kinds["ConfigurationError"]("bad setting"))
    assert secret[:2] == (
        503,
        {"error": "not_configured", "message": "the WHOOP member app credentials are not configured"},
    )
    assert setting[:2] == (
        503,
        {"error": "not_configured", "message": "a stack setting is invalid; the function's log names it"},
    )


def test_the_member_api_leaves_whoop_errors_to_the_fault_answer():
    assert not {"WhoopTransientError", "WhoopUnauthorized"} & set(by_name(errors.for_members()))
