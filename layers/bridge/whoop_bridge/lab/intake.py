"""What requisition_processor does with each partner event from the queue.

`lab_requisition.created`: fetch the requisition, validate it, store it and its service
requests, start one execution per service request (it confirms the order, or reports
ORDER_ISSUE for a test code the lab does not offer), publish `requisition.received`.
`clinical_report_review.requested`: store a pending review and publish it.
Every step may run again on redelivery and then changes nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from pydantic import ValidationError

from whoop_bridge import aws, events
from whoop_bridge.config import settings
from whoop_bridge.lab import documents
from whoop_bridge.lab.models import LabRequisition
from whoop_bridge.lab.reviews import review_source
from whoop_bridge.store import lab_store
from whoop_bridge.validation import problems
from whoop_bridge.webhooks import REQUISITION_CREATED, REVIEW_REQUESTED
from whoop_bridge.whoop.http import WhoopNotFound
from whoop_bridge.whoop.partner import PartnerClient

logger = logging.getLogger(__name__)
metrics = Metrics()



def handle_partner_event(event: dict[str, Any], client: PartnerClient) -> str:
    """Process one `{event_type, resource_id}`; returns the outcome for the log."""
    event_type = event.get("event_type")
    resource_id = event.get("resource_id")
    if not isinstance(resource_id, str) or not resource_id:
        metrics.add_metric(name="PartnerEventMalformed", unit=MetricUnit.Count, value=1)
        return "malformed"
    if event_type == REQUISITION_CREATED:
        return receive_requisition(resource_id, client)
    if event_type == REVIEW_REQUESTED:
        return receive_review(resource_id, client)
    if event_type == documents.FETCH_EVENT:
        return documents.handle_fetch_message(event, client)
    metrics.add_metric(name="PartnerEventIgnored", unit=MetricUnit.Count, value=1)
    logger.warning("partner event type not handled", extra={"event_type": str(event_type)[:64]})
    return "ignored"


def receive_requisition(requisition_id: str, client: PartnerClient) -> str:
    """Fetch, validate, store and start a requisition's service requests."""
    try:
        raw = client.get_requisition(requisition_id)
    except WhoopNotFound:
        # Gone, or not this partner's: retrying will not change WHOOP's answer.
        lab_store.put_unavailable_requisition(requisition_id, "not_found", [])
        metrics.add_metric(name="RequisitionNotFound", unit=MetricUnit.Count, value=1)
        _publish_once(requisition_id, "requisition.unavailable", {"requisition_id": requisition_id, "outcome": "not_found"})
        return "not_found"
    try:
        requisition = LabRequisition.model_validate(raw)
    except ValidationError as error:
        return _reject_invalid(requisition_id, raw, problems(error), client)

    config = settings()
    lab_store.put_requisition_if_new(raw, lab_store.now_iso())
    decisions = []
    for service_request in requisition.service_requests:
        decision, reason = _decide(service_request.status, service_request.code)
        lab_store.put_service_request_if_new(
            {
                "service_request_id": service_request.id,
                "requisition_id": requisition.id,
                "code": service_request.code,
                "task_description": service_request.task_description,
                "fhir_status": service_request.status,
                "decision": decision,
                "workflow": "starting" if decision != "skip" else "skipped",
                "history": [],
                "created_at": lab_store.now_iso(),
            }
        )
        if decision != "skip":
            _start_execution(service_request.id, requisition.id, decision, reason, config.lab_event_timeout_days)
        else:
            metrics.add_metric(name="ServiceRequestSkipped", unit=MetricUnit.Count, value=1)
        decisions.append({"service_request_id": service_request.id, "code": service_request.code, "decision": decision})
    _publish_once(requisition.id, "requisition.received", {"requisition_id": requisition.id, "service_requests": decisions})
    metrics.add_metric(name="RequisitionReceived", unit=MetricUnit.Count, value=1)
    # Last, once the order is stored and started: a document never holds it up.
    documents.receive_references(raw, client)
    return "received"


def _decide(fhir_status: str, code: str) -> tuple[str, str | None]:
    if fhir_status != "active":
        # A revoked or completed request needs no work and no status from the lab.
        return "skip", None
    if not settings().accepts(code):
        return "reject", f"Test code {code} is not offered by this lab."
    return "confirm", None


def _start_execution(service_request_id: str, requisition_id: str, decision: str, reason: str | None, timeout_days: int) -> None:
    """One execution per service request, named by its id: a second start is a no-op."""
    config = settings()
    config.require("state_machine_arn")
    execution_input = {
        "service_request_id": service_request_id,
        "requisition_id": requisition_id,
        "decision": decision,
        "reason": reason,
        "lab_event_timeout_seconds": timeout_days * 86400,
    }
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=config.state_machine_arn,
            name=service_request_id,
            # Same name and same input: AWS answers with the running execution.
            input=json.dumps(execution_input, sort_keys=True),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        logger.info("execution already exists", extra={"service_request_id": service_request_id})


def _reject_invalid(requisition_id: str, raw: Any, found: list[dict[str, str]], client: PartnerClient) -> str:
    """An order the lab cannot read is an order it cannot fulfil: ORDER_ISSUE for the whole
    requisition, so WHOOP places a new one."""
    lab_store.put_unavailable_requisition(requisition_id, "invalid", found)
    metrics.add_metric(name="RequisitionInvalid", unit=MetricUnit.Count, value=1)
    stored = lab_store.get_requisition(requisition_id) or {}
    has_service_requests = isinstance(raw, dict) and bool(raw.get("service_requests"))
    if has_service_requests and not stored.get("issue_reported"):
        fields = ", ".join(sorted({problem["field"] for problem in found}))[:500]
        client.update_requisition_status(requisition_id, "ORDER_ISSUE", f"The order failed validation ({fields}).")
        lab_store.mark_requisition(requisition_id, issue_reported=True)
    _publish_once(requisition_id, "requisition.unavailable", {"requisition_id": requisition_id, "outcome": "invalid", "problems": found})
    logger.warning("requisition failed validation", extra={"requisition_id": requisition_id, "problem_fields": [p["field"] for p in found]})
    return "invalid"


def _publish_once(requisition_id: str, detail_type: str, detail: dict[str, Any]) -> None:
    stored = lab_store.get_requisition(requisition_id)
    if stored and stored.get("published"):
        return
    events.publish(detail_type, detail)
    lab_store.mark_requisition(requisition_id, published=True)


def receive_review(review_id: str, client: PartnerClient) -> str:
    """Store a pending clinical report review and publish it once."""
    details = review_source(client, settings().clinical_report_review_path).fetch(review_id)
    lab_store.put_review_if_new(review_id, details)
    stored = lab_store.get_review(review_id) or {}
    if not stored.get("published"):
        events.publish("clinical_report_review.requested", {"review_id": review_id, "details_fetched": details is not None})
        lab_store.mark_review_published(review_id)
    metrics.add_metric(name="ClinicalReportReviewRequested", unit=MetricUnit.Count, value=1)
    return "review_stored"
