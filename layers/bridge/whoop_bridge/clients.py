"""The WHOOP member API client of this deployment, wired to its settings, its secret and the
app's rate budget.

whoop/ holds the HTTP clients and the budget's rules and imports no store; this is where
the budget meets its state in MemberTable (store/budget_store.py). The partner API client
needs no store and is built by `whoop.partner.partner_client`.
"""

from __future__ import annotations

from whoop_bridge import caches
from whoop_bridge.config import settings
from whoop_bridge.secrets import read_secret
from whoop_bridge.store import budget_store
from whoop_bridge.whoop.budget import app_budget
from whoop_bridge.whoop.http import ClientOptions
from whoop_bridge.whoop.member import MemberApi

# One client (two pooled sessions) per warm container and credential set.
_clients: dict[tuple[str, str, str], MemberApi] = {}


def member_api() -> MemberApi:
    """The client for this deployment: base URL and retries from the environment, the app's
    credentials from the member-app secret (fails closed while it holds placeholders:
    `SecretNotConfigured`), its calls taken from the app's rate budget."""
    config = settings()
    config.require("member_secret_arn", "member_table_name")
    secret = read_secret(config.member_secret_arn, ("client_id", "client_secret"))
    key = (config.whoop_api_base_url, secret["client_id"], secret["client_secret"])
    if key not in _clients:
        _clients.clear()  # a rotated secret replaces the old client
        _clients[key] = MemberApi(
            *key,
            ClientOptions(config.whoop_timeout_seconds, config.whoop_max_retries, config.whoop_backoff_seconds),
            budget=app_budget(secret["client_id"], budget_store),
        )
    return _clients[key]


@caches.register
def forget_clients() -> None:
    """Drop cached clients (tests; after a credential rotation)."""
    _clients.clear()
