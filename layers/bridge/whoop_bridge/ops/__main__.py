"""`python -m whoop_bridge.ops`: see the package's docstring and `--help`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from whoop_bridge.ops import api_calls, dead_letters
from whoop_bridge.ops.errors import OK, USAGE, OpsError
from whoop_bridge.ops.stack import Stack, from_cloudformation, from_local

EPILOG = """exit codes: 0 done; 1 refused or failed (404, 409, a move task that failed);
2 bad arguments; 3 no stack, no credentials, or nothing answering.

examples:
  python -m whoop_bridge.ops --stack whoop-bridge dead-letters list
  python -m whoop_bridge.ops --stack whoop-bridge dead-letters replay partner-events
  python -m whoop_bridge.ops --stack whoop-bridge resume service-request SR_ID
  python -m whoop_bridge.ops --stack whoop-bridge resume service-request SR_ID --report-taken
  python -m whoop_bridge.ops --local http://127.0.0.1:3000 timeline requisition REQ_ID --svg order.svg
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m whoop_bridge.ops",
        description="Operate a WHOOP Bridge stack: dead letters, resume, timelines.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = top.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", metavar="NAME", help="a deployed stack's name (CloudFormation)")
    where.add_argument("--local", metavar="URL", help="the URL of `python -m local serve`, e.g. http://127.0.0.1:3000")
    top.add_argument("--region", help="the stack's region (default: the credential chain's)")
    top.add_argument("--profile", help="an AWS profile (default: the standard credential chain)")
    commands = top.add_subparsers(dest="command", required=True)

    letters = commands.add_parser("dead-letters", help="list or replay the dead-letter queues")
    letters_commands = letters.add_subparsers(dest="action", required=True)
    listing = letters_commands.add_parser("list", help="each queue's depth and messages (ids and errors only)")
    listing.add_argument("--max", type=_count, default=50, help="messages shown per queue, 1-1000 (default 50)")
    replay = letters_commands.add_parser("replay", help="move a queue's messages back to its source queue")
    replay.add_argument("queue", help="partner-events, member-events, member-jobs (or a logical id)")
    replay.add_argument("--timeout", type=float, default=900, help="seconds to wait for the move task (900)")

    resume = commands.add_parser("resume", help="start a new execution of a failed test or order")
    resume.add_argument("kind", choices=sorted(api_calls.RESUME_PATHS))
    resume.add_argument("id", help="the service request's or requisition's id")
    uncertain = resume.add_mutually_exclusive_group()
    uncertain.add_argument(
        "--resend-uncertain-report",
        action="store_true",
        help="a test's report whose answer was lost: WHOOP confirmed it does not hold it, post it again",
    )
    uncertain.add_argument(
        "--report-taken",
        action="store_true",
        help="a test's report whose answer was lost: WHOOP confirmed it holds it, record it as submitted",
    )

    timeline = commands.add_parser("timeline", help="an order's timeline as a table, or its picture")
    timeline.add_argument("kind", choices=["requisition"])
    timeline.add_argument("id", help="the requisition's id")
    timeline.add_argument("--svg", metavar="FILE", type=Path, help="save the SVG picture to FILE instead")
    return top


def _count(text: str) -> int:
    """A whole number from 1 to 1000 (argparse answers anything else with exit code 2)."""
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 1000, got {text!r}")
    return int(text)


def open_stack(arguments: argparse.Namespace) -> Stack:
    if arguments.local:
        return from_local(arguments.local)
    return from_cloudformation(arguments.stack, region=arguments.region, profile=arguments.profile)


def list_dead_letters(stack: Stack, arguments: argparse.Namespace, out: TextIO) -> int:
    for queue in dead_letters.find(stack):
        visible, in_flight = dead_letters.depth(stack, queue)
        source = f" -> {queue.source_logical_id}" if queue.source_logical_id else " (no source queue)"
        print(f"{queue.name} ({queue.logical_id}{source}): {_messages(visible)}, {in_flight} in flight", file=out)
        if not visible:
            continue
        for letter in dead_letters.peek(stack, queue, arguments.max):
            ids = " ".join(f"{key}={value}" for key, value in letter.ids.items())
            hidden = f" (+{letter.hidden_keys} keys not shown)" if letter.hidden_keys else ""
            error = " ".join(f"{key}={value}" for key, value in letter.error.items()) or "not recorded"
            print(
                f"  {letter.message_id}  sent={letter.sent_at}  first_received={letter.first_received_at}  "
                f"receives={letter.receives}",
                file=out,
            )
            print(f"    ids: {ids or '-'}{hidden}", file=out)
            print(f"    error: {error}", file=out)
    return OK


def _messages(count: int) -> str:
    return f"{count} message" if count == 1 else f"{count} messages"


def replay_dead_letters(stack: Stack, arguments: argparse.Namespace, out: TextIO) -> int:
    queue = dead_letters.select(dead_letters.find(stack), arguments.queue)
    dead_letters.check_replayable(queue)
    visible, in_flight = dead_letters.depth(stack, queue)
    if not visible:
        print(f"{queue.name}: empty ({in_flight} in flight), nothing to replay", file=out)
        return OK
    print(f"{queue.name}: moving {_messages(visible)} to {queue.source_logical_id}", file=out)
    result = dead_letters.replay(stack, queue, timeout_seconds=arguments.timeout)
    left_visible, left_in_flight = result.left
    print(
        f"move task {result.status}: {result.moved} moved of {result.to_move}"
        + (f", failure: {result.failure}" if result.failure else ""),
        file=out,
    )
    print(f"{queue.name} now holds {_messages(left_visible)}, {left_in_flight} in flight", file=out)
    if result.status != "COMPLETED":
        raise OpsError(f"the move task ended {result.status}")
    return OK


def resume_command(stack: Stack, arguments: argparse.Namespace, out: TextIO) -> int:
    body = {}
    if arguments.resend_uncertain_report:
        body["resend_uncertain_report"] = True
    if arguments.report_taken:
        body["report_taken"] = True
    if body and arguments.kind != "service-request":
        raise OpsError("--resend-uncertain-report and --report-taken are for a service request only", USAGE)
    answer = api_calls.resume(stack, arguments.kind, arguments.id, body)
    print(f"resumed {arguments.kind} {arguments.id}: {api_calls.summary(answer)}", file=out)
    return OK


def timeline_command(stack: Stack, arguments: argparse.Namespace, out: TextIO) -> int:
    if arguments.svg:
        answer = api_calls.timeline(stack, arguments.id, svg=True)
        try:
            arguments.svg.write_bytes(answer.body)
        except OSError as error:  # the operator's path: one line naming it, no traceback
            raise OpsError(f"cannot write {arguments.svg}: {type(error).__name__}", USAGE) from None
        print(f"saved the timeline picture of requisition {arguments.id} to {arguments.svg}", file=out)
        return OK
    body = api_calls.timeline(stack, arguments.id).json()
    if not isinstance(body, dict):
        raise OpsError("the timeline answer is not a JSON object")
    for line in api_calls.timeline_rows(body):
        print(line, file=out)
    return OK


COMMANDS: dict[tuple[str, str | None], Callable[[Stack, argparse.Namespace, TextIO], int]] = {
    ("dead-letters", "list"): list_dead_letters,
    ("dead-letters", "replay"): replay_dead_letters,
    ("resume", None): resume_command,
    ("timeline", None): timeline_command,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; its exit code. Expected failures print one line to `err`."""
    out, err = out or sys.stdout, err or sys.stderr
    arguments = parser().parse_args(argv)
    command = COMMANDS[(arguments.command, getattr(arguments, "action", None))]
    try:
        return command(open_stack(arguments), arguments, out)
    except OpsError as error:
        print(f"error: {error}", file=err)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
