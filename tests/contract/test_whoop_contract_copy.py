"""The committed copy of WHOOP's OpenAPI document (contracts/whoop/) is facts only and is
what the regenerate script makes of WHOOP's published document."""

from __future__ import annotations

import importlib.util
import json
import os
import tomllib
from pathlib import Path

import pytest

from whoop_bridge import __version__

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "contracts" / "whoop"


def _regenerate_module():
    spec = importlib.util.spec_from_file_location("regenerate", CONTRACT / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keys(node):
    """Every key in the document, at every depth (field, path and schema names included)."""
    if isinstance(node, list):
        for item in node:
            yield from _keys(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)


def test_the_committed_copy_has_no_prose():
    document = json.loads((CONTRACT / "openapi.json").read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    prose = {"description", "summary", "example", "examples", "externalDocs"}
    # A field named like a prose key would be legitimate inside `properties`; WHOOP has none.
    assert not prose & set(_keys(document))
    assert document["servers"] == [{"url": "https://api.prod.whoop.com/developer"}]
    assert schemas["ServiceRequest"]["required"] == ["based_on", "code", "id", "intent", "status"]
    assert (
        "step_count" in schemas["Cycle"]["properties"]
        and schemas["Cycle"]["properties"]["step_count"]["nullable"] is True
    )
    assert set(document["paths"]["/v2/partner/development/add-test-data"]["post"]["responses"]) == {"200", "404", "500"}


def test_strip_keeps_fields_named_like_prose():
    module = _regenerate_module()
    schema = {
        "type": "object",
        "description": "drop",
        "properties": {"description": {"type": "string", "example": "x"}},
    }
    assert module.strip(schema) == {"type": "object", "properties": {"description": {"type": "string"}}}


def test_the_script_reproduces_the_copy_byte_for_byte():
    # The published document, where the machine has a copy (CI sets the variable).
    source = os.environ.get("WHOOP_OPENAPI_DOCUMENT", "")
    if not source or not Path(source).is_file():
        pytest.skip("WHOOP_OPENAPI_DOCUMENT does not name a copy of WHOOP's published document")
    module = _regenerate_module()
    assert module.render(module.load(source)) == (CONTRACT / "openapi.json").read_text(encoding="utf-8")


def test_the_version_in_the_user_agent_is_the_release():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert __version__ == project["version"]
