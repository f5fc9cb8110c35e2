"""`python -m local serve`: the API on localhost with API Gateway's paths and raw bodies."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from local.demo import follow_consent
from local.stack import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_takes_a_signed_webhook_and_serves_the_lab_and_member_apis():
    port, emulator_port = _free_port(), _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--port", str(port), "--emulator-port", str(emulator_port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    bridge, whoop = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{emulator_port}"
    try:

        def healthy() -> bool:
            try:
                return requests.get(f"{bridge}/_local/health", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(healthy, timeout=60, interval=0.2, what="the local server")
        requisition = requests.post(
            f"{whoop}/_emulator/requisitions", json={"codes": ["CBC", "HBA1C"]}, timeout=10
        ).json()
        delivery = requests.post(
            f"{whoop}/_emulator/webhooks/partner",
            json={"event_type": "lab_requisition.created", "resource_id": requisition["id"]},
            timeout=10,
        ).json()
        assert delivery["status"] == 204

        def confirmed() -> dict | None:
            answer = requests.get(f"{bridge}/v1/lab/requisitions/{requisition['id']}", timeout=10)
            body = answer.json() if answer.status_code == 200 else {}
            tests = body.get("service_requests", [])
            return (
                body if len(tests) == 2 and all(t["task_business_status"] == "ORDER_CONFIRMED" for t in tests) else None
            )

        wait_until(confirmed, timeout=30, what="both tests confirmed")
        assert requests.post(f"{bridge}/webhooks/partner", data=b'{"event_type":"x"}', timeout=10).status_code == 401
        assert requests.get(f"{bridge}/no/such/route", timeout=10).status_code == 403
        assert "openapi" in requests.get(f"{bridge}/lab/openapi.json", timeout=10).json()

        # The member routes: a connect link, WHOOP's consent, the callback's page.
        link = requests.post(f"{bridge}/connections", json={"client_user_id": "serve-member"}, timeout=10)
        assert link.status_code == 201, link.text
        hops = follow_consent(link.json()["authorization_url"])
        assert [hop.status_code for hop in hops] == [302, 200] and 'data-status="connected"' in hops[-1].text
        assert requests.get(f"{bridge}/connections/serve-member", timeout=10).json()["status"] == "connected"
        assert "openapi" in requests.get(f"{bridge}/members/openapi.json", timeout=10).json()
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "IAM routes take UNSIGNED calls locally" in output
    assert "POST   /webhooks/partner  [public]" in output
    assert "GET    /oauth/whoop/callback  [public]" in output
    assert "POST   /connections  [IAM]" in output
    assert "DELETE /connections/{client_user_id}  [IAM]" in output
