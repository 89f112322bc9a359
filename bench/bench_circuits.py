"""Groth16 figures per reference model: constraints, setup time, warm proving time (median of
20), verify time, proof size, key sizes, and accuracy float vs quantized vs in-circuit.

    .venv/bin/python bench/bench_circuits.py [--models risk digits] [--runs 20]

Compiles into build/bench/<model>-groth16 (the local ptau is reused from .cache/ptau, so the
setup figure is the circuit-specific part: groth16 setup + one contribution + beacon + exports).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle.circuits.quantize import QuantizedModel  # noqa: E402
from oracle.proving.base import CompileOptions  # noqa: E402
from oracle.proving.groth16 import Groth16Backend  # noqa: E402

# Groth16 circuits bind the fee recipient into every proof: any address will do for timings.
PAYEE = "0x00000000000000000000000000000000000a11ce"


def _ort(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out: np.ndarray = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]
    return out


def _eval_set(name: str) -> tuple[np.ndarray, np.ndarray | None]:
    if name == "digits":
        import importlib.util

        spec = importlib.util.spec_from_file_location(
            "digits_train", ROOT / "models" / "digits" / "train.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _, x_test, _, y_test = mod.data()
        return np.asarray(x_test), np.asarray(y_test)
    calib = json.loads((ROOT / "models" / name / "calibration.json").read_text())["input"]
    return np.array(calib, dtype=np.float64), None


def bench(backend: Groth16Backend, name: str, runs: int, sample: int) -> dict[str, object]:
    onnx_path = ROOT / "models" / name / "model.onnx"
    out = ROOT / "build" / "bench" / f"{name}-groth16"
    t0 = time.monotonic()
    m = backend.compile(onnx_path, out, CompileOptions(
        calibration=ROOT / "models" / name / "calibration.json"))
    compile_s = time.monotonic() - t0
    qm = QuantizedModel.load(out / m.files["quantized"])
    x_eval, y_eval = _eval_set(name)
    lo, hi = qm.input_range()
    xq = np.clip(np.round(x_eval * (1 << qm.input_scale)), lo, hi).astype(np.int64)

    backend.prove(out, xq[0].tolist(), PAYEE)   # warm the daemon (loads wasm + zkey)
    prove_ms, daemon_ms, verify_ms = [], [], []
    for i in range(runs):
        x = xq[i % len(xq)].tolist()
        t = time.perf_counter()
        p = backend.prove(out, x, PAYEE)
        prove_ms.append((time.perf_counter() - t) * 1e3)
        daemon_ms.append(p.extra["daemon_ms"]["witness"] + p.extra["daemon_ms"]["prove"])
        t = time.perf_counter()
        assert backend.verify(out, p)
        verify_ms.append((time.perf_counter() - t) * 1e3)

    float_out = _ort(onnx_path, x_eval).reshape(len(x_eval), -1)
    q_out = qm.forward_batch(xq) / float(1 << qm.output_scale)
    idx = np.linspace(0, len(xq) - 1, min(sample, len(xq))).astype(int)
    circ = np.array([backend.prove(out, xq[i].tolist(), PAYEE).output_fixed for i in idx])
    circ_equal = bool(np.array_equal(circ, qm.forward_batch(xq[idx])))
    res: dict[str, object] = {
        "model": name,
        "constraints": m.stats["constraints"],
        "ptau_power": m.stats["ptau_power"],
        "compile_s": round(compile_s, 2),
        "setup_s": m.stats["setup_seconds"],
        "prove_ms_median": round(statistics.median(prove_ms), 1),
        "prove_ms_daemon_median": round(statistics.median(daemon_ms), 1),
        "verify_ms_median": round(statistics.median(verify_ms), 1),
        "proof_bytes": 256,
        "zkey_bytes": m.stats["zkey_bytes"],
        "vk_bytes": m.stats["vk_bytes"],
        "wasm_bytes": m.stats["wasm_bytes"],
        "verifier_runtime_bytes": m.stats["verifier_runtime_bytes"],
        "input_scale/bits": f"{m.input_scale}/{m.input_bits}",
        "output_scale/bits": f"{m.output_scale}/{m.output_bits}",
        "float_vs_quantized_max_abs_err": round(float(np.max(np.abs(q_out - float_out))), 5),
        "in_circuit_equals_reference": f"{circ_equal} ({len(idx)} samples)",
    }
    if y_eval is not None:
        res["accuracy_float"] = round(float(np.mean(np.argmax(float_out, 1) == y_eval)), 4)
        res["accuracy_quantized"] = round(float(np.mean(np.argmax(q_out, 1) == y_eval)), 4)
        res["accuracy_in_circuit"] = round(float(np.mean(np.argmax(circ, 1) == y_eval[idx])), 4)
        res["eval_images"] = len(y_eval)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["risk", "digits"])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sample", type=int, default=60, help="inputs proven for in-circuit accuracy")
    a = ap.parse_args()
    backend = Groth16Backend(pool_size=1)
    try:
        for name in a.models:
            r = bench(backend, name, a.runs, a.sample)
            print(f"== {name}")
            for k, v in r.items():
                print(f"  {k:34s} {v}")
    finally:
        backend.close()


if __name__ == "__main__":
    main()
