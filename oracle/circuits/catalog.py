"""The circuits an operator (or miner) can prove: one folder per circuit under a models
directory, indexed by circuit id (sha256 of the verification key)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from oracle.circuits.manifest import MANIFEST_FILE, Manifest, ManifestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Circuit:
    dir: Path
    manifest: Manifest

    @property
    def circuit_id(self) -> str:
        return self.manifest.circuit_id


class CircuitCatalog:
    def __init__(self, circuits: dict[str, Circuit]) -> None:
        self._by_id = circuits

    @classmethod
    def scan(cls, root: Path) -> CircuitCatalog:
        """Every folder at or below ``root`` with a manifest; a folder whose verification
        key does not hash to its circuit id is refused (logged), never served."""
        found: dict[str, Circuit] = {}
        if not root.exists():
            raise ManifestError(f"{root}: models directory does not exist")
        # os.walk with followlinks: a models folder may hold symlinks to circuit folders.
        dirs = sorted(Path(dp) for dp, _, files in os.walk(root, followlinks=True) if MANIFEST_FILE in files)
        for d in dirs:
            try:
                m = Manifest.load(d)
                m.check_circuit_id(d)
            except ManifestError as e:
                log.error("skipping circuit folder %s: %s", d, e)
                continue
            found[m.circuit_id.lower()] = Circuit(dir=d, manifest=m)
        log.info("%d circuit(s) under %s", len(found), root)
        return cls(found)

    def get(self, circuit_id: str) -> Circuit | None:
        return self._by_id.get(circuit_id.lower())

    def ids(self) -> list[str]:
        return sorted(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)
