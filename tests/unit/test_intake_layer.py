"""The webhook intake's own layer (layers/intake): exactly the whoop_bridge modules it
imports, and Powertools' core pinned as the bridge layer pins it."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INTAKE_LAYER = ROOT / "layers" / "intake"
BRIDGE = ROOT / "layers" / "bridge"


def _modules() -> list[str]:
    lines = (INTAKE_LAYER / "modules.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _pins(path: Path) -> dict[str, str]:
    """Each requirement's block (name==version and its hashes), comments dropped."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    blocks = re.split(r"\n(?=\S)", text.strip())
    return {block.split("==")[0]: " ".join(block.replace("\\", " ").split()) for block in blocks}


def test_the_intake_layer_pins_what_the_bridge_layer_pins_hashes_included():
    intake, bridge = _pins(INTAKE_LAYER / "requirements.txt"), _pins(BRIDGE / "requirements.txt")
    assert set(intake) == {"aws-lambda-powertools", "jmespath", "typing-extensions"}
    for name, block in intake.items():
        assert block == bridge[name], name


def test_the_intake_runs_from_exactly_the_listed_modules(tmp_path):
    for module in _modules():
        target = tmp_path / module
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BRIDGE / module, target)
    # Import the handler from the copy alone, then answer the routes that need no AWS call: an
    # unknown route (404), a data webhook without a signature, one with a malformed timestamp
    # (401 with its metric line). Every whoop_bridge module loaded must be listed, and every
    # listed module loaded.
    probe = f"""
import importlib.util, json, sys
sys.path.insert(0, {str(tmp_path)!r})
spec = importlib.util.spec_from_file_location("app", {str(ROOT / "functions" / "webhook_intake" / "app.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
class Context:
    function_name = "intake"; memory_limit_in_mb = 1024; aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:intake"
statuses = [module.handler({{"resource": route, "headers": headers, "body": "{{}}", "requestContext": {{}}}}, Context())["statusCode"]
            for route, headers in (("/nowhere", {{}}), ("/webhooks/whoop", {{}}),
                                   ("/webhooks/whoop", {{"X-WHOOP-Signature": "x", "X-WHOOP-Signature-Timestamp": "soon"}}))]
loaded = sorted(m.__file__[len({str(tmp_path)!r}) + 1:] for n, m in sys.modules.items() if n.split(".")[0] == "whoop_bridge")
print("RESULT " + json.dumps({{"statuses": statuses, "loaded": loaded}}))
"""
    answer = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_METRICS_NAMESPACE": "WhoopBridge"},
    )
    # A module the intake needs but modules.txt misses fails its import here (ModuleNotFoundError).
    assert answer.returncode == 0, answer.stderr[-2000:]
    line = next(line for line in answer.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["statuses"] == [404, 401, 401]
    assert result["loaded"] == sorted(_modules())
