"""The lis layer's build (layers/lis/Makefile, template LisLayer): built for the host, it holds
fhir.resources' R4B models and nothing of R5 or STU3, and the bridge's FHIR and HL7 code runs
from it alone (an interpreter without site-packages: the build and layers/bridge only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SR = "6f1c2f44-1d1a-4d6f-9a57-1a2b3c4d5e6f"

PROBE = """
import importlib, json, sys
build, bridge = sys.argv[1], sys.argv[2]
sys.path[:0] = [build, bridge]
from fhir.resources.R4B import appointment, bundle, diagnosticreport, observation, operationoutcome, patient, servicerequest
from whoop_bridge.lis import fhir, hl7
from whoop_bridge.lis.codes import CodeMap
sr = %(sr)r
view = {"id": "req-1", "patient": {"id": "p-1", "first_name": "Ann", "last_name": "Lee", "birth_date": "1990-02-03"},
        "appointments": [{"id": "a-1", "start_time": "2026-12-02T09:30:00Z", "service_request_ids": [sr]}],
        "service_requests": [{"id": sr, "code": "LIPID_PANEL", "status": "active"}]}
built = fhir.requisition_bundle(view, CodeMap())
report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "Lipid panel"},
          "basedOn": [{"reference": "ServiceRequest/" + sr}],
          "contained": [{"resourceType": "Observation", "id": "o1", "status": "final",
                         "code": {"coding": [{"code": "LDL"}]}, "valueQuantity": {"value": 96, "unit": "mg/dL"}}],
          "result": [{"reference": "#o1"}]}
service_request_id, whoop_report, places = fhir.report_in(report, CodeMap())
message = hl7.order_message(view, CodeMap())
pruned = []
for name in ("fhir.resources.STU3", "fhir.resources.patient"):
    try:
        importlib.import_module(name)
    except ImportError:
        pruned.append(name)
outside = sorted(n for n, m in sys.modules.items()
                 if n.split(".")[0] in ("fhir", "fhir_core", "hl7", "pydantic", "pydantic_core")
                 and getattr(m, "__file__", None) and not m.__file__.startswith(build))
print("RESULT " + json.dumps({
    "types": sorted(e["resource"]["resourceType"] for e in built["entry"]),
    "report": [service_request_id, whoop_report],
    "orm": message.split("\\r")[0].split("|")[8],
    "pruned": pruned,
    "outside": outside,
}))
"""


@pytest.fixture(scope="module")
def host_build(tmp_path_factory) -> Path:
    """layers/lis/Makefile run for the host's Python and platform (PLATFORM empty)."""
    artifacts = tmp_path_factory.mktemp("lis-layer")
    result = subprocess.run(
        [
            "make",
            "-f",
            str(ROOT / "layers" / "lis" / "Makefile"),
            "build-LisLayer",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={sys.executable}",
            "PLATFORM=",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return artifacts / "python"


def test_the_build_keeps_only_r4b_of_fhir_resources(host_build):
    resources = host_build / "fhir" / "resources"
    assert sorted(path.name for path in resources.iterdir()) == ["R4B", "__init__.py"]
    assert (resources / "R4B" / "servicerequest.py").is_file()
    assert (host_build / "hl7" / "__init__.py").is_file()


def test_the_bridge_runs_its_fhir_and_hl7_code_from_the_pruned_build_alone(host_build):
    # -I: no PYTHONPATH, no user site; -S: no site-packages (the venv's fhir.resources stays out).
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE % {"sr": SR}, str(host_build), str(ROOT / "layers" / "bridge")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.split("RESULT ", 1)[1])
    assert found["types"] == ["Appointment", "Patient", "ServiceRequest"]
    assert found["report"][0] == SR and found["report"][1]["observations"][0]["value_numeric"] == 96
    assert found["orm"] == "ORM^O01^ORM_O01"
    assert found["pruned"] == ["fhir.resources.STU3", "fhir.resources.patient"]
    assert found["outside"] == []
