"""Partner documents at the edges: WHOOP's document routes as the emulator answers them, the
partner client reading them, and which `based_on` references the bridge treats as documents."""

from __future__ import annotations

import base64

import pytest
import requests

from local.emulator import SAMPLE_DOCUMENT, WhoopEmulator
from whoop_bridge import caches
from whoop_bridge.lab.documents import content_type, references_of
from whoop_bridge.models.lab_order import Reference
from whoop_bridge.whoop.http import ClientOptions, WhoopNotFound
from whoop_bridge.whoop.partner import PartnerClient


@pytest.fixture(autouse=True)
def no_cached_tokens():
    caches.reset_all()
    yield
    caches.reset_all()


@pytest.fixture
def emulator():
    emu = WhoopEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def client(emulator):
    credentials = {"client_id": emulator.client_id, "client_secret": emulator.client_secret}
    return PartnerClient(
        emulator.base_url,
        lambda: dict(credentials),
        ClientOptions(timeout_seconds=5, max_retries=1, backoff_seconds=0.01),
    )


def test_a_document_reads_as_whoops_partner_document_and_its_content_as_the_same_bytes(emulator, client):
    document = emulator.add_document(document_type="LAB_ORDER_FORM", content=b"%PDF-1.7 order form")

    fetched = client.get_document(document["id"])
    content = client.get_document_content(document["id"])

    assert fetched == document
    # Required fields only: url and bundle_id are absent (not null) when WHOOP has none.
    assert set(fetched) == {"id", "document_type", "created_at", "updated_at"}
    assert fetched["document_type"] == "LAB_ORDER_FORM"
    assert content == b"%PDF-1.7 order form"
    paths = [call["path"] for call in emulator.calls_to("GET", "/document/")]
    assert paths == [
        f"/developer/v2/partner/document/{document['id']}",
        f"/developer/v2/partner/document/{document['id']}/content",
    ]


def test_the_default_document_is_a_small_pdf(emulator, client):
    document = emulator.add_document()
    content = client.get_document_content(document["id"])
    assert content == SAMPLE_DOCUMENT and content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF")


def test_a_link_only_document_has_its_url_and_no_content(emulator, client):
    document = emulator.add_document(content=None, url="https://files.whoop.example/forms/123.pdf")

    assert client.get_document(document["id"])["url"] == "https://files.whoop.example/forms/123.pdf"
    with pytest.raises(WhoopNotFound):
        client.get_document_content(document["id"])


def test_an_unknown_document_is_not_found_on_both_routes(client):
    with pytest.raises(WhoopNotFound):
        client.get_document("5b0e8a0c-8f0f-4d59-a3a4-1c2b3d4e5f60")
    with pytest.raises(WhoopNotFound):
        client.get_document_content("5b0e8a0c-8f0f-4d59-a3a4-1c2b3d4e5f60")


def test_document_routes_need_the_partner_token(emulator):
    document = emulator.add_document()
    for path in (f"/document/{document['id']}", f"/document/{document['id']}/content"):
        answer = requests.get(f"{emulator.partner_base_url}/v2/partner{path}", timeout=5)
        assert answer.status_code == 401, path


def test_a_document_needs_content_or_a_url():
    with WhoopEmulator() as emulator, pytest.raises(ValueError, match="content, a url"):
        emulator.add_document(content=None)


def test_the_control_api_adds_a_document_with_given_bytes(emulator, client):
    answer = requests.post(
        f"{emulator.base_url}/_emulator/documents",
        json={"document_type": "CONSENT", "content_base64": base64.b64encode(b"\x89PNG\r\n\x1a\nimage").decode()},
        timeout=5,
    )
    assert answer.status_code == 201
    document = answer.json()
    assert document["document_type"] == "CONSENT"
    assert client.get_document_content(document["id"]) == b"\x89PNG\r\n\x1a\nimage"
    # Control calls are not WHOOP calls.
    assert emulator.calls_to("POST", "/_emulator/") == []


def test_the_control_api_refuses_a_bad_document_body(emulator):
    answer = requests.post(
        f"{emulator.base_url}/_emulator/documents", json={"content_base64": "not base64!", "colour": "red"}, timeout=5
    )
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "reference_type", ["DocumentReference", "documentreference", "Document", "PartnerDocument", "document_reference"]
)
def test_a_reference_whose_type_names_a_document_is_a_document(reference_type):
    assert Reference(type=reference_type, id="d1").is_document


@pytest.mark.parametrize("reference_type", ["Patient", "Observation", "Questionnaire", "Binary", ""])
def test_other_references_are_not_documents(reference_type):
    assert not Reference(type=reference_type, id="x1").is_document


def test_references_of_reads_every_service_request_and_skips_malformed_entries():
    requisition = {
        "id": "r1",
        "service_requests": [
            {
                "id": "sr1",
                "based_on": [
                    {"type": "DocumentReference", "id": "d1", "display": "order form"},
                    {"type": "Patient", "id": "p1"},
                ],
            },
            {"id": "sr2", "based_on": [{"type": "DocumentReference"}, "d2", {"type": "DocumentReference", "id": "d1"}]},
            {"id": "sr3"},
            {"id": "sr4", "based_on": None},
        ],
    }
    assert [reference.as_dict() for reference in references_of(requisition)] == [
        {"service_request_id": "sr1", "type": "DocumentReference", "id": "d1", "document": True},
        {"service_request_id": "sr1", "type": "Patient", "id": "p1", "document": False},
        {"service_request_id": "sr2", "type": "DocumentReference", "id": "d1", "document": True},
    ]


def test_a_reference_whose_id_is_empty_or_longer_than_an_id_is_skipped_as_malformed():
    # WHOOP's ids are uuids; a longer one could not be kept (DynamoDB refuses a key over 2 KB,
    # S3 one over 1 KB) and would fail the order's message on AWS, so it is counted, not kept.
    requisition = {
        "id": "r1",
        "service_requests": [
            {
                "id": "sr1",
                "based_on": [
                    {"type": "DocumentReference", "id": "x" * 3000},
                    {"type": "DocumentReference", "id": ""},
                    {"type": "DocumentReference", "id": "d" * 128},
                ],
            },
        ],
    }
    assert [reference.as_dict() for reference in references_of(requisition)] == [
        {"service_request_id": "sr1", "type": "DocumentReference", "id": "d" * 128, "document": True}
    ]


@pytest.mark.parametrize(
    ("content", "media_type"),
    [
        (b"%PDF-1.4 x", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n...", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"hello", "application/octet-stream"),
    ],
)
def test_stored_content_gets_the_media_type_its_bytes_show(content, media_type):
    assert content_type(content) == media_type


@pytest.fixture
def document_settings(monkeypatch):
    from whoop_bridge.config import settings

    def read(raw: str | None):
        if raw is None:
            monkeypatch.delenv("DOCUMENT_RETRY_DELAYS", raising=False)
        else:
            monkeypatch.setenv("DOCUMENT_RETRY_DELAYS", raw)
        caches.reset_all()
        return settings()

    yield read
    caches.reset_all()


def test_document_retries_default_to_five_delays_of_about_37_minutes_in_all(document_settings):
    delays = document_settings(None).document_retry_delays
    assert delays == (30, 120, 300, 900, 900) and sum(delays) == 2250


def test_document_retry_delays_are_read_from_the_environment(document_settings):
    assert document_settings("0,5,900").document_retry_delays == (0, 5, 900)


@pytest.mark.parametrize("raw", ["30,abc", "901", "-1", ",", "1," * 21 + "1"])
def test_document_retry_delays_that_sqs_cannot_honour_are_refused(document_settings, raw):
    from whoop_bridge.config import ConfigurationError

    with pytest.raises(ConfigurationError, match="DOCUMENT_RETRY_DELAYS"):
        document_settings(raw)


def test_a_reference_id_can_only_ever_name_a_document(emulator, client):
    requisition = emulator.create_requisition(["CBC"])
    with pytest.raises(WhoopNotFound):
        client.get_document(f"../requisition/{requisition['id']}")
    (call,) = emulator.calls_to("GET", "/partner/")
    assert call["path"] == f"/developer/v2/partner/document/..%2Frequisition%2F{requisition['id']}"
