"""webhook_intake: POST /webhooks/partner through its real handler, AWS from moto.

What WHOOP notices is the status code; what the operator notices is what lands on
PartnerEventsQueue (the stack here has no queue poller, so the queue is read directly).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json

import pytest

from integration_harness import SAMPLE_REQUISITION_ID, load_event, log_records, with_body

WEBHOOK_SECRET = "local-webhook-secret"


def signed(body: str, secret: str = WEBHOOK_SECRET) -> dict:
    """The signed sample webhook carrying `body`, signed as WHOOP signs it."""
    event = with_body(load_event("webhook_partner_requisition_created.json"), body)
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    event["headers"]["WHOOP-Signed"] = signature
    event["multiValueHeaders"]["WHOOP-Signed"] = [signature]
    return event


@pytest.fixture(autouse=True)
def empty_queue(bridge):
    bridge.queue_messages()
    yield


def test_the_samples_are_signed_with_the_emulators_webhook_secret(bridge):
    assert bridge.emulator.webhook_secret == WEBHOOK_SECRET
    for name in ("webhook_partner_requisition_created.json", "webhook_partner_unknown_event.json"):
        event = load_event(name)
        expected = hmac.new(WEBHOOK_SECRET.encode(), event["body"].encode(), hashlib.sha256).hexdigest()
        assert event["headers"]["WHOOP-Signed"] == expected, name


def test_signed_webhook_is_answered_204_and_enqueued_once(bridge, logs):
    event = load_event("webhook_partner_requisition_created.json")

    answer = bridge.invoke("WebhookIntakeFunction", event)

    assert answer["statusCode"] == 204
    assert answer["body"] == ""
    messages = bridge.queue_messages()
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"]) == {
        "event_type": "lab_requisition.created",
        "resource_id": SAMPLE_REQUISITION_ID,
    }
    # The signature and the raw body never reach the logs.
    text = logs.getvalue()
    assert event["headers"]["WHOOP-Signed"] not in text
    assert any(record["message"] == "partner webhook enqueued" for record in log_records(logs))


def test_bad_signature_is_401_and_nothing_is_enqueued_or_stored(bridge):
    event = load_event("webhook_partner_bad_signature.json")

    answer = bridge.invoke("WebhookIntakeFunction", event)

    assert answer["statusCode"] == 401
    assert json.loads(answer["body"]) == {"error": "bad signature"}
    assert bridge.queue_messages() == []
    assert bridge.requisition_item(SAMPLE_REQUISITION_ID) is None


def test_missing_signature_header_is_401(bridge):
    event = load_event("webhook_partner_requisition_created.json")
    del event["headers"]["WHOOP-Signed"]
    del event["multiValueHeaders"]["WHOOP-Signed"]

    answer = bridge.invoke("WebhookIntakeFunction", event)

    assert answer["statusCode"] == 401
    assert json.loads(answer["body"]) == {"error": "missing signature"}
    assert bridge.queue_messages() == []


def test_signature_header_name_is_matched_whatever_its_case(bridge):
    event = load_event("webhook_partner_requisition_created.json")
    event["headers"]["whoop-signed"] = event["headers"].pop("WHOOP-Signed")

    assert bridge.invoke("WebhookIntakeFunction", event)["statusCode"] == 204
    assert len(bridge.queue_messages()) == 1


def test_signature_over_other_bytes_is_401(bridge):
    """Re-serialising the JSON (a space after each colon) changes the signed bytes."""
    event = load_event("webhook_partner_requisition_created.json")
    event["body"] = json.dumps(json.loads(event["body"]))
    assert event["body"] != load_event("webhook_partner_requisition_created.json")["body"]

    assert bridge.invoke("WebhookIntakeFunction", event)["statusCode"] == 401
    assert bridge.queue_messages() == []


def test_unknown_event_type_is_204_and_ignored(bridge, logs):
    event = load_event("webhook_partner_unknown_event.json")

    answer = bridge.invoke("WebhookIntakeFunction", event)

    assert answer["statusCode"] == 204
    assert answer["body"] == ""
    assert bridge.queue_messages() == []
    assert any(
        record["message"] == "partner webhook ignored: unknown event type" and record["event_type"] == "something.else"
        for record in log_records(logs)
    )


@pytest.mark.parametrize("body", ["this is not json", '{"event_type": "lab_requisition.created"', "[]"])
def test_correctly_signed_body_that_is_not_the_webhook_shape_is_400(bridge, body):
    answer = bridge.invoke("WebhookIntakeFunction", signed(body))

    assert answer["statusCode"] == 400
    assert answer["headers"]["Content-Type"] == "application/json"
    assert json.loads(answer["body"])["error"]
    assert bridge.queue_messages() == []


def test_base64_encoded_body_is_verified_on_the_decoded_bytes(bridge):
    event = copy.deepcopy(load_event("webhook_partner_requisition_created.json"))
    raw = event["body"].encode()
    event["body"] = base64.b64encode(raw).decode()
    event["isBase64Encoded"] = True

    answer = bridge.invoke("WebhookIntakeFunction", event)

    assert answer["statusCode"] == 204
    messages = bridge.queue_messages()
    assert [json.loads(message["Body"]) for message in messages] == [json.loads(raw)]


def test_base64_body_signed_over_its_encoded_text_is_401(bridge):
    raw = load_event("webhook_partner_requisition_created.json")["body"]
    encoded = base64.b64encode(raw.encode()).decode()
    event = signed(encoded)  # signature over the base64 text, not over what WHOOP sent
    event["isBase64Encoded"] = True

    assert bridge.invoke("WebhookIntakeFunction", event)["statusCode"] == 401
    assert bridge.queue_messages() == []


def _emf_lines(output: str, metric: str) -> list[dict]:
    """The embedded-metric-format lines in `output` that carry `metric`."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [line for line in lines if metric in line]


def test_a_webhook_refused_for_a_bad_signature_is_counted_for_the_alarm(bridge, capsys):
    # A wrong or rotated secret refuses every webhook with 401: only this metric shows it.
    capsys.readouterr()
    answer = bridge.invoke("WebhookIntakeFunction", signed('{"event_type": "x", "resource_id": "y"}', "rotated"))

    assert answer["statusCode"] == 401
    (line,) = _emf_lines(capsys.readouterr().out, "WebhookSignatureRefused")
    assert line["WebhookSignatureRefused"] == [1.0]
    assert line["service"] == "webhook_intake"
    assert line["webhook"] == "partner"
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "WhoopBridge"
    assert sorted(directive["Dimensions"][0]) == ["service", "webhook"]
    assert directive["Metrics"] == [{"Name": "WebhookSignatureRefused", "Unit": "Count"}]


def test_an_accepted_webhook_is_not_counted_as_refused(bridge, capsys):
    capsys.readouterr()
    assert (
        bridge.invoke("WebhookIntakeFunction", load_event("webhook_partner_requisition_created.json"))["statusCode"]
        == 204
    )
    assert _emf_lines(capsys.readouterr().out, "WebhookSignatureRefused") == []
