"""Quantizer and graph tracing (no circuit tools): float program == onnxruntime, integer
semantics, op coverage and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from oracle.circuits.affine import trace
from oracle.circuits.onnx_graph import load_graph
from oracle.circuits.quantize import (
    QuantizedModel,
    load_calibration,
    quantize_onnx,
    quantized_forward,
    signed_bits,
)
from oracle.proving.base import BackendError, UnsupportedOperator
from oracle.proving.groth16.calldata import decode_proof, encode_proof

ROOT = Path(__file__).resolve().parent.parent
RISK = ROOT / "models" / "risk"
DIGITS = ROOT / "models" / "digits"


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out: np.ndarray = sess.run(None, {name: x.astype(np.float32)})[0]
    return out


def save_model(tmp: Path, nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray],
               in_shape: list[int | str], out_shape: list[int | str], name: str = "m") -> Path:
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    p = tmp / f"{name}.onnx"
    onnx.save(model, str(p))
    return p


@pytest.mark.parametrize("model_dir,n_in", [(RISK, 8), (DIGITS, 64)])
def test_float_program_matches_onnxruntime(model_dir: Path, n_in: int) -> None:
    x = load_calibration(model_dir / "calibration.json", n_in)[:64]
    prog = trace(load_graph(model_dir / "model.onnx"))
    ref = _ort(model_dir / "model.onnx", x)
    np.testing.assert_allclose(prog.forward(x), ref.reshape(len(x), -1), atol=1e-5)


def test_risk_quantization_error_is_small() -> None:
    qm = quantize_onnx(RISK / "model.onnx", load_calibration(RISK / "calibration.json", 8))
    assert qm.input_scale == 10 and qm.output_scale == 10
    assert qm.calibration["max_abs_error"] < 0.01
    # the output is a bounded score: [0, 1] at the output scale
    assert min(qm.layers[-1].out_lo) >= 0 and max(qm.layers[-1].out_hi) <= 1 << qm.output_scale


def test_digits_input_scale_is_exact() -> None:
    qm = quantize_onnx(DIGITS / "model.onnx", load_calibration(DIGITS / "calibration.json", 64))
    assert qm.input_scale == 4          # pixels are k/16: exact at scale 4
    assert qm.input_bits == 6
    assert qm.calibration["argmax_agreement"] >= 0.99


def test_floor_semantics_for_negatives() -> None:
    # One identity-weight layer with shift: checks numpy's >> is floor, like the circuit.
    for v in (-9, -8, -7, -1, 0, 1, 7, 8, 9):
        assert int(np.int64(v) >> 3) == v // 8
    assert signed_bits(-128, 127) == 8 and signed_bits(0, 128) == 9 and signed_bits(-129, 0) == 9


def test_reference_roundtrip_and_size_check(tmp_path: Path) -> None:
    qm = quantize_onnx(RISK / "model.onnx", load_calibration(RISK / "calibration.json", 8))
    qm.save(tmp_path / "q.json")
    qm2 = QuantizedModel.load(tmp_path / "q.json")
    x = [0, 1023, -1024, 5, 100, 800, 3, 9]
    assert quantized_forward(qm, x) == quantized_forward(qm2, x)
    with pytest.raises(BackendError, match="expected 8 inputs, got 3"):
        quantized_forward(qm, [1, 2, 3])


def test_unsupported_operator_names_op_and_node(tmp_path: Path) -> None:
    w = np.ones((4, 2))
    p = save_model(tmp_path, [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="dense"),
        helper.make_node("Exp", ["h"], ["y"], name="squash"),
    ], {"W": w}, ["N", 4], ["N", 2])
    with pytest.raises(UnsupportedOperator) as e:
        quantize_onnx(p)
    assert e.value.op_type == "Exp" and e.value.node_name == "squash"
    assert "Exp" in str(e.value) and "squash" in str(e.value) and "groth16" in str(e.value)
    assert "--backend ezkl" in str(e.value)          # and what to do instead


def test_conv_clip_sub_mul_trace_matches_onnxruntime(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    inits = {
        "K": rng.normal(size=(2, 1, 3, 3)), "KB": rng.normal(size=2),
        "S": np.array([0.25]), "M": rng.normal(size=(8, 3)),
        "shape": np.array([1, -1]), "lo": np.array(-0.5), "hi": np.array(0.75),
    }
    nodes = [
        helper.make_node("Conv", ["x", "K", "KB"], ["c"], name="conv", pads=[0, 0, 0, 0]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["f"], name="flat"),
        helper.make_node("Sub", ["f", "S"], ["s"], name="sub"),
        helper.make_node("MatMul", ["s", "M"], ["m"], name="mm"),
        helper.make_node("Mul", ["m", "S"], ["mm"], name="mul"),
        helper.make_node("Clip", ["mm", "lo", "hi"], ["y"], name="clip"),
    ]
    # Reshape's shape must be int64: rebuild that initializer.
    p = save_model(tmp_path, nodes, {k: v for k, v in inits.items() if k != "shape"},
                   [1, 1, 4, 4], [1, 3], "cnn")
    model = onnx.load(str(p))
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, -1], np.int64), "shape"))
    onnx.save(model, str(p))
    x = rng.uniform(-1, 1, size=(16, 1, 1, 4, 4))
    prog = trace(load_graph(p))
    for xi in x:
        np.testing.assert_allclose(prog.forward(xi.reshape(1, -1)), _ort(p, xi), atol=1e-5)


def test_dynamic_weights_rejected(tmp_path: Path) -> None:
    p = save_model(tmp_path, [helper.make_node("MatMul", ["x", "x"], ["y"], name="sq")],
                   {}, [4, 4], [4, 4])
    with pytest.raises(BackendError, match="sq"):
        quantize_onnx(p)


def test_calldata_roundtrip() -> None:
    proof = {"pi_a": ["1", "2", "1"], "pi_b": [["3", "4"], ["5", "6"], ["1", "0"]],
             "pi_c": ["7", "8", "1"]}
    data = encode_proof(proof)
    assert len(data) == 2 + 512
    words = [int(data[2 + 64 * i: 2 + 64 * (i + 1)], 16) for i in range(8)]
    assert words == [1, 2, 4, 3, 6, 5, 7, 8]      # pi_b inner pairs swapped for Solidity
    back = decode_proof(data)
    assert back["pi_a"][:2] == ["1", "2"] and back["pi_b"][:2] == [["3", "4"], ["5", "6"]]
    with pytest.raises(BackendError, match="256 bytes"):
        decode_proof("0x1234")
