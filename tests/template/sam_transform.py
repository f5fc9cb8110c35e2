"""The template as CloudFormation receives it: template.yaml through the SAM translator.

The translation is bin/transformed_template.py's, the one `make scan` scans; it runs with
the SAM CLI's own interpreter (`.venv-sam`, made by `make sam`), so the tests read what
`sam validate` and `sam deploy` produce, with the same aws-sam-translator. (That version
cannot join requirements-dev.txt: it needs a newer pydantic than the layer pins.)
`transformed()` returns it.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
TRANSFORM = ROOT / "bin" / "transformed_template.py"


@cache
def transformed(template: Path = ROOT / "template.yaml") -> dict[str, Any]:
    """The transformed template (parameters at their defaults, region us-east-1)."""
    if not SAM_PYTHON.exists():
        raise RuntimeError(f"{SAM_PYTHON} is missing: run `make sam` first (it installs the SAM CLI)")
    environment = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    answer = subprocess.run(
        [str(SAM_PYTHON), str(TRANSFORM), "-", str(template)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"the SAM translator failed:\n{answer.stderr[-4000:]}")
    return json.loads(answer.stdout)
