"""What every operator handler of the tracer shares: argument checks and the materialize hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from oracle.circuits.onnx_graph import GraphNode, OnnxGraph
from oracle.circuits.pending import Pending
from oracle.errors import BackendError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
ActKind = Literal["none", "relu", "clip"]
Arg = Pending | F64 | None
# materialize(pending, act, lo, hi, node) -> the identity over the new step's output
Materialize = Callable[[Pending, ActKind, "float | None", "float | None", str], Pending]


@dataclass
class Ctx:
    graph: OnnxGraph
    materialize: Materialize


def const(n: GraphNode, a: object, what: str) -> F64:
    if isinstance(a, Pending) or a is None:
        raise BackendError(f"node {n.name!r} ({n.op_type}): {what} must be a constant")
    return np.asarray(a, dtype=np.float64)


def ints(n: GraphNode, a: object, what: str) -> list[int]:
    return [int(v) for v in const(n, a, what).reshape(-1)]


def dyn(n: GraphNode, a: object, what: str) -> Pending:
    if not isinstance(a, Pending):
        raise BackendError(f"node {n.name!r} ({n.op_type}): {what} must depend on the input")
    return a


def broadcast(n: GraphNode, c: F64, shape: list[int]) -> F64:
    try:
        b = np.broadcast_to(c, shape)
    except ValueError as e:
        raise BackendError(
            f"node {n.name!r} ({n.op_type}): constant of shape {list(c.shape)} does not "
            f"broadcast to {shape}"
        ) from e
    return np.asarray(b, dtype=np.float64).reshape(-1)


def axis(n: GraphNode, a: int, rank: int) -> int:
    if not -rank <= a < rank:
        raise BackendError(f"node {n.name!r} ({n.op_type}): axis {a} out of range for rank {rank}")
    return a + rank if a < 0 else a


def positions(shape: list[int]) -> I64:
    """Every element's flat index, in the tensor's shape (what index maps are built from)."""
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)


def optional_input(n: GraphNode, args: list[Arg], i: int) -> Arg:
    return args[i] if len(args) > i else None
