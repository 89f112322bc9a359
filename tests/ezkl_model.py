"""The small MLP the EZKL tests and bench prove, and its cached circuit folder.

8 -> Gemm(16) -> Relu -> Gemm(3) -> Sigmoid, fixed-seed weights, built with ``onnx.helper``
(no torch). Compiling it (EZKL calibration + dev SRS + setup, pk ~160 MB) takes ~20-30 s, so
the folder is kept in ``.cache/test-circuits/mlp-<hash>-ezkl`` and reused while the ONNX bytes,
the calibration samples, the backend's settings and source, and the EZKL version are
unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from oracle.circuits.manifest import Manifest, ManifestError
from oracle.paths import CACHE_DIR
from oracle.proving import ezkl as ezkl_package
from oracle.proving.base import CompileOptions
from oracle.proving.ezkl import EzklBackend

log = logging.getLogger(__name__)

N_IN, N_HIDDEN, N_OUT = 8, 16, 3


def mlp_onnx_bytes(seed: int = 1234) -> bytes:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 0.5, (N_HIDDEN, N_IN)).astype(np.float32)
    b1 = rng.normal(0.0, 0.1, N_HIDDEN).astype(np.float32)
    w2 = rng.normal(0.0, 0.5, (N_OUT, N_HIDDEN)).astype(np.float32)
    b2 = rng.normal(0.0, 0.1, N_OUT).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["z"], transB=1),
        helper.make_node("Sigmoid", ["z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, N_IN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, N_OUT])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
         numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def calibration_json(n: int = 32, seed: int = 0) -> bytes:
    """Uniform [0, 1] samples plus the two corners, as {"input": [[...], ...]}."""
    x = np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, N_IN))
    samples = [[0.0] * N_IN, [1.0] * N_IN, *np.round(x, 6).tolist()]
    return json.dumps({"input": samples}).encode()


def ezkl_sources() -> bytes:
    """The EZKL backend's source, every module of its package: part of the cache keys, so an
    edit to the backend rebuilds the cached circuits."""
    package = Path(ezkl_package.__file__).parent
    return b"".join(p.read_bytes() for p in sorted(package.glob("*.py")))


def cached_mlp_circuit(backend: EzklBackend, root: Path | None = None) -> Path:
    """Compile the MLP once; reuse the folder while nothing that shapes it changed."""
    onnx_bytes, calib = mlp_onnx_bytes(), calibration_json()
    h = hashlib.sha256()
    for part in (onnx_bytes, calib, json.dumps(backend.config(), sort_keys=True).encode(),
                 version("ezkl").encode(), ezkl_sources()):
        h.update(part)
    key = h.hexdigest()[:16]
    base = root or CACHE_DIR / "test-circuits"
    out = base / f"mlp-{key}-ezkl"
    try:
        Manifest.load(out).check_circuit_id(out)
        return out
    except ManifestError:
        pass
    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob("mlp-*-ezkl*"):     # old builds: ~170 MB each
        shutil.rmtree(stale, ignore_errors=True)
    build = base / f"mlp-{key}-ezkl.building"
    build.mkdir()
    src = build / "src"
    src.mkdir()
    (src / "model.onnx").write_bytes(onnx_bytes)
    (src / "calibration.json").write_bytes(calib)
    backend.compile(src / "model.onnx", build,
                    CompileOptions(calibration=src / "calibration.json", name="test-mlp"))
    shutil.rmtree(src)
    build.rename(out)
    return out
