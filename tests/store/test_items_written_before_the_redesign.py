"""Items as the code before the store split wrote them (commit 1245c14: store/lab_store.py,
store/member_store.py) are read by the new stores and shown by the views as before: a
deployed stack upgrades in place. Each item is put raw: nulls the old code wrote as NULL
attributes, numbers as Decimal, tokens as Binary, and index attributes the models ignore."""

from __future__ import annotations

import time
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.types import Binary
from lab_tables import lab_table

from whoop_bridge import caches
from whoop_bridge.lab import listings, views
from whoop_bridge.members import views as member_views
from whoop_bridge.models.connection import ConnectionStatus
from whoop_bridge.models.oauth_state import CallbackStatus
from whoop_bridge.models.service_request import TokenPhase, WorkflowState
from whoop_bridge.store import budget_store, oauth_state_store, outbox_store, service_request_store

RECEIVED_AT = "2026-11-30T10:00:00.000Z"


@pytest.fixture
def table(monkeypatch):
    yield from lab_table(monkeypatch)


def _lab_items(table) -> None:
    table.put_item(
        Item={
            "pk": "REQ#r-1",
            "sk": "REQ",
            "kind": "requisition",
            "requisition_id": "r-1",
            "outcome": "received",
            "received_at": RECEIVED_AT,
            "created_at": "2026-11-30T09:00:00Z",
            "updated_at": None,
            "patient_json": '{"first_name": "Ada"}',
            "appointments_json": "[]",
            "service_request_ids": ["sr-open", "sr-held"],
            "problems": [{"field": "service_requests.1.code", "problem": "is required"}],
            "published": True,
            "gsi1pk": "REQUISITION",
            "gsi1sk": f"{RECEIVED_AT}#r-1",
        }
    )
    table.put_item(
        Item={
            "pk": "SR#sr-open",
            "sk": "SR",
            "kind": "service_request",
            "service_request_id": "sr-open",
            "requisition_id": "r-1",
            "code": "CBC",
            "task_description": None,
            "fhir_status": "active",
            "whoop_task_business_status": "Specimen collected",
            "decision": "confirm",
            "workflow": "awaiting_lab_event",
            "history": [{"task_business_status": "ORDER_CONFIRMED", "at": RECEIVED_AT, "event_id": "ORDER_CONFIRMED"}],
            "created_at": RECEIVED_AT,
            "task_business_status": "ORDER_CONFIRMED",
            "last_event_id": "ORDER_CONFIRMED",
            "updated_at": RECEIVED_AT,
            "task_token": "token-1",
            "token_phase": "lab_event",
        }
    )
    table.put_item(
        Item={
            "pk": "SR#sr-held",
            "sk": "SR",
            "kind": "service_request",
            "service_request_id": "sr-held",
            "requisition_id": "r-1",
            "code": None,
            "decision": "hold",
            "workflow": "held",
            "problems": [{"field": "service_requests.1.code", "problem": "is required"}],
            "history": [],
            "created_at": RECEIVED_AT,
        }
    )
    table.put_item(
        Item={
            "pk": "SR#sr-open",
            "sk": f"REPORT#{RECEIVED_AT}#rep-1",
            "kind": "diagnostic_report",
            "report_id": "rep-1",
            "service_request_id": "sr-open",
            "report_status": "partial",
            "report_kind": "partial",
            "observation_count": Decimal(2),
            "report_json": '{"status":"partial","observations":[{},{}]}',
            "received_at": RECEIVED_AT,
        }
    )


def test_an_order_stored_before_reads_back_and_shows_as_before(table):
    _lab_items(table)

    view = views.get_requisition("r-1")

    assert view["patient"] == {"first_name": "Ada"} and view["open"] is True
    open_test, held = view["service_requests"]
    assert open_test["workflow"] == "awaiting_lab_event" and open_test["task_description"] is None
    # As the old view listed them for these stored values.
    assert open_test["next_statuses"] == ["APPOINTMENT_ATTENDED", "APPOINTMENT_ISSUE", "RESULTS_ISSUE", "ORDER_ISSUE"]
    assert open_test["accepts_results"] == ["partial", "preliminary", "final"]
    assert open_test["diagnostic_reports"] == [
        {
            "report_id": "rep-1",
            "status": "partial",
            "observation_count": 2,
            "received_at": RECEIVED_AT,
            "submitted_at": None,
        }
    ]
    assert held["code"] is None and held["workflow"] == "held" and held["next_statuses"] == []
    assert listings.list_requisitions(None, None, 25, None)["requisitions"][0]["id"] == "r-1"

    record = service_request_store.get("sr-open")
    assert record.token_phase is TokenPhase.LAB_EVENT and record.workflow is WorkflowState.AWAITING_LAB_EVENT
    assert record.task_token == "token-1"


@pytest.fixture
def member_table(monkeypatch):
    monkeypatch.setenv("MEMBER_TABLE_NAME", "members")
    from moto import mock_aws

    with mock_aws():
        caches.reset_all()
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="members",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        yield boto3.resource("dynamodb", region_name="us-east-1").Table("members")
    caches.reset_all()


def test_member_items_stored_before_read_back_and_show_as_before(member_table):
    expires = int(time.time()) + 3600
    member_table.put_item(
        Item={
            "pk": "MEMBER#m-1",
            "sk": "CONNECTION",
            "client_user_id": "m-1",
            "user_id": Decimal(10129),
            "status": "connected",
            "scopes": ["offline", "read:sleep"],
            "offline_access": True,
            "connected_at": RECEIVED_AT,
            "last_refreshed_at": RECEIVED_AT,
            "access_expires_at": Decimal(expires),
            "token_version": Decimal(3),
            "sealed_tokens": Binary(b"sealed"),
            "refresh_lease_owner": "someone",
            "refresh_lease_until": Decimal("1764496800.125"),
            "gsi1pk": "TOKEN_EXPIRY",
            "gsi1sk": f"{expires:012d}#m-1",
        }
    )
    member_table.put_item(
        Item={
            "pk": "MEMBER#m-1",
            "sk": "SYNC#backfill#sleep",
            "state": "skipped_scope_not_granted",
            "pages": Decimal(0),
            "records": Decimal(0),
            "started_at": RECEIVED_AT,
        }
    )
    member_table.put_item(Item={"pk": "MEMBER#m-1", "sk": "PROFILE", "user_id": Decimal(10129), "email": None})
    member_table.put_item(
        Item={
            "pk": "STATE#abc",
            "sk": "STATE",
            "client_user_id": "m-1",
            "redirect_uri": "https://example.test/cb",
            "created_at": RECEIVED_AT,
            "expires_at": Decimal(expires),
            "ttl": Decimal(expires + 3600),
            "taken_at": Decimal(expires - 100),
            "outcome": "connected",
            "outcome_until": Decimal(expires),
        }
    )
    member_table.put_item(
        Item={
            "pk": "RATE_BUDGET#app",
            "sk": "RATE_BUDGET",
            "calls": "0.000,0.000,1764496800.125",
            "head": Decimal(2),
            "version": Decimal(7),
            "day": "",
            "day_used": Decimal(0),
            "whoop_remaining": Decimal(0),
            "whoop_reset_at": Decimal(0),
            "hold_until": Decimal(0),
        }
    )
    member_table.put_item(
        Item={
            "pk": "OUTBOX#e1",
            "sk": "OUTBOX",
            "gsi1pk": "OUTBOX",
            "gsi1sk": f"{RECEIVED_AT}#e1",
            "detail_type": "member.connected",
            "detail_json": '{"client_user_id": "m-1"}',
        }
    )

    status = member_views.connection_status("m-1")
    assert status["status"] == ConnectionStatus.CONNECTED and status["user_id"] == 10129
    assert status["backfill"] == {
        "sleep": {"state": "skipped_scope_not_granted", "pages": 0, "records": 0, "updated_at": None}
    }
    assert member_views.profile("m-1") == {
        "user_id": 10129,
        "email": None,
        "first_name": None,
        "last_name": None,
        "updated_at": None,
    }
    state = oauth_state_store.get("abc")
    assert state.outcome is CallbackStatus.CONNECTED and state.return_url is None and state.taken
    budget = budget_store.get("app")
    assert budget.calls == (0.0, 0.0, 1764496800.125) and budget.version == 7 and budget.background_next_at is None
    (message,) = outbox_store.pending("9999")
    assert (message.id, message.detail_type, message.detail) == ("e1", "member.connected", {"client_user_id": "m-1"})
