"""Linear operators: each folds into the pending affine map (no constraint of its own).

Matrices are sparse and built from index arithmetic: a convolution has one entry per
multiply-add, a pool one per window element, a transpose / gather / slice / pad / concat one per
output element. BatchNormalization (inference mode) is a per-channel scale and shift, so after a
Conv or Gemm it is folded into that layer's weights and bias for free.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from oracle.circuits.onnx_graph import GraphNode
from oracle.circuits.ops_common import (
    F64,
    I64,
    Arg,
    Ctx,
    axis,
    broadcast,
    const,
    dyn,
    ints,
    optional_input,
    positions,
)
from oracle.circuits.pending import Pending
from oracle.circuits.windows import conv_matrix, window
from oracle.errors import BackendError

Handler = Callable[[GraphNode, list[Arg], Ctx], Pending]


def _identity(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    return dyn(n, args[0], "input")


def _flatten(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    a, rank = int(n.attrs.get("axis", 1)), len(x.shape)
    ax = a + rank if a < 0 else a
    if not 0 <= ax <= rank:
        raise BackendError(f"node {n.name!r} (Flatten): axis {a} out of range for rank {rank}")
    return x.reshape([int(np.prod(x.shape[:ax])), int(np.prod(x.shape[ax:]))])


def _reshape(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    t = ints(n, args[1], "shape")
    out = [x.shape[i] if v == 0 else v for i, v in enumerate(t)]
    if -1 in out:
        rest = int(np.prod([v for v in out if v != -1]))
        out[out.index(-1)] = x.size // rest if rest else 0
    if int(np.prod(out)) != x.size:
        raise BackendError(f"node {n.name!r} (Reshape): cannot reshape {x.shape} to {t}")
    return x.reshape(out)


def _squeeze_axes(n: GraphNode, args: list[Arg], ctx: Ctx) -> list[int] | None:
    if ctx.graph.opset < 13:
        return [int(v) for v in n.attrs["axes"]] if "axes" in n.attrs else None
    a = optional_input(n, args, 1)
    return None if a is None else ints(n, a, "axes")


def _squeeze(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    axes = _squeeze_axes(n, args, ctx)
    drop = {i for i, d in enumerate(x.shape) if d == 1} if axes is None else \
        {axis(n, a, len(x.shape)) for a in axes}
    if any(x.shape[i] != 1 for i in drop):
        raise BackendError(f"node {n.name!r} (Squeeze): axes {sorted(drop)} of {x.shape} are not all 1")
    return x.reshape([d for i, d in enumerate(x.shape) if i not in drop])


def _unsqueeze(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    axes = _squeeze_axes(n, args, ctx)
    if axes is None:
        raise BackendError(f"node {n.name!r} (Unsqueeze): axes are required")
    rank = len(x.shape) + len(axes)
    new = sorted(axis(n, a, rank) for a in axes)
    shape = list(x.shape)
    for a in new:
        shape.insert(a, 1)
    return x.reshape(shape)


def _neg(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    return dyn(n, args[0], "input").scale(-1.0)


def _add_sub(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    sign = 1.0 if n.op_type == "Add" else -1.0
    a, b = args[0], args[1]
    if isinstance(a, Pending) and isinstance(b, Pending):
        if a.shape != b.shape:
            raise BackendError(f"node {n.name!r} ({n.op_type}): shapes {a.shape} and {b.shape} differ")
        return a + b.scale(sign)
    if isinstance(a, Pending):
        return a.scale(1.0, sign * broadcast(n, const(n, b, "second input"), a.shape))
    x = dyn(n, b, "second input")
    return x.scale(sign, broadcast(n, const(n, a, "first input"), x.shape))


def _mul_div(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    if n.op_type == "Mul" and not isinstance(args[0], Pending):
        x = dyn(n, args[1], "second input")
        c = broadcast(n, const(n, args[0], "first input"), x.shape)
    else:
        x = dyn(n, args[0], "first input")
        c = broadcast(n, const(n, args[1], "second input"), x.shape)
    if n.op_type == "Div":
        if np.any(c == 0):
            raise BackendError(f"node {n.name!r} (Div): division by zero")
        c = 1.0 / c
    return x.scale(c)


def _matmul(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "first input (the dynamic operand must be on the left)")
    w = const(n, args[1], "second input (weights)")
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
    if not x.shape or x.shape[-1] != k_in or x.size != k_in:
        raise BackendError(
            f"node {n.name!r} ({n.op_type}): input of shape {x.shape} does not match "
            f"weights {list(w.shape)} (only one row vector per inference is supported)"
        )
    shape = [*x.shape[:-1], k_out]
    bias = np.zeros(k_out)
    c = optional_input(n, args, 2)
    if n.op_type == "Gemm" and c is not None:
        bias = beta * broadcast(n, const(n, c, "C (bias)"), shape)
    return x.apply(sp.csr_array(alpha * w.T), bias, shape)


def _conv(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    """The convolution's own sparse matrix (window indices x weights): O(MACs) memory."""
    x = dyn(n, args[0], "input")
    w = const(n, args[1], "weights")
    if len(x.shape) < 3 or x.shape[0] != 1 or w.ndim != len(x.shape):
        raise BackendError(f"node {n.name!r} (Conv): expected NC(spatial) input with batch 1 and "
                           f"matching weights, got {x.shape} and {list(w.shape)}")
    k, out = conv_matrix(n.name, x.shape[1:], w, n.attrs)
    shape = [1, *out]
    spatial = int(np.prod(out[1:]))
    bias = np.zeros(k.shape[0])
    b = optional_input(n, args, 2)
    if b is not None:
        bias = np.repeat(const(n, b, "bias").reshape(-1), spatial)
    return x.apply(k, bias, shape)


def _channel(n: GraphNode, c: F64, shape: list[int]) -> F64:
    """A per-channel (axis 1) vector broadcast over an N C ... tensor."""
    c = c.reshape(-1)
    if len(shape) < 2 or len(c) != shape[1]:
        raise BackendError(f"node {n.name!r} ({n.op_type}): {len(c)} channel values for shape {shape}")
    return broadcast(n, c.reshape([1, len(c)] + [1] * (len(shape) - 2)), shape)


def _batchnorm(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    """Inference mode: y = scale * (x - mean) / sqrt(var + eps) + B, per channel."""
    if int(n.attrs.get("training_mode", 0)) or (len(n.outputs) > 1 and any(n.outputs[1:])):
        raise BackendError(f"node {n.name!r} (BatchNormalization): training mode is not supported; "
                           "export the model in eval mode")
    x = dyn(n, args[0], "input")
    scale, b, mean, var = (const(n, a, w) for a, w in zip(args[1:5], ("scale", "B", "mean", "var"), strict=True))
    eps = float(n.attrs.get("epsilon", 1e-5))
    if np.any(var + eps <= 0):
        raise BackendError(f"node {n.name!r} (BatchNormalization): var + epsilon must be positive")
    g = scale / np.sqrt(var + eps)
    return x.scale(_channel(n, g, x.shape), _channel(n, b - mean * g, x.shape))


def _avgpool(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    """Mean of each window; divisor as onnxruntime: with count_include_pad the window's size
    inside the padded input (not what ceil_mode adds past it), else its elements inside the
    input."""
    x = dyn(n, args[0], "input")
    if len(x.shape) < 3:
        raise BackendError(f"node {n.name!r} ({n.op_type}): expected an N C (spatial) input, got {x.shape}")
    spatial = x.shape[2:]
    if n.op_type == "GlobalAveragePool":
        win = window(n.name, n.op_type, spatial, list(spatial), {})
    else:
        win = window(n.name, n.op_type, spatial, [int(v) for v in n.attrs["kernel_shape"]], n.attrs)
    live = win.idx >= 0
    div = (win.counted if int(n.attrs.get("count_include_pad", 0)) else live).sum(axis=1)
    if np.any(div == 0):
        raise BackendError(f"node {n.name!r} ({n.op_type}): a window lies entirely on padding")
    return _pool_matrix(x, win.idx, live / div[:, None], win.out)


def _pool_matrix(x: Pending, idx: I64, weight: F64, out: list[int]) -> Pending:
    """out[c, o] = sum_k weight[o, k] * x[c, idx[o, k]] for every channel c (batch 1)."""
    c = int(np.prod(x.shape[:2]))
    n_in = int(np.prod(x.shape[2:]))
    n_out, n_k = idx.shape
    full = (c, n_out, n_k)
    live = np.broadcast_to(idx >= 0, full) & np.broadcast_to(weight != 0, full)
    rows = np.broadcast_to(np.arange(c * n_out, dtype=np.int64).reshape(c, n_out, 1), full)[live]
    cols = (np.arange(c, dtype=np.int64)[:, None, None] * n_in + idx[None])[live]
    data = np.broadcast_to(weight, full)[live]
    k = sp.csr_array((data, (rows, cols)), shape=(c * n_out, x.size))
    return x.apply(k, None, [*x.shape[:2], *out])


def _transpose(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    rank = len(x.shape)
    perm = [int(v) for v in n.attrs.get("perm", list(range(rank))[::-1])]
    if sorted(perm) != list(range(rank)):
        raise BackendError(f"node {n.name!r} (Transpose): perm {perm} is not a permutation of {rank} axes")
    return x.select(positions(x.shape).transpose(perm), [x.shape[p] for p in perm])


def _gather(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    if not isinstance(args[0], Pending):
        raise BackendError(f"node {n.name!r} (Gather): indices that depend on the input are not "
                           "supported (a data-dependent lookup); only constant indices select")
    x = args[0]
    idx = const(n, args[1], "indices").astype(np.int64)
    ax = axis(n, int(n.attrs.get("axis", 0)), len(x.shape))
    if idx.size and (idx.min() < -x.shape[ax] or idx.max() >= x.shape[ax]):
        raise BackendError(f"node {n.name!r} (Gather): index out of range for axis {ax} of size {x.shape[ax]}")
    src = np.take(positions(x.shape), idx, axis=ax)
    return x.select(src, list(src.shape))


def _slice(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    rank = len(x.shape)
    if ctx.graph.opset < 10:
        starts, ends = [int(v) for v in n.attrs["starts"]], [int(v) for v in n.attrs["ends"]]
        axes = [int(v) for v in n.attrs.get("axes", range(len(starts)))]
        steps = [1] * len(starts)
    else:
        starts, ends = ints(n, args[1], "starts"), ints(n, args[2], "ends")
        a, s = optional_input(n, args, 3), optional_input(n, args, 4)
        axes = list(range(len(starts))) if a is None else ints(n, a, "axes")
        steps = [1] * len(starts) if s is None else ints(n, s, "steps")
    sl = [slice(None)] * rank
    for st, en, ax, step in zip(starts, ends, axes, steps, strict=True):
        if step == 0:
            raise BackendError(f"node {n.name!r} (Slice): step 0")
        sl[axis(n, ax, rank)] = slice(st, en, step)     # python clamps like ONNX does
    src = positions(x.shape)[tuple(sl)]
    return x.select(src, list(src.shape))


def _concat(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    """Pending maps and constants side by side along ``axis``: a stack, then a permutation."""
    parts: list[Pending] = []
    for a in args:
        if isinstance(a, Pending):
            parts.append(a)
        elif a is not None:
            c = np.asarray(a, dtype=np.float64)
            parts.append(Pending.constant(c, list(c.shape)))
    rank = len(parts[0].shape)
    if any(len(p.shape) != rank for p in parts):
        raise BackendError(f"node {n.name!r} (Concat): inputs of different ranks {[p.shape for p in parts]}")
    ax = axis(n, int(n.attrs["axis"]), rank)
    offs = np.cumsum([0] + [p.size for p in parts])
    try:
        src = np.concatenate([positions(p.shape) + o for p, o in zip(parts, offs, strict=False)], axis=ax)
    except ValueError as e:
        raise BackendError(f"node {n.name!r} (Concat): shapes {[p.shape for p in parts]} do not "
                           f"concatenate along axis {ax}") from e
    return Pending.stack(parts).select(src, list(src.shape))


def _pad(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    rank = len(x.shape)
    mode = n.attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if ctx.graph.opset < 11:
        pads = [int(v) for v in n.attrs["pads"]]
        value = float(n.attrs.get("value", 0.0))
        axes = list(range(rank))
    else:
        pads = ints(n, args[1], "pads")
        v = optional_input(n, args, 2)
        value = float(const(n, v, "constant_value").reshape(-1)[0]) if v is not None else 0.0
        ax_in = optional_input(n, args, 3)
        axes = list(range(rank)) if ax_in is None else [axis(n, i, rank) for i in ints(n, ax_in, "axes")]
    if len(pads) != 2 * len(axes) or min(pads, default=0) < 0:
        raise BackendError(f"node {n.name!r} (Pad): pads {pads} must be 2 x {len(axes)} non-negative values "
                           "(crop with Slice instead)")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise BackendError(f"node {n.name!r} (Pad): mode {mode!r} is not supported")
    width = [(0, 0)] * rank
    for i, ax in enumerate(axes):
        width[ax] = (pads[i], pads[len(axes) + i])
    pos = positions(x.shape)
    if mode == "constant":
        src = np.pad(pos, width, mode="constant", constant_values=-1)
        out = x.select(src, list(src.shape))
        return out.scale(1.0, np.where(src.reshape(-1) < 0, value, 0.0))
    # numpy's reflect / edge / wrap are ONNX's
    if mode == "reflect":
        src = np.pad(pos, width, mode="reflect")
    elif mode == "edge":
        src = np.pad(pos, width, mode="edge")
    else:
        src = np.pad(pos, width, mode="wrap")
    return x.select(src, list(src.shape))


def _reduce(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    rank = len(x.shape)
    if ctx.graph.opset < (13 if n.op_type == "ReduceSum" else 18):      # axes: attribute, then input
        raw = n.attrs.get("axes")
        axes_l = None if raw is None else [int(v) for v in raw]
    else:
        a = optional_input(n, args, 1)
        axes_l = None if a is None else ints(n, a, "axes")
    if axes_l is None or not axes_l:
        if int(n.attrs.get("noop_with_empty_axes", 0)):
            return x
        axes_l = list(range(rank))
    red = sorted({axis(n, a, rank) for a in axes_l})
    keep = [i for i in range(rank) if i not in red]
    pos = positions(x.shape).transpose(keep + red)
    n_out = int(np.prod([x.shape[i] for i in keep]))
    r = int(np.prod([x.shape[i] for i in red]))
    src = pos.reshape(n_out, r)
    w = 1.0 / r if n.op_type == "ReduceMean" else 1.0
    k = sp.csr_array((np.full(src.size, w), (np.repeat(np.arange(n_out), r), src.reshape(-1))),
                     shape=(n_out, x.size))
    shape = [1 if i in red else d for i, d in enumerate(x.shape)] if int(n.attrs.get("keepdims", 1)) \
        else [x.shape[i] for i in keep]
    return x.apply(k, None, shape)


HANDLERS: dict[str, Handler] = {
    "Identity": _identity, "Dropout": _identity,
    "Flatten": _flatten, "Reshape": _reshape, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Neg": _neg, "Add": _add_sub, "Sub": _add_sub, "Mul": _mul_div, "Div": _mul_div,
    "MatMul": _matmul, "Gemm": _matmul, "Conv": _conv,
    "BatchNormalization": _batchnorm,
    "AveragePool": _avgpool, "GlobalAveragePool": _avgpool,
    "Transpose": _transpose, "Gather": _gather, "Slice": _slice, "Concat": _concat, "Pad": _pad,
    "ReduceMean": _reduce, "ReduceSum": _reduce,
}
