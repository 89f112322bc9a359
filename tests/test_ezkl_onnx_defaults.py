"""EZKL reads exported CNNs: the build's model copy spells out ONNX's default strides/pads."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from oracle.errors import BackendError
from oracle.proving.ezkl.build import write_explicit_defaults
from oracle.proving.ezkl.folder import FILES
from oracle.proving.ezkl.settings import write_settings


def _conv_model(path: Path) -> Path:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (2, 1, 3, 3)).astype(np.float32), "w")
    nodes = [  # no strides/pads/dilations on the Conv, no pads on the pool: ONNX's defaults
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
        helper.make_node("AveragePool", ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["y"], name="flat", axis=1),
    ]
    g = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _folder(tmp: Path, model: Path) -> dict[str, Path]:
    tmp.mkdir()
    paths = {role: tmp / f for role, f in FILES.items()}
    shutil.copyfile(model, paths["onnx"])
    return paths


def test_default_strides_are_written_out_and_ezkl_reads_the_copy(tmp_path: Path) -> None:
    src = _conv_model(tmp_path / "m.onnx")
    with pytest.raises(BackendError, match="stride"):       # EZKL alone refuses the export
        write_settings(src, _folder(tmp_path / "raw", src))

    fixed = tmp_path / "fixed.onnx"
    write_explicit_defaults(src, fixed)
    conv = next(n for n in onnx.load(str(fixed)).graph.node if n.op_type == "Conv")
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs["strides"] == [1, 1] and attrs["pads"] == [0, 0, 0, 0] and attrs["dilations"] == [1, 1]

    x = np.random.default_rng(1).uniform(-1, 1, (1, 1, 6, 6)).astype(np.float32)
    a = ort.InferenceSession(str(src)).run(None, {"x": x})[0]
    b = ort.InferenceSession(str(fixed)).run(None, {"x": x})[0]
    assert np.array_equal(a, b)                              # the same function

    shapes = write_settings(fixed, _folder(tmp_path / "ok", fixed))
    assert shapes.input == [1, 1, 6, 6] and shapes.output == [1, 8]
