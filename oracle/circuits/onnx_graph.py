"""Reading an ONNX model into a small, backend-neutral graph (nodes, constants, one input/output).

Only what the quantizer needs: node op types, names, tensor names, attributes as Python values,
and every initializer / Constant node as a numpy array. Shapes use batch size 1 (a symbolic or
zero first dimension becomes 1), since one proof covers one inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import numpy_helper

from oracle.errors import BackendError


@dataclass(frozen=True)
class GraphNode:
    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class OnnxGraph:
    input_name: str
    input_shape: list[int]
    output_name: str
    output_shape: list[int] | None      # None when the model does not declare it
    nodes: list[GraphNode]
    constants: dict[str, NDArray[np.float64]]
    opset: int


def _shape(vi: onnx.ValueInfoProto) -> list[int]:
    dims = vi.type.tensor_type.shape.dim
    out: list[int] = []
    for i, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        elif i == 0:
            out.append(1)                   # symbolic batch dimension: one inference per proof
        else:
            raise BackendError(f"input/output {vi.name!r}: dimension {i} is symbolic")
    return out


def load_graph(path: Path) -> OnnxGraph:
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises several unrelated exception types
        raise BackendError(f"{path}: not a valid ONNX model ({e})") from e
    g = model.graph
    constants: dict[str, NDArray[np.float64]] = {
        t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer
    }
    inputs = [vi for vi in g.input if vi.name not in constants]
    if len(inputs) != 1 or len(g.output) != 1:
        raise BackendError(
            f"{path}: expected one input and one output, got {len(inputs)} and {len(g.output)}"
        )
    nodes: list[GraphNode] = []
    for i, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{i}"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Constant":
            # Constant nodes are folded here so the quantizer only sees initializers.
            if "value" not in attrs:
                raise BackendError(f"Constant node {name!r}: only the 'value' form is supported")
            constants[n.output[0]] = numpy_helper.to_array(attrs["value"]).astype(np.float64)
            continue
        nodes.append(GraphNode(n.op_type, name, list(n.input), list(n.output), attrs))
    out_vi = g.output[0]
    try:
        out_shape: list[int] | None = _shape(out_vi)
    except BackendError:
        out_shape = None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return OnnxGraph(
        input_name=inputs[0].name,
        input_shape=_shape(inputs[0]),
        output_name=out_vi.name,
        output_shape=out_shape,
        nodes=nodes,
        constants=constants,
        opset=opset,
    )
