"""The webhook intake must cold-start inside WHOOP's one-second budget: it loads no
pydantic, no event handler and no Tracer (docs/architecture.md#layers). Powertools' package
itself imports its tracing module; the X-Ray SDK behind a Tracer must stay unloaded."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_webhook_intake_imports_neither_pydantic_nor_xray_nor_event_handler():
    probe = f"""
import importlib.util, sys
sys.path.insert(0, {str(ROOT / "layers" / "bridge")!r})
spec = importlib.util.spec_from_file_location("app", {str(ROOT / "functions" / "webhook_intake" / "app.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
heavy = sorted(name for name in sys.modules if name.split(".")[0] == "pydantic"
               or name.split(".")[0] == "requests"
               or name.startswith(("aws_lambda_powertools.event_handler", "aws_xray_sdk")))
print(",".join(heavy))
"""
    answer = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert answer.stdout.strip() == ""
