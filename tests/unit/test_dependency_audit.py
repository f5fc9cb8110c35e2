"""bin/audit_dependencies.py tells "checked, nothing found" from "nothing was checked",
on pip-audit output captured where its services could not be reached
(tests/unit/pip_audit_output/README.md)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAPTURED = Path(__file__).resolve().parent / "pip_audit_output"

_spec = importlib.util.spec_from_file_location("audit_dependencies", ROOT / "bin" / "audit_dependencies.py")
audit = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = audit  # dataclasses look their module up
_spec.loader.exec_module(audit)


def _captured(name: str) -> str:
    return (CAPTURED / name).read_text()


def _report(*dependencies: dict) -> str:
    """A report in the shape pip-audit 2.10 writes with `-f json`."""
    return json.dumps({"dependencies": list(dependencies), "fixes": []})


def test_every_dependency_skipped_is_nothing_checked_although_pip_audit_says_no_vulnerabilities():
    stderr = _captured("pypi_lookups_refused.stderr")
    assert "No known vulnerabilities found" in stderr  # what pip-audit itself claims

    verdict = audit.assess(_captured("pypi_lookups_refused.json"), 0, stderr)

    assert verdict.status == 0
    (line,) = verdict.lines
    assert line.startswith("nothing was checked: all 12 dependencies were skipped")
    assert "Dependency not found on PyPI and could not be audited" in line


def test_an_unreachable_vulnerability_service_is_nothing_checked_not_a_failure():
    verdict = audit.assess(None, 1, _captured("osv_offline.stderr"))

    assert verdict.status == 0
    (line,) = verdict.lines
    assert line.startswith("nothing was checked: the vulnerability service is unreachable")
    assert "api.osv.dev" in line


def test_a_checked_vulnerable_dependency_fails_the_audit_and_names_the_fix():
    report = _report(
        {
            "name": "requests",
            "version": "2.0.0",
            "vulns": [{"id": "PYSEC-1", "fix_versions": ["2.1.0"], "aliases": []}],
        },
        {"name": "idna", "version": "3.20", "vulns": []},
        {"name": "pydantic", "skip_reason": "Dependency not found on PyPI and could not be audited: pydantic (2.14.3)"},
    )

    verdict = audit.assess(report, 1, "Found 1 known vulnerability in 1 package")

    assert verdict.status == 1
    assert verdict.lines[0] == "1 of 2 checked dependencies have known vulnerabilities:"
    assert "  requests 2.0.0: PYSEC-1 (fixed in: 2.1.0)" in verdict.lines
    # What could not be checked is still said.
    assert "NOT checked (1):" in verdict.lines


def test_checked_and_clean_passes_and_names_what_was_skipped():
    clean = audit.assess(_report({"name": "idna", "version": "3.20", "vulns": []}), 0, "No known vulnerabilities found")
    assert (clean.status, clean.lines) == (0, ("checked 1 of 1 dependencies: no known vulnerabilities",))

    partial = audit.assess(
        _report({"name": "idna", "version": "3.20", "vulns": []}, {"name": "x", "skip_reason": "Dependency not found"}),
        0,
        "",
    )
    assert partial.status == 0
    assert partial.lines[0] == "checked 1 of 2 dependencies: no known vulnerabilities"
    assert partial.lines[1:] == ("NOT checked (1):", "  x: Dependency not found")


def test_any_other_pip_audit_failure_fails_the_audit():
    stderr = "ERROR:pip_audit._cli:requirement boto3==1.44.5 does not contain a hash\n"

    verdict = audit.assess(None, 1, stderr)

    assert verdict.status == 2
    assert verdict.lines == (
        "pip-audit failed: ERROR:pip_audit._cli:requirement boto3==1.44.5 does not contain a hash",
    )
