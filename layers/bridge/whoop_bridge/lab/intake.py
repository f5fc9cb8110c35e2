"""What requisition_processor does with each partner event from the queue.

`lab_requisition.created`: fetch the requisition, read it tolerantly, store it and its
service requests, start one execution per service request (it confirms the order, or
reports ORDER_ISSUE for a test code the lab does not offer), publish `requisition.received`.
`clinical_report_review.requested`: store a pending review and publish it.
Every step may run again on redelivery and then changes nothing.

What WHOOP sends is read tolerantly: a `task_business_status` outside the seven, a new FHIR
status, a new field or a null is kept as received and never leads to an irreversible step.
ORDER_ISSUE is sent only for a test code the lab does not offer, the one case in which the
bridge has understood that the order cannot be fulfilled. An order it cannot read at all
(no id, no list of service requests) is recorded with its problems, counted
(`RequisitionInvalid`, alarmed) and published as `requisition.unavailable`, and nothing is
sent to WHOOP: a person decides. A test it cannot read (no id or code) is kept as `held`
with its problems, and the order's other tests go ahead.

Read lag: WHOOP may answer 404 for a requisition right after its own webhook. The event is
then put back on the queue with a growing delay until `REQUISITION_FETCH_RETRY_SECONDS`
(15 minutes by default) have passed since the first 404; only then is the requisition
declared not found (`RequisitionNotFound`, alarmed). A later success stores it in full.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from whoop_bridge import times
from whoop_bridge.config import settings
from whoop_bridge.lab import documents, order_push
from whoop_bridge.lab.errors import TestDataUnavailable
from whoop_bridge.lab.ports import REAL, LabPorts
from whoop_bridge.lab.reviews import review_source
from whoop_bridge.models.identifiers import MAX_RESOURCE_ID_LENGTH
from whoop_bridge.models.lab_intake import IntakeOutcome
from whoop_bridge.models.lab_order import LabRequisition, ServiceRequest
from whoop_bridge.models.requisition import RequisitionOutcome
from whoop_bridge.models.service_request import Decision, ServiceRequestRecord, WorkflowState
from whoop_bridge.models.task_status import TERMINAL_STATUSES, known
from whoop_bridge.validation import problems
from whoop_bridge.webhooks import REQUISITION_CREATED, REVIEW_REQUESTED
from whoop_bridge.whoop.http import WhoopNotFound
from whoop_bridge.whoop.partner import PartnerClient

logger = logging.getLogger(__name__)
metrics = Metrics()

# SQS delays a message by at most 15 minutes.
MAX_QUEUE_DELAY_SECONDS = 900


class Unsettled(Exception):  # noqa: N818 - an outcome, not an error
    """An outcome that the idempotency layer must not remember (`not_found`, `invalid`,
    `retrying`, `superseded`, a document's unsettled fetch): raised through it, so a later
    message for the same resource (a delayed retry, WHOOP's redelivery, the sandbox path) is
    processed again."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def handle_partner_event(event: dict[str, Any], client: PartnerClient, ports: LabPorts = REAL) -> str:
    """Process one partner events queue message `{event_type, resource_id}` (a delayed retry
    after a 404 also carries `not_found_since` and `not_found_attempt`, a document fetch
    `attempt`); returns the outcome (an IntakeOutcome or FetchOutcome value) for the log,
    or raises Unsettled."""
    event_type = event.get("event_type")
    resource_id = event.get("resource_id")
    if not isinstance(resource_id, str) or not resource_id:
        metrics.add_metric(name="PartnerEventMalformed", unit=MetricUnit.Count, value=1)
        return IntakeOutcome.MALFORMED
    if event_type == REQUISITION_CREATED:
        since = event.get("not_found_since")
        # Its own name: `attempt` counts a document fetch's tries.
        attempt = event.get("not_found_attempt")
        return receive_requisition(
            resource_id,
            client,
            not_found_since=since if isinstance(since, str) else None,
            attempt=attempt if type(attempt) is int and attempt >= 0 else 0,
            ports=ports,
        )
    if event_type == REVIEW_REQUESTED:
        return receive_review(resource_id, client, ports)
    if event_type == documents.FETCH_EVENT:
        outcome = documents.handle_fetch_message(event, client, ports)
        if not outcome.settled:
            # The next attempt is a message with the same key: nothing to remember.
            raise Unsettled(outcome)
        return outcome
    metrics.add_metric(name="PartnerEventIgnored", unit=MetricUnit.Count, value=1)
    logger.warning("partner event type not handled", extra={"event_type": str(event_type)[:64]})
    return IntakeOutcome.IGNORED


def request_test_data(client: PartnerClient, appointment_type: str | None = None, ports: LabPorts = REAL) -> str:
    """Ask WHOOP's sandbox for a test member and order (`add-test-data`) and start its intake
    as WHOOP's `lab_requisition.created` would; returns the requisition id.

    WHOOP sends no webhook for it; if it does, the queued message and the webhook share their
    idempotency key and the order is taken in once. Raises TestDataUnavailable when this
    stack serves production or WHOOP answers 404 (production); WhoopTransientError when
    WHOOP cannot be reached.
    """
    if settings().environment == "production":
        raise TestDataUnavailable("this stack serves WHOOP's production environment, where WHOOP makes no test data")
    try:
        requisition_id = client.add_test_data(appointment_type)
    except WhoopNotFound:
        raise TestDataUnavailable(
            "WHOOP answered 404: it makes test data only in its sandbox (non-production) environment"
        ) from None
    ports.queue.enqueue(REQUISITION_CREATED, requisition_id)
    logger.info("test data requested", extra={"requisition_id": requisition_id})
    return requisition_id


def receive_requisition(
    requisition_id: str,
    client: PartnerClient,
    *,
    not_found_since: str | None = None,
    attempt: int = 0,
    ports: LabPorts = REAL,
) -> IntakeOutcome:
    """Fetch, read, store and start a requisition's service requests; `received`, or raises
    Unsettled (`retrying`, `superseded`, `not_found`, `invalid`)."""
    try:
        raw = client.get_requisition(requisition_id)
    except WhoopNotFound:
        raise Unsettled(_not_found(requisition_id, not_found_since, attempt, ports)) from None
    try:
        requisition = LabRequisition.model_validate(raw)
    except ValidationError as error:
        raise Unsettled(_record_unreadable(requisition_id, problems(error), ports)) from None
    if requisition.id != requisition_id:
        raise Unsettled(
            _record_unreadable(requisition_id, [{"field": "id", "problem": "is not the id WHOOP announced"}], ports)
        )

    config = settings()
    records, unreadable = read_service_requests(requisition.service_requests, requisition.id, config.accepts)
    ports.requisitions.put_received(raw, times.now_iso(), [record.service_request_id for record in records], unreadable)
    decisions = []
    for record in records:
        ports.service_requests.put_if_new(record)
        decision = record.decision
        if decision is not None and decision.starts_execution:
            _start_execution(record, config.lab_event_timeout_days, ports)
        else:
            metrics.add_metric(
                name="ServiceRequestHeld" if decision is Decision.HOLD else "ServiceRequestSkipped",
                unit=MetricUnit.Count,
                value=1,
            )
        decisions.append({"service_request_id": record.service_request_id, "code": record.code, "decision": decision})
    if unreadable:
        metrics.add_metric(name="RequisitionInvalid", unit=MetricUnit.Count, value=1)
        logger.warning(
            "requisition has tests the bridge cannot read",
            extra={"requisition_id": requisition.id, "problem_fields": [p["field"] for p in unreadable]},
        )
    # With the template's OrderPushFormat, the order itself too; built only if not yet published.
    detail = partial(order_push.received_detail, requisition.id, decisions, ports)
    _publish_once(requisition.id, order_push.RECEIVED, detail, ports)
    metrics.add_metric(name="RequisitionReceived", unit=MetricUnit.Count, value=1)
    # Last, once the order is stored and started: a document never holds it up.
    documents.receive_references(raw, client, ports)
    return IntakeOutcome.RECEIVED


def read_service_requests(
    raw_service_requests: list[Any], requisition_id: str, accepts: Callable[[str], bool]
) -> tuple[list[ServiceRequestRecord], list[dict[str, str]]]:
    """The service requests to store, each with its decision, and the problems (`[{field,
    problem}]`) of the ones that could not be read. A test with an id but no readable code
    is kept as `hold`; one without an id cannot be addressed and is only listed as a problem."""
    records: list[ServiceRequestRecord] = []
    unreadable: list[dict[str, str]] = []
    now = times.now_iso()
    for index, raw in enumerate(raw_service_requests):
        try:
            service_request = ServiceRequest.model_validate(raw)
        except ValidationError as error:
            found = [
                {
                    **problem,
                    "field": f"service_requests.{index}"
                    + ("" if problem["field"] == "body" else f".{problem['field']}"),
                }
                for problem in problems(error)
            ]
            unreadable += found
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(raw_id, str) and raw_id.strip() and len(raw_id) <= MAX_RESOURCE_ID_LENGTH:
                code = raw.get("code")
                records.append(
                    ServiceRequestRecord(
                        service_request_id=raw_id,
                        requisition_id=requisition_id,
                        code=code if isinstance(code, str) else None,
                        decision=Decision.HOLD,
                        workflow=WorkflowState.HELD,
                        problems=found,
                        created_at=now,
                    )
                )
            continue
        decision, reason = decide(service_request, accepts)
        records.append(
            ServiceRequestRecord(
                service_request_id=service_request.id,
                requisition_id=requisition_id,
                code=service_request.code,
                task_description=service_request.task_description,
                fhir_status=service_request.status,
                whoop_task_business_status=service_request.task_business_status,
                decision=decision,
                decision_reason=reason,
                workflow=WorkflowState.SKIPPED if decision is Decision.SKIP else WorkflowState.STARTING,
                # The workflow goes on from what WHOOP holds (forward only); None for a value outside the seven.
                task_business_status=known(service_request.task_business_status),
                created_at=now,
            )
        )
    return records, unreadable


def decide(service_request: ServiceRequest, accepts: Callable[[str], bool]) -> tuple[Decision, str | None]:
    """What the bridge does with one readable test of a new order, and why:

    - `skip`: its FHIR status is not `active` (revoked, completed, on-hold, null, a new
      value): no work for the lab and nothing sent; or WHOOP already holds a final status
      for it (FULL_RESULTS_READY or an issue), after which nothing may follow.
    - `reject`: the lab does not offer the code: ORDER_ISSUE with the reason.
    - `resume`: WHOOP already holds ORDER_CONFIRMED, APPOINTMENT_ATTENDED or
      PARTIAL_RESULTS_READY: wait for the lab from there (confirming again would go back).
    - `confirm`: every other case, a `task_business_status` outside the seven included.
    """
    if service_request.status != "active":
        return Decision.SKIP, None
    current = known(service_request.task_business_status)
    if current in TERMINAL_STATUSES:
        return Decision.SKIP, None
    if not accepts(service_request.code):
        return Decision.REJECT, f"Test code {service_request.code} is not offered by this lab."
    if current is not None:
        return Decision.RESUME, None
    return Decision.CONFIRM, None


def _start_execution(record: ServiceRequestRecord, timeout_days: int, ports: LabPorts) -> None:
    """One execution per service request, named by its id: a second start is a no-op."""
    execution_input = {
        "service_request_id": record.service_request_id,
        "requisition_id": record.requisition_id,
        "decision": record.decision,
        "reason": record.decision_reason,
        "lab_event_timeout_seconds": timeout_days * 86400,
    }
    # Same name and same input: AWS answers with the running execution.
    if not ports.executions.start(record.service_request_id, execution_input):
        logger.info("execution already exists", extra={"service_request_id": record.service_request_id})


def _record_unreadable(requisition_id: str, found: list[dict[str, str]], ports: LabPorts) -> IntakeOutcome:
    """An order the bridge cannot read at all: recorded with its problems, counted (alarmed)
    and published, and nothing sent to WHOOP. ORDER_ISSUE would make WHOOP place a new order
    on the strength of what the bridge did not understand; a person decides instead."""
    ports.requisitions.put_invalid(requisition_id, found)
    metrics.add_metric(name="RequisitionInvalid", unit=MetricUnit.Count, value=1)
    _publish_once(
        requisition_id,
        "requisition.unavailable",
        {"requisition_id": requisition_id, "outcome": RequisitionOutcome.INVALID, "problems": found},
        ports,
    )
    logger.warning(
        "requisition could not be read",
        extra={"requisition_id": requisition_id, "problem_fields": [p["field"] for p in found]},
    )
    return IntakeOutcome.INVALID


def retry_delay(attempt: int, not_found_since: datetime, now: datetime, bound_seconds: int) -> int | None:
    """Seconds to wait before fetching again after the `attempt`-th 404 (1 for the first),
    or None once `bound_seconds` have passed since the first 404. The delay doubles from a
    thirtieth of the bound (30 s for 15 minutes), within SQS's 15-minute maximum."""
    remaining = (not_found_since + timedelta(seconds=bound_seconds) - now).total_seconds()
    if remaining <= 0:
        return None
    first = max(1, bound_seconds // 30)
    return max(1, int(min(first * 2 ** max(0, attempt - 1), MAX_QUEUE_DELAY_SECONDS, remaining + 0.999)))


def _not_found(requisition_id: str, not_found_since: str | None, attempt: int, ports: LabPorts) -> IntakeOutcome:
    """WHOOP answered 404: fetch again later (read lag), or declare it not found once the
    bound has passed. One chain of retries per requisition: the first 404 of a fresh message
    starts it (recorded with its start), and a duplicate message meanwhile joins it."""
    now = datetime.now(UTC)
    bound = settings().requisition_fetch_retry_seconds
    if not_found_since is None:
        since = now
        if not ports.requisitions.start_not_found_wait(
            requisition_id, times.iso(since), times.iso(since + timedelta(seconds=bound))
        ):
            logger.info("requisition fetch already being retried", extra={"requisition_id": requisition_id})
            return IntakeOutcome.RETRYING
    else:
        stored = ports.requisitions.get(requisition_id)
        if stored is None or not stored.is_waiting_since(not_found_since):
            return IntakeOutcome.SUPERSEDED  # received meanwhile, or a retry of an older chain
        since = times.parse(not_found_since)
    delay = retry_delay(attempt + 1, since, now, bound)
    if delay is None:
        return _declare_not_found(requisition_id, times.iso(since), ports)
    ports.queue.enqueue(
        REQUISITION_CREATED,
        requisition_id,
        delay_seconds=delay,
        not_found_since=times.iso(since),
        not_found_attempt=attempt + 1,
    )
    metrics.add_metric(name="RequisitionFetchRetried", unit=MetricUnit.Count, value=1)
    logger.info(
        "requisition not found yet; fetching again later",
        extra={"requisition_id": requisition_id, "delay_seconds": delay, "attempt": attempt + 1},
    )
    return IntakeOutcome.RETRYING


def _declare_not_found(requisition_id: str, since: str, ports: LabPorts) -> IntakeOutcome:
    """The bound has passed: record `not_found`, count it (alarmed) and publish it, once."""
    if not ports.requisitions.give_up_not_found(requisition_id, since):
        return IntakeOutcome.SUPERSEDED  # received meanwhile
    metrics.add_metric(name="RequisitionNotFound", unit=MetricUnit.Count, value=1)
    _publish_once(
        requisition_id,
        "requisition.unavailable",
        {"requisition_id": requisition_id, "outcome": RequisitionOutcome.NOT_FOUND},
        ports,
    )
    logger.warning("requisition not found at WHOOP", extra={"requisition_id": requisition_id})
    return IntakeOutcome.NOT_FOUND


def _publish_once(
    requisition_id: str,
    detail_type: str,
    detail: dict[str, Any] | Callable[[], dict[str, Any]],
    ports: LabPorts,
) -> None:
    stored = ports.requisitions.get(requisition_id)
    if stored and stored.published:
        return
    ports.bus.publish(detail_type, detail() if callable(detail) else detail)
    ports.requisitions.mark_published(requisition_id)


def receive_review(review_id: str, client: PartnerClient, ports: LabPorts = REAL) -> IntakeOutcome:
    """Store a pending clinical report review and publish it once."""
    details = review_source(client, settings().clinical_report_review_path).fetch(review_id)
    ports.reviews.put_if_new(review_id, details)
    stored = ports.reviews.get(review_id)
    if stored is None or not stored.published:
        ports.bus.publish(
            "clinical_report_review.requested", {"review_id": review_id, "details_fetched": details is not None}
        )
        ports.reviews.mark_published(review_id)
    metrics.add_metric(name="ClinicalReportReviewRequested", unit=MetricUnit.Count, value=1)
    return IntakeOutcome.REVIEW_STORED
