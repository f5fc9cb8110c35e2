"""The shared layer (layers/bridge, built by its Makefile) with the files of prune.txt removed:
every handler that loads it, and every whoop_bridge module, import from the pruned layer alone,
and both APIs serve their OpenAPI documents; no module the handlers can reach imports a
removed file; and the reasons prune.txt gives still hold.

The deployed layer is for arm64 (pydantic-core's compiled module does not load on this
machine), so the test builds the same layer, same Makefile and prune list, for this interpreter
and machine (`PLATFORM`, `PYTHON_VERSION`); pip downloads the hash-pinned wheels.
The size goal is checked on the arm64 build by bench/deployment_size.py (.ci/run)."""

import ast
import fnmatch
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = ROOT / "layers" / "bridge"
# The intake loads its own layer (layers/intake, tests/unit/test_intake_layer.py).
HANDLERS = sorted(path for path in ROOT.glob("functions/*/app.py") if path.parent.name != "webhook_intake")
# What the Lambda python3.13 runtime itself provides besides the standard library (it sits
# after the layers on sys.path): the AWS SDK and its dependencies.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
ARN = "arn:aws:{}:us-east-1:123456789012:{}"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/{}"
# The settings the handlers read at import (whoop_bridge/config.py), shaped as deployed; the
# probe makes no AWS call (only the OpenAPI routes are answered).
SETTINGS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "WhoopBridge",
    "POWERTOOLS_SERVICE_NAME": "whoop-bridge",
    "LAB_TABLE_NAME": "lab",
    "MEMBER_TABLE_NAME": "members",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "EVENT_BUS_NAME": "bridge",
    "PARTNER_SECRET_ARN": ARN.format("secretsmanager", "secret:partner"),
    "MEMBER_SECRET_ARN": ARN.format("secretsmanager", "secret:member"),
    "PARTNER_WEBHOOK_SECRET_ARN": ARN.format("secretsmanager", "secret:webhook"),
    "BRIDGE_KEY_ARN": ARN.format("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab"),
    "STATE_MACHINE_ARN": ARN.format("states", "stateMachine:lab"),
    "PARTNER_EVENTS_QUEUE_URL": QUEUE.format("partner-events"),
    "MEMBER_EVENTS_QUEUE_URL": QUEUE.format("member-events"),
    "MEMBER_JOBS_QUEUE_URL": QUEUE.format("member-jobs"),
    "DOCUMENT_BUCKET_NAME": "documents",
    "OAUTH_REDIRECT_URL": "https://bridge.example.com/members/oauth/callback",
}


def _prune_patterns() -> list[str]:
    lines = (BRIDGE / "prune.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def layer(tmp_path_factory) -> Path:
    """layers/bridge/Makefile's output for this interpreter and machine: its python/ folder."""
    artifacts = tmp_path_factory.mktemp("bridge-layer")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    build = subprocess.run(
        [
            "make",
            "--silent",
            "-f",
            str(BRIDGE / "Makefile"),
            "build-BridgeLayer",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={sys.executable}",
            f"PLATFORM=manylinux2014_{platform.machine()}",
            f"PYTHON_VERSION={version}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return artifacts / "python"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Path:
    """A folder holding only what the Lambda runtime adds to the standard library (links to
    this environment's copies)."""
    folder = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_PACKAGES:
        module = __import__(name)
        source = Path(module.__file__)
        source = source.parent if source.name == "__init__.py" else source
        (folder / source.name).symlink_to(source)
    return folder


def test_the_pruned_layer_runs_every_handler_and_serves_both_openapi_documents(layer, runtime):
    stdlib = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import json, sys; print(json.dumps(sys.path))"],
        capture_output=True,
        text=True,
        check=True,
    )
    search_path = [str(layer), *json.loads(stdlib.stdout), str(runtime)]
    openapi_event = json.loads((ROOT / "events" / "lab_api_openapi.json").read_text())
    member_event = {**openapi_event, "resource": "/members/openapi.json", "path": "/members/openapi.json"}
    probe = f"""
import importlib, importlib.metadata, importlib.util, json, pkgutil, sys
sys.path[:] = {search_path!r}
handlers = {{}}
for path in {[str(path) for path in HANDLERS]!r}:
    name = path.split("/")[-2]
    spec = importlib.util.spec_from_file_location("handler_" + name, path)
    handlers[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handlers[name])
import whoop_bridge
modules = sorted(info.name for info in pkgutil.walk_packages(whoop_bridge.__path__, "whoop_bridge."))
for name in modules:
    importlib.import_module(name)
class Context:
    function_name = "api"; memory_limit_in_mb = 1024; aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
documents = {{}}
for name, event in (("lab_api", {openapi_event!r}), ("member_api", {member_event!r})):
    answer = handlers[name].handler(event, Context())
    documents[name] = {{"status": answer["statusCode"], "body": json.loads(answer["body"])}}
# importlib.metadata still reads every package's name and version (the long description is cut).
versions = {{dist.metadata["Name"].lower().replace("_", "-"): dist.version
            for dist in importlib.metadata.distributions(path=[sys.path[0]])}}
outside = sorted(n for n, m in sys.modules.items()
                 if getattr(m, "__file__", None) and not any(m.__file__.startswith(p) for p in sys.path))
print("RESULT " + json.dumps({{"handlers": sorted(handlers), "modules": modules, "documents": documents,
                               "outside": outside, "versions": versions}}))
"""
    answer = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **SETTINGS},
    )
    # A handler or module that needs a pruned file fails its import here.
    assert answer.returncode == 0, answer.stderr[-3000:]
    line = next(line for line in answer.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["handlers"] == sorted(path.parent.name for path in HANDLERS)
    expected = {
        ".".join(path.relative_to(BRIDGE).with_suffix("").parts).removesuffix(".__init__")
        for path in (BRIDGE / "whoop_bridge").rglob("*.py")
    } - {"whoop_bridge"}
    assert set(result["modules"]) == expected
    assert result["outside"] == []
    pins = re.findall(r"^([a-z0-9-]+)==(\S+)", (BRIDGE / "requirements.txt").read_text(), re.MULTILINE)
    assert result["versions"] == dict(pins)
    lab, members = result["documents"]["lab_api"], result["documents"]["member_api"]
    assert (lab["status"], members["status"]) == (200, 200), result["documents"]
    assert lab["body"]["openapi"].startswith("3.") and members["body"]["openapi"].startswith("3.")
    assert "/lab/requisitions" in lab["body"]["paths"]
    assert any(path.startswith("/members/") for path in members["body"]["paths"])
    assert lab["body"]["components"]["schemas"] and members["body"]["components"]["schemas"]


def _imports(path: Path, package: str) -> set[str]:
    """Every module name `path` may import (anywhere in it: top level, functions, guarded),
    as dotted names; `from a import b` gives both a and a.b."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _module_file(layer: Path, name: str) -> Path | None:
    folder = layer.joinpath(*name.split("."))
    for candidate in (folder / "__init__.py", folder.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def test_no_module_the_handlers_can_reach_imports_a_pruned_file(layer):
    # Stubs (*.pyi) are never imported; every other entry is a folder or a file of a module.
    patterns = [pattern for pattern in _prune_patterns() if not pattern.endswith(".pyi")]

    def pruned(name: str) -> str | None:
        parts = name.split(".")
        if not (layer / parts[0]).exists() and not (layer / f"{parts[0]}.py").exists():
            return None  # the standard library or the runtime's packages
        for end in range(1, len(parts) + 1):
            stem = "/".join(parts[:end])
            for candidate in (stem, f"{stem}.py"):
                for pattern in patterns:
                    if fnmatch.fnmatch(candidate, pattern):
                        return pattern
        return None

    # Walk every import statement from the handlers and whoop_bridge through the layer.
    queue = [(path, "") for path in HANDLERS] + [(path, "") for path in (layer / "whoop_bridge").rglob("*.py")]
    seen: set[Path] = set()
    offences: list[str] = []
    while queue:
        path, package = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path, package):
            if (pattern := pruned(name)) is not None:
                offences.append(
                    f"{path.relative_to(layer) if path.is_relative_to(layer) else path}: {name} ({pattern})"
                )
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                module = _module_file(layer, ".".join(parts[:end]))
                if module is not None:
                    owner = ".".join(parts[:end]) if module.name == "__init__.py" else ".".join(parts[: end - 1])
                    queue.append((module, owner))
    assert len(seen) > 300  # the walk went through Powertools and pydantic, not only the handlers
    # The one known reference, reached only for a type with __get_validators__ (none here:
    # test_what_prune_txt_relies_on_still_holds).
    v1_hook = "pydantic/_internal/_generate_schema.py: pydantic.v1"
    assert sorted(offences) == [f"{v1_hook} (pydantic/v1)", f"{v1_hook}.BaseModel (pydantic/v1)"]


def test_what_prune_txt_relies_on_still_holds(layer):
    code = [*HANDLERS, *(BRIDGE / "whoop_bridge").rglob("*.py")]
    # Swagger UI's files are read only by enable_swagger.
    assert not [path for path in code if "enable_swagger" in path.read_text()]
    # pydantic imports pydantic.v1 only for a type with the V1 hook __get_validators__.
    hooks = [
        path.relative_to(layer)
        for path in layer.rglob("*.py")
        if "__get_validators__" in path.read_text() and path.relative_to(layer).parts[:1] != ("pydantic",)
    ]
    assert hooks == [] and not [path for path in code if "__get_validators__" in path.read_text()]
    # charset_normalizer keeps the Python modules its compiled copies were made from.
    assert (layer / "charset_normalizer" / "md.py").is_file() and (layer / "charset_normalizer" / "cd.py").is_file()
    assert not list((layer / "charset_normalizer").glob("*.so"))
    # Every whoop_bridge module is in the layer, nothing else of the source folder.
    copied = {path.relative_to(layer) for path in (layer / "whoop_bridge").rglob("*") if path.is_file()}
    source = {path.relative_to(BRIDGE) for path in (BRIDGE / "whoop_bridge").rglob("*.py")}
    assert copied == source
