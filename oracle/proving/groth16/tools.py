"""Running the project-local Node tools (circom2, snarkjs) as separate processes.

circom and snarkjs are GPL-3.0: they are only ever run as child processes, never imported.
The tools live in ``<repo>/node_modules`` (pinned in package.json); ``ORACLE_NODE_MODULES``
overrides that location when the Python package is installed somewhere else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import time
from functools import lru_cache
from pathlib import Path

from oracle.proving.base import BackendError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]


def node_modules() -> Path:
    env = os.environ.get("ORACLE_NODE_MODULES")
    nm = Path(env) if env else REPO_ROOT / "node_modules"
    if not (nm / "snarkjs").is_dir():
        raise BackendError(
            f"{nm}: snarkjs not found (run `npm ci` at the repository root or set "
            "ORACLE_NODE_MODULES)"
        )
    return nm


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise BackendError("node (Node.js >= 18) is not on PATH; the groth16 backend needs it")
    return node


def snarkjs_cli() -> Path:
    # Calling cli.cjs directly skips the npm .bin shim (saves start-up time).
    return node_modules() / "snarkjs" / "build" / "cli.cjs"


def circom_cli() -> Path:
    return node_modules() / "circom2" / "cli.js"


def solc_binary() -> Path:
    env = os.environ.get("ORACLE_SOLC")
    return Path(env) if env else REPO_ROOT / "scripts" / "solc"


def run(args: list[str], cwd: Path | None = None, what: str = "", timeout: float = 3600) -> str:
    """Run a command, return stdout; raise BackendError with the tool's own message on failure."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise BackendError(f"{what or args[0]}: timed out after {timeout:.0f} s") from e
    log.debug("%s: %.2f s", what or " ".join(args[:3]), time.monotonic() - t0)
    # snarkjs prints errors on stdout and still exits 0 in some commands: check both.
    out = proc.stdout
    if proc.returncode != 0 or "[ERROR]" in out:
        tail = (proc.stderr.strip() or out.strip())[-2000:]
        raise BackendError(f"{what or args[0]} failed (exit {proc.returncode}): {tail}")
    return out


def snarkjs(*args: str, cwd: Path | None = None, what: str = "") -> str:
    return run(
        [node_binary(), str(snarkjs_cli()), *args], cwd=cwd, what=what or f"snarkjs {args[0]}"
    )


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of the pinned tools, recorded in every manifest."""
    nm = node_modules()

    def pkg(name: str) -> str:
        return str(json.loads((nm / name / "package.json").read_text())["version"])

    out = {"snarkjs": pkg("snarkjs"), "circom2": pkg("circom2"), "node": ""}
    with contextlib.suppress(BackendError):
        out["node"] = run([node_binary(), "--version"], what="node --version").strip()
    try:
        circom = run([node_binary(), str(circom_cli()), "--version"], what="circom --version")
        out["circom"] = circom.strip().splitlines()[-1].replace("circom compiler ", "")
    except BackendError:
        pass
    try:
        solc = run([str(solc_binary()), "--version"], what="solc --version")
        out["solc"] = solc.strip().splitlines()[-1].replace("Version: ", "")
    except BackendError:
        pass
    return out
