"""Reusing a compiled circuit folder while its inputs are unchanged (tests, dev loops).

The key covers the ONNX bytes, the calibration bytes, the quantization settings and the source
of everything that shapes the circuit, so an edit to the generator rebuilds the folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

from oracle.circuits.manifest import Manifest, ManifestError
from oracle.proving.base import CompileOptions
from oracle.proving.groth16.backend import GENERATOR_VERSION, Groth16Backend

log = logging.getLogger(__name__)

KEY_FILE = ".build-key"
_SOURCES = [
    "oracle/circuits/onnx_graph.py",
    "oracle/circuits/affine.py",
    "oracle/circuits/ops_common.py",
    "oracle/circuits/ops_linear.py",
    "oracle/circuits/ops_nonlinear.py",
    "oracle/circuits/pending.py",
    "oracle/circuits/windows.py",
    "oracle/circuits/pwl.py",
    "oracle/circuits/quantize.py",
    "oracle/proving/groth16/circuit.py",
    "oracle/proving/groth16/backend.py",
    "oracle/circuits/packing.py",
    "oracle/circuits/payee.py",
]
# The direct generator's circuits also depend on these (circom's do not: editing them must not
# rebuild every circom circuit).
_DIRECT_SOURCES = [
    "oracle/proving/groth16/lowering.py",
    "oracle/proving/groth16/r1cs_writer.py",
    "oracle/proving/groth16/direct.py",
]


def build_key(backend: Groth16Backend, onnx: Path, calibration: Path | None, packed: bool = True) -> str:
    root = Path(__file__).resolve().parents[3]
    h = hashlib.sha256()
    h.update(onnx.read_bytes())
    h.update(calibration.read_bytes() if calibration else b"-")
    h.update(json.dumps(asdict(backend.settings), sort_keys=True).encode())
    h.update(str(GENERATOR_VERSION).encode())
    h.update(b"packed" if packed else b"unpacked")
    if backend.generator != "circom":
        h.update(backend.generator.encode())
    for src in _SOURCES + (_DIRECT_SOURCES if backend.generator == "direct" else []):
        h.update((root / src).read_bytes())
    return h.hexdigest()


def compile_cached(backend: Groth16Backend, onnx: Path, calibration: Path | None,
                   out_dir: Path, cache_dir: Path | None = None, packed: bool = True) -> Path:
    key = build_key(backend, onnx, calibration, packed)
    key_file = out_dir / KEY_FILE
    if key_file.is_file() and key_file.read_text().strip() == key:
        try:
            Manifest.load(out_dir).check_circuit_id(out_dir)
            return out_dir
        except ManifestError as e:
            log.warning("cached circuit %s unusable (%s): rebuilding", out_dir, e)
    key_file.unlink(missing_ok=True)
    backend.compile(onnx, out_dir,
                    CompileOptions(calibration=calibration, cache_dir=cache_dir, packed_signals=packed))
    key_file.write_text(key + "\n")
    return out_dir
