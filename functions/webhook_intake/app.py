"""POST /webhooks/partner and POST /webhooks/whoop: verify, enqueue, answer 204 within WHOOP's one-second budget.

Imports stay minimal on purpose (no pydantic, no event handler, no Tracer): this runs on
every cold start that WHOOP is waiting for.
"""

import gc
import json

from whoop_bridge.observability import get_logger, raising_safely
from whoop_bridge.webhooks import Answer, accept_member_webhook, accept_partner_webhook

logger = get_logger("webhook_intake")

ROUTES = {"/webhooks/partner": accept_partner_webhook, "/webhooks/whoop": accept_member_webhook}

# What the imports made lives as long as the container: out of the collector's full passes,
# which would otherwise walk it again while the first webhook waits (bench/intake_cold_start.py).
gc.freeze()


@raising_safely
@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event, context):
    accept = ROUTES.get(event.get("resource") or event.get("path", ""))
    if accept is None:
        return _respond(Answer(404, "no such webhook route"))
    try:
        answer = accept(event)
    except Exception:
        # Not accepted, so WHOOP will retry: nothing is lost.
        logger.exception("webhook intake failed")
        answer = Answer(503, "temporarily unavailable")
    return _respond(answer)


def _respond(answer: Answer) -> dict:
    if answer.problem is None:
        return {"statusCode": answer.status, "body": ""}
    return {
        "statusCode": answer.status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": answer.problem}),
    }
