"""One sample of bench/intake_cold_start.py, run in a fresh Python process as a cold Lambda
container: import the handler at APP (with the layer dirs in LAYERS on sys.path), answer one
signed `POST /webhooks/whoop` (cold: import + first request), then WARM more requests in the
same process. Prints one line `PROBE {"cold_ms": .., "cold_cpu_ms": .., "warm_ms": [..]}`
(cold_cpu_ms: the process's CPU time over the cold span); a request not
answered 204 fails the probe.

Usage: python bench/intake_probe.py APP WARM [LAYER ...]
"""

import base64
import hashlib
import hmac
import importlib.util
import json
import os
import sys
import time
import uuid


class Context:
    function_name = "bench-webhook-intake"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-webhook-intake"
    aws_request_id = "bench"


def webhook(n: int) -> dict:
    """A data webhook signed as WHOOP signs it, with the client secret the bench stored."""
    body = json.dumps({"user_id": 10001, "id": str(uuid.uuid4()), "type": "sleep.updated", "trace_id": f"bench-{n}"})
    timestamp = str(int(time.time() * 1000))
    key = os.environ["BENCH_CLIENT_SECRET"].encode()
    signature = base64.b64encode(hmac.new(key, (timestamp + body).encode(), hashlib.sha256).digest()).decode()
    return {
        "resource": "/webhooks/whoop",
        "path": "/webhooks/whoop",
        "httpMethod": "POST",
        "headers": {"X-WHOOP-Signature": signature, "X-WHOOP-Signature-Timestamp": timestamp},
        "body": body,
        "requestContext": {"requestId": f"bench-{n}"},
    }


def main() -> None:
    app, warm, layers = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    sys.path[:0] = layers
    requests = [webhook(n) for n in range(warm + 1)]
    # The clock starts at the handler's import: the interpreter's own start (and the few
    # standard modules this probe needs) are the same for both handlers.
    started, started_cpu = time.perf_counter(), time.process_time()
    spec = importlib.util.spec_from_file_location("app", app)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    answer = module.handler(requests[0], Context())
    cold_ms = (time.perf_counter() - started) * 1000
    cold_cpu_ms = (time.process_time() - started_cpu) * 1000
    assert answer["statusCode"] == 204, answer
    warm_ms = []
    for request in requests[1:]:
        started = time.perf_counter()
        answer = module.handler(request, Context())
        warm_ms.append((time.perf_counter() - started) * 1000)
        assert answer["statusCode"] == 204, answer
    print("PROBE " + json.dumps({"cold_ms": cold_ms, "cold_cpu_ms": cold_cpu_ms, "warm_ms": warm_ms}), flush=True)


if __name__ == "__main__":
    main()
