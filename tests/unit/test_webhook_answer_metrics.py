"""Every answer of the webhook intake is counted for the dashboard (`Webhooks`, dimensions
`webhook` = partner|member and `outcome` = accepted|refused|unavailable). The secret, the
signature check and the queue are replaced: no AWS."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from fakes.emf import points

from whoop_bridge import webhooks
from whoop_bridge.secrets import SecretNotConfigured


@pytest.fixture
def intake(monkeypatch):
    """The intake with a readable secret, every signature good, and a queue kept in a list."""
    sent = []
    config = SimpleNamespace(partner_webhook_secret_arn="arn:secret", member_secret_arn="arn:member")
    monkeypatch.setattr(webhooks, "settings", lambda: config)
    monkeypatch.setattr(webhooks, "read_secret", lambda arn, keys: dict.fromkeys(keys, "s3cret"))
    monkeypatch.setattr(webhooks, "verify_partner", lambda body, signature, secret: signature == "good")
    monkeypatch.setattr(webhooks, "_enqueue", lambda setting, message: sent.append(message))
    return sent


def partner(body: dict, signature: str = "good") -> dict:
    return {"body": json.dumps(body), "headers": {"WHOOP-Signed": signature}}


def test_each_partner_answer_is_counted_by_its_outcome(intake, capsys):
    capsys.readouterr()
    answers = [
        webhooks.accept_partner_webhook(partner({"event_type": "lab_requisition.created", "resource_id": "r-1"})),
        webhooks.accept_partner_webhook(partner({"event_type": "lab_requisition.created"})),
        webhooks.accept_partner_webhook(partner({"event_type": "x", "resource_id": "r-1"}, signature="forged")),
    ]

    assert [answer.status for answer in answers] == [204, 400, 401]
    assert points(capsys.readouterr().out, "Webhooks") == [
        ({"webhook": "partner", "outcome": "accepted"}, 1.0),
        ({"webhook": "partner", "outcome": "refused"}, 1.0),
        ({"webhook": "partner", "outcome": "refused"}, 1.0),
    ]
    assert intake == [{"event_type": "lab_requisition.created", "resource_id": "r-1"}]


def test_a_member_webhook_refused_or_not_configured_is_counted_as_such(intake, monkeypatch, capsys):
    capsys.readouterr()
    refused = webhooks.accept_member_webhook({"body": "{}", "headers": {}})

    def not_configured(arn, keys):
        raise SecretNotConfigured("member app secret holds placeholders")

    monkeypatch.setattr(webhooks, "read_secret", not_configured)
    unavailable = webhooks.accept_member_webhook(
        {"body": "{}", "headers": {"X-WHOOP-Signature": "sig", "X-WHOOP-Signature-Timestamp": "1796000000000"}}
    )

    assert (refused.status, unavailable.status) == (401, 503)
    assert points(capsys.readouterr().out, "Webhooks") == [
        ({"webhook": "member", "outcome": "refused"}, 1.0),
        ({"webhook": "member", "outcome": "unavailable"}, 1.0),
    ]


def test_an_error_escaping_the_intake_is_counted_as_unavailable_and_raised(intake, monkeypatch, capsys):
    def queue_down(setting, message):
        raise RuntimeError("SQS unreachable")

    monkeypatch.setattr(webhooks, "_enqueue", queue_down)
    capsys.readouterr()

    with pytest.raises(RuntimeError):
        webhooks.accept_partner_webhook(partner({"event_type": "lab_requisition.created", "resource_id": "r-1"}))

    assert points(capsys.readouterr().out, "Webhooks") == [({"webhook": "partner", "outcome": "unavailable"}, 1.0)]
