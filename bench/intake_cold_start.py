"""Cold start of the webhook intake against a baseline, in the same run.

WHOOP counts a webhook answered after one second as failed, and on a cold start Lambda's
init (importing the handler) comes first. Each sample imports a handler in a fresh Python
process, as a cold Lambda would:

- candidate: functions/webhook_intake (standard library, boto3, Powertools Logger only);
- baseline:  functions/lab_api, which loads what the intake deliberately avoids
             (pydantic models and the Powertools event handler with validation).

Then the first request of each webhook route on a cold process (import, then one signed
webhook answered 204), its two AWS calls (the secret, the queue) answered by in-process
stubs so that only the bridge's own work is timed: `/webhooks/whoop` must cost what
`/webhooks/partner` costs.

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
    "PARTNER_WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench",
    "PARTNER_EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench",
    "MEMBER_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-member",
    "MEMBER_EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-member",
    "LAB_TABLE_NAME": "bench",
    "EVENT_BUS_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "WhoopBridge",
}


FIRST_REQUEST = """
import base64, hashlib, hmac, importlib.util, json, sys, time
sys.path.insert(0, {layer!r})
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", {app!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from whoop_bridge import aws, webhooks

class Stub:
    def send_message(self, **_):
        return {{"MessageId": "bench"}}

webhooks.read_secret = lambda arn, keys: {{key: "bench-secret" for key in keys}}
aws.client = lambda service: Stub()
route = {route!r}
if route == "/webhooks/partner":
    body = json.dumps({{"event_type": "lab_requisition.created", "resource_id": "0f8b6c2e-4d1a-4c3b-9a7e-2b5d8e1f3a64"}})
    headers = {{"WHOOP-Signed": hmac.new(b"bench-secret", body.encode(), hashlib.sha256).hexdigest()}}
else:
    body = json.dumps({{"user_id": 10001, "id": "5f0c8f2e-9d4b-4b7a-8e21-3c6d9a1b7e40", "type": "sleep.updated", "trace_id": "bench"}})
    timestamp = str(int(time.time() * 1000))
    signature = base64.b64encode(hmac.new(b"bench-secret", (timestamp + body).encode(), hashlib.sha256).digest()).decode()
    headers = {{"X-WHOOP-Signature": signature, "X-WHOOP-Signature-Timestamp": timestamp}}
class Context:
    function_name = "bench"; memory_limit_in_mb = 1024; invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"; aws_request_id = "bench"
answer = module.handler({{"resource": route, "path": route, "headers": headers, "body": body, "requestContext": {{"requestId": "bench"}}}}, Context())
assert answer["statusCode"] == 204, answer
print((time.perf_counter() - started) * 1000)
"""


def first_request_ms(route: str) -> float:
    code = FIRST_REQUEST.format(
        layer=str(ROOT / "layers" / "bridge"), app=str(ROOT / "functions" / "webhook_intake" / "app.py"), route=route
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, **ENVIRONMENT}
    )
    return float(answer.stdout.strip().splitlines()[-1])


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
        print(
            f"  {name:<20} median {statistics.median(values):7.1f} ms   min {min(values):7.1f}   max {max(values):7.1f}"
        )
    candidate = statistics.median(samples["webhook_intake"])
    baseline = statistics.median(samples["lab_api (baseline)"])
    print(f"  intake / baseline: {candidate / baseline:.2f} ({baseline - candidate:+.1f} ms saved per cold start)")

    routes: dict[str, list[float]] = {"/webhooks/whoop": [], "/webhooks/partner (baseline)": []}
    for _ in range(runs):
        routes["/webhooks/whoop"].append(first_request_ms("/webhooks/whoop"))
        routes["/webhooks/partner (baseline)"].append(first_request_ms("/webhooks/partner"))
    print(f"cold process to a 204 on each route (AWS calls stubbed), {runs} runs each")
    for name, values in routes.items():
        print(
            f"  {name:<30} median {statistics.median(values):7.1f} ms   min {min(values):7.1f}   max {max(values):7.1f}"
        )
    whoop = statistics.median(routes["/webhooks/whoop"])
    partner = statistics.median(routes["/webhooks/partner (baseline)"])
    print(f"  whoop / partner: {whoop / partner:.2f} ({whoop - partner:+.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
