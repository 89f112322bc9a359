"""ONNX models built with the onnx helper API, shared by tests and bench scripts."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def dense_mlp(path: Path, sizes: list[int], seed: int = 0) -> Path:
    """Gemm+Relu layers with dense N(0, 1/fan_in) weights (every neuron reads every input),
    deterministic for a seed; the last Gemm has no activation."""
    rng = np.random.default_rng(seed)
    nodes, inits, cur = [], [], "x"
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        inits += [numpy_helper.from_array(rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32), f"W{i}"),
                  numpy_helper.from_array(rng.normal(0, 0.1, b).astype(np.float32), f"B{i}")]
        last = i == len(sizes) - 2
        nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"B{i}"], ["y" if last else f"g{i}"], name=f"fc{i}"))
        if not last:
            nodes.append(helper.make_node("Relu", [f"g{i}"], [f"r{i}"], name=f"relu{i}"))
            cur = f"r{i}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, sizes[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, sizes[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
