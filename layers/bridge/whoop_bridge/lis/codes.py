"""The operator's optional code map: WHOOP's test codes to the lab's on the way out, the
lab's observation codes to WHOOP's on the way in (README "Connect your LIS").

The map is one JSON document in SSM Parameter Store, named by the setting
LIS_CODE_MAP_PARAMETER (the template's LisCodeMapParameter; empty: no map, every code
passes through unchanged), read through Powertools Parameters and cached for
CODE_MAP_SECONDS:

    {"tests": {"<WHOOP test code>": {"code": "<lab code>", "system": "<uri>", "display": "<text>"}},
     "observations": {"<lab code>": "<WHOOP code>", "<system>|<lab code>": "<WHOOP code>"}}

A code the map does not name passes through unchanged and is counted (EMF metric
LisCodeUnmapped, dimension `direction` = out or in; never the code itself).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CODE_MAP_SETTING = "LIS_CODE_MAP_PARAMETER"
CODE_MAP_SECONDS = 300
UNMAPPED_METRIC = "LisCodeUnmapped"


class CodeMapUnavailable(Exception):
    """The parameter named by LIS_CODE_MAP_PARAMETER cannot be read, or is not a code map."""


@dataclass(frozen=True)
class LabCode:
    """A test code as the lab knows it (`system` and `display` may be empty)."""

    code: str
    system: str = ""
    display: str = ""


@dataclass
class CodeMap:
    """The map (empty: pass-through). `unmapped` counts codes passed through, by direction."""

    tests: dict[str, LabCode] = field(default_factory=dict)
    observations: dict[str, str] = field(default_factory=dict)
    unmapped: dict[str, int] = field(default_factory=lambda: {"out": 0, "in": 0})

    @property
    def empty(self) -> bool:
        return not self.tests and not self.observations

    def test_out(self, whoop_code: str) -> LabCode:
        """The lab's code for WHOOP's test code `whoop_code` (itself when unmapped)."""
        found = self.tests.get(whoop_code)
        if found is None:
            self._count("out")
            return LabCode(whoop_code)
        return found

    def observation_in(self, code: str, system: str = "") -> str:
        """WHOOP's observation code for the lab's `code` in `system` (`system|code` first,
        then `code`; itself when unmapped)."""
        for key in (f"{system}|{code}" if system else None, code):
            if key is not None and key in self.observations:
                return self.observations[key]
        self._count("in")
        return code

    def _count(self, direction: str) -> None:
        if not self.empty:  # with no map every code passes through by design: nothing to count
            self.unmapped[direction] += 1

    def publish_counts(self) -> None:
        """One EMF metric per direction with codes passed through unmapped (whoop_bridge.emf), then reset."""
        from whoop_bridge import emf

        for direction, count in self.unmapped.items():
            if count:
                emf.put(UNMAPPED_METRIC, {"direction": direction}, value=count)
                self.unmapped[direction] = 0


def parse(document: Any) -> CodeMap:
    """A CodeMap from the parameter's JSON document; CodeMapUnavailable naming what is wrong."""
    if not isinstance(document, dict) or set(document) - {"tests", "observations"}:
        raise CodeMapUnavailable("the code map is a JSON object with only `tests` and `observations`")
    tests, observations = document.get("tests", {}), document.get("observations", {})
    if not isinstance(tests, dict) or not isinstance(observations, dict):
        raise CodeMapUnavailable("`tests` and `observations` are JSON objects")
    mapped_tests = {}
    for whoop_code, lab in tests.items():
        if isinstance(lab, str):
            lab = {"code": lab}
        if not isinstance(lab, dict) or not isinstance(lab.get("code"), str) or not lab["code"]:
            raise CodeMapUnavailable("each `tests` entry is a code or {code, system?, display?}")
        mapped_tests[whoop_code] = LabCode(lab["code"], str(lab.get("system") or ""), str(lab.get("display") or ""))
    if not all(isinstance(value, str) and value for value in observations.values()):
        raise CodeMapUnavailable("each `observations` entry names a WHOOP code")
    return CodeMap(mapped_tests, dict(observations))


def _from_ssm(name: str) -> Any:
    from aws_lambda_powertools.utilities import parameters

    return parameters.get_parameter(name, transform="json", max_age=CODE_MAP_SECONDS)


def code_map(fetch: Callable[[str], Any] = _from_ssm, environ: Any = os.environ) -> CodeMap:
    """The stack's code map (an empty one when LIS_CODE_MAP_PARAMETER is empty)."""
    name = (environ.get(CODE_MAP_SETTING) or "").strip()
    if not name:
        return CodeMap()
    try:
        document = fetch(name)
    except Exception as error:  # Powertools' GetParameterError, TransformParameterError, a botocore error
        raise CodeMapUnavailable(f"the parameter named by {CODE_MAP_SETTING} cannot be read") from error
    return parse(document)
