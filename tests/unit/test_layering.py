"""The layering rules of CONTRIBUTING.md and docs/architecture.md, read from the source.

Static only (the AST of every file, nothing imported, no AWS), so it runs in well under a
second. Each test lists every place that breaks its rule, by file and line:

- a store module imports only models, `store.dynamo`, `times`, `aws` and `config` from the
  layer (plus the standard library, boto3, botocore and pydantic): keys and conditions stay
  in the store, rules stay in the domain;
- a models module imports only the standard library, pydantic, other models and `times`;
- `whoop/` never imports the store (the rate budget reaches its state through a port);
- no module imports another module's private (`_x`) name from the layer;
- handlers import the layer, and the layer never imports a handler or `local/`;
- tests/unit and tests/fakes import neither moto nor boto3;
- no layer module is over 400 lines, no class of the emulator over 500;
- code points readers to docs/ (an anchor that exists), never to a design kept outside the
  repository.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER_ROOT = ROOT / "layers" / "bridge"
PACKAGE = "whoop_bridge"
LAYER = LAYER_ROOT / PACKAGE
FUNCTIONS = ROOT / "functions"
LOCAL = ROOT / "local"
DOCS = ROOT / "docs"

MAX_LAYER_MODULE_LINES = 400
MAX_EMULATOR_CLASS_LINES = 500

STORE_MAY_IMPORT = ("whoop_bridge.models", "whoop_bridge.store.dynamo", "whoop_bridge.times", "whoop_bridge.aws")
STORE_MAY_IMPORT_EXACT = ("whoop_bridge.config",)
STORE_THIRD_PARTY = frozenset({"boto3", "botocore", "pydantic"})
MODELS_MAY_IMPORT = ("whoop_bridge.models", "whoop_bridge.times")
# pydantic_core is pydantic's own core (its ValidationError and custom errors), not another library.
MODELS_THIRD_PARTY = frozenset({"pydantic", "pydantic_core"})
STDLIB = frozenset(sys.stdlib_module_names)


@dataclass(frozen=True)
class Import:
    """One imported module (`target`) and, for `from target import name`, the name."""

    path: Path
    line: int
    target: str
    name: str | None = None

    def where(self) -> str:
        what = f"{self.target}.{self.name}" if self.name else self.target
        return f"{_shown(self.path)}:{self.line} imports {what}"


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if ROOT in path.parents else str(path)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LAYER_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(LAYER.rglob("*.py"))}


MODULES = _layer_modules()


def _is_layer_module(name: str) -> bool:
    return name in MODULES


def _package_of(path: Path) -> str:
    """The package a relative import in `path` starts from (empty outside the layer)."""
    if LAYER_ROOT not in path.parents:
        return ""
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imports_of(path: Path) -> Iterator[Import]:
    """Every import in the file, at any depth (a function's lazy import included), with
    relative imports resolved and `from package import module` read as that module."""
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(path).split(".")
                package = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if _is_layer_module(submodule):
                    yield Import(path, node.lineno, submodule)
                else:
                    yield Import(path, node.lineno, base, alias.name)


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _under(target: str, prefixes: tuple[str, ...]) -> bool:
    return any(target == prefix or target.startswith(prefix + ".") for prefix in prefixes)


def _files(package: str) -> list[Path]:
    folder = LAYER / package
    return sorted(folder.rglob("*.py")) if folder.is_dir() else []


def _outside_rules(paths: list[Path], layer_allowed: tuple[str, ...], third_party: frozenset[str]) -> list[str]:
    broken = []
    for path in paths:
        for found in imports_of(path):
            top = _top(found.target)
            if top == PACKAGE:
                if not (_under(found.target, layer_allowed) or found.target in STORE_MAY_IMPORT_EXACT):
                    broken.append(found.where())
            elif top not in STDLIB and top not in third_party:
                broken.append(found.where())
    return broken


def test_the_store_imports_only_models_and_the_shared_helpers():
    paths = _files("store")
    assert paths, "no store package"
    broken = _outside_rules(paths, STORE_MAY_IMPORT, STORE_THIRD_PARTY)
    assert not broken, "\n".join(broken)


def test_models_import_only_the_standard_library_pydantic_and_models():
    paths = _files("models")
    assert paths, "no models package: the typed objects live in whoop_bridge/models/"
    broken = []
    for path in paths:
        for found in imports_of(path):
            top = _top(found.target)
            if top == PACKAGE:
                if not _under(found.target, MODELS_MAY_IMPORT):
                    broken.append(found.where())
            elif top not in STDLIB and top not in MODELS_THIRD_PARTY:
                broken.append(found.where())
    assert not broken, "\n".join(broken)


def test_the_whoop_clients_never_import_the_store():
    paths = _files("whoop")
    assert paths
    broken = [
        found.where() for path in paths for found in imports_of(path) if _under(found.target, ("whoop_bridge.store",))
    ]
    assert not broken, "\n".join(broken)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _same_package(path: Path, module: str) -> bool:
    """Whether `module` (a private submodule) sits in the package of `path`."""
    return module.rpartition(".")[0] == _package_of(path)


def _private_uses(path: Path) -> Iterator[str]:
    """`from layer_module import _x`, and `layer_module._x` through an imported module name."""
    where = _shown(path)
    bound: dict[str, str] = {}  # a local name bound to a layer module
    for found in imports_of(path):
        if _top(found.target) != PACKAGE:
            continue
        if found.name is not None and _private(found.name):
            yield f"{where}:{found.line} imports {found.target}.{found.name}"
        leaf = found.target.rsplit(".", 1)[-1]
        if _private(leaf) and not _same_package(path, found.target):
            yield f"{where}:{found.line} imports the private module {found.target}"
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and _top(node.module) == PACKAGE and not node.level:
            for alias in node.names:
                if _is_layer_module(f"{node.module}.{alias.name}"):
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and _is_layer_module(alias.name):
                    bound[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
            and _private(node.attr)
            and not _is_layer_module(f"{bound[node.value.id]}.{node.attr}")
        ):
            yield f"{where}:{node.lineno} uses {bound[node.value.id]}.{node.attr}"


def _code_files() -> list[Path]:
    return [*sorted(LAYER.rglob("*.py")), *sorted(FUNCTIONS.rglob("*.py")), *sorted(LOCAL.rglob("*.py"))]


def test_no_module_uses_another_modules_private_names():
    broken = [use for path in _code_files() for use in _private_uses(path)]
    assert not broken, "\n".join(broken)


def test_handlers_import_the_layer_and_the_layer_never_imports_handlers_or_local():
    handlers = sorted(FUNCTIONS.glob("*/app.py"))
    assert handlers
    without_layer = [
        str(path.relative_to(ROOT))
        for path in handlers
        if not any(_top(found.target) == PACKAGE for found in imports_of(path))
    ]
    assert not without_layer, "\n".join(without_layer)
    upward = [
        found.where()
        for path in sorted(LAYER.rglob("*.py"))
        for found in imports_of(path)
        if _top(found.target) in ("functions", "local", "app", "tests")
    ]
    assert not upward, "\n".join(upward)
    # A handler is a leaf: it never imports another handler or the local stack.
    sideways = [
        found.where()
        for path in sorted(FUNCTIONS.rglob("*.py"))
        for found in imports_of(path)
        if _top(found.target) in ("functions", "local", "app")
    ]
    assert not sideways, "\n".join(sideways)


def test_the_unit_suite_and_its_fakes_run_without_aws():
    # tests/unit is the domain rules against in-memory fakes: moto belongs to tests/store and
    # the stack; a boto3 client here would reach for AWS (or a mock) the fakes stand in for.
    paths = sorted((ROOT / "tests" / "unit").rglob("*.py")) + sorted((ROOT / "tests" / "fakes").rglob("*.py"))
    assert paths
    broken = [found.where() for path in paths for found in imports_of(path) if _top(found.target) in ("moto", "boto3")]
    assert not broken, "\n".join(broken)


def test_no_layer_module_is_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in sorted(LAYER.rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LAYER_MODULE_LINES
    }
    assert not long, "\n".join(f"{name}: {lines} lines" for name, lines in long.items())


def _emulator_files() -> list[Path]:
    single = LOCAL / "emulator.py"
    return [*([single] if single.exists() else []), *sorted((LOCAL / "emulator").rglob("*.py"))]


def test_no_emulator_class_is_over_500_lines():
    files = _emulator_files()
    assert files, "no emulator under local/"
    long = {}
    for path in files:
        for node in ast.walk(_tree(path)):
            if (
                isinstance(node, ast.ClassDef)
                and (lines := node.end_lineno - node.lineno + 1) > MAX_EMULATOR_CLASS_LINES
            ):
                long[f"{path.relative_to(ROOT)}::{node.name}"] = lines
    assert not long, "\n".join(f"{name}: {lines} lines" for name, lines in long.items())


# Pointers to the design: docs/ only ---------------------------------------------------------

OUTSIDE_DESIGN = re.compile(r"whoop-api\.md|\.\./shared\b|(?<![\w/])shared/(?:design|whoop)|(?<![\w/-])design\.md")
DOCS_POINTER = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")
POINTING_FILES = ("layers", "functions", "local", "tests", "bench", "statemachines", "contracts")


def _pointing_files() -> list[Path]:
    found = [ROOT / "template.yaml"]
    for folder in POINTING_FILES:
        found += [
            path
            for path in sorted((ROOT / folder).rglob("*"))
            if path.suffix in (".py", ".json", ".yaml", ".toml", ".md") and path.resolve() != Path(__file__).resolve()
        ]
    return found


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to `-`."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(document: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} +(.+?) *$", document.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {_anchor(heading) for heading in headings}


def test_code_points_to_docs_never_to_a_design_outside_the_repository():
    outside = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _pointing_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE_DESIGN.search(line)
    ]
    assert not outside, "\n".join(outside)


def test_every_pointer_into_docs_names_a_section_that_exists():
    broken = []
    for path in _pointing_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for document, anchor in DOCS_POINTER.findall(line):
                target = DOCS / document
                if not target.exists() or (anchor and anchor not in _anchors(target)):
                    broken.append(f"{path.relative_to(ROOT)}:{number} docs/{document}#{anchor}")
    assert not broken, "\n".join(broken)


MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_link_of_the_readme_contributing_and_docs_resolves():
    """Relative links (and their `#section`) in README.md, CONTRIBUTING.md and docs/*.md."""
    broken = []
    for document in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]:
        for link in MARKDOWN_LINK.findall(document.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", link):
                continue  # https:, mailto:
            path, _, anchor = link.partition("#")
            target = (document.parent / path).resolve() if path else document
            if not target.exists() or (anchor and target.is_file() and anchor not in _anchors(target)):
                broken.append(f"{document.relative_to(ROOT)}: {link}")
    assert not broken, "\n".join(broken)


def test_the_checks_see_what_they_check(tmp_path):
    """The rules above would pass vacuously if the parsing found nothing: it finds imports of
    every form, lazy ones included, and private names both ways."""
    assert {"whoop_bridge.config", "whoop_bridge.aws"} <= {found.target for found in imports_of(LAYER / "bus.py")}
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from whoop_bridge import aws\n"
        "from whoop_bridge.config import _parse\n"
        "def later():\n"
        "    from whoop_bridge.store import dynamo\n"
        "    return dynamo._digest('x')\n",
        encoding="utf-8",
    )
    found = list(imports_of(sample))
    assert [(item.target, item.name) for item in found] == [
        ("whoop_bridge.aws", None),
        ("whoop_bridge.config", "_parse"),
        ("whoop_bridge.store.dynamo", None),
    ]
    assert len(list(_private_uses(sample))) == 2  # `_parse` imported, `dynamo._digest` used
    assert _anchor("Webhook signatures") == "webhook-signatures"
    assert _anchor("OAuth: `state` and token rotation") == "oauth-state-and-token-rotation"
    assert OUTSIDE_DESIGN.search("see whoop-api.md §3.3") and OUTSIDE_DESIGN.search("../shared/design.md")
    assert not OUTSIDE_DESIGN.search("docs/whoop.md#rate-limits")


def test_no_handler_or_other_layer_module_imports_the_operator_command():
    # `whoop_bridge.ops` runs on an operator's machine: a handler that imported it (or a
    # module a handler loads) would grow that function's cold start for nothing.
    operator_command = LAYER / "ops"
    assert (operator_command / "__main__.py").exists()
    paths = [path for path in sorted(LAYER.rglob("*.py")) if operator_command not in path.parents]
    paths += sorted(FUNCTIONS.rglob("*.py"))
    broken = [
        found.where()
        for path in paths
        for found in imports_of(path)
        if _under(found.target, (f"{PACKAGE}.ops",)) or (found.target == PACKAGE and found.name == "ops")
    ]
    assert not broken, "\n".join(broken)
