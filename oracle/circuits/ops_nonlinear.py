"""Non-linear operators: each materializes the pending map as one or more steps.

A step is ``act(sum_b M_b v_b + bias)`` with act relu, clip or none; everything else is built from
relus over pending maps, with the linear parts left in the pending map (free):

* LeakyRelu(x) = alpha * x + (1 - alpha) * relu(x): one relu step, alpha * x stays pending.
* MaxPool: max(a, b) = a + relu(b - a), a tree over each window: a 2x2 window is 3 relus in 2
  rounds (one step per round; pairs shared by overlapping windows are computed once).
* Sigmoid, Tanh: ``pwl`` (17 relus per element in one step, documented error bound).
* HardSigmoid(x) = clip(alpha * x + beta, 0, 1): exact.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from oracle.circuits import pwl
from oracle.circuits.onnx_graph import GraphNode
from oracle.circuits.ops_common import Arg, Ctx, const, dyn, optional_input
from oracle.circuits.pending import Pending, identity
from oracle.circuits.windows import window
from oracle.errors import BackendError

Handler = Callable[[GraphNode, list[Arg], Ctx], Pending]


def _relu(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    return ctx.materialize(dyn(n, args[0], "input"), "relu", None, None, n.name)


def _hardsigmoid(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    alpha = float(n.attrs.get("alpha", 0.2))
    beta = float(n.attrs.get("beta", 0.5))
    return ctx.materialize(x.scale(alpha, beta), "clip", 0.0, 1.0, n.name)


def _clip(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    # Bounds are attributes before opset 11, optional constant inputs after.
    lo: float | None
    hi: float | None
    if ctx.graph.opset < 11:
        lo = float(n.attrs["min"]) if "min" in n.attrs else None
        hi = float(n.attrs["max"]) if "max" in n.attrs else None
    else:
        a, b = optional_input(n, args, 1), optional_input(n, args, 2)
        lo = float(const(n, a, "min")) if a is not None else None
        hi = float(const(n, b, "max")) if b is not None else None
    if lo is not None and hi is not None and lo > hi:
        raise BackendError(f"node {n.name!r} (Clip): min {lo} > max {hi}")
    return ctx.materialize(x, "clip", lo, hi, n.name)


def _leaky_relu(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    alpha = float(n.attrs.get("alpha", 0.01))
    r = ctx.materialize(x, "relu", None, None, n.name)
    return x.scale(alpha) + r.scale(1.0 - alpha) if alpha != 0 else r


def _pwl(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    """f(x) = v_0 + sum_i c_i relu(x - t_i): every knot's relu in one step, the sum pending."""
    x = dyn(n, args[0], "input")
    f = pwl.sigmoid() if n.op_type == "Sigmoid" else pwl.tanh()
    r = ctx.materialize(Pending.stack([x.scale(1.0, -t) for t in f.knots]), "relu", None, None, n.name)
    k = sp.csr_array(sp.hstack([c * identity(x.size) for c in f.coef], format="csr"))
    return r.apply(k, np.full(x.size, f.values[0]), x.shape)


def _maxpool(n: GraphNode, args: list[Arg], ctx: Ctx) -> Pending:
    x = dyn(n, args[0], "input")
    if len(n.outputs) > 1 and n.outputs[1]:
        raise BackendError(f"node {n.name!r} (MaxPool): the Indices output is not supported")
    if len(x.shape) < 3:
        raise BackendError(f"node {n.name!r} (MaxPool): expected an N C (spatial) input, got {x.shape}")
    win = window(n.name, "MaxPool", x.shape[2:], [int(v) for v in n.attrs["kernel_shape"]], n.attrs)
    c, n_in = int(np.prod(x.shape[:2])), int(np.prod(x.shape[2:]))
    n_out, n_k = win.idx.shape
    # Candidates per output (channel-major): flat indices into x, -1 on padding (ignored).
    groups = np.where(win.idx[None] >= 0,
                      np.arange(c, dtype=np.int64)[:, None, None] * n_in + win.idx[None], -1
                      ).reshape(c * n_out, n_k)
    if np.any((groups < 0).all(axis=1)):
        raise BackendError(f"node {n.name!r} (MaxPool): a window lies entirely on padding")
    groups = np.take_along_axis(groups, np.argsort(groups < 0, axis=1, kind="stable"), axis=1)
    cand = x.reshape([x.size])
    while groups.shape[1] > 1:
        cand, groups = _max_round(n, cand, groups, ctx)
    return cand.select(groups[:, 0], [*x.shape[:2], *win.out])


def _max_round(n: GraphNode, cand: Pending, groups: np.ndarray, ctx: Ctx) -> tuple[Pending, np.ndarray]:
    """Columns (0, 1), (2, 3), ... of every window become max(a, b) = a + relu(b - a) (one relu
    step for the whole round); an odd last column is carried. Valid entries stay a prefix."""
    k = groups.shape[1]
    half = k // 2
    a, b = groups[:, 0:2 * half:2], groups[:, 1:2 * half:2]
    both = (a >= 0) & (b >= 0)
    pairs, inv = np.unique(np.stack([a[both], b[both]], axis=1), axis=0, return_inverse=True)
    src_c = np.where(a >= 0, a, b)
    src_r = np.full(a.shape, -1, dtype=np.int64)
    src_r[both] = inv.reshape(-1)
    if k % 2:
        src_c = np.concatenate([src_c, groups[:, -1:]], axis=1)
        src_r = np.concatenate([src_r, np.full((len(groups), 1), -1, dtype=np.int64)], axis=1)
    cells = src_c >= 0
    keys, kinv = np.unique(np.stack([src_c[cells], src_r[cells]], axis=1), axis=0, return_inverse=True)
    new = cand.select(keys[:, 0], [len(keys)])
    if len(pairs):
        diff = cand.select(pairs[:, 1], [len(pairs)]) - cand.select(pairs[:, 0], [len(pairs)])
        r = ctx.materialize(diff, "relu", None, None, n.name)
        new = new + r.select(keys[:, 1], [len(keys)])
    out = np.full(src_c.shape, -1, dtype=np.int64)
    out[cells] = kinv.reshape(-1)
    return new, out


HANDLERS: dict[str, Handler] = {
    "Relu": _relu, "Clip": _clip, "HardSigmoid": _hardsigmoid, "LeakyRelu": _leaky_relu,
    "Sigmoid": _pwl, "Tanh": _pwl, "MaxPool": _maxpool,
}
# Monotone non-decreasing activations commute with max: act(maxpool(x)) = maxpool(act(x)).
MONOTONE = frozenset({"Relu", "Clip", "HardSigmoid", "LeakyRelu", "Sigmoid", "Tanh"})
