"""An EZKL circuit folder: the files in it (all paths relative, see ``FILES``) and loading one.

The folder holds the ONNX copy, EZKL's settings and compiled circuit, the proving and
verification keys, the KZG SRS the keys were made from, the calibration samples, the generated
``verifier.sol`` and its compiled ``verifier.json`` (abi + bytecode), and ``manifest.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from oracle.circuits.manifest import Manifest, ManifestError
from oracle.errors import BackendError

NAME: Literal["ezkl"] = "ezkl"
SIGNAL_LAYOUT: Final = "inputs_then_outputs"
# Bump when the circuit folder's layout or the way it is built changes (cache keys use it).
BUILD_VERSION = 1

FILES: dict[str, str] = {
    "onnx": "model.onnx",
    "calibration": "calibration.json",   # EZKL's {"input_data": [[flattened samples]]}
    "settings": "settings.json",
    "compiled": "model.compiled",
    "srs": "kzg.srs",
    "vk": "vk.key",
    "pk": "pk.key",
    "verifier_sol": "verifier.sol",
    "verifier_json": "verifier.json",
}


@dataclass(frozen=True)
class Circuit:
    dir: Path
    manifest: Manifest
    settings: dict[str, Any]

    def file(self, role: str) -> Path:
        return self.manifest.path(self.dir, role)

    @property
    def lookup_range(self) -> tuple[int, int]:
        lo, hi = self.settings["run_args"]["lookup_range"]
        return int(lo), int(hi)


def load_circuit(circuit_dir: Path) -> Circuit:
    d = Path(circuit_dir)
    try:
        m = Manifest.load(d)
    except ManifestError as e:
        raise BackendError(str(e)) from e
    if m.backend != NAME:
        raise BackendError(f"{d}: circuit built for backend {m.backend!r}, not {NAME!r}")
    if m.signal_layout != SIGNAL_LAYOUT:
        raise BackendError(f"{d}: unexpected signal layout {m.signal_layout!r}")
    try:
        settings = json.loads(m.path(d, "settings").read_text())
    except (ManifestError, json.JSONDecodeError) as e:
        raise BackendError(f"{d}: unreadable EZKL settings ({e})") from e
    return Circuit(d, m, settings)
