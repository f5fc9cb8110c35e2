"""The template as CloudFormation receives it: template.yaml through the SAM translator.

Run by the template tests with the SAM CLI's own interpreter (`.venv-sam`, made by
`make sam`), so they read what `sam validate` and `sam deploy` produce, with the same
aws-sam-translator. (That version cannot join requirements-dev.txt: it needs a newer
pydantic than the layer pins.) `python sam_transform.py TEMPLATE` prints the transformed
template as JSON; `transformed()` returns it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"


@cache
def transformed(template: Path = ROOT / "template.yaml") -> dict[str, Any]:
    """The transformed template (parameters at their defaults, region us-east-1)."""
    if not SAM_PYTHON.exists():
        raise RuntimeError(f"{SAM_PYTHON} is missing: run `make sam` first (it installs the SAM CLI)")
    environment = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    answer = subprocess.run(
        [str(SAM_PYTHON), __file__, str(template)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"the SAM translator failed:\n{answer.stderr[-4000:]}")
    return json.loads(answer.stdout)


def _transform(path: str) -> dict[str, Any]:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:
        """The template names no managed policy by name, so no IAM lookup is needed."""

        def load(self) -> dict[str, str]:
            return {}

    template = yaml_parse(Path(path).read_text())
    # Local paths become S3 locations, as `sam validate` and `sam package` make them.
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for uri in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(properties.get(uri), str) and not properties[uri].startswith("s3://"):
                properties[uri] = f"s3://bucket/{properties[uri]}"
    return transform(template, {}, NoManagedPolicies())


if __name__ == "__main__":
    json.dump(_transform(sys.argv[1]), sys.stdout, indent=1, default=str)
