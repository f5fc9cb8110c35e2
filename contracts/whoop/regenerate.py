"""Rebuild `openapi.json` beside this file: WHOOP's published OpenAPI document, facts only.

Usage: python contracts/whoop/regenerate.py [SOURCE]  (SOURCE is a file or an https URL;
it defaults to the URL where WHOOP publishes the document, PUBLISHED_URL).

Kept: paths, methods, parameters, request bodies, responses (status codes, content types,
schemas), components/schemas, required lists, types, formats, enums, defaults, nullable,
discriminators, security schemes and requirements. Removed: every `description`,
`summary`, `example`, `examples` and `externalDocs` (prose that changes without the
contract changing), and the scopes' prose (each scope keeps its name). The output is
deterministic: sorted keys, two-space indent, a final newline.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_URL = "https://api.prod.whoop.com/developer/doc/openapi.json"
TARGET = Path(__file__).resolve().parent / "openapi.json"
PROSE_KEYS = frozenset({"description", "summary", "example", "examples", "externalDocs"})


def strip(node: Any, *, parent: str | None = None) -> Any:
    """`node` without prose keys. Under `properties` (and other name maps) a key is a field
    name, never prose, so only schema-level keys are dropped."""
    if isinstance(node, list):
        return [strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    if parent == "scopes":
        return {name: "" for name in node}  # a scope's name is the fact; its text is prose
    name_map = parent in ("properties", "schemas", "paths", "responses", "securitySchemes", "content", "headers")
    return {key: strip(value, parent=key) for key, value in node.items() if name_map or key not in PROSE_KEYS}


def facts_only(document: dict[str, Any]) -> dict[str, Any]:
    """The document with prose removed (`info` keeps its title and version)."""
    stripped = strip(document)
    stripped["info"] = {key: document["info"][key] for key in ("title", "version") if key in document.get("info", {})}
    return stripped


def render(document: dict[str, Any]) -> str:
    return json.dumps(facts_only(document), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load(source: str) -> dict[str, Any]:
    """WHOOP's document from a file, or from an https URL (30 s timeout)."""
    if source.startswith("https://"):
        with urllib.request.urlopen(source, timeout=30) as answer:  # noqa: S310 - https only, checked above
            return json.loads(answer.read().decode("utf-8"))
    return json.loads(Path(source).read_text(encoding="utf-8"))


def main(argv: list[str]) -> int:
    source = argv[1] if len(argv) > 1 else PUBLISHED_URL
    TARGET.write_text(render(load(source)), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)} from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
