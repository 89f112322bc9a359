"""Train the LRT risk model (8 -> 16 ReLU -> 3 -> HardSigmoid) and export ``model.onnx``.

Features (all fractions in [0, 1]) for a vault with three restaking strategies:
  f0..f2  share of vault assets allocated to strategy 0..2
  f3..f5  loss ratio of strategy 0..2 in [0, 1]: the larger of the current shortfall
          (1 - balance/principal) and the lifetime loss of one token held through every
          slash (RestakingStrategy.lossRatioWad), so a drained strategy keeps its history
  f6      idle ratio (idle assets / total assets)
  f7      withdrawal pressure (assets withdrawn since last rebalance / total, clamped [0, 1])
Output: one risk score in [0, 1] per strategy.

Synthetic data (deterministic, seed 7). Allocations and idle come from a Dirichlet(2, 2, 2, 1)
split of the assets; each strategy is slashed with probability 0.3, its loss ~ Beta(1, 6);
withdrawal pressure ~ Beta(1.2, 6). With concentration h = f0^2 + f1^2 + f2^2:

  z_i    = -2.0 + 10 * loss_i + 1.5 * alloc_i + 2.0 * h + 2.5 * f7 - 3.0 * f6 + N(0, 0.15)
  risk_i = sigmoid(z_i)

so risk rises steeply with the strategy's own loss, moderately with its allocation, with
concentration and with withdrawal pressure, and falls with the idle buffer.

The network ends in ONNX HardSigmoid (clip(0.2 x + 0.5, 0, 1)), which is piecewise linear and
therefore exact in the Groth16 circuit. scikit-learn has no such output layer, so the MLP is
fitted on the inverse target (risk - 0.5) / 0.2 (in (-2.5, 2.5) since risk is in (0, 1)).
Writes model.onnx and calibration.json next to this file and prints float vs quantized error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.neural_network import MLPRegressor

HERE = Path(__file__).resolve().parent
SEED = 7
N_TRAIN = 6000


def make_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    split = rng.dirichlet([2.0, 2.0, 2.0, 1.0], size=n)
    alloc, idle = split[:, :3], split[:, 3]
    slashed = rng.random((n, 3)) < 0.3
    loss = np.where(slashed, rng.beta(1.0, 6.0, size=(n, 3)), 0.0)
    withdraw = np.clip(rng.beta(1.2, 6.0, size=n), 0.0, 1.0)
    h = np.sum(alloc**2, axis=1)
    z = (
        -2.0 + 10.0 * loss + 1.5 * alloc + 2.0 * h[:, None] + 2.5 * withdraw[:, None]
        - 3.0 * idle[:, None] + rng.normal(0.0, 0.15, size=(n, 3))
    )
    risk = 1.0 / (1.0 + np.exp(-z))
    x = np.column_stack([alloc, loss, idle, withdraw])
    return x, risk


def build_onnx(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> onnx.ModelProto:
    # Gemm with transB=1 keeps the (out, in) weight layout.
    inits = [
        numpy_helper.from_array(w1.T.astype(np.float32), "W1"),
        numpy_helper.from_array(b1.astype(np.float32), "B1"),
        numpy_helper.from_array(w2.T.astype(np.float32), "W2"),
        numpy_helper.from_array(b2.astype(np.float32), "B2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["features", "W1", "B1"], ["h1"], name="fc1", transB=1),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("Gemm", ["a1", "W2", "B2"], ["logits"], name="fc2", transB=1),
        helper.make_node("HardSigmoid", ["logits"], ["risk"], name="score", alpha=0.2, beta=0.5),
    ]
    graph = helper.make_graph(
        nodes, "lrt_risk",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("risk", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="poi-oracle/models/risk")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    rng = np.random.default_rng(SEED)
    x, risk = make_data(N_TRAIN, rng)
    x_test, risk_test = make_data(1000, rng)
    target = (risk - 0.5) / 0.2
    mlp = MLPRegressor(hidden_layer_sizes=(16,), activation="relu", alpha=1e-4,
                       learning_rate_init=3e-3, max_iter=600, random_state=SEED)
    mlp.fit(x, target)
    (w1, w2), (b1, b2) = mlp.coefs_, mlp.intercepts_
    model = build_onnx(w1, b1, w2, b2)
    onnx.save(model, str(HERE / "model.onnx"))

    # Calibration: training-like samples plus the corners of the feature box.
    calib = np.vstack([np.zeros((1, 8)), np.ones((1, 8)), x[:254]])
    (HERE / "calibration.json").write_text(
        json.dumps({"input": np.round(calib, 6).tolist()}) + "\n"
    )

    import onnxruntime as ort

    sess = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])
    pred = sess.run(None, {"features": x_test.astype(np.float32)})[0]
    print(f"float model: test MAE vs synthetic risk {np.mean(np.abs(pred - risk_test)):.4f}")

    sys.path.insert(0, str(HERE.parents[1]))
    from oracle.circuits.quantize import load_calibration, quantize_onnx

    qm = quantize_onnx(HERE / "model.onnx", load_calibration(HERE / "calibration.json", 8))
    lo, hi = qm.input_range()
    xq = np.clip(np.round(x_test * (1 << qm.input_scale)), lo, hi).astype(np.int64)
    qout = qm.forward_batch(xq) / float(1 << qm.output_scale)
    err = np.abs(qout - pred)
    print(f"scales: input {qm.input_scale} ({qm.input_bits} bits), output {qm.output_scale}")
    print(f"float vs quantized on 1000 test inputs: max |err| {err.max():.4f}, "
          f"mean {err.mean():.5f}")


if __name__ == "__main__":
    main()
