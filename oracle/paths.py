"""Where the project's own tools and build outputs live (resolved from the source tree)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("ORACLE_ROOT", Path(__file__).resolve().parent.parent))
CONTRACTS_DIR = ROOT / "contracts"
BUILD_DIR = ROOT / "build"
CACHE_DIR = ROOT / ".cache"
SOLC = ROOT / "scripts" / "solc"
NODE_MODULES = ROOT / "node_modules"


def foundry_bin(tool: str) -> Path:
    """The native binary inside the npm package (the .bin wrapper costs ~170 ms per call)."""
    return NODE_MODULES / "@foundry-rs" / f"{tool}-linux-amd64" / "bin" / tool
