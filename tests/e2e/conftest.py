"""The local stack (WHOOP emulator + moto + the real handlers and ASL), once per module.

Every line the functions log during a module's run goes to `Harness.log`, which the log
audit tests read."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.demo import DEMO_RETURN_URL, Lab, Platform, attach
from local.emulator import WhoopEmulator
from local.stack import DomainEvents, LocalStack, wait_until


class Harness:
    """What an e2e test needs: WHOOP (the emulator), the bridge's URL, the lab's client."""

    def __init__(self, emulator: WhoopEmulator, stack: LocalStack, log: io.StringIO) -> None:
        self.emulator = emulator
        self.stack = stack
        self.log = log
        self.lab = Lab(stack.url)
        self.platform = Platform(stack.url)
        self.webhook_url = f"{stack.url}/webhooks/partner"
        self.domain_events = DomainEvents(stack)

    def new_requisition(self, codes: list[str]) -> dict[str, Any]:
        """WHOOP creates an order and sends its signed webhook; returns the order."""
        requisition = self.emulator.create_requisition(codes)
        assert (
            self.emulator.send_partner_webhook("lab_requisition.created", requisition["id"], url=self.webhook_url)
            == 204
        )
        return requisition

    def wait_confirmed(self, requisition_id: str, count: int) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            found = self.lab.requisition(requisition_id)
            if (
                found
                and len(found["service_requests"]) == count
                and all(sr["workflow"] in ("awaiting_lab_event", "closed") for sr in found["service_requests"])
            ):
                return found
            return None

        return wait_until(ready, timeout=30, what="every test confirmed")

    def wait_service_request(
        self, requisition_id: str, service_request_id: str, predicate: Any, what: str
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            requisition = self.lab.requisition(requisition_id) or {}
            for sr in requisition.get("service_requests", []):
                if sr["id"] == service_request_id and predicate(sr):
                    return sr
            return None

        return wait_until(found, timeout=30, what=what)

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(f"{self.stack.url}{path}", json=body, timeout=30)


def running_harness(parameters: dict[str, str], clock: Any = None, **stack_options: Any) -> Iterator[Harness]:
    """The emulator and the local stack with the emulator's credentials, attached to each
    other; `parameters` are template parameters, `clock` runs both rate limits."""
    log = io.StringIO()
    emulator = WhoopEmulator(clock=clock).start()
    stack = LocalStack(
        whoop_base_url=emulator.base_url,
        secrets={
            "PartnerSecret": {"client_id": emulator.client_id, "client_secret": emulator.client_secret},
            "PartnerWebhookSecret": {"webhook_secret": emulator.webhook_secret},
            "MemberAppSecret": {"client_id": emulator.member_client_id, "client_secret": emulator.member_client_secret},
        },
        parameters={"AllowedReturnUrls": DEMO_RETURN_URL, **parameters},
        log_stream=log,
        clock=clock,
        **stack_options,
    )
    stack.start()
    attach(emulator, stack)
    try:
        yield Harness(emulator, stack, log)
    finally:
        stack.stop()
        emulator.stop()


@pytest.fixture(scope="module")
def _module_bridge() -> Any:
    yield from running_harness({"AcceptedTestCodes": "LIPID_PANEL,CBC,HBA1C", "CorrectionWindowDays": "1"})


@pytest.fixture
def bridge(_module_bridge: Harness) -> Any:
    """One stack per module (moto's state is per process); no fault outlives its test."""
    yield _module_bridge
    emulator = _module_bridge.emulator
    emulator.clear_faults()
    emulator.decline_consent = False
    emulator.withhold_scopes = set()
    emulator.user_limit = None
    emulator.signed_in_user_id = None
    emulator.member_token_ttl_seconds = 3600
