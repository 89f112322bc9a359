"""Compile the project's Solidity with py-solc-x through the project's own ``solc`` (solc-js).

Results are cached by a hash of the sources and settings, so only the first call after a
change pays the ~5 s of WebAssembly compilation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx

from oracle.errors import UserError
from oracle.paths import BUILD_DIR, CONTRACTS_DIR, SOLC

log = logging.getLogger(__name__)

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
    },
}


class CompileError(UserError):
    """solc reported errors."""


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-hex creation code

    @classmethod
    def from_json(cls, name: str, raw: dict[str, Any]) -> Artifact:
        return cls(name=name, abi=raw["abi"], bytecode="0x" + raw["evm"]["bytecode"]["object"])


def _sources(root: Path) -> dict[str, Path]:
    # Tests and per-model generated verifiers are compiled elsewhere (forge, backends).
    return {
        str(p.relative_to(root.parent)): p
        for p in sorted(root.rglob("*.sol"))
        if "test" not in p.relative_to(root).parts and "generated" not in p.relative_to(root).parts
    }


def compile_sources(
    sources: dict[str, str], settings: dict[str, Any] | None = None, base_path: Path | None = None
) -> dict[str, Any]:
    """Run solc --standard-json on in-memory sources; raise CompileError on any error."""
    std = {
        "language": "Solidity",
        "sources": {k: {"content": v} for k, v in sources.items()},
        "settings": settings or SETTINGS,
    }
    kwargs: dict[str, Any] = {"solc_binary": str(SOLC)}
    if base_path is not None:
        kwargs.update(base_path=str(base_path), allow_paths=[str(base_path)])
    out: dict[str, Any] = solcx.compile_standard(std, **kwargs)
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e["message"]) for e in errors))
    return out


def compile_project(contracts_dir: Path = CONTRACTS_DIR, cache_dir: Path = BUILD_DIR) -> dict[str, Artifact]:
    """All contracts under ``contracts/`` (not tests), by contract name."""
    files = _sources(contracts_dir)
    texts = {k: p.read_text() for k, p in files.items()}
    digest = hashlib.sha256(
        json.dumps([texts, SETTINGS, SOLC.read_text()], sort_keys=True).encode()
    ).hexdigest()[:16]
    cache = cache_dir / f"contracts-{digest}.json"
    if cache.exists():
        raw = json.loads(cache.read_text())
    else:
        log.info("compiling %d Solidity sources with %s", len(texts), SOLC)
        out = compile_sources(texts, base_path=contracts_dir.parent)
        raw = {
            name: c
            for unit in out["contracts"].values()
            for name, c in unit.items()
            if c["evm"]["bytecode"]["object"] or c["abi"]
        }
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw))
        tmp.replace(cache)
    return {name: Artifact.from_json(name, c) for name, c in raw.items()}
