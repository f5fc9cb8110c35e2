"""The deployment's settings, read from the environment once and validated.

Standard library only: the webhook intake uses it on its cold start. Each setting has a
default that suits a sandbox. The template sets the resources and its parameters; the WHOOP
client's timeout and retries (WHOOP_TIMEOUT_SECONDS, WHOOP_MAX_RETRIES,
WHOOP_BACKOFF_SECONDS) keep their defaults unless a function's environment sets them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar
from urllib.parse import urlsplit

from whoop_bridge import caches


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed: the function cannot run safely."""


_Number = TypeVar("_Number", int, float)


def _number(name: str, default: _Number, minimum: _Number, maximum: _Number | None = None) -> _Number:
    """The environment variable `name` as a number of `default`'s type (int or float), or
    `default` when unset or blank. Raises ConfigurationError, naming it, for other text or
    a value outside [minimum, maximum] (maximum None: no upper bound)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    kind = type(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a {'whole ' if kind is int else ''}number, got {raw!r}") from None
    if maximum is None and not value >= minimum:  # also refuses NaN
        raise ConfigurationError(f"{name} must be at least {minimum}, got {raw!r}")
    if maximum is not None and not minimum <= value <= maximum:
        raise ConfigurationError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _codes(raw: str) -> frozenset[str]:
    return frozenset(code.strip().upper() for code in raw.split(",") if code.strip())


# Every read scope of WHOOP's standard API plus `offline` (refresh tokens), docs/whoop.md#oauth.
DEFAULT_OAUTH_SCOPES = (
    "offline",
    "read:recovery",
    "read:cycles",
    "read:workout",
    "read:sleep",
    "read:profile",
    "read:body_measurement",
)
OAUTH_SCOPES = frozenset(DEFAULT_OAUTH_SCOPES)


def _scopes(raw: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(raw.split())) or DEFAULT_OAUTH_SCOPES
    unknown = sorted(set(scopes) - OAUTH_SCOPES)
    if unknown:
        raise ConfigurationError(f"OAUTH_SCOPES has scopes WHOOP does not define: {', '.join(unknown)}")
    # The callback reads WHOOP's user_id from the basic profile.
    if "read:profile" not in scopes:
        raise ConfigurationError(
            "OAUTH_SCOPES must include read:profile: the bridge learns the WHOOP user_id from the profile"
        )
    return scopes


def _urls(name: str) -> tuple[str, ...]:
    """Comma-separated absolute http(s) URLs, each checked whole: one bad entry is a clear
    error at start, not a failure of every request that meets it."""
    urls = tuple(url.strip() for url in os.environ.get(name, "").split(",") if url.strip())
    for url in urls:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            parts = None
        if (
            parts is None
            or parts.scheme not in ("https", "http")
            or not parts.hostname
            or parts.fragment
            or parts.username
            or any(c.isspace() for c in url)
        ):
            raise ConfigurationError(
                f"{name} must hold comma-separated absolute http(s) URLs without spaces, fragments or user info, got {url!r}"
            )
    return urls


def _delays(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """Comma-separated whole seconds, each 0 to 900 (SQS's longest message delay)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        delays = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ConfigurationError(f"{name} must be comma-separated whole seconds, got {raw!r}") from None
    if not 1 <= len(delays) <= 20 or not all(0 <= delay <= 900 for delay in delays):
        raise ConfigurationError(f"{name} must hold 1 to 20 delays of 0 to 900 seconds, got {raw!r}")
    return delays


# Seconds between the attempts to fetch a document WHOOP could not give: about 37 minutes in all.
DEFAULT_DOCUMENT_RETRY_DELAYS = (30, 120, 300, 900, 900)

# The connect pages' colours (template ConnectPageColor, ConnectPageBackgroundColor).
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def _colour(name: str, default: str) -> str:
    """A #rrggbb colour (it is written into the page's CSS: nothing else is taken)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not _COLOUR.match(raw):
        raise ConfigurationError(f"{name} must be a colour as #rrggbb, got {raw!r}")
    return raw.lower()


# The order on the bus's requisition.received (template OrderPushFormat, lab/order_push.py).
ORDER_PUSH_FORMATS = ("none", "json", "fhir", "hl7")


def _choice(name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first when unset)."""
    raw = os.environ.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ConfigurationError(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


@dataclass(frozen=True)
class Settings:
    """Every setting the handlers read. Names match the template's environment variables."""

    environment: str
    whoop_api_base_url: str
    lab_table_name: str
    idempotency_table_name: str
    event_bus_name: str
    partner_secret_arn: str
    partner_events_queue_url: str
    state_machine_arn: str
    accepted_test_codes: frozenset[str]
    lab_event_timeout_days: int
    correction_window_days: int
    clinical_report_review_path: str
    whoop_timeout_seconds: float
    whoop_max_retries: int
    whoop_backoff_seconds: float
    member_table_name: str = ""
    member_secret_arn: str = ""
    bridge_key_arn: str = ""
    oauth_scopes: tuple[str, ...] = DEFAULT_OAUTH_SCOPES
    allowed_return_urls: tuple[str, ...] = ()
    oauth_redirect_url: str = ""
    delete_data_on_disconnect: bool = True
    member_events_queue_url: str = ""
    member_jobs_queue_url: str = ""
    backfill_days: int = 30
    reconciliation_days: int = 3
    rate_limit_per_minute: int = 100
    rate_limit_per_day: int = 10_000
    document_bucket_name: str = ""
    document_retry_delays: tuple[int, ...] = DEFAULT_DOCUMENT_RETRY_DELAYS
    requisition_fetch_retry_seconds: int = 900
    # The partner webhook signing key's own secret ({"webhook_secret"}): webhook_intake only.
    partner_webhook_secret_arn: str = ""
    api_max_body_bytes: int = 262_144
    # The member's connect pages: the platform's name (escaped when shown) and colours.
    connect_page_name: str = ""
    connect_page_color: str = "#1f2937"
    connect_page_background_color: str = "#ffffff"
    # none: requisition.received carries ids and decisions only (no patient data).
    order_push_format: str = "none"

    def accepts(self, code: str) -> bool:
        """Whether the lab performs this test code (an empty list accepts every code)."""
        return not self.accepted_test_codes or code.upper() in self.accepted_test_codes

    def require(self, *names: str) -> None:
        """Fail with a clear message when a handler's own resources are not configured."""
        missing = [name for name in names if not getattr(self, name)]
        if missing:
            variables = ", ".join(name.upper() for name in missing)
            raise ConfigurationError(f"missing environment variables: {variables}")


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this process, read on first use."""
    environment = os.environ.get("ENVIRONMENT", "sandbox").strip() or "sandbox"
    if environment not in ("sandbox", "production"):
        raise ConfigurationError(f"ENVIRONMENT must be sandbox or production, got {environment!r}")
    base_url = os.environ.get("WHOOP_API_BASE_URL", "https://api.prod.whoop.com").strip().rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        raise ConfigurationError("WHOOP_API_BASE_URL must be an http(s) URL")
    return Settings(
        environment=environment,
        whoop_api_base_url=base_url,
        lab_table_name=os.environ.get("LAB_TABLE_NAME", ""),
        idempotency_table_name=os.environ.get("IDEMPOTENCY_TABLE_NAME", ""),
        event_bus_name=os.environ.get("EVENT_BUS_NAME", ""),
        partner_secret_arn=os.environ.get("PARTNER_SECRET_ARN", ""),
        partner_events_queue_url=os.environ.get("PARTNER_EVENTS_QUEUE_URL", ""),
        state_machine_arn=os.environ.get("STATE_MACHINE_ARN", ""),
        accepted_test_codes=_codes(os.environ.get("ACCEPTED_TEST_CODES", "")),
        lab_event_timeout_days=_number("LAB_EVENT_TIMEOUT_DAYS", 30, 1, 365),
        correction_window_days=_number("CORRECTION_WINDOW_DAYS", 30, 0, 365),
        clinical_report_review_path=os.environ.get("CLINICAL_REPORT_REVIEW_PATH", "").strip(),
        whoop_timeout_seconds=_number("WHOOP_TIMEOUT_SECONDS", 10.0, 0.1),
        whoop_max_retries=_number("WHOOP_MAX_RETRIES", 3, 0, 10),
        whoop_backoff_seconds=_number("WHOOP_BACKOFF_SECONDS", 0.5, 0.0),
        member_table_name=os.environ.get("MEMBER_TABLE_NAME", ""),
        member_secret_arn=os.environ.get("MEMBER_SECRET_ARN", ""),
        bridge_key_arn=os.environ.get("BRIDGE_KEY_ARN", ""),
        oauth_scopes=_scopes(os.environ.get("OAUTH_SCOPES", "")),
        allowed_return_urls=_urls("ALLOWED_RETURN_URLS"),
        oauth_redirect_url=os.environ.get("OAUTH_REDIRECT_URL", "").strip(),
        delete_data_on_disconnect=_bool("DELETE_DATA_ON_DISCONNECT", True),
        member_events_queue_url=os.environ.get("MEMBER_EVENTS_QUEUE_URL", ""),
        member_jobs_queue_url=os.environ.get("MEMBER_JOBS_QUEUE_URL", ""),
        backfill_days=_number("BACKFILL_DAYS", 30, 0, 365),
        reconciliation_days=_number("RECONCILIATION_DAYS", 3, 1, 30),
        rate_limit_per_minute=_number("WHOOP_RATE_LIMIT_PER_MINUTE", 100, 5, 10_000),
        rate_limit_per_day=_number("WHOOP_RATE_LIMIT_PER_DAY", 10_000, 50, 10_000_000),
        document_bucket_name=os.environ.get("DOCUMENT_BUCKET_NAME", ""),
        document_retry_delays=_delays("DOCUMENT_RETRY_DELAYS", DEFAULT_DOCUMENT_RETRY_DELAYS),
        # How long a requisition WHOOP answers 404 for (read lag) is fetched again.
        requisition_fetch_retry_seconds=_number("REQUISITION_FETCH_RETRY_SECONDS", 900, 0, 86_400),
        partner_webhook_secret_arn=os.environ.get("PARTNER_WEBHOOK_SECRET_ARN", ""),
        # The largest request body the APIs read (API Gateway's own limit is 10 MB).
        api_max_body_bytes=_number("API_MAX_BODY_BYTES", 262_144, 1_024, 10_485_760),
        connect_page_name=os.environ.get("CONNECT_PAGE_NAME", "").strip()[:64],
        connect_page_color=_colour("CONNECT_PAGE_COLOR", "#1f2937"),
        connect_page_background_color=_colour("CONNECT_PAGE_BACKGROUND_COLOR", "#ffffff"),
        order_push_format=_choice("ORDER_PUSH_FORMAT", ORDER_PUSH_FORMATS),
    )


caches.register(settings.cache_clear)
