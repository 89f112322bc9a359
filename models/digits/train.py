"""Train the digits classifier (64 -> 32 ReLU -> 10 logits) on scikit-learn's load_digits.

Inputs are the 8x8 images scaled to [0, 1] (pixel / 16, so they are exact at fixed-point scale
4); outputs are the 10 logits (argmax = predicted digit). The graph uses MatMul + Add (not
Gemm) so both ONNX spellings of a dense layer stay covered by the reference models.
Deterministic (seed 0). Writes model.onnx and calibration.json next to this file and prints
the accuracy of the float model (onnxruntime) and of the quantized integer reference.
In-circuit accuracy is measured by bench/bench_circuits.py (it needs the compiled circuit).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = Path(__file__).resolve().parent
SEED = 0


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = load_digits()
    x = d.data / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=0.25, random_state=SEED,
                                              stratify=d.target)
    return np.asarray(x_tr), np.asarray(x_te), np.asarray(y_tr), np.asarray(y_te)


def build_onnx(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> onnx.ModelProto:
    inits = [
        numpy_helper.from_array(w1.astype(np.float32), "W1"),
        numpy_helper.from_array(b1.astype(np.float32), "B1"),
        numpy_helper.from_array(w2.astype(np.float32), "W2"),
        numpy_helper.from_array(b2.astype(np.float32), "B2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["pixels", "W1"], ["m1"], name="fc1_matmul"),
        helper.make_node("Add", ["m1", "B1"], ["h1"], name="fc1_bias"),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("MatMul", ["a1", "W2"], ["m2"], name="fc2_matmul"),
        helper.make_node("Add", ["m2", "B2"], ["logits"], name="fc2_bias"),
    ]
    graph = helper.make_graph(
        nodes, "digits_mlp",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="poi-oracle/models/digits")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    x_train, x_test, y_train, y_test = data()
    mlp = MLPClassifier(hidden_layer_sizes=(32,), activation="relu", alpha=1e-3,
                        max_iter=1500, random_state=SEED)
    mlp.fit(x_train, y_train)
    (w1, w2), (b1, b2) = mlp.coefs_, mlp.intercepts_
    onnx.save(build_onnx(w1, b1, w2, b2), str(HERE / "model.onnx"))
    calib = x_train[:256]
    (HERE / "calibration.json").write_text(json.dumps({"input": calib.tolist()}) + "\n")

    import onnxruntime as ort

    sess = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"pixels": x_test.astype(np.float32)})[0]
    acc_float = float(np.mean(np.argmax(logits, axis=1) == y_test))

    sys.path.insert(0, str(HERE.parents[1]))
    from oracle.circuits.quantize import load_calibration, quantize_onnx

    qm = quantize_onnx(HERE / "model.onnx", load_calibration(HERE / "calibration.json", 64))
    xq = np.round(x_test * (1 << qm.input_scale)).astype(np.int64)
    qlogits = qm.forward_batch(xq)
    acc_q = float(np.mean(np.argmax(qlogits, axis=1) == y_test))
    agree = float(np.mean(np.argmax(qlogits, axis=1) == np.argmax(logits, axis=1)))
    print(f"test set: {len(y_test)} images")
    print(f"accuracy float (onnxruntime): {acc_float:.4f}")
    print(f"accuracy quantized (numpy int reference): {acc_q:.4f} "
          f"(argmax agreement with float {agree:.4f})")
    print(f"scales: input {qm.input_scale} ({qm.input_bits} bits), output {qm.output_scale} "
          f"({qm.output_bits} bits)")


if __name__ == "__main__":
    main()
