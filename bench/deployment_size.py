"""What each function deploys, from `make sam`'s output (.aws-sam/build): the webhook
intake's code and the layers it loads, and the shared bridge layer, unzipped, by package.

Goals (issue 13): the intake's deployment (its code + IntakeLayer) <= 5 MB; the shared
layer (BridgeLayer) <= 10 MB. Sizes are the files' bytes as Lambda unpacks them
(1 MB = 1,000,000 bytes); a package's *.dist-info / *.data count with it. The layers are
built by `sam build` per arm64 / python3.13 (layers/*/requirements.txt), so the figures are
the deployed ones. Exits 1 when an enforced goal is missed.

Run: make sam && .venv/bin/python bench/deployment_size.py [--build-dir DIR] [--enforce intake|all]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000
# (what, artifacts of the build, goal in MB)
GOALS = {
    "intake": ("webhook intake (code + IntakeLayer)", ("WebhookIntakeFunction", "IntakeLayer"), 5),
    "shared": ("shared layer (BridgeLayer)", ("BridgeLayer",), 10),
}


def package(relative: Path) -> str:
    """The distribution a file belongs to: its top-level name, with dist-info/data folded in."""
    parts = relative.parts
    top = parts[1] if parts[0] == "python" and len(parts) > 1 else parts[0]
    if len(parts) == 1 or (parts[0] == "python" and len(parts) == 2):
        top = top.removesuffix(".py")
    top = re.sub(r"-[^-]+\.(dist-info|data)$", "", top)
    return top.lower().replace("-", "_")


def sizes(artifact: Path) -> dict[str, int]:
    by_package: dict[str, int] = defaultdict(int)
    for path in artifact.rglob("*"):
        if path.is_file() and not path.is_symlink():
            by_package[package(path.relative_to(artifact))] += path.stat().st_size
    return by_package


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    parser.add_argument(
        "--enforce", choices=("all", "intake"), default="all", help="which goals fail the run (default all)"
    )
    options = parser.parse_args()
    missing = [
        name for _, artifacts, _ in GOALS.values() for name in artifacts if not (options.build_dir / name).is_dir()
    ]
    if missing:
        print(f"not built: {', '.join(missing)} under {options.build_dir} (run `make sam` first)")
        return 2
    failed = False
    for key, (what, artifacts, goal) in GOALS.items():
        total = 0
        rows: list[tuple[str, str, int]] = []
        for artifact in artifacts:
            for name, size in sizes(options.build_dir / artifact).items():
                rows.append((artifact, name, size))
                total += size
        met = total <= goal * MB
        enforced = options.enforce == "all" or key == options.enforce
        failed |= enforced and not met
        verdict = "met" if met else ("MISSED" if enforced else "MISSED (not enforced in this run)")
        print(f"{what}: {total / MB:.2f} MB unzipped (goal <= {goal} MB): {verdict}")
        for artifact, name, size in sorted(rows, key=lambda row: -row[2]):
            if size >= 20_000 or len(rows) <= 12:
                print(f"  {size / MB:6.2f} MB  {name:<24} {artifact}")
        small = [row for row in rows if row[2] < 20_000 and len(rows) > 12]
        if small:
            print(f"  {sum(row[2] for row in small) / MB:6.2f} MB  {len(small)} smaller file(s) or package(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
