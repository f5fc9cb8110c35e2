"""The bridge on this machine: a WHOOP emulator, the stack from template.yaml, the demo.

The layer's package (`whoop_bridge`) is importable from here on: the local tools share its
clock (`whoop_bridge.clock`) and its cache registry (`whoop_bridge.caches`).
"""

import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parent.parent / "layers" / "bridge")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
