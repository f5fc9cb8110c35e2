"""GET /oauth/whoop/callback: where WHOOP sends the member after its consent page.

Sends the member back to the connect link's return URL with `status` (connected,
offline_not_granted, denied, user_limit, scopes_missing, error, link_expired), or shows a
small page in the platform's name and colours when the link had none
(members/connect_page.py). Every outcome of a known link is the member's last attempt, and a
failure is published as `member.connection_failed` (members/attempts.py). A repeat of a
callback that completed (a reload) gets the same answer; an unknown `state`, or one used
long ago, gets a 400 page and nothing is stored. Every `error` outcome is counted
(`OAuthAuthorizationFailed`, with an alarm).
"""

from aws_lambda_powertools.metrics import MetricUnit

from whoop_bridge.members import connect_page, connections
from whoop_bridge.models.oauth_state import CallbackStatus
from whoop_bridge.observability import get_logger, get_metrics, raising_safely

logger = get_logger("oauth_callback")
metrics = get_metrics("oauth_callback")


@raising_safely
@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event, context):
    outcome = connections.complete(event.get("queryStringParameters") or {})
    if outcome.status == CallbackStatus.ERROR and not outcome.repeated:
        metrics.add_metric(name="OAuthAuthorizationFailed", unit=MetricUnit.Count, value=1)
    return connect_page.answer(outcome)
