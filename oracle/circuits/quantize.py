"""Quantizing an ONNX model to integer fixed point, and the integer reference it must match.

Pipeline: ``load_graph`` -> ``trace`` (float affine steps, see ``affine.py``) -> ``quantize``.

Scales (all powers of two; a value v at scale s is the integer round(v * 2**s)):

* input scale: the smallest s <= ``max_scale`` at which every calibration input is exact
  (e.g. 4 for pixel values k/16), else ``max_scale``; lowered if the calibrated peak would not
  fit ``act_bits``. ``input_bits`` = the signed width covering round(calibration * 2**s), plus
  ``input_headroom_bits``. Requests outside that range are rejected (on-chain and in-circuit).
* weight scale, per step: the largest s <= ``max_weight_scale`` with max|W| * 2**s fitting
  ``weight_bits`` signed bits (10 by default: about 2 more constraints per neuron than int8
  weights, for a 4x smaller error on the risk model). The accumulator then has scale
  s_acc = s_w + max(scale of its inputs); biases are quantized at s_acc.
* activation scale, per step: the largest s <= min(``max_scale``, s_acc) with the calibrated
  peak |activation| * 2**s fitting ``act_bits`` signed bits. A final step without a
  non-linearity keeps s_acc (no rescale, hence no constraints) unless ``output_scale`` is set.

Integer semantics of one step (identical in numpy and in the circuit, including negatives):
``acc = sum_b W_b @ v_b + bias``; ``q = floor(acc / 2**shift)`` (arithmetic shift);
then ``relu(q) = max(q, 0)`` or ``clip(q) = min(max(q, lo), hi)``.

Bit widths inside the circuit come from worst-case interval arithmetic over the *whole*
``input_bits`` range (not from calibration), so every input the chain accepts can be proven.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from oracle.circuits.affine import ActKind, FloatProgram, trace
from oracle.circuits.onnx_graph import load_graph
from oracle.circuits.pending import Sparse
from oracle.errors import BackendError

log = logging.getLogger(__name__)

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

# int64 arithmetic in the reference is exact while every |partial sum| stays below this.
INT64_SAFE = 1 << 62


@dataclass(frozen=True)
class QuantSettings:
    max_scale: int = 10            # cap for input/activation scales
    act_bits: int = 16             # calibrated activations must fit this signed width
    weight_bits: int = 10          # per-step weight scale targets this signed width
    max_weight_scale: int = 12
    input_headroom_bits: int = 0   # extra input range beyond the calibration data
    input_scale: int | None = None     # override the calibrated input scale
    output_scale: int | None = None    # override the output scale

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantSettings:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class QLayer:
    terms: dict[int, Sparse]       # base -> integer weights (out x in), int64 csr_array
    bias: I64
    shift: int
    act: ActKind
    lo: int | None                 # clip bounds at out_scale
    hi: int | None
    acc_scale: int
    out_scale: int
    weight_scale: int
    node: str
    acc_lo: list[int] = field(default_factory=list)    # worst-case accumulator bounds
    acc_hi: list[int] = field(default_factory=list)
    out_lo: list[int] = field(default_factory=list)    # worst-case output bounds
    out_hi: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.bias)


@dataclass
class QuantizedModel:
    input_shape: list[int]
    output_shape: list[int]
    input_scale: int
    input_bits: int
    output_scale: int
    output_bits: int
    layers: list[QLayer]
    settings: QuantSettings
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output_shape))

    def input_range(self) -> tuple[int, int]:
        return -(1 << (self.input_bits - 1)), (1 << (self.input_bits - 1)) - 1

    # -- the integer reference ------------------------------------------------------------
    def forward_batch(self, x: I64) -> I64:
        """Integer forward pass for a batch (batch, n_in) of in-range fixed-point inputs."""
        return self.activations_batch(x)[-1]

    def activations_batch(self, x: I64) -> list[I64]:
        """Every base's values for a batch (base 0 = x, base i + 1 = layer i's output), each
        (batch, size): the integer reference, layer by layer (the slices cut between them)."""
        vals = [np.asarray(x, dtype=np.int64).reshape(len(x), -1)]
        for ly in self.layers:
            acc = np.tile(ly.bias, (len(x), 1))
            for b, w in ly.terms.items():
                acc = acc + np.asarray(w @ vals[b].T).T      # int64 sparse x int64: exact
            q = acc >> ly.shift        # numpy's >> on int64 is an arithmetic shift = floor
            if ly.act == "relu":
                q = np.maximum(q, 0)
            elif ly.act == "clip":
                if ly.lo is not None:
                    q = np.maximum(q, ly.lo)
                if ly.hi is not None:
                    q = np.minimum(q, ly.hi)
            vals.append(np.asarray(q, dtype=np.int64))
        return vals

    def to_json(self) -> dict[str, Any]:
        """Terms as CSR ({"shape", "indptr", "indices", "data"}): size follows the MACs."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layers"}
        d["settings"] = asdict(self.settings)
        d["layers"] = [
            {**{f.name: getattr(ly, f.name) for f in fields(ly)},
             "terms": {str(b): _csr_json(w) for b, w in ly.terms.items()},
             "bias": ly.bias.tolist()}
            for ly in self.layers
        ]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QuantizedModel:
        """Reads the CSR terms and the older dense (list of rows) ones."""
        layers = []
        for ly in d["layers"]:
            ly = dict(ly)
            ly["bias"] = np.array(ly["bias"], dtype=np.int64)
            ly["terms"] = {int(b): _csr_load(w, len(ly["bias"])) for b, w in ly["terms"].items()}
            layers.append(QLayer(**ly))
        return cls(**{**d, "layers": layers, "settings": QuantSettings(**d["settings"])})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: Path) -> QuantizedModel:
        return cls.from_json(json.loads(path.read_text()))


def _csr_json(w: Sparse) -> dict[str, Any]:
    w = sp.csr_array(w)
    return {"shape": list(w.shape), "indptr": w.indptr.tolist(), "indices": w.indices.tolist(),
            "data": w.data.tolist()}


def _csr_load(w: Any, rows: int) -> Sparse:
    if isinstance(w, dict):
        return sp.csr_array((np.array(w["data"], dtype=np.int64), np.array(w["indices"], dtype=np.int64),
                             np.array(w["indptr"], dtype=np.int64)), shape=tuple(w["shape"]))
    dense = np.array(w, dtype=np.int64).reshape(rows, -1)       # the format before CSR
    return _canonical(sp.csr_array(dense))


def _canonical(w: Sparse) -> Sparse:
    """int64 CSR, no explicit zeros, sorted indices: row-major nonzeros, as np.nonzero lists them."""
    w = sp.csr_array(w, dtype=np.int64)
    w.eliminate_zeros()
    w.sum_duplicates()
    w.sort_indices()
    return w


def quantized_forward(model: QuantizedModel, input_fixed: list[int]) -> list[int]:
    """The integer reference for one input: the circuit must output exactly this."""
    if len(input_fixed) != model.input_size:
        raise BackendError(f"expected {model.input_size} inputs, got {len(input_fixed)}")
    out = model.forward_batch(np.array([input_fixed], dtype=np.int64))
    return [int(v) for v in out[0]]


# -- calibration data -------------------------------------------------------------------------
def load_calibration(path: Path, n_inputs: int) -> F64:
    """Sample inputs from a .npy array or a JSON {"input": [[...], ...]} (or a bare list)."""
    try:
        if path.suffix == ".npy":
            arr = np.load(path)
        else:
            raw = json.loads(path.read_text())
            arr = np.asarray(raw["input"] if isinstance(raw, dict) else raw, dtype=np.float64)
        arr = np.asarray(arr, dtype=np.float64).reshape(-1, n_inputs) if arr.size else arr
    except (OSError, ValueError, KeyError, TypeError) as e:   # missing file, not JSON, ragged, wrong size
        raise BackendError(f"{path}: unreadable calibration data ({e})") from e
    if arr.size == 0:
        raise BackendError(f"{path}: no calibration samples")
    if not np.all(np.isfinite(arr)):
        raise BackendError(f"{path}: calibration data contains NaN or infinity")
    return arr


def default_calibration(n_inputs: int, n: int = 256, seed: int = 0) -> F64:
    """Without data, calibrate on uniform [-1, 1] inputs (documented in the manifest)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, n_inputs))


# -- quantization ---------------------------------------------------------------------------
def signed_bits(lo: int, hi: int) -> int:
    """Smallest b with -2**(b-1) <= lo and hi < 2**(b-1)."""
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi < (1 << (b - 1))):
        b += 1
    return b


def _fit_scale(peak: float, bits: int, cap: int) -> int:
    """Largest s <= cap with peak * 2**s <= 2**(bits-1) - 1 (cap when peak is 0)."""
    if peak <= 0:
        return cap
    s = math.floor(math.log2(((1 << (bits - 1)) - 1) / peak))
    return max(0, min(cap, s))


def _input_scale(calib: F64, st: QuantSettings) -> int:
    if st.input_scale is not None:
        return st.input_scale
    s_fit = _fit_scale(float(np.max(np.abs(calib))), st.act_bits, st.max_scale)
    for s in range(0, s_fit + 1):
        scaled = calib * (1 << s)
        if np.array_equal(scaled, np.round(scaled)):
            return s
    return s_fit


def quantize_for_compile(onnx_path: Path, calibration: Path | None, st: QuantSettings
                         ) -> tuple[QuantizedModel, F64, str]:
    """Trace ``onnx_path`` (UnsupportedOperator before any work) and quantize it on the
    calibration file, or on ``default_calibration`` (said in the log): the model, the
    calibration data and where it came from."""
    program = trace(load_graph(onnx_path))
    if calibration is not None:
        calib, src = load_calibration(calibration, program.input_size), str(calibration)
    else:
        calib, src = default_calibration(program.input_size), "default: 256 uniform samples in [-1, 1], seed 0"
        log.warning("no calibration data for %s: using %s", onnx_path, src)
    return quantize(program, calib, st), calib, src


def quantize(program: FloatProgram, calib: F64, st: QuantSettings) -> QuantizedModel:
    float_vals = program.forward_all(calib)
    s_in = _input_scale(calib, st)
    xin = np.round(calib * (1 << s_in)).astype(np.int64)
    input_bits = signed_bits(min(0, int(xin.min())), int(xin.max())) + st.input_headroom_bits
    scales = [s_in]
    lo_b: list[I64] = [np.full(program.input_size, -(1 << (input_bits - 1)), dtype=np.int64)]
    hi_b: list[I64] = [np.full(program.input_size, (1 << (input_bits - 1)) - 1, dtype=np.int64)]
    layers: list[QLayer] = []
    n_steps = len(program.steps)
    for i, step in enumerate(program.steps):
        is_last = i == n_steps - 1
        wmax = max(float(np.max(np.abs(m.data))) if m.nnz else 0.0 for m in step.terms.values())
        s_max = max(scales[b] for b in step.terms)
        s_fit = _fit_scale(wmax, st.weight_bits, st.max_weight_scale)
        s_w = _exact_scale(step.terms, step.bias, scales, s_max, s_fit)
        s_acc = s_w + s_max
        terms = {b: _round_terms(m, float(1 << (s_acc - scales[b]))) for b, m in step.terms.items()}
        bias = np.round(step.bias * float(1 << s_acc)).astype(np.int64)
        if is_last and st.output_scale is not None:
            s_out = st.output_scale
        elif is_last and step.act == "none":
            s_out = s_acc
        else:
            peak = float(np.max(np.abs(float_vals[i + 1]))) if len(calib) else 0.0
            s_out = _fit_scale(peak, st.act_bits, min(st.max_scale, s_acc))
        if not 0 <= s_out <= s_acc:
            raise BackendError(
                f"step {step.node!r}: output scale {s_out} outside [0, {s_acc}] (accumulator)"
            )
        lo_i = None if step.lo is None else round(step.lo * (1 << s_out))
        hi_i = None if step.hi is None else round(step.hi * (1 << s_out))
        ly = QLayer(terms, bias, s_acc - s_out, step.act, lo_i, hi_i, s_acc, s_out, s_w, step.node)
        _bounds(ly, lo_b, hi_b)
        lo_b.append(np.array(ly.out_lo, dtype=np.int64))
        hi_b.append(np.array(ly.out_hi, dtype=np.int64))
        scales.append(s_out)
        layers.append(ly)
    last = layers[-1]
    out_bits = signed_bits(min(last.out_lo), max(last.out_hi))
    qm = QuantizedModel(
        input_shape=list(program.input_shape),
        output_shape=list(program.output_shape),
        input_scale=s_in,
        input_bits=input_bits,
        output_scale=last.out_scale,
        output_bits=out_bits,
        layers=layers,
        settings=st,
    )
    qm.calibration = _calibration_summary(program, qm, calib, float_vals[-1])
    if program.notes:
        qm.calibration["notes"] = list(program.notes)
    return qm


def _round_terms(m: Sparse, factor: float) -> Sparse:
    q = sp.csr_array(m, dtype=np.float64, copy=True)
    q.data = np.round(q.data * factor)
    return _canonical(q)


def _exact_scale(terms: dict[int, Sparse], bias: F64, scales: list[int], s_max: int, s_fit: int) -> int:
    """The smallest weight scale <= s_fit at which every weight and the bias are exact integers
    (0 for a bare activation on a materialized vector, 0 for MaxPool's +-1 differences, 2 for a
    2x2 average): no rounding, and narrower accumulators than s_fit. Else s_fit."""
    for s in range(0, s_fit):
        ok = all(_integral(m.data * float(1 << (s + s_max - scales[b]))) for b, m in terms.items())
        if ok and _integral(bias * float(1 << (s + s_max))):
            return s
    return s_fit


def _integral(v: F64) -> bool:
    return bool(np.all(np.abs(v) < 2.0**52) and np.array_equal(v, np.round(v)))


def _bounds(ly: QLayer, lo_b: list[I64], hi_b: list[I64]) -> None:
    """Worst-case interval arithmetic for every neuron of a layer, vectorised: W = W+ + W-, so
    acc_lo = bias + W+ lo + W- hi and acc_hi = bias + W+ hi + W- lo. The worst case
    |bias| + |W| max(|lo|, |hi|) is checked in float64 against 2^62 first, so the int64 sums
    that follow cannot wrap (every partial sum is below the worst case) and are exact."""
    bias = np.asarray(ly.bias, dtype=np.int64)
    worst = np.abs(bias).astype(np.float64)
    for b, w in ly.terms.items():
        mag = np.maximum(np.abs(lo_b[b]), np.abs(hi_b[b])).astype(np.float64)
        worst = worst + abs(w).astype(np.float64) @ mag
    if len(worst) and float(worst.max()) >= INT64_SAFE:
        raise BackendError(
            f"step {ly.node!r}: worst-case accumulator exceeds 2^62; lower the scales "
            "(max_scale / weight_bits) or the input range"
        )
    acc_lo, acc_hi = bias.copy(), bias.copy()
    for b, w in ly.terms.items():
        pos, neg = w.maximum(0), w.minimum(0)
        acc_lo = acc_lo + pos @ lo_b[b] + neg @ hi_b[b]
        acc_hi = acc_hi + pos @ hi_b[b] + neg @ lo_b[b]
    out_lo, out_hi = acc_lo >> ly.shift, acc_hi >> ly.shift     # floor, like the circuit
    if ly.act == "relu":
        out_lo, out_hi = np.maximum(out_lo, 0), np.maximum(out_hi, 0)
    elif ly.act == "clip":
        if ly.lo is not None:
            out_lo, out_hi = np.maximum(out_lo, ly.lo), np.maximum(out_hi, ly.lo)
        if ly.hi is not None:
            out_lo, out_hi = np.minimum(out_lo, ly.hi), np.minimum(out_hi, ly.hi)
    ly.acc_lo, ly.acc_hi = acc_lo.tolist(), acc_hi.tolist()
    ly.out_lo, ly.out_hi = out_lo.tolist(), out_hi.tolist()


def _calibration_summary(program: FloatProgram, qm: QuantizedModel, calib: F64,
                         float_out: F64) -> dict[str, Any]:
    lo, hi = qm.input_range()
    xin = np.clip(np.round(calib * (1 << qm.input_scale)), lo, hi).astype(np.int64)
    q_out = qm.forward_batch(xin).astype(np.float64) / float(1 << qm.output_scale)
    err = np.abs(q_out - float_out)
    summary: dict[str, Any] = {
        "samples": len(calib),
        "input_min": float(calib.min()),
        "input_max": float(calib.max()),
        "output_float_min": float(float_out.min()),
        "output_float_max": float(float_out.max()),
        "max_abs_error": float(err.max()),
        "mean_abs_error": float(err.mean()),
    }
    if qm.output_size > 1:
        summary["argmax_agreement"] = float(
            np.mean(np.argmax(q_out, axis=1) == np.argmax(float_out, axis=1))
        )
    return summary


def quantize_onnx(onnx_path: Path, calibration: F64 | None = None,
                  settings: QuantSettings | None = None) -> QuantizedModel:
    """Load, trace and quantize an ONNX model (calibration: (n, n_inputs) floats)."""
    program = trace(load_graph(onnx_path))
    calib = calibration if calibration is not None else default_calibration(program.input_size)
    calib = np.asarray(calib, dtype=np.float64).reshape(-1, program.input_size)
    return quantize(program, calib, settings or QuantSettings())
