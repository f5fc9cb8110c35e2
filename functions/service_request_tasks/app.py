"""The steps of the service request state machine; `action` names the step."""

from whoop_bridge.lab import lifecycle
from whoop_bridge.observability import get_logger, get_metrics
from whoop_bridge.whoop.partner import partner_client

logger = get_logger("service_request_tasks")
metrics = get_metrics("service_request_tasks")
client = partner_client()

ACTIONS = {
    "set_status": lambda event: lifecycle.set_status(
        client, event["service_request_id"], event["task_business_status"], event.get("reason"), event.get("event_id")
    ),
    "await_lab_event": lambda event: lifecycle.await_lab_event(
        event["service_request_id"], event["phase"], event["task_token"]
    ),
    "submit_diagnostic_report": lambda event: lifecycle.submit_diagnostic_report(
        client, event["service_request_id"], event["report_id"]
    ),
    "correction_window": lambda event: lifecycle.correction_window(event["service_request_id"]),
    "close": lambda event: lifecycle.close(event["service_request_id"]),
    "record_failure": lambda event: lifecycle.record_failure(
        event["service_request_id"], event["error"], event.get("cause")
    ),
}


class UnknownAction(ValueError):
    """The state machine asked for a step this function does not have."""


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="service_request_id")
def handler(event, context):
    action = ACTIONS.get(event.get("action"))
    if action is None:
        raise UnknownAction(f"unknown action {event.get('action')!r}")
    logger.append_keys(action=event["action"])
    return action(event)
