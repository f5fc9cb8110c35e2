"""WHOOP's token endpoint refusing the code exchange: the client raises a typed error that
keeps WHOOP's OAuth `error` code (a short word), never its free-text description."""

from __future__ import annotations

import pytest
import responses

from whoop_bridge.whoop.member import TOKEN_PATH, MemberApi, UserLimitReached

BASE = "https://whoop.example"


@responses.activate
@pytest.mark.parametrize("code", ["access_denied", None])
def test_the_user_limit_at_the_code_exchange_keeps_whoops_error_code(code):
    body = {"error_description": "This application has reached its user limit (Jane Doe)"}
    if code is not None:
        body["error"] = code
    responses.post(f"{BASE}{TOKEN_PATH}", json=body, status=400)

    with pytest.raises(UserLimitReached) as refused:
        MemberApi(BASE, "client", "secret").exchange_code("c", "https://bridge.example/cb")

    assert refused.value.error_code == code
    assert "Jane" not in str(refused.value)
