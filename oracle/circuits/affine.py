"""Tracing an ONNX graph into a chain of "affine map + activation" steps (still in floats).

Every supported linear operator (Gemm, MatMul, Add, Sub, Mul/Div by a constant, Neg, Conv,
Flatten, Reshape, Identity, Dropout) is folded into a pending affine map ``y = sum_b M_b v_b + c``
over already *materialized* vectors ``v_b`` (the model input is base 0). A non-linearity (Relu,
Clip, HardSigmoid) or the graph output materializes the pending map as one step. This is why
the circuit pays for range checks only at non-linearities: linear algebra is free in R1CS, and
folding e.g. MatMul+Add or HardSigmoid's ``alpha*x + beta`` into the preceding layer means one
rounding per layer instead of one per ONNX node.

HardSigmoid(x) = clip(alpha*x + beta, 0, 1) is exact here (it is piecewise linear); Sigmoid,
Tanh, Softmax and every other operator raise UnsupportedOperator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from oracle.circuits.onnx_graph import GraphNode, OnnxGraph
from oracle.errors import BackendError, UnsupportedOperator

F64 = NDArray[np.float64]
ActKind = Literal["none", "relu", "clip"]

LINEAR_OPS = {
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Conv",
    "Flatten", "Reshape", "Identity", "Dropout",
}
ACTIVATION_OPS = {"Relu", "Clip", "HardSigmoid"}
SUPPORTED_OPS = frozenset(LINEAR_OPS | ACTIVATION_OPS)


@dataclass
class FloatStep:
    """out = act(sum_b M_b @ v_b + bias); produces base ``index + 1``."""

    terms: dict[int, F64]
    bias: F64
    act: ActKind
    lo: float | None          # clip bounds (real values), None = unbounded
    hi: float | None
    node: str                 # ONNX node that forced the materialization (for messages)


@dataclass
class FloatProgram:
    input_shape: list[int]
    output_shape: list[int]
    steps: list[FloatStep]

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    def forward_all(self, x: F64) -> list[F64]:
        """Values of every base for a batch of inputs (batch, n_in); [0] is the input."""
        vals = [np.asarray(x, dtype=np.float64).reshape(len(x), -1)]
        for st in self.steps:
            pre = np.tile(st.bias, (len(x), 1))
            for b, m in st.terms.items():
                pre = pre + vals[b] @ m.T
            vals.append(_apply_act(pre, st))
        return vals

    def forward(self, x: F64) -> F64:
        return self.forward_all(x)[-1]


def _apply_act(v: F64, st: FloatStep) -> F64:
    if st.act == "relu":
        return np.maximum(v, 0.0)
    if st.act == "clip":
        lo = -np.inf if st.lo is None else st.lo
        hi = np.inf if st.hi is None else st.hi
        return np.clip(v, lo, hi)
    return v


@dataclass
class _Dyn:
    """A tensor that depends on the input: a pending affine map over materialized bases."""

    terms: dict[int, F64]
    bias: F64
    shape: list[int]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def apply(self, k: F64, bias: F64, shape: list[int]) -> _Dyn:
        """Compose with y = k @ self + bias."""
        return _Dyn({b: k @ m for b, m in self.terms.items()}, k @ self.bias + bias, shape)


Materialize = Callable[[_Dyn, ActKind, "float | None", "float | None", str], _Dyn]


def _identity(base: int, shape: list[int]) -> _Dyn:
    n = int(np.prod(shape))
    return _Dyn({base: np.eye(n)}, np.zeros(n), list(shape))


def trace(graph: OnnxGraph) -> FloatProgram:
    env: dict[str, _Dyn | F64] = dict(graph.constants)
    env[graph.input_name] = _identity(0, graph.input_shape)
    steps: list[FloatStep] = []

    def materialize(d: _Dyn, act: ActKind, lo: float | None, hi: float | None,
                    node: str) -> _Dyn:
        steps.append(FloatStep(dict(d.terms), d.bias.copy(), act, lo, hi, node))
        return _identity(len(steps), d.shape)

    for n in graph.nodes:
        if n.op_type not in SUPPORTED_OPS:
            raise UnsupportedOperator(n.op_type, n.name, "groth16")
        args = [env.get(i) if i else None for i in n.inputs]
        for name, a in zip(n.inputs, args, strict=True):
            if name and a is None:
                raise BackendError(f"node {n.name!r}: input {name!r} is not produced by the graph")
        if not any(isinstance(a, _Dyn) for a in args):
            raise BackendError(
                f"node {n.name!r} ({n.op_type}): constant sub-graphs are not supported; "
                "fold constants before export"
            )
        act = n.op_type in ACTIVATION_OPS
        env[n.outputs[0]] = _activation(n, args, graph, materialize) if act else _linear(n, args)

    final = env.get(graph.output_name)
    if not isinstance(final, _Dyn):
        raise BackendError(f"graph output {graph.output_name!r} does not depend on the input")
    if not _is_identity_of_step(final, len(steps)):
        final = materialize(final, "none", None, None, "output")
    return FloatProgram(list(graph.input_shape), final.shape, steps)


def _is_identity_of_step(d: _Dyn, n_steps: int) -> bool:
    if n_steps == 0 or list(d.terms) != [n_steps] or np.any(d.bias != 0):
        return False
    m = d.terms[n_steps]
    return m.shape[0] == m.shape[1] and bool(np.array_equal(m, np.eye(m.shape[0])))


def _const(n: GraphNode, a: object, what: str) -> F64:
    if isinstance(a, _Dyn) or a is None:
        raise BackendError(f"node {n.name!r} ({n.op_type}): {what} must be a constant")
    return np.asarray(a, dtype=np.float64)


def _dyn(n: GraphNode, a: object, what: str) -> _Dyn:
    if not isinstance(a, _Dyn):
        raise BackendError(f"node {n.name!r} ({n.op_type}): {what} must depend on the input")
    return a


def _activation(n: GraphNode, args: list[_Dyn | F64 | None], graph: OnnxGraph,
                mat: Materialize) -> _Dyn:
    x = _dyn(n, args[0], "input")
    if n.op_type == "Relu":
        return mat(x, "relu", None, None, n.name)
    if n.op_type == "HardSigmoid":
        alpha = float(n.attrs.get("alpha", 0.2))
        beta = float(n.attrs.get("beta", 0.5))
        y = x.apply(alpha * np.eye(x.size), np.full(x.size, beta), x.shape)
        return mat(y, "clip", 0.0, 1.0, n.name)
    # Clip: bounds are attributes before opset 11, optional constant inputs after.
    lo: float | None
    hi: float | None
    if graph.opset < 11:
        lo = float(n.attrs["min"]) if "min" in n.attrs else None
        hi = float(n.attrs["max"]) if "max" in n.attrs else None
    else:
        lo = float(_const(n, args[1], "min")) if len(args) > 1 and args[1] is not None else None
        hi = float(_const(n, args[2], "max")) if len(args) > 2 and args[2] is not None else None
    if lo is not None and hi is not None and lo > hi:
        raise BackendError(f"node {n.name!r} (Clip): min {lo} > max {hi}")
    return mat(x, "clip", lo, hi, n.name)


def _broadcast(n: GraphNode, c: F64, shape: list[int]) -> F64:
    try:
        b = np.broadcast_to(c, shape)
    except ValueError as e:
        raise BackendError(
            f"node {n.name!r} ({n.op_type}): constant of shape {list(c.shape)} does not "
            f"broadcast to {shape}"
        ) from e
    return np.asarray(b, dtype=np.float64).reshape(-1)


def _linear(n: GraphNode, args: list[_Dyn | F64 | None]) -> _Dyn:
    op = n.op_type
    if op in ("Identity", "Dropout"):
        return _dyn(n, args[0], "input")
    if op in ("Flatten", "Reshape"):
        x = _dyn(n, args[0], "input")
        if op == "Flatten":
            axis = int(n.attrs.get("axis", 1))
            axis = axis + len(x.shape) if axis < 0 else axis
            shape = [int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))]
        else:
            shape = _reshape(n, x.shape, _const(n, args[1], "shape"))
        return _Dyn(x.terms, x.bias, shape)
    if op == "Neg":
        x = _dyn(n, args[0], "input")
        return x.apply(-np.eye(x.size), np.zeros(x.size), x.shape)
    if op in ("Add", "Sub"):
        sign = 1.0 if op == "Add" else -1.0
        a, b = args[0], args[1]
        if isinstance(a, _Dyn) and isinstance(b, _Dyn):
            if a.shape != b.shape:
                raise BackendError(f"node {n.name!r} ({op}): shapes {a.shape} and {b.shape} differ")
            terms = {k: v.copy() for k, v in a.terms.items()}
            for k, v in b.terms.items():
                terms[k] = terms.get(k, 0.0) + sign * v
            return _Dyn(terms, a.bias + sign * b.bias, a.shape)
        if isinstance(a, _Dyn):
            c = _broadcast(n, _const(n, b, "second input"), a.shape)
            return _Dyn(a.terms, a.bias + sign * c, a.shape)
        x = _dyn(n, b, "second input")
        c = _broadcast(n, _const(n, a, "first input"), x.shape)
        return x.apply(sign * np.eye(x.size), c, x.shape)
    if op in ("Mul", "Div"):
        x = _dyn(n, args[0], "first input")
        if op == "Mul" and not isinstance(args[0], _Dyn):
            x = _dyn(n, args[1], "second input")
            c = _broadcast(n, _const(n, args[0], "first input"), x.shape)
        else:
            c = _broadcast(n, _const(n, args[1], "second input"), x.shape)
        if op == "Div":
            if np.any(c == 0):
                raise BackendError(f"node {n.name!r} (Div): division by zero")
            c = 1.0 / c
        return x.apply(np.diag(c), np.zeros(x.size), x.shape)
    if op in ("MatMul", "Gemm"):
        return _matmul(n, args)
    if op == "Conv":
        return _conv(n, args)
    raise UnsupportedOperator(op, n.name, "groth16")  # pragma: no cover (guarded by caller)


def _reshape(n: GraphNode, shape: list[int], target: F64) -> list[int]:
    t = [int(v) for v in target.reshape(-1)]
    out = [shape[i] if v == 0 else v for i, v in enumerate(t)]
    total = int(np.prod(shape))
    if -1 in out:
        rest = int(np.prod([v for v in out if v != -1]))
        out[out.index(-1)] = total // rest if rest else 0
    if int(np.prod(out)) != total:
        raise BackendError(f"node {n.name!r} (Reshape): cannot reshape {shape} to {t}")
    return out


def _matmul(n: GraphNode, args: list[_Dyn | F64 | None]) -> _Dyn:
    x = _dyn(n, args[0], "first input (the dynamic operand must be on the left)")
    w = _const(n, args[1], "second input (weights)")
    alpha, beta = 1.0, 1.0
    if n.op_type == "Gemm":
        if int(n.attrs.get("transA", 0)):
            raise BackendError(f"node {n.name!r} (Gemm): transA=1 is not supported")
        if int(n.attrs.get("transB", 0)):
            w = w.T
        alpha = float(n.attrs.get("alpha", 1.0))
        beta = float(n.attrs.get("beta", 1.0))
    if w.ndim != 2:
        raise BackendError(f"node {n.name!r} ({n.op_type}): weights must be 2-D, got {w.shape}")
    k_in, k_out = w.shape
    if x.shape[-1] != k_in or x.size != k_in:
        raise BackendError(
            f"node {n.name!r} ({n.op_type}): input of shape {x.shape} does not match "
            f"weights {list(w.shape)} (only one row vector per inference is supported)"
        )
    shape = [*x.shape[:-1], k_out]
    bias = np.zeros(k_out)
    if n.op_type == "Gemm" and len(args) > 2 and args[2] is not None:
        bias = beta * _broadcast(n, _const(n, args[2], "C (bias)"), shape)
    return x.apply(alpha * w.T, bias, shape)


def _conv(n: GraphNode, args: list[_Dyn | F64 | None]) -> _Dyn:
    """Conv is linear: its matrix is the convolution of every basis image."""
    x = _dyn(n, args[0], "input")
    w = _const(n, args[1], "weights")
    if len(x.shape) != 4 or w.ndim != 4:
        raise BackendError(f"node {n.name!r} (Conv): only 2-D convolutions (NCHW) are supported")
    if n.attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise BackendError(f"node {n.name!r} (Conv): auto_pad is not supported, use pads")
    group = int(n.attrs.get("group", 1))
    strides = [int(v) for v in n.attrs.get("strides", [1, 1])]
    dil = [int(v) for v in n.attrs.get("dilations", [1, 1])]
    pads = [int(v) for v in n.attrs.get("pads", [0, 0, 0, 0])]
    _, c, h, wd = x.shape
    basis = np.eye(x.size).reshape(x.size, c, h, wd)
    out = _conv2d(basis, w, strides, dil, pads, group)
    shape = [1, *out.shape[1:]]
    k = out.reshape(x.size, -1).T
    bias = np.zeros(k.shape[0])
    if len(args) > 2 and args[2] is not None:
        b = _const(n, args[2], "bias")
        bias = np.repeat(b, out.shape[2] * out.shape[3])
    return x.apply(k, bias, shape)


def _conv2d(x: F64, w: F64, strides: list[int], dil: list[int], pads: list[int],
            group: int) -> F64:
    nb, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (xp.shape[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (xp.shape[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((nb, o, oh, ow))
    og = o // group
    for g in range(group):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dil[0]: i * dil[0] + strides[0] * oh: strides[0],
                           j * dil[1]: j * dil[1] + strides[1] * ow: strides[1]]
                wk = w[g * og:(g + 1) * og, :, i, j]           # (og, cg)
                out[:, g * og:(g + 1) * og] += np.einsum("bchw,oc->bohw", patch, wk)
    del c
    return out
