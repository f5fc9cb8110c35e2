"""`python -m local demo` (the default) and `python -m local serve --port PORT`.

demo: the WHOOP emulator and the local stack, one requisition of three tests sent through
every path of the lab workflow, a member connecting through OAuth, backfilled and updated
by a signed data webhook, and the timeline of what WHOOP received.
serve: the bridge's API on http://127.0.0.1:PORT until interrupted, with schedules on their rate.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from local.cfn import ROOT
from local.demo import attach, use_emulator_credentials
from local.emulator import WhoopEmulator
from local.stack import LocalStack

RUN_DIR = ROOT / ".local-run"
SECRET_VARIABLES = (
    "WHOOP_PARTNER_CLIENT_ID",
    "WHOOP_PARTNER_CLIENT_SECRET",
    "WHOOP_PARTNER_WEBHOOK_SECRET",
    "WHOOP_MEMBER_CLIENT_ID",
    "WHOOP_MEMBER_CLIENT_SECRET",
)


def parameter_overrides(given: list[str]) -> dict[str, str]:
    """Template parameters from `WHOOP_BRIDGE_PARAMETER_OVERRIDES` ("Key=Value ...", as in
    samconfig.toml) and then each `--parameter Key=Value`."""
    pairs = shlex.split(os.environ.get("WHOOP_BRIDGE_PARAMETER_OVERRIDES", "")) + list(given)
    overrides = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise SystemExit(f"a parameter override must be Key=Value, got {pair!r}")
        overrides[key] = value
    return overrides


def serve(arguments: argparse.Namespace) -> int:
    emulator = None
    base_url = arguments.whoop_base_url
    if not base_url:
        emulator = WhoopEmulator(port=arguments.emulator_port).start()
        use_emulator_credentials(emulator)
        base_url = emulator.base_url
    missing = [name for name in SECRET_VARIABLES if not os.environ.get(name)]
    stack = LocalStack(
        whoop_base_url=base_url,
        parameters=parameter_overrides(arguments.parameter),
        port=arguments.port,
        run_schedules=True,
        require_authorization=arguments.require_authorization,
        aws_port=arguments.aws_port,
    )
    stack.start()
    if emulator:
        attach(emulator, stack)

    print(f"WHOOP Bridge (local) on {stack.url}")
    print(f"  health:  GET {stack.url}/_local/health")
    print(f"  AWS (moto) on {stack.aws_url}: python -m whoop_bridge.ops --local {stack.url} ... (GET /_local/stack)")
    if emulator:
        print(
            f"  WHOOP emulator on {emulator.base_url} (control API under /_emulator/), webhooks to {emulator.partner_webhook_url}"
        )
        print(
            f"  data webhooks to {emulator.member_webhook_url} (POST /_emulator/members/{{user_id}}/history, .../webhooks)"
        )
        print(f"  OAuth redirect URL registered at the emulator: {emulator.redirect_uris[-1]}")
    else:
        print(f"  WHOOP API at {base_url}")
    if missing:
        print(
            f"  WARNING: {', '.join(missing)} not set: those secret values keep REPLACE_ME and the bridge fails closed"
        )
    print("  IAM routes take UNSIGNED calls locally (API Gateway checks SigV4 in AWS):")
    if arguments.require_authorization:
        print("  (with any Authorization header: without one they answer 403, as API Gateway does)")
    for method, path, iam, _function in sorted(stack.routes(), key=lambda route: route[1]):
        print(f"    {method:6} {path}{'  [IAM]' if iam else '  [public]'}")
    sys.stdout.flush()

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        if emulator:
            emulator.stop()
    return 0


def demo(arguments: argparse.Namespace) -> int:
    from local.demo import run_demo

    RUN_DIR.mkdir(exist_ok=True)
    log_path = Path(arguments.log or RUN_DIR / "bridge.log")
    return run_demo(log_path=log_path, parameters=parameter_overrides(arguments.parameter))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command")
    demo_parser = commands.add_parser("demo", help="run the three-path lab demo and print WHOOP's timeline (default)")
    demo_parser.add_argument("--log", help="where the handlers' JSON logs go (default .local-run/bridge.log)")
    demo_parser.add_argument(
        "--parameter", action="append", default=[], metavar="Key=Value", help="a template parameter"
    )
    serve_parser = commands.add_parser("serve", help="serve the bridge's API on localhost")
    serve_parser.add_argument("--port", type=int, default=3000)
    serve_parser.add_argument("--whoop-base-url", help="a WHOOP API to use instead of starting the emulator")
    serve_parser.add_argument(
        "--emulator-port", type=int, default=0, help="port of the emulator it starts (default: any free port)"
    )
    serve_parser.add_argument(
        "--parameter", action="append", default=[], metavar="Key=Value", help="a template parameter"
    )
    serve_parser.add_argument(
        "--aws-port",
        type=int,
        default=0,
        help="port of the AWS endpoint the operator command uses (default: any free port)",
    )
    serve_parser.add_argument(
        "--require-authorization",
        action="store_true",
        help="answer 403 to an IAM route called without an Authorization header, as API Gateway does (any value passes)",
    )
    arguments = parser.parse_args(argv)
    if arguments.command == "serve":
        return serve(arguments)
    if arguments.command is None:
        arguments = demo_parser.parse_args([])
    return demo(arguments)


if __name__ == "__main__":
    sys.exit(main())
