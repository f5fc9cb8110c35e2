"""Reading the metrics the code wrote: the CloudWatch embedded metric format (EMF) lines
in captured stdout (pytest's capsys)."""

from __future__ import annotations

import json
from typing import Any


def emf_lines(output: str, metric: str) -> list[dict[str, Any]]:
    """The EMF lines in `output` that carry `metric`."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [line for line in lines if metric in line]


def dimension_sets(line: dict[str, Any]) -> list[set[str]]:
    """The dimension sets an EMF line writes its metrics under."""
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    return [set(names) for names in directive["Dimensions"]]


def points(output: str, metric: str) -> list[tuple[dict[str, str], float]]:
    """Each value of `metric` written in `output`, with its dimensions (service left out)."""
    found = []
    for line in emf_lines(output, metric):
        names = set().union(*dimension_sets(line)) - {"service"}
        (value,) = line[metric]
        found.append(({name: line[name] for name in names}, value))
    return found
