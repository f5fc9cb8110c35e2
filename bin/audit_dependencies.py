#!/usr/bin/env python3
"""Audit the layer's pinned dependencies for known vulnerabilities with pip-audit, and say
plainly when nothing could be checked.

pip-audit prints "No known vulnerabilities found" and exits 0 even when it could not look
a single package up (PyPI refusing its per-version JSON lookups: every dependency comes
back "skipped"), and crashes when OSV cannot be reached. This reads its JSON report and
tells the three cases apart:

- it checked and found vulnerabilities: list them, exit 1;
- it checked (every dependency, or some with the rest named): exit 0;
- it checked nothing (every dependency skipped, or the service unreachable): print
  "nothing was checked: <reason>" and exit 0, so that CI does not fail for that alone.

Any other failure of pip-audit (a requirements file it cannot read, a hash mismatch)
exits 2. Standard library only: `make audit` runs it with pip-audit from its own venv.

    python3 bin/audit_dependencies.py [--pip-audit PATH] [--service pypi|osv] [REQUIREMENTS]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "layers" / "bridge" / "requirements.txt"

FOUND, CHECKED, NOTHING_CHECKED, FAILED = 1, 0, 0, 2
# What pip-audit's traceback says when its vulnerability service cannot be reached.
UNREACHABLE = (
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "NameResolutionError",
    "Max retries exceeded",
    "ServiceError",
    "Temporary failure in name resolution",
    "Network is unreachable",
)


@dataclass(frozen=True)
class Verdict:
    """What the audit established: the exit status and the lines to print."""

    status: int
    lines: tuple[str, ...]


def assess(report_text: str | None, returncode: int, stderr: str) -> Verdict:
    """The verdict on one pip-audit run: its JSON report (None when it wrote none), its exit
    status and its standard error."""
    report = _parse(report_text)
    if report is None:
        reason = _last_line(stderr) or f"pip-audit exited {returncode} without a report"
        if any(marker in stderr for marker in UNREACHABLE):
            return Verdict(
                NOTHING_CHECKED, (f"nothing was checked: the vulnerability service is unreachable ({reason})",)
            )
        return Verdict(FAILED, (f"pip-audit failed: {reason}",))

    dependencies = report.get("dependencies") or []
    skipped = [dep for dep in dependencies if dep.get("skip_reason")]
    checked = [dep for dep in dependencies if not dep.get("skip_reason")]
    vulnerable = [dep for dep in checked if dep.get("vulns")]
    if vulnerable:
        lines = [f"{len(vulnerable)} of {len(checked)} checked dependencies have known vulnerabilities:"]
        for dep in vulnerable:
            for vuln in dep["vulns"]:
                fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
                lines.append(f"  {dep['name']} {dep.get('version', '?')}: {vuln.get('id', '?')} (fixed in: {fixes})")
        lines += _skipped_lines(skipped)
        return Verdict(FOUND, tuple(lines))
    if not dependencies:
        return Verdict(NOTHING_CHECKED, ("nothing was checked: pip-audit found no dependencies to audit",))
    if not checked:
        reasons = sorted({_reason(dep["skip_reason"]) for dep in skipped})
        return Verdict(
            NOTHING_CHECKED,
            (
                f"nothing was checked: all {len(skipped)} dependencies were skipped by pip-audit "
                f"({'; '.join(reasons)}); its 'No known vulnerabilities found' means nothing here",
            ),
        )
    lines = [f"checked {len(checked)} of {len(dependencies)} dependencies: no known vulnerabilities"]
    return Verdict(CHECKED, tuple(lines + _skipped_lines(skipped)))


def _parse(report_text: str | None) -> dict[str, Any] | None:
    if not report_text or not report_text.strip():
        return None
    try:
        report = json.loads(report_text)
    except ValueError:
        return None
    return report if isinstance(report, dict) and "dependencies" in report else None


def _reason(skip_reason: str) -> str:
    """A skip reason without the package's own name and version (the same for every package)."""
    return skip_reason.split(":", 1)[0].strip()


def _skipped_lines(skipped: list[dict[str, Any]]) -> list[str]:
    if not skipped:
        return []
    return [f"NOT checked ({len(skipped)}):"] + [f"  {dep['name']}: {dep['skip_reason']}" for dep in skipped]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def run(pip_audit: str, requirements: Path, service: str) -> Verdict:
    """Run pip-audit on a hash-pinned requirements file (no venv, no resolution) and assess it."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "report.json"
        command = [
            pip_audit,
            "--requirement",
            str(requirements),
            "--require-hashes",
            "--disable-pip",
            "--vulnerability-service",
            service,
            "--format",
            "json",
            "--output",
            str(output),
            "--progress-spinner",
            "off",
        ]
        answer = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own arguments
        report = output.read_text() if output.exists() else None
    return assess(report, answer.returncode, answer.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", nargs="?", type=Path, default=REQUIREMENTS)
    parser.add_argument("--pip-audit", default="pip-audit", help="the pip-audit executable")
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi", help="vulnerability service")
    arguments = parser.parse_args(argv)
    verdict = run(arguments.pip_audit, arguments.requirements, arguments.service)
    print(f"pip-audit ({arguments.service}) on {arguments.requirements.name}:")
    for line in verdict.lines:
        print(line)
    return verdict.status


if __name__ == "__main__":
    sys.exit(main())
