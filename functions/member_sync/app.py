"""Member upkeep on a schedule (every 10 minutes): renew tokens about to expire, finish
revocations WHOOP could not take at disconnect time, publish member events left stored.
"""

from aws_lambda_powertools.metrics import MetricUnit

from whoop_bridge.members import connections, outbox
from whoop_bridge.members.tokens import TokenService
from whoop_bridge.observability import get_logger, get_metrics

logger = get_logger("member_sync")
metrics = get_metrics("member_sync")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    action = (event or {}).get("action")
    if action != "refresh_tokens":
        raise ValueError(f"unknown member_sync action: {str(action)[:64]!r}")
    counts = TokenService().refresh_expiring()
    counts["revoked"] = connections.retry_pending_revocations()
    counts["events_published"] = outbox.publish_pending()
    metrics.add_metric(name="TokensRefreshed", unit=MetricUnit.Count, value=counts["refreshed"])
    metrics.add_metric(name="TokenRefreshFailed", unit=MetricUnit.Count, value=counts["failed"])
    metrics.add_metric(name="ReauthorizationRequired", unit=MetricUnit.Count, value=counts["reauthorization_required"])
    logger.info("member upkeep done", extra=counts)
    return counts
