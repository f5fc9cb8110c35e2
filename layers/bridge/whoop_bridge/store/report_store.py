"""Diagnostic reports in LabTable, under their service request: `SR#<id>` /
`REPORT#<received_at>#<report_id>` (docs/data-model.md#diagnostic-report).

A report is kept as the lab wrote it before the execution hears of it, so an accepted
report is never lost; `submitted_at` marks WHOOP's acceptance, so a retried step does not
post it again. `submission_started_at` is written before each POST and `submission_answer`
when WHOOP refused it, so a report whose answer was lost is known as uncertain.
"""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.conditions import Key

from whoop_bridge import times
from whoop_bridge.models.diagnostic_report import DiagnosticReportRecord, ReportKind
from whoop_bridge.store import dynamo


def _table() -> Any:
    # LabTable (docs/data-model.md#diagnostic-report), by the setting `lab_table_name`.
    return dynamo.table("lab_table_name")


def _key(record: DiagnosticReportRecord) -> dict[str, str]:
    return {"pk": f"SR#{record.service_request_id}", "sk": f"REPORT#{record.received_at}#{record.report_id}"}


def put(service_request_id: str, report_id: str, body: dict[str, Any], kind: ReportKind) -> DiagnosticReportRecord:
    """Keep the lab's report `body` (WHOOP's DiagnosticReportCreateRequest, as written),
    received now; returns it as stored."""
    record = DiagnosticReportRecord(
        service_request_id=service_request_id,
        report_id=report_id,
        report_status=body["status"],
        report_kind=ReportKind(kind),
        observation_count=len(body.get("observations", [])),
        body=body,
        received_at=times.now_iso(),
    )
    _table().put_item(
        Item={
            **_key(record),
            "kind": "diagnostic_report",
            "report_id": report_id,
            "service_request_id": service_request_id,
            "report_status": record.report_status,
            "report_kind": record.report_kind.value,
            "observation_count": record.observation_count,
            "report_json": json.dumps(body, separators=(",", ":")),
            "received_at": record.received_at,
        }
    )
    return record


def list_for(service_request_id: str) -> list[DiagnosticReportRecord]:
    """The service request's reports, oldest first."""
    page = _table().query(
        KeyConditionExpression=Key("pk").eq(f"SR#{service_request_id}") & Key("sk").begins_with("REPORT#"),
        ConsistentRead=True,
    )
    return [_record(item) for item in page.get("Items", [])]


def get(service_request_id: str, report_id: str) -> DiagnosticReportRecord | None:
    """One report of the service request by id, or None."""
    return next((record for record in list_for(service_request_id) if record.report_id == report_id), None)


def mark_submitted(record: DiagnosticReportRecord, outbox: dict[str, Any]) -> None:
    """Note that WHOOP accepted the report, with the bus message still to publish."""
    _table().update_item(
        Key=_key(record),
        UpdateExpression="SET submitted_at = :at, outbox = :outbox",
        ExpressionAttributeValues={":at": times.now_iso(), ":outbox": outbox},
    )


def start_submission(record: DiagnosticReportRecord) -> str | None:
    """Note, before a POST to WHOOP, that a submission starts now (and forget the previous
    attempt's refusal); returns that time, or None when WHOOP's acceptance is recorded already
    (a conditional write: one request, no read)."""
    at = times.now_iso()
    return at if _unless_submitted(record, "SET submission_started_at = :v REMOVE submission_answer", at) else None


def record_refusal(record: DiagnosticReportRecord, status: int) -> None:
    """Note that WHOOP answered the submission with the refusing HTTP `status` (it does not hold it)."""
    _unless_submitted(record, "SET submission_answer = :v", status)


def _unless_submitted(record: DiagnosticReportRecord, expression: str, value: Any) -> bool:
    """Apply `expression` (its one value `:v`) unless WHOOP's acceptance is recorded; False then."""
    condition = "attribute_exists(pk) AND attribute_not_exists(submitted_at)"
    arguments = {"UpdateExpression": expression, "ConditionExpression": condition}
    return dynamo.applied(_table().update_item, Key=_key(record), ExpressionAttributeValues={":v": value}, **arguments)


def clear_outbox(record: DiagnosticReportRecord) -> None:
    """Forget the published bus message."""
    _table().update_item(Key=_key(record), UpdateExpression="REMOVE outbox")


def _record(item: dict[str, Any]) -> DiagnosticReportRecord:
    item = dynamo.plain(item)
    return DiagnosticReportRecord(
        service_request_id=item["service_request_id"],
        report_id=item["report_id"],
        report_status=item["report_status"],
        report_kind=ReportKind(item["report_kind"]),
        observation_count=item["observation_count"],
        body=json.loads(item["report_json"]),
        received_at=item["received_at"],
        submitted_at=item.get("submitted_at"),
        outbox=item.get("outbox"),
        submission_started_at=item.get("submission_started_at"),
        submission_answer=item.get("submission_answer"),
    )
