"""Shared test setup: the layer and the repository root on the import path, and no real
AWS credentials or endpoints ever reachable from a test."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "layers" / "bridge"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        # Retries stay real but quick in tests.
        "WHOOP_BACKOFF_SECONDS": "0.01",
    }
)
