"""Partner webhook signatures (`WHOOP-Signed`, docs/whoop.md#webhook-signatures).

The signature is the lowercase hex HMAC-SHA256 of the raw body bytes keyed with the
webhook signing secret. A webhook that fails verification is answered 401 by the intake,
so every case here is one WHOOP (or an attacker) can actually send.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from whoop_bridge.whoop.signatures import sign_partner, verify_partner

SECRET = "whsec_test"
BODY = b'{"event_type":"lab_requisition.created","resource_id":"3fa85f64-5717-4562-b3fc-2c963f66afa6"}'
# Computed once (Python hmac and `openssl dgst -sha256 -hmac whsec_test`) and frozen here so
# that any change of algorithm, key encoding or output format is caught.
BODY_SIGNATURE = "9c19a17e936a666241261fab351bcc20d3889baf584ae83e34c902ecbce80cbc"


def documented_signature(body: bytes, secret: str) -> str:
    """docs/whoop.md#webhook-signatures, written out independently of the code under test."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def test_fixed_vector_matches_the_documented_algorithm():
    assert documented_signature(BODY, SECRET) == BODY_SIGNATURE
    assert sign_partner(BODY, SECRET) == BODY_SIGNATURE
    assert verify_partner(BODY, BODY_SIGNATURE, SECRET) is True


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"event_type":"clinical_report_review.requested","resource_id":"0b6f0a52-1111-4a4a-9f9f-000000000001"}',
        '{"note":"caf\u00e9 \u2014 \u00fc"}'.encode(),
        b"",
    ],
)
def test_sign_and_verify_agree_with_the_documented_algorithm(body):
    expected = documented_signature(body, SECRET)
    assert sign_partner(body, SECRET) == expected
    assert expected == expected.lower() and len(expected) == 64
    assert verify_partner(body, expected, SECRET) is True


@pytest.mark.parametrize("index", [0, len(BODY) // 2, len(BODY) - 1])
def test_one_flipped_byte_of_the_body_is_refused(index):
    tampered = bytearray(BODY)
    tampered[index] ^= 0x01
    assert verify_partner(bytes(tampered), BODY_SIGNATURE, SECRET) is False


def test_signature_made_with_another_secret_is_refused():
    forged = documented_signature(BODY, "whsec_other")
    assert verify_partner(BODY, forged, SECRET) is False
    assert verify_partner(BODY, BODY_SIGNATURE, "whsec_other") is False


@pytest.mark.parametrize("header", [None, ""])
def test_missing_or_empty_header_is_false_not_an_exception(header):
    assert verify_partner(BODY, header, SECRET) is False


@pytest.mark.parametrize(
    "header",
    [
        BODY_SIGNATURE[:-1],  # one character short
        BODY_SIGNATURE + "0",  # one character long
        BODY_SIGNATURE[:32],  # half
        BODY_SIGNATURE + BODY_SIGNATURE,
        "sha256=" + BODY_SIGNATURE,  # a prefixed form WHOOP does not send
        " " + BODY_SIGNATURE,
    ],
)
def test_wrong_length_header_is_false(header):
    assert verify_partner(BODY, header, SECRET) is False


@pytest.mark.parametrize(
    "header",
    [
        "z" * 64,
        BODY_SIGNATURE[:-1] + "g",
        "\u00e9" * 64,  # non-ASCII, right number of characters
        BODY_SIGNATURE[:30] + "    " + BODY_SIGNATURE[34:],  # whitespace that bytes.fromhex would skip
    ],
)
def test_non_hex_header_of_the_right_length_is_false(header):
    assert len(header) == 64
    assert verify_partner(BODY, header, SECRET) is False


def test_uppercase_hex_of_the_right_value_is_accepted():
    # WHOOP documents lowercase hex. The bridge compares the decoded bytes, so the same
    # digest written in uppercase is also accepted: this is deliberate leniency (it is the
    # same secret-derived value, so it proves possession of the secret just as well).
    assert verify_partner(BODY, BODY_SIGNATURE.upper(), SECRET) is True


def test_body_with_a_trailing_newline_is_a_different_body():
    assert verify_partner(BODY + b"\n", BODY_SIGNATURE, SECRET) is False
    assert sign_partner(BODY + b"\n", SECRET) != BODY_SIGNATURE


# Data webhooks (docs/whoop.md#webhook-signatures): base64 HMAC-SHA256 of timestamp + raw body, keyed with
# the app's client secret. Frozen from `openssl dgst -sha256 -hmac local-member-secret -binary | base64`.
MEMBER_SECRET = "local-member-secret"
MEMBER_TIMESTAMP = "1795313884000"
MEMBER_BODY = b'{"user_id":10001,"id":"5f0c8f2e-9d4b-4b7a-8e21-3c6d9a1b7e40","type":"sleep.updated","trace_id":"d3709ee7-104e-4f70-a928-2932964b017b"}'
MEMBER_SIGNATURE = "HIfMEh8ymKtO43SJ9yX2/BNRhWWq5eWNYDKc9cZ2EE0="


def test_member_signature_matches_the_frozen_openssl_value():
    from whoop_bridge.whoop.signatures import sign_member, verify_member

    assert sign_member(MEMBER_TIMESTAMP, MEMBER_BODY, MEMBER_SECRET) == MEMBER_SIGNATURE
    assert verify_member(MEMBER_TIMESTAMP, MEMBER_BODY, MEMBER_SIGNATURE, MEMBER_SECRET)


@pytest.mark.parametrize(
    ("timestamp", "body", "signature", "secret"),
    [
        ("1795313884001", MEMBER_BODY, MEMBER_SIGNATURE, MEMBER_SECRET),  # the timestamp is signed
        (MEMBER_TIMESTAMP, MEMBER_BODY + b" ", MEMBER_SIGNATURE, MEMBER_SECRET),
        (MEMBER_TIMESTAMP, MEMBER_BODY, MEMBER_SIGNATURE, "another-secret"),
        (MEMBER_TIMESTAMP, MEMBER_BODY, MEMBER_SIGNATURE[:-2], MEMBER_SECRET),
        (MEMBER_TIMESTAMP, MEMBER_BODY, "not base64!", MEMBER_SECRET),
        (MEMBER_TIMESTAMP, MEMBER_BODY, "", MEMBER_SECRET),
        (MEMBER_TIMESTAMP, MEMBER_BODY, None, MEMBER_SECRET),
        (None, MEMBER_BODY, MEMBER_SIGNATURE, MEMBER_SECRET),
        # A hex digest of the same HMAC (the partner format) is not the data-webhook format.
        (
            MEMBER_TIMESTAMP,
            MEMBER_BODY,
            hmac.new(MEMBER_SECRET.encode(), MEMBER_TIMESTAMP.encode() + MEMBER_BODY, hashlib.sha256).hexdigest(),
            MEMBER_SECRET,
        ),
    ],
)
def test_member_signature_refuses_anything_else(timestamp, body, signature, secret):
    from whoop_bridge.whoop.signatures import verify_member

    assert not verify_member(timestamp, body, signature, secret)
