"""The deployment's settings, read from the environment once and validated.

Standard library only: the webhook intake uses it on its cold start. Each setting has a
default that suits a sandbox. The template sets the resources and its parameters; the WHOOP
client's timeout and retries (WHOOP_TIMEOUT_SECONDS, WHOOP_MAX_RETRIES,
WHOOP_BACKOFF_SECONDS) keep their defaults unless a function's environment sets them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed: the function cannot run safely."""


def _int(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _float(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:  # also refuses NaN
        raise ConfigurationError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _codes(raw: str) -> frozenset[str]:
    return frozenset(code.strip().upper() for code in raw.split(",") if code.strip())


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
        lab_event_timeout_days=_int("LAB_EVENT_TIMEOUT_DAYS", 30, 1, 365),
        correction_window_days=_int("CORRECTION_WINDOW_DAYS", 30, 0, 365),
        clinical_report_review_path=os.environ.get("CLINICAL_REPORT_REVIEW_PATH", "").strip(),
        whoop_timeout_seconds=_float("WHOOP_TIMEOUT_SECONDS", 10.0, 0.1),
        whoop_max_retries=_int("WHOOP_MAX_RETRIES", 3, 0, 10),
        whoop_backoff_seconds=_float("WHOOP_BACKOFF_SECONDS", 0.5, 0.0),
    )
