"""GET /oauth/whoop/callback: where WHOOP sends the member after its consent page.

Sends the member back to the connect link's return URL with `status` (connected, denied,
user_limit, offline_not_granted, error), or shows a small page when the link had none.
A repeat of a callback that just completed (a reload) gets the same answer; an unknown,
expired or reused `state` gets a 400 page and nothing is stored. Every `error` outcome is
counted (`OAuthAuthorizationFailed`, with an alarm).
"""

import html

from aws_lambda_powertools.metrics import MetricUnit

from whoop_bridge.members import connections
from whoop_bridge.models.oauth_state import CallbackStatus
from whoop_bridge.observability import get_logger, get_metrics, raising_safely

logger = get_logger("oauth_callback")
metrics = get_metrics("oauth_callback")

# The callback URL carries the code: keep it out of caches and of the next page's Referer.
SECURITY_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
PAGES = {  # by CallbackStatus
    "connected": (200, "WHOOP connected", "Your WHOOP account is connected. You can close this window."),
    "offline_not_granted": (
        200,
        "WHOOP connected for now",
        "Your WHOOP account is connected, but without ongoing access. Connect again and allow offline access to keep your data flowing.",
    ),
    "denied": (200, "WHOOP not connected", "You chose not to connect your WHOOP account. You can close this window."),
    "user_limit": (
        200,
        "WHOOP not connected",
        "This app cannot connect more WHOOP members yet. Please try again later.",
    ),
    "error": (
        502,
        "WHOOP not connected",
        "Something went wrong while connecting your WHOOP account. Please start again from the app.",
    ),
    "invalid_state": (
        400,
        "Link expired",
        "This connect link has expired or was already used. Please start again from the app.",
    ),
    "not_configured": (
        503,
        "Temporarily unavailable",
        "Connecting WHOOP accounts is not available right now. Please try again later.",
    ),
}


@raising_safely
@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event, context):
    outcome = connections.complete(event.get("queryStringParameters") or {})
    if outcome.status == CallbackStatus.ERROR and not outcome.repeated:
        metrics.add_metric(name="OAuthAuthorizationFailed", unit=MetricUnit.Count, value=1)
    if outcome.location:
        return {"statusCode": 302, "headers": {**SECURITY_HEADERS, "Location": outcome.location}, "body": ""}
    return _page(outcome.status)


def _page(status: str) -> dict:
    code, title, message = PAGES[status]
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        f'<body style="font-family: sans-serif; max-width: 32rem; margin: 4rem auto"><h1>{html.escape(title)}</h1>'
        f'<p>{html.escape(message)}</p><p data-status="{html.escape(status)}"></p></body></html>'
    )
    headers = {
        **SECURITY_HEADERS,
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    }
    return {"statusCode": code, "headers": headers, "body": body}
