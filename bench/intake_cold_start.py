"""Cold start of the webhook intake against a baseline, in the same run.

WHOOP counts a webhook answered after one second as failed, and on a cold start Lambda's
init (importing the handler) comes first. Each sample imports a handler in a fresh Python
process, as a cold Lambda would:

- candidate: functions/webhook_intake (standard library, boto3, Powertools Logger only);
- baseline:  functions/lab_api, which loads what the intake deliberately avoids
             (pydantic models and the Powertools event handler with validation).

Run: .venv/bin/python bench/intake_cold_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import importlib.util, sys, time
sys.path.insert(0, {layer!r})
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", {app!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000)
"""
ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "PARTNER_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench",
    "PARTNER_EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench",
    "LAB_TABLE_NAME": "bench",
    "EVENT_BUS_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "WhoopBridge",
}


def import_ms(function: str) -> float:
    code = PROBE.format(layer=str(ROOT / "layers" / "bridge"), app=str(ROOT / "functions" / function / "app.py"))
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, **ENVIRONMENT}
    )
    return float(answer.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    import_ms("webhook_intake")  # warm the file system cache for both
    import_ms("lab_api")
    samples: dict[str, list[float]] = {"webhook_intake": [], "lab_api (baseline)": []}
    for _ in range(runs):  # interleaved, so drift on the machine hits both alike
        samples["webhook_intake"].append(import_ms("webhook_intake"))
        samples["lab_api (baseline)"].append(import_ms("lab_api"))
    print(f"handler import in a fresh process, {runs} runs each, Python {sys.version.split()[0]}")
    for name, values in samples.items():
        print(f"  {name:<20} median {statistics.median(values):7.1f} ms   min {min(values):7.1f}   max {max(values):7.1f}")
    candidate = statistics.median(samples["webhook_intake"])
    baseline = statistics.median(samples["lab_api (baseline)"])
    print(f"  intake / baseline: {candidate / baseline:.2f} ({baseline - candidate:+.1f} ms saved per cold start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
