"""No regression of what is already at the minimum: the WHOOP calls the demo's lab paths cost.

Runs the demo (`local.demo.run_demo`: a requisition of three tests through the three lab
paths, partial + final reports, a final + amended one, a results issue; then the member walk
through) on the local stack against the WHOOP emulator, and counts from the calls the
emulator received (local/emulator/calls.py) those the bridge made (User-Agent whoop-bridge/):

- partner token requests: at most one per container-hour (the local stack runs every
  function in one process: one container; the emulator's tokens live an hour);
- `PATCH .../status` calls: exactly one per status change WHOOP holds at the end (a status
  repeated right after itself is a duplicate call, not a change);
- `POST .../results` calls: exactly one per distinct report WHOOP holds at the end (the same
  report twice is a duplicate call). WHOOP's emulator keeps every call it accepts, so its
  lists alone would count a duplicate as part of the minimum.

Exits 1 when any count grows past its minimum (or the demo itself fails).

Run: .venv/bin/python bench/whoop_calls.py
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local import demo  # noqa: E402
from local.emulator import WhoopEmulator  # noqa: E402

CONTAINERS = 1  # the local stack loads every function into this one process


def run() -> tuple[int, WhoopEmulator, float, str]:
    """Run the demo; its exit status, its emulator (kept by the `attach` step), its seconds, its output."""
    seen: list[WhoopEmulator] = []
    attach = demo.attach

    def keep(emulator: WhoopEmulator, stack):  # noqa: ANN001 - demo.attach's signature
        seen.append(emulator)
        attach(emulator, stack)

    demo.attach = keep
    out = io.StringIO()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(out):
            status = demo.run_demo(log_path=Path(folder) / "demo.log", parameters={})
    finally:
        demo.attach = attach
    return status, seen[0], time.monotonic() - started, out.getvalue()


def status_changes_needed(history: list[dict]) -> int:
    """The status changes in WHOOP's history of one service request: a status repeated right
    after itself (WHOOP accepts PARTIAL_RESULTS_READY twice) is a duplicate call, not a change."""
    return sum(
        1 for index, entry in enumerate(history) if index == 0 or entry["status"] != history[index - 1]["status"]
    )


def reports_needed(reports: list[dict]) -> int:
    """The distinct reports WHOOP holds for one service request: the same report posted
    twice (WHOOP keeps both) is a duplicate call, not a second report."""
    return len({json.dumps(report, sort_keys=True) for report in reports})


def main() -> int:
    status, emulator, seconds, output = run()
    if status:
        print(output)
        print("the demo failed: no figures")
        return 1
    bridge = [call for call in emulator.calls if (call.get("user_agent") or "").startswith("whoop-bridge/")]
    partner = [call for call in bridge if "/partner/" in call["path"]]
    tokens = [call for call in partner if call["path"].endswith("/partner/token")]
    patches = [call for call in partner if call["method"] == "PATCH" and call["path"].endswith("/status")]
    results = [call for call in partner if call["method"] == "POST" and call["path"].endswith("/results")]
    others = [call for call in partner if call not in tokens and call not in patches and call not in results]
    service_requests = sorted(
        {part for call in patches + results for part in call["path"].split("/") if len(part) == 36}
    )
    status_changes = sum(status_changes_needed(emulator.status_history(sr)) for sr in service_requests)
    reports = sum(reports_needed(emulator.reports(sr)) for sr in service_requests)
    container_hours = CONTAINERS * max(1, math.ceil(seconds / 3600))

    checks = [
        (
            "partner token requests",
            len(tokens),
            container_hours,
            f"<= 1 per container-hour ({CONTAINERS} container, {seconds:.0f} s)",
        ),
        ("PATCH status calls", len(patches), status_changes, f"= status changes WHOOP holds ({status_changes})"),
        ("POST results calls", len(results), reports, f"= reports WHOOP holds ({reports})"),
    ]
    print(f"WHOOP partner API calls by the bridge over the demo ({len(service_requests)} tests, {seconds:.0f} s)")
    failed = False
    for what, count, most, rule in checks:
        met = count <= most
        failed |= not met
        print(
            f"  {what:<24} {count:3d}   minimum {most:3d}   ratio {count / most:.2f}   {rule}: {'met' if met else 'GREW'}"
        )
    if status_changes != len(patches) or reports != len(results):
        print("  (a status change or report WHOOP holds was not sent by one call)")
        failed = True
    print(
        f"  other partner calls      {len(others):3d}   "
        + ", ".join(sorted({f"{c['method']} {c['path'].split('/v2/partner/')[-1].split('/')[0]}" for c in others}))
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
