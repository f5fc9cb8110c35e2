"""Schemathesis against the bridge's own served OpenAPI documents, on the local stack.

`python -m local serve --require-authorization` (the emulator as WHOOP, one order taken in
so the links have something to follow) and then the `st run` CLI, once per API, with every
default check (not_a_server_error included) in all phases: examples, coverage, fuzzing and
stateful (OpenAPI links). What is excluded, and why, is written in schemathesis.toml next to
this file. The test fails on any failure, and shows schemathesis' own report of it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from local.stack import wait_until

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
ST = Path(sys.executable).with_name("st")
# Unsigned locally: the local stack takes any value (schemathesis.toml says why).
AUTHORIZATION = {"Authorization": "AWS4-HMAC-SHA256 Credential=local-unsigned"}
# Examples per operation and phase, and the seed: bounded (about a minute per API on two
# cores) and reproducible; SCHEMATHESIS_MAX_EXAMPLES / SCHEMATHESIS_SEED change them.
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261130")

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    port, emulator_port = _free_port(), _free_port()
    # To a file, not a pipe: nobody reads a pipe during the run, and once its buffer is full
    # every handler that logs blocks on the write (a hung stack that looks like a slow one).
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local",
            "serve",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            "--require-authorization",
        ],
        cwd=ROOT,
        stdout=log,
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

        wait_until(healthy, timeout=90, interval=0.2, what="the local server")
        # One order with a test the lab performs and one it does not, for the links to reach.
        requisition = requests.post(
            f"{whoop}/_emulator/requisitions", json={"codes": ["CBC", "HBA1C"]}, timeout=10
        ).json()
        requests.post(
            f"{whoop}/_emulator/webhooks/partner",
            json={"event_type": "lab_requisition.created", "resource_id": requisition["id"]},
            timeout=10,
        )

        def taken_in() -> bool:
            return (
                requests.get(
                    f"{bridge}/v1/lab/requisitions/{requisition['id']}", headers=AUTHORIZATION, timeout=10
                ).status_code
                == 200
            )

        wait_until(taken_in, timeout=30, what="the order taken in")
        yield bridge
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
        log.close()


def _schemathesis(bridge: str, schema_path: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, int]:
    # The schema route is IAM too: fetched with the header, then given to st as a file.
    answer = requests.get(f"{bridge}/v1{schema_path}", headers=AUTHORIZATION, timeout=10)
    assert answer.status_code == 200, answer.text
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(answer.json()))
    command = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        str(schema),
        "--url",
        f"{bridge}/v1",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        # API Gateway gives up at 29 s; the local stack on shared CI cores is slower than Lambda,
        # so a slow answer here is load, not a hang (a hang still fails the run).
        "--request-timeout",
        "60",
    ]
    operations = sum(len(methods) for methods in answer.json()["paths"].values())
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False), operations


def _every_selected_operation_tested(run: subprocess.CompletedProcess, operations: int) -> None:
    """Every served operation is selected but those schemathesis.toml leaves out (with its
    reason), each selected one is tested, and the stateful phase ran (links followed) and passed."""
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert selected and tested, _report(run)
    left_out = CONFIG.read_text().count("enabled = false\n") - 3  # the three excluded checks
    assert (
        int(selected.group(2)) == operations and int(tested.group(1)) == int(selected.group(1)) >= operations - left_out
    ), _report(run)
    assert "✅ Stateful" in run.stdout, _report(run)


def _report(run: subprocess.CompletedProcess) -> str:
    return f"schemathesis exited {run.returncode}; its report:\n{run.stdout[-20000:]}\n{run.stderr[-3000:]}"


def test_lab_api_passes_every_schemathesis_check(served, tmp_path):
    run, operations = _schemathesis(served, "/lab/openapi.json", tmp_path)
    print(run.stdout[-1500:])
    assert run.returncode == 0, _report(run)
    _every_selected_operation_tested(run, operations)


def test_member_api_passes_every_schemathesis_check(served, tmp_path):
    run, operations = _schemathesis(served, "/members/openapi.json", tmp_path)
    print(run.stdout[-1500:])
    assert run.returncode == 0, _report(run)
    _every_selected_operation_tested(run, operations)
