"""Train the LeNet-class reference CNN on scikit-learn's digits, upscaled to 1x28x28.

Data: ``load_digits`` (1,797 8x8 images, 16 grey levels), each pixel repeated 3x3 (nearest
upscaling to 24x24) and padded by 2 to 28x28, values pixel / 16 in [0, 1]. Nearest upscaling
keeps every value a multiple of 1/16, so the fixed-point input scale is 4 and inputs are
6-bit: the input range checks and every accumulator stay narrow (bilinear would need scale
10 and widen every accumulator by 6 bits). Split as models/digits: 25 % held out, stratified,
seed 0.

Architecture (LeNet-5's layout, narrower, sized so the direct-generator circuit fits a 2^15
ceremony: ~29 k constraints; a fresh machine builds 2^15 in about half the time of 2^16)::

    Conv 5x5, 4 ch (no bias)  -> BatchNormalization -> AveragePool 2x2 -> Relu     (4x12x12)
    Conv 5x5, 16 ch (no bias) -> BatchNormalization -> AveragePool 2x2 -> Relu     (16x4x4)
    Flatten -> Gemm 64 -> Relu -> Gemm 32 -> Relu -> Gemm 10 (logits)

Relus and their bit decompositions are what cost constraints (~20-35 rows per neuron), linear
multiply-adds are nearly free: 576 + 256 + 64 + 32 Relus. Measured alternatives (same recipe):
6-16-64-32 is ~35 k constraints (2^16) for the same 98.0 % held-out accuracy; 6-12-48-24 is
~32.1 k, 98.7 %, but within 2 % of the 2^15 limit.

LeNet-5 subsamples with an average pool; it is linear, like the batch norm at inference, so
the compiler folds Conv + BatchNormalization + AveragePool into one affine map and pays the
range checks (the expensive part of the circuit) once per pooled neuron, at the Relu. That is
why the Relu comes after the pool here, not before it as in most modern CNNs.

Training: numpy only (im2col convolutions, hand-written backward, Adam, batch statistics in
BatchNormalization with running averages for inference), deterministic (seed 0). The ONNX
graph keeps BatchNormalization and AveragePool as real nodes (running mean/var exported), so
the compiler's folding is exercised. Writes model.onnx and calibration.json next to this file
and prints the accuracy of the float model (onnxruntime) and of the quantized integer
reference on the held-out split.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
SEED = 0
C1, C2, H1, H2 = 4, 16, 64, 32
EPOCHS = 12
BATCH = 32
LR = 2e-3
BN_EPS = 1e-5
BN_MOMENTUM = 0.1
N_CALIBRATION = 128

F32 = NDArray[np.float32]
log = logging.getLogger("lenet")


# -- data ---------------------------------------------------------------------------------------
def upscale(x8: NDArray[np.float64]) -> NDArray[np.float64]:
    """(n, 64) 8x8 digits in [0, 1] -> (n, 1, 28, 28): nearest 3x upscale, zero pad 2."""
    imgs = np.kron(x8.reshape(-1, 8, 8), np.ones((3, 3)))
    return np.pad(imgs, ((0, 0), (2, 2), (2, 2)))[:, None, :, :]


def data() -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(d.data / 16.0, d.target, test_size=0.25,
                                              random_state=SEED, stratify=d.target)
    return upscale(x_tr), upscale(x_te), np.asarray(y_tr), np.asarray(y_te)


# -- layers (forward returns a cache for backward) -----------------------------------------------
def im2col(x: F32, k: int) -> F32:
    """(n, c, h, w) -> (n * oh * ow, c * k * k) patches of a stride-1, unpadded convolution."""
    n, c, h, w = x.shape
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))  # n c oh ow k k
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(
        n * (h - k + 1) * (w - k + 1), c * k * k)


def conv_forward(x: F32, w: F32) -> tuple[F32, F32]:
    n, _, h, wd = x.shape
    o, _, k, _ = w.shape
    oh, ow = h - k + 1, wd - k + 1
    cols = im2col(x, k)
    out = (cols @ w.reshape(o, -1).T).reshape(n, oh, ow, o).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), cols


def conv_backward(dout: F32, cols: F32, x_shape: tuple[int, ...], w: F32,
                  need_dx: bool) -> tuple[F32 | None, F32]:
    o, c, k, _ = w.shape
    n, _, h, wd = x_shape
    oh, ow = h - k + 1, wd - k + 1
    d = dout.transpose(0, 2, 3, 1).reshape(-1, o)
    dw = (d.T @ cols).reshape(w.shape)
    if not need_dx:
        return None, dw
    dcols = (d @ w.reshape(o, -1)).reshape(n, oh, ow, c, k, k)
    dx = np.zeros(x_shape, dtype=np.float32)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + oh, j:j + ow] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dx, dw


@dataclass
class BNCache:
    xhat: F32
    inv_std: F32


def bn_forward(x: F32, gamma: F32, beta: F32) -> tuple[F32, BNCache, F32, F32]:
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    inv_std = (1.0 / np.sqrt(var + BN_EPS)).astype(np.float32)
    xhat = (x - mean[None, :, None, None]) * inv_std[None, :, None, None]
    out = gamma[None, :, None, None] * xhat + beta[None, :, None, None]
    return out, BNCache(xhat, inv_std), mean, var


def bn_backward(dout: F32, gamma: F32, c: BNCache) -> tuple[F32, F32, F32]:
    m = dout.shape[0] * dout.shape[2] * dout.shape[3]
    dgamma = (dout * c.xhat).sum(axis=(0, 2, 3))
    dbeta = dout.sum(axis=(0, 2, 3))
    dxhat = dout * gamma[None, :, None, None]
    dx = (c.inv_std[None, :, None, None] / m) * (
        m * dxhat - dxhat.sum(axis=(0, 2, 3))[None, :, None, None]
        - c.xhat * (dxhat * c.xhat).sum(axis=(0, 2, 3))[None, :, None, None])
    return dx.astype(np.float32), dgamma, dbeta


def pool_forward(x: F32) -> F32:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def pool_backward(dout: F32) -> F32:
    return np.repeat(np.repeat(dout, 2, axis=2), 2, axis=3) * np.float32(0.25)


# -- the network ---------------------------------------------------------------------------------
class LeNet:
    def __init__(self, rng: np.random.Generator) -> None:
        def he(shape: tuple[int, ...], fan_in: int) -> F32:
            return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

        self.p: dict[str, F32] = {
            "conv1": he((C1, 1, 5, 5), 25), "bn1_g": np.ones(C1, np.float32),
            "bn1_b": np.zeros(C1, np.float32),
            "conv2": he((C2, C1, 5, 5), 25 * C1), "bn2_g": np.ones(C2, np.float32),
            "bn2_b": np.zeros(C2, np.float32),
            "fc1_w": he((H1, C2 * 16), C2 * 16), "fc1_b": np.zeros(H1, np.float32),
            "fc2_w": he((H2, H1), H1), "fc2_b": np.zeros(H2, np.float32),
            "fc3_w": he((10, H2), H2), "fc3_b": np.zeros(10, np.float32),
        }
        self.running = {"bn1_m": np.zeros(C1, np.float32), "bn1_v": np.ones(C1, np.float32),
                        "bn2_m": np.zeros(C2, np.float32), "bn2_v": np.ones(C2, np.float32)}

    def _bn_eval(self, x: F32, i: int) -> F32:
        m, v = self.running[f"bn{i}_m"], self.running[f"bn{i}_v"]
        g, b = self.p[f"bn{i}_g"], self.p[f"bn{i}_b"]
        s = g / np.sqrt(v + BN_EPS)
        return x * s[None, :, None, None] + (b - m * s)[None, :, None, None]

    def predict(self, x: F32) -> F32:
        """Inference (running batch-norm statistics): the function the ONNX graph computes."""
        p = self.p
        h = np.maximum(pool_forward(self._bn_eval(conv_forward(x, p["conv1"])[0], 1)), 0)
        h = np.maximum(pool_forward(self._bn_eval(conv_forward(h, p["conv2"])[0], 2)), 0)
        h = h.reshape(len(x), -1)
        h = np.maximum(h @ p["fc1_w"].T + p["fc1_b"], 0)
        h = np.maximum(h @ p["fc2_w"].T + p["fc2_b"], 0)
        return np.asarray(h @ p["fc3_w"].T + p["fc3_b"], dtype=np.float32)

    def loss_and_grads(self, x: F32, y: NDArray[np.int64]) -> tuple[float, dict[str, F32]]:
        p, g = self.p, {}
        c1, cols1 = conv_forward(x, p["conv1"])
        b1, bc1, m1, v1 = bn_forward(c1, p["bn1_g"], p["bn1_b"])
        p1 = pool_forward(b1)
        r1 = np.maximum(p1, 0)
        c2, cols2 = conv_forward(r1, p["conv2"])
        b2, bc2, m2, v2 = bn_forward(c2, p["bn2_g"], p["bn2_b"])
        p2 = pool_forward(b2)
        r2 = np.maximum(p2, 0)
        f = r2.reshape(len(x), -1)
        h1 = f @ p["fc1_w"].T + p["fc1_b"]
        a1 = np.maximum(h1, 0)
        h2 = a1 @ p["fc2_w"].T + p["fc2_b"]
        a2 = np.maximum(h2, 0)
        z = a2 @ p["fc3_w"].T + p["fc3_b"]
        for i, (m, v) in ((1, (m1, v1)), (2, (m2, v2))):
            n_el = c1.size // C1 if i == 1 else c2.size // C2
            self.running[f"bn{i}_m"] = (1 - BN_MOMENTUM) * self.running[f"bn{i}_m"] + BN_MOMENTUM * m
            self.running[f"bn{i}_v"] = ((1 - BN_MOMENTUM) * self.running[f"bn{i}_v"]
                                        + BN_MOMENTUM * v * n_el / (n_el - 1))
        z = z - z.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        n = len(x)
        loss = float(-np.mean(np.log(prob[np.arange(n), y] + 1e-12)))
        dz = prob.copy()
        dz[np.arange(n), y] -= 1
        dz /= n
        g["fc3_w"], g["fc3_b"] = dz.T @ a2, dz.sum(0)
        dh2 = (dz @ p["fc3_w"]) * (h2 > 0)
        g["fc2_w"], g["fc2_b"] = dh2.T @ a1, dh2.sum(0)
        dh1 = (dh2 @ p["fc2_w"]) * (h1 > 0)
        g["fc1_w"], g["fc1_b"] = dh1.T @ f, dh1.sum(0)
        dr2 = (dh1 @ p["fc1_w"]).reshape(r2.shape) * (p2 > 0)
        db2, g["bn2_g"], g["bn2_b"] = bn_backward(pool_backward(dr2), p["bn2_g"], bc2)
        dr1, g["conv2"] = conv_backward(db2, cols2, r1.shape, p["conv2"], need_dx=True)
        assert dr1 is not None
        db1, g["bn1_g"], g["bn1_b"] = bn_backward(pool_backward(dr1 * (p1 > 0)), p["bn1_g"], bc1)
        _, g["conv1"] = conv_backward(db1, cols1, x.shape, p["conv1"], need_dx=False)
        return loss, {k: v.astype(np.float32) for k, v in g.items()}


def train(x: F32, y: NDArray[np.int64], rng: np.random.Generator) -> LeNet:
    net = LeNet(rng)
    mom = {k: np.zeros_like(v) for k, v in net.p.items()}
    sq = {k: np.zeros_like(v) for k, v in net.p.items()}
    b1, b2, t = 0.9, 0.999, 0
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x))
        lr = LR * 0.5 * (1 + np.cos(np.pi * epoch / EPOCHS))       # cosine decay
        losses = []
        for s in range(0, len(x) - BATCH + 1, BATCH):
            idx = order[s:s + BATCH]
            loss, grads = net.loss_and_grads(x[idx], y[idx])
            losses.append(loss)
            t += 1
            for k, gk in grads.items():
                mom[k] = b1 * mom[k] + (1 - b1) * gk
                sq[k] = b2 * sq[k] + (1 - b2) * gk * gk
                step = lr * (mom[k] / (1 - b1**t)) / (np.sqrt(sq[k] / (1 - b2**t)) + 1e-8)
                net.p[k] = (net.p[k] - step).astype(np.float32)
        acc = float(np.mean(np.argmax(net.predict(x), axis=1) == y))
        log.info("epoch %2d  loss %.4f  train accuracy %.4f", epoch + 1, np.mean(losses), acc)
    return net


# -- export --------------------------------------------------------------------------------------
def build_onnx(net: LeNet) -> onnx.ModelProto:
    p, r = net.p, net.running
    arrays = {
        "conv1_W": p["conv1"], "bn1_scale": p["bn1_g"], "bn1_B": p["bn1_b"],
        "bn1_mean": r["bn1_m"], "bn1_var": r["bn1_v"],
        "conv2_W": p["conv2"], "bn2_scale": p["bn2_g"], "bn2_B": p["bn2_b"],
        "bn2_mean": r["bn2_m"], "bn2_var": r["bn2_v"],
        "fc1_W": p["fc1_w"], "fc1_B": p["fc1_b"], "fc2_W": p["fc2_w"], "fc2_B": p["fc2_b"],
        "fc3_W": p["fc3_w"], "fc3_B": p["fc3_b"],
    }
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrays.items()]
    nodes = []
    cur = "pixels"
    for i in (1, 2):
        nodes += [
            helper.make_node("Conv", [cur, f"conv{i}_W"], [f"c{i}"], name=f"conv{i}",
                             kernel_shape=[5, 5]),
            helper.make_node("BatchNormalization",
                             [f"c{i}", f"bn{i}_scale", f"bn{i}_B", f"bn{i}_mean", f"bn{i}_var"],
                             [f"n{i}"], name=f"bn{i}", epsilon=BN_EPS),
            helper.make_node("AveragePool", [f"n{i}"], [f"p{i}"], name=f"pool{i}",
                             kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Relu", [f"p{i}"], [f"r{i}"], name=f"relu{i}"),
        ]
        cur = f"r{i}"
    nodes += [
        helper.make_node("Flatten", ["r2"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc1_W", "fc1_B"], ["h1"], name="fc1", transB=1),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu3"),
        helper.make_node("Gemm", ["a1", "fc2_W", "fc2_B"], ["h2"], name="fc2", transB=1),
        helper.make_node("Relu", ["h2"], ["a2"], name="relu4"),
        helper.make_node("Gemm", ["a2", "fc3_W", "fc3_B"], ["logits"], name="fc3", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "lenet_digits28",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="poi-oracle/models/lenet")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rng = np.random.default_rng(SEED)
    x_train, x_test, y_train, y_test = data()
    net = train(x_train.astype(np.float32), y_train, rng)
    onnx.save(build_onnx(net), str(HERE / "model.onnx"))
    calib = x_train[:N_CALIBRATION].reshape(N_CALIBRATION, -1)
    (HERE / "calibration.json").write_text(json.dumps({"input": calib.tolist()}) + "\n")

    import onnxruntime as ort

    sess = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"pixels": x_test.astype(np.float32)})[0]
    gap = float(np.max(np.abs(logits - net.predict(x_test.astype(np.float32)))))
    acc_float = float(np.mean(np.argmax(logits, axis=1) == y_test))
    print(f"test set: {len(y_test)} images (1x28x28)")
    print(f"accuracy float (onnxruntime): {acc_float:.4f} (numpy vs onnxruntime max gap {gap:.1e})",
          flush=True)

    sys.path.insert(0, str(HERE.parents[1]))
    from oracle.circuits.quantize import load_calibration, quantize_onnx

    qm = quantize_onnx(HERE / "model.onnx", load_calibration(HERE / "calibration.json", 784))
    xq = np.round(x_test.reshape(len(x_test), -1) * (1 << qm.input_scale)).astype(np.int64)
    qlogits = qm.forward_batch(xq)
    acc_q = float(np.mean(np.argmax(qlogits, axis=1) == y_test))
    agree = float(np.mean(np.argmax(qlogits, axis=1) == np.argmax(logits, axis=1)))
    err = float(np.max(np.abs(qlogits / float(1 << qm.output_scale) - logits)))
    print(f"accuracy quantized (numpy int reference): {acc_q:.4f} "
          f"(argmax agreement with float {agree:.4f}, max |logit error| {err:.4f})")
    print(f"scales: input {qm.input_scale} ({qm.input_bits} bits), output {qm.output_scale} "
          f"({qm.output_bits} bits); {len(qm.layers)} steps")


if __name__ == "__main__":
    main()
