"""One sample of bench/intake_cold_start.py, in a fresh Python process.

cold: as a cold Lambda container, import the handler at APP (the LAYER dirs on sys.path)
      and answer one signed `POST /webhooks/whoop`; prints
      `PROBE {"cold_ms": .., "cold_cpu_ms": ..}` (wall and CPU time of import + request).
warm: import both handlers, answer one request each, then COUNT requests each, alternating;
      prints `PROBE {"warm_ms": [[A's ms ...], [B's ms ...]]}`.
A request not answered 204 fails the probe.

Usage: python bench/intake_probe.py cold APP [LAYER ...]
       python bench/intake_probe.py warm COUNT APP_A APP_B [LAYER ...]
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


def load(app: str, name: str):
    spec = importlib.util.spec_from_file_location(name, app)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answer(module, request: dict) -> float:
    """Milliseconds `module.handler` took to answer `request`, which must be a 204."""
    started = time.perf_counter()
    response = module.handler(request, Context())
    elapsed = (time.perf_counter() - started) * 1000
    assert response["statusCode"] == 204, response
    return elapsed


def cold(app: str) -> dict:
    request = webhook(0)
    # The clock starts at the handler's import: the interpreter's own start (and the few
    # standard modules this probe needs) are the same for both handlers.
    started, started_cpu = time.perf_counter(), time.process_time()
    answer(load(app, "app"), request)
    return {
        "cold_ms": (time.perf_counter() - started) * 1000,
        "cold_cpu_ms": (time.process_time() - started_cpu) * 1000,
    }


def warm(count: int, apps: list[str]) -> dict:
    """Both handlers in this process, each answered once unmeasured, then `count` requests
    each, alternating: the two meet the machine's load at the same moments."""
    modules = [load(app, f"app{n}") for n, app in enumerate(apps)]
    for module in modules:
        answer(module, webhook(0))
    warm_ms: list[list[float]] = [[] for _ in modules]
    for n in range(count):
        for index, module in enumerate(modules):
            warm_ms[index].append(answer(module, webhook(n + 1)))
    return {"warm_ms": warm_ms}


def main() -> None:
    mode, arguments = sys.argv[1], sys.argv[2:]
    if mode == "cold":
        app, layers = arguments[0], arguments[1:]
        sys.path[:0] = layers
        figures = cold(app)
    else:
        count, apps, layers = int(arguments[0]), arguments[1:3], arguments[3:]
        sys.path[:0] = layers
        figures = warm(count, apps)
    print("PROBE " + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
