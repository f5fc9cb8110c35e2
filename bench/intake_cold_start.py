"""Cold start and warm requests of the webhook intake next to a bare handler, in one run.

WHOOP counts a webhook answered after one second as failed, and on a cold start Lambda's
init (importing the handler) comes first. The baseline, bench/bare_intake/app.py, does
exactly the intake's work on `POST /webhooks/whoop` with only the standard library and
boto3: read the client secret from Secrets Manager, check the signature with hmac, send to
SQS, answer 204. Both run against ONE local moto server (started here, on a free port, with
the secret and the queue created), so both pay the same AWS round trips.

Each sample is a fresh Python process (bench/intake_probe.py):
  cold = as a cold Lambda container: import of the handler + its first request (to the 204);
  warm = a process that imports both, answers one request each, then WARM requests each,
         alternating (the sample's median per handler).
Cold samples alternate between the two handlers, and warm requests within their process,
so that drift in the machine's load hits both alike; the figures are medians over samples.
Goals (issue 13): cold <= 1.2x, warm <= 1.3x the bare handler's. Exits 1 when a goal is missed.

Run: .venv/bin/python bench/intake_cold_start.py [--runs N] [--warm N] [--quick] [--intake-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "bench" / "intake_probe.py"
HANDLERS = {
    "webhook_intake": (ROOT / "functions" / "webhook_intake" / "app.py", [ROOT / "layers" / "bridge"]),
    "bare handler": (ROOT / "bench" / "bare_intake" / "app.py", []),
}
COLD_GOAL, WARM_GOAL = 1.2, 1.3
REGION = "us-east-1"
CLIENT_SECRET = "bench-client-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stack(endpoint: str) -> dict[str, str]:
    """The secrets and queues of the intake on the moto server; the environment both handlers get."""
    aws = {
        "region_name": REGION,
        "endpoint_url": endpoint,
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
    }
    secrets, sqs = boto3.client("secretsmanager", **aws), boto3.client("sqs", **aws)
    member = secrets.create_secret(Name="bench-member-app", SecretString=json.dumps({"client_secret": CLIENT_SECRET}))
    partner = secrets.create_secret(Name="bench-partner-webhook", SecretString=json.dumps({"webhook_secret": "x" * 32}))
    return {
        "MEMBER_SECRET_ARN": member["ARN"],
        "MEMBER_EVENTS_QUEUE_URL": sqs.create_queue(QueueName="bench-member-events")["QueueUrl"],
        "PARTNER_WEBHOOK_SECRET_ARN": partner["ARN"],
        "PARTNER_EVENTS_QUEUE_URL": sqs.create_queue(QueueName="bench-partner-events")["QueueUrl"],
    }


def probe(arguments: list[str], environment: dict[str, str]) -> dict:
    answer = subprocess.run(
        [sys.executable, str(PROBE), *arguments], capture_output=True, text=True, env=environment, check=False
    )
    lines = [line for line in answer.stdout.splitlines() if line.startswith("PROBE ")]
    if answer.returncode or not lines:
        raise SystemExit(f"probe {arguments[0]} failed:\n{answer.stdout[-2000:]}\n{answer.stderr[-2000:]}")
    return json.loads(lines[-1].removeprefix("PROBE "))


def cold_sample(handler: str, environment: dict[str, str]) -> dict:
    app, layers = HANDLERS[handler]
    return probe(["cold", str(app), *map(str, layers)], environment)


def warm_sample(count: int, environment: dict[str, str], reverse: bool) -> dict[str, float]:
    """Each handler's median warm request in one process where the two alternate."""
    names = list(HANDLERS)[::-1] if reverse else list(HANDLERS)
    apps = [str(HANDLERS[name][0]) for name in names]
    layers = sorted({str(layer) for name in names for layer in HANDLERS[name][1]})
    figures = probe(["warm", str(count), *apps, *layers], environment)
    return {name: statistics.median(values) for name, values in zip(names, figures["warm_ms"], strict=True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21, help="samples per handler (fresh processes)")
    parser.add_argument("--warm", type=int, default=30, help="warm requests per sample")
    parser.add_argument("--quick", action="store_true", help="CI: 9 samples of 40 warm requests")
    parser.add_argument(
        "--intake-tree",
        type=Path,
        default=ROOT,
        help="a checkout whose functions/webhook_intake and layers/bridge to measure (e.g. an older commit's)",
    )
    options = parser.parse_args()
    tree = options.intake_tree.resolve()
    HANDLERS["webhook_intake"] = (tree / "functions" / "webhook_intake" / "app.py", [tree / "layers" / "bridge"])
    runs, warm = (9, 40) if options.quick else (options.runs, options.warm)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's access log
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", ""),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "POWERTOOLS_SERVICE_NAME": "webhook_intake",
            "POWERTOOLS_METRICS_NAMESPACE": "WhoopBridge",
            "BENCH_CLIENT_SECRET": CLIENT_SECRET,
            **stack(endpoint),
        }
        for handler in HANDLERS:  # one unmeasured sample each: the file system cache warms for both
            cold_sample(handler, environment)
        cold: dict[str, list[float]] = {name: [] for name in HANDLERS}
        cold_cpu: dict[str, list[float]] = {name: [] for name in HANDLERS}
        warm_ms: dict[str, list[float]] = {name: [] for name in HANDLERS}
        for run in range(runs):
            order = list(HANDLERS) if run % 2 == 0 else list(HANDLERS)[::-1]  # interleaved, alternating first
            for handler in order:
                figures = cold_sample(handler, environment)
                cold[handler].append(figures["cold_ms"])
                cold_cpu[handler].append(figures["cold_cpu_ms"])
            for handler, median in warm_sample(warm, environment, reverse=run % 2 == 1).items():
                warm_ms[handler].append(median)
    finally:
        server.stop()

    print(
        f"webhook intake vs bare handler, POST /webhooks/whoop against one moto server; "
        f"{runs} cold processes each (interleaved), {runs} warm processes of {warm} requests each "
        f"(alternating); "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    failed = False
    for phase, figures, goal in (
        ("cold (import + 1st request)", cold, COLD_GOAL),
        ("warm (per request)", warm_ms, WARM_GOAL),
    ):
        intake, bare = (statistics.median(figures[name]) for name in HANDLERS)
        ratio = intake / bare
        met = ratio <= goal
        failed |= not met
        print(f"  {phase}")
        for name in HANDLERS:
            values = figures[name]
            print(
                f"    {name:<15} median {statistics.median(values):7.1f} ms   min {min(values):7.1f}   max {max(values):7.1f}"
            )
        print(f"    ratio {ratio:.2f} (goal <= {goal}): {'met' if met else 'MISSED'}")
    # CPU time over the cold span: shown (not a goal) because on a busy machine the wall
    # clock also counts time spent waiting for a CPU.
    intake, bare = (statistics.median(cold_cpu[name]) for name in HANDLERS)
    print(
        f"  cold, the process's CPU time: webhook_intake {intake:.1f} ms, bare handler {bare:.1f} ms, ratio {intake / bare:.2f}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
