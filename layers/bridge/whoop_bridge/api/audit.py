"""The audit trail of the lab and member APIs: one record per call, written to the stack's
audit log group (AUDIT_LOG_GROUP, kept for the template's AuditRetentionDays) with
CloudWatch Logs' PutLogEvents before the answer leaves the function.

A record is one JSON object:
`{"kind": "api_call", "time", "request_id", "caller_arn", "caller_account", "route",
"resource_type", "resource_id", "status"}`: who (the IAM principal API Gateway verified),
what (method and path template, e.g. `GET /lab/requisitions/{requisition_id}`, and the
path's id: a WHOOP or platform id), when (UTC, ISO 8601) and the outcome (HTTP status).
Never a body, a query, a header or any patient or health field. Every call is recorded,
data route or not (the OpenAPI documents too), so that a new route cannot go unaudited.

Written directly, not through the function's log: the function's log group is kept for
LogRetentionDays and holds other lines; the audit group holds only these records. A
failed write is logged as an error (with the record's route, status and request id) and
never changes the answer: the call has happened and its answer is due. It is also counted
as the metric `AuditRecordNotWritten` (dimension service=lab_api|member_api), which
AuditRecordNotWrittenAlarm watches: a trail with gaps must not go unnoticed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from typing import Any, Optional

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from whoop_bridge import aws, caches, times

logger = logging.getLogger(__name__)

AUDIT_LOG_GROUP = "AUDIT_LOG_GROUP"
KIND = "api_call"
NOT_WRITTEN_METRIC = "AuditRecordNotWritten"
# Path parameters that name a resource, and what they name.
RESOURCE_TYPES = {
    "requisition_id": "requisition",
    "service_request_id": "service_request",
    "document_id": "document",
    "client_user_id": "member",
}
# An id as WHOOP and the platform write them (MAX_RESOURCE_ID_LENGTH, models/identifiers.py):
# anything else in an id's place is not recorded (it could be a value typed by mistake).
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


def audit_record(event: dict[str, Any], status: int, now: Optional[str] = None) -> dict[str, Any]:
    """The audit record of one call: `event` is API Gateway's REST proxy event, `status` the
    answer's HTTP status. Reads only the request context, the method, the route template and
    the path parameters named in RESOURCE_TYPES."""
    context = event.get("requestContext") or {}
    identity = context.get("identity") or {}
    method = (event.get("httpMethod") or context.get("httpMethod") or "").upper()
    resource = event.get("resource") or context.get("resourcePath") or ""
    parameters = event.get("pathParameters") or {}
    resource_type = resource_id = None
    for name, kind in RESOURCE_TYPES.items():
        if name in parameters:
            resource_type = kind
            value = str(parameters[name])
            resource_id = value if _ID.match(value) else None
            break
    return {
        "kind": KIND,
        "time": now or times.now_iso(),
        "request_id": context.get("requestId"),
        "caller_arn": identity.get("userArn") or identity.get("caller"),
        "caller_account": identity.get("accountId"),
        "route": f"{method} {resource}",
        "resource_type": resource_type,
        "resource_id": resource_id,
        "status": int(status),
    }


class AuditWriter:
    """Writes records to one log group, in one stream per execution environment
    (`<function>/<date>/<random>`, made on the first record: a stream takes one writer)."""

    def __init__(self, log_group: str, function_name: str) -> None:
        self.log_group = log_group
        self.function_name = function_name
        self.stream: Optional[str] = None
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        """Put `record` (one JSON line) in the audit log group. Raises botocore's errors."""
        logs = aws.client("logs")
        with self._lock:
            try:
                if self.stream is None:
                    stream = f"{self.function_name}/{time.strftime('%Y/%m/%d', time.gmtime())}/{uuid.uuid4().hex}"
                    logs.create_log_stream(logGroupName=self.log_group, logStreamName=stream)
                    self.stream = stream
                logs.put_log_events(
                    logGroupName=self.log_group,
                    logStreamName=self.stream,
                    logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps(record, sort_keys=True)}],
                )
            except Exception:
                self.stream = None  # e.g. the stream was deleted: the next record makes a new one
                raise


_writers: dict[str, AuditWriter] = {}
caches.register(_writers.clear)


def record_call(event: dict[str, Any], status: int, function_name: str) -> Optional[dict[str, Any]]:
    """Write the audit record of one call (see `audit_record`) to AUDIT_LOG_GROUP, and return
    it; None when the function has no audit log group (a unit test). Never raises."""
    log_group = os.environ.get(AUDIT_LOG_GROUP, "").strip()
    if not log_group:
        return None
    record = audit_record(event, status)
    writer = _writers.setdefault(log_group, AuditWriter(log_group, function_name or "api"))
    try:
        writer.write(record)
    except Exception as error:  # noqa: BLE001 - the answer is due; the error is logged
        logger.error(
            "audit record not written",
            extra={
                "error_type": type(error).__name__,
                "route": record["route"],
                "status_code": record["status"],
                "request_id": record["request_id"],
            },
        )
        _count_not_written()
    return record


def _count_not_written() -> None:
    """One `AuditRecordNotWritten` at once (an EMF line): the API handlers flush no metrics."""
    # The stack sets the namespace; without it Powertools would raise and the answer be lost.
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "WhoopBridge"
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or "api"
    with single_metric(
        name=NOT_WRITTEN_METRIC,
        unit=MetricUnit.Count,
        value=1,
        namespace=namespace,
        default_dimensions={"service": service},
    ):
        pass
