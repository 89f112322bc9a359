"""The EZKL toolchain as this package runs it: EZKL's cache inside the project, one EZKL call
at a time, its coroutines on a private loop, and the tool versions recorded in manifests."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from oracle.paths import CACHE_DIR, SOLC

# EZKL keeps its lookup-table cache (and default SRS folder) under $EZKL_REPO_PATH, default
# ~/.ezkl: keep it inside the project. Read once by EZKL, so set before its first use (every
# module of this package that calls EZKL imports this one).
os.environ.setdefault("EZKL_REPO_PATH", str(CACHE_DIR / "ezkl"))

# EZKL keeps process-wide state and its heavy calls use every core: one call at a time.
EZKL_LOCK = threading.RLock()

T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run one EZKL coroutine on a private, short-lived event loop (never the caller's loop).

    EZKL's async functions must be *called* while a loop is running, hence the factory.
    """

    async def runner() -> T:
        return await make()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(runner())
    finally:
        loop.close()


_versions: dict[str, str] = {}


def solc_version() -> str:
    if "solc" not in _versions:
        out = subprocess.run([str(SOLC), "--version"], capture_output=True, text=True,
                             timeout=60, check=False).stdout
        m = re.search(r"Version:\s*(\S+)", out)
        _versions["solc"] = m.group(1) if m else out.strip()
    return _versions["solc"]


def toolchain_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"ezkl": version("ezkl"), "onnx": version("onnx"), "solc": solc_version(),
            "python": sys.version.split()[0]}
