"""A small deterministic MLP for sliced-model tests and fixtures (no training: seeded weights).

8 -> 16 -> 16 -> 16 -> 3 with ReLU, plus a residual step (the last layer also reads the first
hidden layer), so a cut after layer 2 or 3 must carry an older base across the boundary.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp_onnx(d: Path) -> tuple[Path, Path]:
    """Write model.onnx and calibration.json into ``d`` (same bytes on every run)."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(12)

    def t(a: object, n: str) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(a, np.float32), n)

    sizes = [8, 16, 16, 16, 3]
    inits, nodes = [], []
    x = "x"
    for i in range(4):
        inits += [t(rng.normal(0, 1 / np.sqrt(sizes[i]), (sizes[i], sizes[i + 1])), f"W{i}"),
                  t(rng.normal(0, 0.1, sizes[i + 1]), f"b{i}")]
        nodes += [helper.make_node("MatMul", [x, f"W{i}"], [f"m{i}"], name=f"fc{i}"),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"bias{i}")]
        x = f"a{i}"
        if i == 0:
            nodes.append(helper.make_node("Relu", [x], ["h0"], name="relu0"))
            x = "h0"
        elif i < 3:
            nodes.append(helper.make_node("Relu", [x], [f"h{i}"], name=f"relu{i}"))
            x = f"h{i}"
    inits.append(t(rng.normal(0, 0.25, (16, 3)), "Wskip"))
    nodes += [helper.make_node("MatMul", ["h0", "Wskip"], ["skip"], name="skip"),
              helper.make_node("Add", [x, "skip"], ["y"], name="residual")]
    graph = helper.make_graph(nodes, "sliced_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(d / "model.onnx"))
    (d / "calibration.json").write_text(json.dumps({"input": rng.uniform(-1, 1, (64, 8)).round(4).tolist()}))
    return d / "model.onnx", d / "calibration.json"
