"""What the member's browser gets from the OAuth callback: a 302 to the connect link's return
URL with `status` added, or, for a link without one, a small page of its own.

The page carries the platform's name and colours (template ConnectPageName, ConnectPageColor,
ConnectPageBackgroundColor; the name HTML-escaped, colours #rrggbb only, checked in
config.py) and works in a phone's web view as in a browser tab: it never asks to "close this
window", since a web view has none. A reload of a finished page gets the same page (the
outcome is kept with the state; members/connections.py).
"""

from __future__ import annotations

import html
import logging
from typing import Any

from whoop_bridge.config import ConfigurationError, Settings, settings
from whoop_bridge.models.oauth_state import CallbackOutcome, CallbackStatus

logger = logging.getLogger(__name__)

# The callback URL carries the code: keep it out of caches and of the next page's Referer.
SECURITY_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
# By status: the HTTP status, the heading and the text; `{app}` is the platform's name.
PAGES: dict[CallbackStatus, tuple[int, str, str]] = {
    CallbackStatus.CONNECTED: (
        200,
        "WHOOP connected",
        "Your WHOOP account is connected to {app}. You can go back to {app} now.",
    ),
    CallbackStatus.OFFLINE_NOT_GRANTED: (
        200,
        "WHOOP connected for now",
        "Your WHOOP account is connected to {app}, but without ongoing access. Connect again from {app} "
        "and allow offline access to keep your data flowing.",
    ),
    CallbackStatus.DENIED: (
        200,
        "WHOOP not connected",
        "You chose not to connect your WHOOP account, so nothing was shared. You can go back to {app} now.",
    ),
    CallbackStatus.USER_LIMIT: (
        200,
        "WHOOP not connected",
        "{app} cannot connect more WHOOP members yet. Please try again later.",
    ),
    CallbackStatus.SCOPES_MISSING: (
        200,
        "WHOOP not connected",
        "WHOOP did not share your profile, which {app} needs to connect your account. "
        "Please start again from {app} and allow access to your profile.",
    ),
    CallbackStatus.ERROR: (
        502,
        "WHOOP not connected",
        "Something went wrong while connecting your WHOOP account. Please start again from {app}.",
    ),
    CallbackStatus.LINK_EXPIRED: (
        400,
        "Link expired",
        "This connect link has expired. Please start again from {app}.",
    ),
    CallbackStatus.INVALID_STATE: (
        400,
        "Link not valid",
        "This connect link is not valid or was already used. Please start again from {app}.",
    ),
    CallbackStatus.NOT_CONFIGURED: (
        503,
        "Temporarily unavailable",
        "Connecting WHOOP accounts is not available right now. Please try again later.",
    ),
}
GENERIC_NAME = "the app"
DEFAULT_LOOK = ("", Settings.connect_page_color, Settings.connect_page_background_color)


def answer(outcome: CallbackOutcome) -> dict[str, Any]:
    """The callback's API Gateway answer for `outcome`: a 302 or a page."""
    if outcome.location:
        return {"statusCode": 302, "headers": {**SECURITY_HEADERS, "Location": outcome.location}, "body": ""}
    return page(outcome.status)


def page(status: CallbackStatus) -> dict[str, Any]:
    """The page for `status`, in the platform's name and colours."""
    code, title, text = PAGES[status]
    name, colour, background = _look()
    app = html.escape(name or GENERIC_NAME)
    sentence = text.format(app=app)
    if not name:
        sentence = sentence[0].upper() + sentence[1:]  # "{app} cannot..." starts a sentence
    heading = html.escape(title)
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{heading}{' · ' + app if name else ''}</title></head>"
        f'<body style="font-family: system-ui, sans-serif; background: {background}; margin: 0; padding: 2rem 1.25rem">'
        f'<main style="max-width: 32rem; margin: 0 auto">'
        + (f'<p style="color: {colour}; font-weight: 600">{app}</p>' if name else "")
        + f'<h1 style="color: {colour}; font-size: 1.5rem">{heading}</h1>'
        f'<p style="font-size: 1.05rem; line-height: 1.5">{sentence}</p>'
        f'<p data-status="{html.escape(str(status))}"></p></main></body></html>'
    )
    headers = {
        **SECURITY_HEADERS,
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    }
    return {"statusCode": code, "headers": headers, "body": body}


def _look() -> tuple[str, str, str]:
    """The platform's name and colours; the defaults when the settings cannot be read (the
    page still tells the member what happened)."""
    try:
        config = settings()
    except ConfigurationError:
        logger.warning("connect page shown with the default name and colours: the settings are invalid")
        return DEFAULT_LOOK
    return config.connect_page_name, config.connect_page_color, config.connect_page_background_color
