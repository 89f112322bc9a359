"""Tracing an ONNX graph into a chain of "affine map + activation" steps (still in floats).

Every linear operator is folded into a pending affine map ``y = sum_b M_b v_b + c`` over already
*materialized* vectors ``v_b`` (the model input is base 0; see ``pending.Pending``, sparse
matrices throughout). A non-linearity or the graph output materializes the pending map as one
step. This is why the circuit pays for range checks only at non-linearities: linear algebra is
free in R1CS, and folding e.g. Conv + BatchNormalization + AveragePool or MatMul + Add into one
map means one rounding per layer instead of one per ONNX node.

Supported operators (``SUPPORTED_OPS``) and how each is lowered:

* folded into the pending map (``ops_linear``): Gemm, MatMul, Conv (any spatial rank, groups,
  strides, dilations, pads/auto_pad; a sparse matrix from the window indices, O(MACs)), Add,
  Sub, Mul/Div by a constant, Neg, BatchNormalization (inference: per-channel scale + shift),
  AveragePool (kernel/strides/pads/ceil_mode, count_include_pad as onnxruntime),
  GlobalAveragePool, ReduceMean/ReduceSum (constant axes), Transpose, Reshape, Flatten,
  Squeeze, Unsqueeze, Concat (of pending maps and constants, any axis), Gather and Slice with
  constant indices, Pad (constant/reflect/edge/wrap, non-negative pads), Identity, Dropout.
* materialized (``ops_nonlinear``): Relu, Clip, HardSigmoid (exact: clip(alpha x + beta, 0, 1)),
  LeakyRelu (one relu; alpha x stays pending), MaxPool (max(a, b) = a + relu(b - a): 3 relus in
  2 rounds per 2x2 window), Sigmoid and Tanh (piecewise linear, 17 relus per element, max
  error 0.0017 / 0.0034, see ``pwl``).
* Softmax / LogSoftmax as the graph's last operator: dropped (monotone, so the ranking and the
  argmax are unchanged); the outputs are logits, said in a warning and in ``FloatProgram.notes``
  (carried into the manifest's calibration summary). Anywhere else they are refused.

Relu -> MaxPool (and any monotone activation before a MaxPool) is rewritten to MaxPool -> Relu:
the two commute, and the activation then runs on the pooled (4x smaller for 2x2) tensor.

Everything else raises UnsupportedOperator naming the operator, the node and what to do instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from oracle.circuits import ops_linear, ops_nonlinear
from oracle.circuits.onnx_graph import GraphNode, OnnxGraph
from oracle.circuits.ops_common import F64, ActKind, Arg, Ctx, dyn
from oracle.circuits.pending import Pending, Sparse, is_identity
from oracle.errors import BackendError, UnsupportedOperator

__all__ = ["SUPPORTED_OPS", "ActKind", "FloatProgram", "FloatStep", "trace"]

log = logging.getLogger(__name__)

LINEAR_OPS = frozenset(ops_linear.HANDLERS)
ACTIVATION_OPS = frozenset(ops_nonlinear.HANDLERS)
FINAL_ONLY_OPS = frozenset({"Softmax", "LogSoftmax"})
SUPPORTED_OPS = LINEAR_OPS | ACTIVATION_OPS | FINAL_ONLY_OPS

_ALTERNATIVES = "use the ezkl backend (--backend ezkl), or slice the model so this part runs outside the proof"
HINTS = {
    "HardSwish": "x * hardsigmoid(x) multiplies two input-dependent values; replace it with Relu or "
                 "HardSigmoid, or " + _ALTERNATIVES,
    "Mish": "replace it with Relu, LeakyRelu or Tanh, or " + _ALTERNATIVES,
    "Gelu": "replace it with Relu or LeakyRelu, or " + _ALTERNATIVES,
    "Exp": "an exponential is not piecewise linear; " + _ALTERNATIVES,
    "Log": "a logarithm is not piecewise linear; " + _ALTERNATIVES,
    "Sqrt": "not piecewise linear; " + _ALTERNATIVES,
    "Pow": "not piecewise linear; " + _ALTERNATIVES,
    "Erf": "replace Gelu/Erf with Relu, or " + _ALTERNATIVES,
    "LSTM": "recurrent layers are not supported; " + _ALTERNATIVES,
    "GRU": "recurrent layers are not supported; " + _ALTERNATIVES,
}
DEFAULT_HINT = ("supported operators are " + ", ".join(sorted(SUPPORTED_OPS)) + "; replace it with one of "
                "them, or " + _ALTERNATIVES)


@dataclass
class FloatStep:
    """out = act(sum_b M_b @ v_b + bias); produces base ``index + 1``. M_b are csr_arrays."""

    terms: dict[int, Sparse]
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
    notes: list[str] = field(default_factory=list)    # e.g. "Softmax dropped: outputs are logits"

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    def forward_all(self, x: F64) -> list[F64]:
        """Values of every base for a batch of inputs (batch, n_in); [0] is the input."""
        vals = [np.asarray(x, dtype=np.float64).reshape(len(x), -1)]
        for st in self.steps:
            pre = np.tile(st.bias, (len(x), 1))
            for b, m in st.terms.items():
                pre = pre + np.asarray(m @ vals[b].T).T
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


def trace(graph: OnnxGraph, commute_pools: bool = True) -> FloatProgram:
    """The float program of ``graph``; ``commute_pools=False`` keeps activation -> MaxPool in
    graph order (only to measure what the rewrite saves)."""
    nodes = commute_activation_pool(graph.nodes, graph.output_name) if commute_pools else list(graph.nodes)
    env: dict[str, Pending | F64] = dict(graph.constants)
    env[graph.input_name] = Pending.of_base(0, graph.input_shape)
    steps: list[FloatStep] = []
    notes: list[str] = []

    def materialize(d: Pending, act: ActKind, lo: float | None, hi: float | None, node: str) -> Pending:
        steps.append(FloatStep(dict(d.terms), d.bias.copy(), act, lo, hi, node))
        return Pending.of_base(len(steps), d.shape)

    ctx = Ctx(graph, materialize)
    for i, n in enumerate(nodes):
        args: list[Arg] = [env.get(name) if name else None for name in n.inputs]
        for name, a in zip(n.inputs, args, strict=True):
            if name and a is None:
                raise BackendError(f"node {n.name!r}: input {name!r} is not produced by the graph")
        if n.op_type in FINAL_ONLY_OPS:
            env[n.outputs[0]] = _final_softmax(n, args, i == len(nodes) - 1 and n.outputs[0] == graph.output_name,
                                               notes)
            continue
        handler = ops_linear.HANDLERS.get(n.op_type) or ops_nonlinear.HANDLERS.get(n.op_type)
        if handler is None:
            raise UnsupportedOperator(n.op_type, n.name, "groth16", HINTS.get(n.op_type, DEFAULT_HINT))
        if not any(isinstance(a, Pending) for a in args):
            raise BackendError(
                f"node {n.name!r} ({n.op_type}): constant sub-graphs are not supported; "
                "fold constants before export"
            )
        env[n.outputs[0]] = handler(n, args, ctx)

    final = env.get(graph.output_name)
    if not isinstance(final, Pending):
        raise BackendError(f"graph output {graph.output_name!r} does not depend on the input")
    if not _is_identity_of_step(final, len(steps)):
        final = materialize(final, "none", None, None, "output")
    return FloatProgram(list(graph.input_shape), final.shape, steps, notes)


def _final_softmax(n: GraphNode, args: list[Arg], is_last: bool, notes: list[str]) -> Pending:
    if not is_last:
        raise UnsupportedOperator(
            n.op_type, n.name, "groth16",
            f"{n.op_type} is only supported as the model's last operator (then it is dropped: the "
            "circuit outputs logits, same ranking); move it to the end, apply it off-chain, or "
            + _ALTERNATIVES)
    note = (f"{n.op_type} (node {n.name!r}) is the last operator and was dropped: the outputs are "
            f"logits (same ranking and argmax); apply {n.op_type} off-chain for probabilities")
    log.warning(note)
    notes.append(note)
    return dyn(n, args[0], "input")


def _is_identity_of_step(d: Pending, n_steps: int) -> bool:
    if n_steps == 0 or list(d.terms) != [n_steps] or np.any(d.bias != 0):
        return False
    return is_identity(d.terms[n_steps])


def commute_activation_pool(nodes: list[GraphNode], output_name: str) -> list[GraphNode]:
    """act -> MaxPool becomes MaxPool -> act for monotone activations whose output only the
    pool reads: max and a non-decreasing function commute, and the activation (its range
    checks) then runs on the pooled tensor. Node names are kept for messages."""
    out = list(nodes)
    changed = True
    while changed:
        changed = False
        readers: dict[str, int] = {}
        for n in out:
            for name in n.inputs:
                readers[name] = readers.get(name, 0) + 1
        producer = {n.outputs[0]: i for i, n in enumerate(out)}
        for pi, pool in enumerate(out):
            if pool.op_type != "MaxPool" or (len(pool.outputs) > 1 and pool.outputs[1]):
                continue
            src = pool.inputs[0]
            ai = producer.get(src)
            if ai is None or src == output_name or readers.get(src) != 1:
                continue
            act = out[ai]
            if act.op_type not in ops_nonlinear.MONOTONE or len(act.outputs) != 1:
                continue
            if act.op_type == "LeakyRelu" and float(act.attrs.get("alpha", 0.01)) < 0:
                continue
            pooled = f"{src}__pooled"
            out[pi:pi + 1] = [GraphNode("MaxPool", pool.name, [act.inputs[0]], [pooled], dict(pool.attrs)),
                              GraphNode(act.op_type, act.name, [pooled, *act.inputs[1:]], [pool.outputs[0]],
                                        dict(act.attrs))]
            del out[ai]
            changed = True
            break
    return out
