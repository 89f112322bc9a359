"""Train the deep bottleneck MLP: the sliced models' "too large for one circuit" model.

Data: scikit-learn's digits (8x8, pixel / 16, exact at fixed-point scale 4), split as
models/digits (25 % held out, stratified, seed 0).

Architecture: 64 -> (256 -> 32) x BLOCKS -> 10, ReLU after every hidden layer. The wide layers
are what cost constraints (~30-45 rows per ReLU neuron); the 32-wide bottlenecks are where a
slice boundary is cheap (32 values committed and range-checked, ~1.5 k rows on the consumer
side instead of ~6 k for 256 values). Sized so the whole direct-generator circuit needs MORE
than 2^16 rows (the largest ceremony cached on the dev boxes) while every slice of a balanced
cut fits 2^14: ``bench/bench_sliced.py --plan`` prints the row counts.

Training: sklearn MLPClassifier (Adam, seed 0); exported with onnx.helper as MatMul + Add +
Relu. Writes model.onnx and calibration.json next to this file and prints the held-out
accuracy of the float model (onnxruntime) and of the quantized integer reference.
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
WIDE, NARROW, BLOCKS = 320, 32, 6
N_CALIBRATION = 256


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = load_digits()
    x = d.data / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=0.25, random_state=SEED,
                                              stratify=d.target)
    return np.asarray(x_tr), np.asarray(x_te), np.asarray(y_tr), np.asarray(y_te)


def build_onnx(coefs: list[np.ndarray], intercepts: list[np.ndarray]) -> onnx.ModelProto:
    inits, nodes = [], []
    x = "pixels"
    last = len(coefs) - 1
    for i, (w, b) in enumerate(zip(coefs, intercepts, strict=True)):
        inits += [numpy_helper.from_array(w.astype(np.float32), f"W{i}"),
                  numpy_helper.from_array(b.astype(np.float32), f"B{i}")]
        out = "logits" if i == last else f"h{i}"
        nodes += [helper.make_node("MatMul", [x, f"W{i}"], [f"m{i}"], name=f"fc{i}"),
                  helper.make_node("Add", [f"m{i}", f"B{i}"], [out if i == last else f"a{i}"], name=f"bias{i}")]
        if i != last:
            nodes.append(helper.make_node("Relu", [f"a{i}"], [out], name=f"relu{i}"))
        x = out
    graph = helper.make_graph(
        nodes, "deep_mlp",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="poi-oracle/models/deep-mlp")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    x_train, x_test, y_train, y_test = data()
    hidden = tuple(s for _ in range(BLOCKS) for s in (WIDE, NARROW))
    mlp = MLPClassifier(hidden_layer_sizes=hidden, activation="relu", alpha=1e-3, max_iter=300,
                        random_state=SEED)
    mlp.fit(x_train, y_train)
    onnx.save(build_onnx(list(mlp.coefs_), list(mlp.intercepts_)), str(HERE / "model.onnx"))
    (HERE / "calibration.json").write_text(json.dumps({"input": x_train[:N_CALIBRATION].tolist()}) + "\n")

    import onnxruntime as ort

    sess = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"pixels": x_test.astype(np.float32)})[0]
    acc_float = float(np.mean(np.argmax(logits, axis=1) == y_test))

    sys.path.insert(0, str(HERE.parents[1]))
    from oracle.circuits.quantize import load_calibration, quantize_onnx

    qm = quantize_onnx(HERE / "model.onnx", load_calibration(HERE / "calibration.json", 64))
    xq = np.round(x_test * (1 << qm.input_scale)).astype(np.int64)
    acc_q = float(np.mean(np.argmax(qm.forward_batch(xq), axis=1) == y_test))
    print(f"layers {hidden} -> 10, {len(y_test)} held-out images")
    print(f"accuracy float (onnxruntime): {acc_float:.4f}")
    print(f"accuracy quantized (numpy int reference): {acc_q:.4f}")


if __name__ == "__main__":
    main()
