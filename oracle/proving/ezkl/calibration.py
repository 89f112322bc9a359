"""Calibration samples, and what they decide beyond EZKL's scales: the signed input and output
ranges the registry enforces, and a probe of whether the edges of the input range stay inside
the calibrated lookup tables."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from oracle.errors import BackendError
from oracle.proving.ezkl.runtime import EZKL_LOCK
from oracle.proving.ezkl.settings import Calibrated

log = logging.getLogger(__name__)

F64 = np.ndarray[Any, np.dtype[np.float64]]

DEFAULT_CALIBRATION_SAMPLES = 64
# Registered signed ranges = calibrated range x headroom, rounded up to a power of two. Inputs
# beyond ~2x the calibrated range may leave EZKL's lookup tables (lookup_safety_margin 2).
INPUT_HEADROOM = 1.25
OUTPUT_HEADROOM = 2.0


def load_calibration(path: Path, n_inputs: int) -> F64:
    """Samples from .npy, JSON {"input": [[...], ...]}, EZKL's {"input_data": [[...]]} or a
    bare JSON list; each sample flattens to ``n_inputs`` floats."""
    try:
        if path.suffix == ".npy":
            arr = np.load(path)
        else:
            raw = json.loads(path.read_text())
            if isinstance(raw, dict):
                raw = raw["input"] if "input" in raw else raw["input_data"]
            arr = np.asarray(raw, dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BackendError(f"{path}: unreadable calibration data ({e})") from e
    arr = np.asarray(arr, dtype=np.float64)
    if arr.size == 0 or arr.size % n_inputs:
        raise BackendError(f"{path}: {arr.size} calibration values are not a non-empty multiple "
                           f"of the model's {n_inputs} inputs")
    arr = arr.reshape(-1, n_inputs)
    if not np.all(np.isfinite(arr)):
        raise BackendError(f"{path}: calibration data contains NaN or infinity")
    return arr


def calibration_samples(path: Path | None, n_inputs: int, onnx_path: Path) -> tuple[F64, str]:
    """(samples, where they come from): the given file, else uniform samples in [0, 1]."""
    if path is not None:
        return load_calibration(Path(path), n_inputs), str(path)
    samples = np.random.default_rng(0).uniform(0.0, 1.0, size=(DEFAULT_CALIBRATION_SAMPLES, n_inputs))
    source = f"default: {DEFAULT_CALIBRATION_SAMPLES} uniform samples in [0, 1], seed 0"
    log.warning("no calibration data for %s: using %s", onnx_path, source)
    return samples, source


def signed_bits_for(values: np.ndarray[Any, Any]) -> int:
    """Smallest b with -2**(b-1) <= min and max < 2**(b-1) (at least 2)."""
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    b = 2
    while not (-(1 << (b - 1)) <= lo and hi < (1 << (b - 1))):
        b += 1
    return b


def registered_bits(samples: F64, calibrated: Calibrated, onnx_file: Path, input_shape: list[int]
                    ) -> tuple[int, int]:
    """(input_bits, output_bits) the registry will enforce for this circuit.

    Headroom: calibration samples rarely reach the edges of the real range (uniform [0, 1)
    samples never contain 1.0); the power-of-two rounding adds more. Outputs get a wider one: an
    honest output for an input beyond the calibrated samples (but inside input_bits) must never
    fail the on-chain range check.
    """
    input_bits = signed_bits_for(np.round(samples * (1 << calibrated.input_scale) * INPUT_HEADROOM))
    ref_out = onnx_reference(onnx_file, samples, input_shape)
    output_bits = signed_bits_for(np.round(ref_out * (1 << calibrated.output_scale)) * OUTPUT_HEADROOM)
    return input_bits, output_bits


def onnx_reference(onnx_file: Path, samples: np.ndarray[Any, Any], input_shape: list[int]) -> F64:
    """Float outputs of the model (onnxruntime) for each sample, flattened per sample."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [np.asarray(sess.run(None, {name: s.reshape(input_shape).astype(np.float32)})[0],
                       dtype=np.float64).reshape(-1) for s in samples]
    return np.stack(outs)


def probe_input_range(compiled: Path, n_inputs: int, input_bits: int, input_scale: int,
                      lookup_range: tuple[int, int]) -> dict[str, Any]:
    """Witnesses for inputs at the edges of the registered input range: do their lookups stay
    inside the calibrated table? (Informative: recorded in the manifest, warned about.)"""
    import ezkl

    lo, hi = -(1 << (input_bits - 1)), (1 << (input_bits - 1)) - 1
    rng = np.random.default_rng(1)
    probes = [np.full(n_inputs, lo), np.full(n_inputs, hi)]
    probes += [rng.choice([lo, hi], size=n_inputs) for _ in range(8)]
    probes += [rng.integers(lo, hi, endpoint=True, size=n_inputs) for _ in range(8)]
    t_lo, t_hi = lookup_range
    overflows = 0
    with tempfile.TemporaryDirectory(prefix="ezkl-probe-") as tmp, EZKL_LOCK:
        data, wit = Path(tmp) / "input.json", Path(tmp) / "witness.json"
        for x in probes:
            floats = [int(v) / float(1 << input_scale) for v in x]
            data.write_text(json.dumps({"input_data": [floats]}))
            w = ezkl.gen_witness(str(data), str(compiled), str(wit), vk_path=None, srs_path=None)
            if int(w["max_lookup_inputs"]) > t_hi or int(w["min_lookup_inputs"]) < t_lo:
                overflows += 1
    return {"probes": len(probes), "lookup_overflows": overflows, "lookup_range": [t_lo, t_hi]}
