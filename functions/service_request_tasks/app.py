"""The steps of the service request state machine; `action` names the step."""

from whoop_bridge.lab import lifecycle
from whoop_bridge.lab.lifecycle import UnknownAction
from whoop_bridge.observability import get_logger, get_metrics, raising_safely
from whoop_bridge.whoop.partner import partner_client

logger = get_logger("service_request_tasks")
metrics = get_metrics("service_request_tasks")
client = partner_client()

__all__ = ["UnknownAction", "handler"]


@raising_safely
@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="service_request_id")
def handler(event, context):
    logger.append_keys(action=str(event.get("action")))
    return lifecycle.run_step(client, event)
