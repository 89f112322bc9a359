"""Groth16 code generation, direct (Python R1CS + witness) vs circom, per model, in one run.

    .venv/bin/python bench/bench_r1cs.py [--models risk digits mlp-64-128-10 ...] [--runs 5]
        [--generators direct circom] [--force-circom]

Per model and generator: constraints (and how many are linear), multiply-adds, A/B terms of the
R1CS (what snarkjs' prover and setup pay per term), compile time split into its steps
(lowering + r1cs write, or circom; ptau; snarkjs setup), peak memory (Python: tracemalloc over
the compile; node: the largest RSS among the compile's child processes, circom or snarkjs; each
compile runs in a forked process to measure that), warm prove time (median; the direct split
into Python witness, snarkjs prove and the self-check verify), off-chain verify, and whether the
proven outputs equal the integer reference.

Models: the reference models (risk, digits) and MLPs built with the onnx helper API
(mlp-A-B-...: Gemm+Relu layers, N(0, 1/fan_in) weights, seed 0, default calibration on uniform
[-1, 1]). circom is skipped where docs/toolchain.md says it breaks (a neuron with more than ~420
terms, or more than ~170 k multiply-adds for its witness calculator); --force-circom tries anyway.

Ceremony: the local ptau is the expensive part (2^13 352 s ... 2^15 ~31 min on this box) and a
prepared ptau of power P serves every circuit of power <= P. So the bench builds (once, cached in
.cache/ptau) one local ptau of the largest power any selected model needs, and points every
smaller power at it through symlinks in build/bench-r1cs/cache/ptau; the ptau step then costs
~0 s and "setup" is the circuit's own part (groth16 setup + contribution + beacon + exports).
Dev keys, as in every local ceremony.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import resource
import statistics
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle.circuits.manifest import Manifest  # noqa: E402
from oracle.circuits.quantize import QuantizedModel, default_calibration, quantize_onnx  # noqa: E402
from oracle.errors import BackendError  # noqa: E402
from oracle.proving.base import CompileOptions  # noqa: E402
from oracle.proving.groth16 import Groth16Backend, ptau  # noqa: E402
from oracle.proving.groth16.lowering import Plan  # noqa: E402
from oracle.proving.groth16.r1cs_writer import read_r1cs, write_r1cs  # noqa: E402
from tests.onnx_models import dense_mlp  # noqa: E402

log = logging.getLogger("bench_r1cs")
PAYEE = "0x00000000000000000000000000000000000a11ce"
OUT = ROOT / "build" / "bench-r1cs"
CIRCOM_MAX_TERMS = 420          # docs/toolchain.md: circom2 crashes past ~420 terms in one expression
CIRCOM_MAX_MACS = 170_000       # its witness calculator breaks V8's function size limit
DEFAULT_MODELS = ["risk", "digits", "mlp-64-128-10", "mlp-64-256-256-10", "mlp-256-512-512-10"]

def _cnn(hw: int, c1: int, c2: int, path: Path, seed: int = 0) -> int:
    """cnn-HW-C1-C2: 1xHWxHW -> Conv C1@5x5 -> Relu -> Conv C2@5x5 stride 2 -> Relu -> Flatten ->
    Gemm 10 (strided convolutions, no pooling: the operators the compiler had before pools)."""
    rng = np.random.default_rng(seed)
    h1 = hw - 4
    h2 = (h1 - 5) // 2 + 1
    flat = c2 * h2 * h2

    def t(a: np.ndarray[Any, Any], n: str) -> onnx.TensorProto:
        return numpy_helper.from_array(a.astype(np.float32), n)

    inits = [t(rng.normal(0, 1 / 5, (c1, 1, 5, 5)), "K1"), t(rng.normal(0, 0.1, c1), "B1"),
             t(rng.normal(0, 1 / (5 * np.sqrt(c1)), (c2, c1, 5, 5)), "K2"), t(rng.normal(0, 0.1, c2), "B2"),
             t(rng.normal(0, 1 / np.sqrt(flat), (flat, 10)), "W3"), t(rng.normal(0, 0.1, 10), "B3"),
             numpy_helper.from_array(np.array([1, -1], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["x", "K1", "B1"], ["c1"], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "K2", "B2"], ["c2"], name="conv2", strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Reshape", ["r2", "shape"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "W3", "B3"], ["y"], name="fc")]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, hw, hw])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return hw * hw


def _lenet(path: Path, seed: int = 0) -> int:
    """lenet-max: LeNet-5's layout with today's usual order, 1x28x28 -> Conv 6@5x5 -> BN -> Relu ->
    MaxPool 2x2 -> Conv 16@5x5 -> BN -> Relu -> MaxPool 2x2 -> Flatten -> Gemm 120 -> Relu ->
    Gemm 84 -> Relu -> Gemm 10 (random weights; the compiler pools before the relus)."""
    rng = np.random.default_rng(seed)

    def t(a: Any, n: str) -> onnx.TensorProto:
        a = np.asarray(a)
        return numpy_helper.from_array(a.astype(np.int64 if a.dtype.kind == "i" else np.float32), n)

    inits = [t(rng.normal(0, 1 / 5, (6, 1, 5, 5)), "K1"), t(rng.normal(0, 0.1, 6), "B1"),
             t(rng.normal(0, 1 / (5 * np.sqrt(6)), (16, 6, 5, 5)), "K2"), t(rng.normal(0, 0.1, 16), "B2"),
             t(rng.normal(0, 1 / 16, (256, 120)), "W3"), t(rng.normal(0, 0.1, 120), "B3"),
             t(rng.normal(0, 1 / 11, (120, 84)), "W4"), t(rng.normal(0, 0.1, 84), "B4"),
             t(rng.normal(0, 1 / 9, (84, 10)), "W5"), t(rng.normal(0, 0.1, 10), "B5"),
             t(np.array([1, -1]), "shape")]
    for i, c in ((1, 6), (2, 16)):
        inits += [t(rng.uniform(0.5, 1.5, c), f"g{i}"), t(rng.normal(0, 0.1, c), f"b{i}"),
                  t(rng.normal(0, 0.1, c), f"m{i}"), t(rng.uniform(0.5, 1.5, c), f"v{i}")]
    pool = {"kernel_shape": [2, 2], "strides": [2, 2]}
    nodes = [helper.make_node("Conv", ["x", "K1", "B1"], ["c1"], name="conv1"),
             helper.make_node("BatchNormalization", ["c1", "g1", "b1", "m1", "v1"], ["n1"], name="bn1"),
             helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", **pool),
             helper.make_node("Conv", ["p1", "K2", "B2"], ["c2"], name="conv2"),
             helper.make_node("BatchNormalization", ["c2", "g2", "b2", "m2", "v2"], ["n2"], name="bn2"),
             helper.make_node("Relu", ["n2"], ["r2"], name="relu2"),
             helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", **pool),
             helper.make_node("Reshape", ["p2", "shape"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "W3", "B3"], ["h3"], name="fc1"),
             helper.make_node("Relu", ["h3"], ["r3"], name="relu3"),
             helper.make_node("Gemm", ["r3", "W4", "B4"], ["h4"], name="fc2"),
             helper.make_node("Relu", ["h4"], ["r4"], name="relu4"),
             helper.make_node("Gemm", ["r4", "W5", "B5"], ["y"], name="fc3")]
    graph = helper.make_graph(nodes, "lenet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return 28 * 28


def source(name: str) -> tuple[Path, Path]:
    """ONNX + calibration file for a model name (mlp-* and cnn-* are generated, deterministically)."""
    if not name.startswith(("mlp-", "cnn-", "lenet-max")):
        d = ROOT / "models" / name
        return d / "model.onnx", d / "calibration.json"
    sizes = [int(v) for v in name.split("-")[1:] if v.isdigit()]
    d = OUT / "src"
    d.mkdir(parents=True, exist_ok=True)
    onnx_path, calib = d / f"{name}.onnx", d / f"{name}.calibration.json"
    if name.startswith("mlp-"):
        dense_mlp(onnx_path, sizes)
        n_in = sizes[0]
    elif name == "lenet-max":
        n_in = _lenet(onnx_path)
    else:
        n_in = _cnn(*sizes, onnx_path)
    # Pixel-like calibration for the CNNs: k/16 in [0, 1] (scale 4, narrow input checks).
    calib_x = default_calibration(n_in) if name.startswith("mlp-") else \
        np.round(np.random.default_rng(0).uniform(0, 1, (64, n_in)) * 16) / 16
    calib.write_text(json.dumps({"input": calib_x.tolist()}))
    return onnx_path, calib


def _qm(onnx_path: Path, calib: Path) -> QuantizedModel:
    raw = json.loads(calib.read_text())["input"]
    return quantize_onnx(onnx_path, np.array(raw, dtype=np.float64))


def prepare_ptau(powers: list[int]) -> Path:
    """One local ptau of the largest power, served to every smaller power by symlinks."""
    top = max(powers)
    real = ptau.default_cache_dir() / "ptau" / f"pot{top}_dev_final.ptau"
    if not real.exists():
        log.warning("building a local 2^%d powers-of-tau ceremony once (cached in %s); "
                    "2^15 took ~31 min on this box", top, real.parent)
    t0 = time.monotonic()
    real = ptau.local_ptau(top)
    log.info("ptau 2^%d ready (%.0f s)", top, time.monotonic() - t0)
    d = OUT / "cache" / "ptau"
    d.mkdir(parents=True, exist_ok=True)
    for p in range(ptau.MIN_POWER, top + 1):
        link = d / f"pot{p}_dev_final.ptau"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(real)
    return OUT / "cache"


def _compile(name: str, generator: str, onnx_path: Path, calib: Path, cache: Path, out: Path,
             q: multiprocessing.Queue[tuple[float, float, str]]) -> None:
    """Runs in a forked child, so RUSAGE_CHILDREN covers this compile's node processes only."""
    tracemalloc.start()
    err = ""
    try:
        Groth16Backend(generator=generator).compile(onnx_path, out, CompileOptions(
            calibration=calib, cache_dir=cache, name=name))
    except BackendError as e:
        err = str(e)
    py_peak = tracemalloc.get_traced_memory()[1] / 2**20
    q.put((py_peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, err))


class _Ticker:
    """Says every 30 s that a long step is still running (a compile can take minutes)."""

    def __init__(self, what: str) -> None:
        self.what, self.t0, self.stop = what, time.monotonic(), threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.wait(30):
            log.info("  ... %s: %.0f s", self.what, time.monotonic() - self.t0)

    def done(self) -> float:
        self.stop.set()
        return time.monotonic() - self.t0


def circom_refusal(qm: QuantizedModel) -> str | None:
    fan_in = max(int(np.diff(w.indptr).max()) for ly in qm.layers for w in ly.terms.values())
    macs = sum(int(w.nnz) for ly in qm.layers for w in ly.terms.values())
    if fan_in > CIRCOM_MAX_TERMS:
        return f"a neuron sums {fan_in} terms (> ~{CIRCOM_MAX_TERMS}: circom2 crashes)"
    if macs > CIRCOM_MAX_MACS:
        return f"{macs} multiply-adds (> ~{CIRCOM_MAX_MACS // 1000} k: witness calculator too big for V8)"
    return None


def bench_one(name: str, generator: str, onnx_path: Path, calib: Path, cache: Path, runs: int) -> dict[str, Any]:
    out = OUT / f"{name}-{generator}"
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue[tuple[float, float, str]] = ctx.Queue()
    tick = _Ticker(f"{name} compile ({generator})")
    proc = ctx.Process(target=_compile, args=(name, generator, onnx_path, calib, cache, out, q))
    proc.start()
    py_peak, node_rss, err = q.get()
    proc.join()
    compile_s = tick.done()
    if err:
        raise BackendError(err)
    backend = Groth16Backend(pool_size=1, generator=generator)
    try:
        m = Manifest.load(out)
        cs = read_r1cs(out / m.files["r1cs"])
        nonlinear = len(np.unique(cs.row[cs.mat < 2]))
        qm = QuantizedModel.load(out / m.files["quantized"])
        lo, hi = qm.input_range()
        rng = np.random.default_rng(1)
        xs = [[int(v) for v in rng.integers(lo, hi + 1, qm.input_size)] for _ in range(runs + 1)]
        tick = _Ticker(f"{name} first proof ({generator})")
        backend.prove(out, xs[0], PAYEE)                      # warm: loads the zkey in the daemon
        tick.done()
        wall, prove_ms, wit_ms, check_ms, outs = [], [], [], [], []
        for x in xs[1:]:
            t = time.perf_counter()
            p = backend.prove(out, x, PAYEE)
            wall.append((time.perf_counter() - t) * 1e3)
            ms = p.extra["daemon_ms"]
            prove_ms.append(ms["prove"])
            wit_ms.append(ms.get("python_witness", ms.get("witness", 0.0)))
            check_ms.append(ms.get("verify", 0.0))
            outs.append(p.output_fixed)
        t = time.perf_counter()
        ok = backend.verify(out, p)
        verify_ms = (time.perf_counter() - t) * 1e3
        equal = outs == qm.forward_batch(np.array(xs[1:], dtype=np.int64)).tolist()
        st = m.stats
        gen_s = st.get("circom_seconds", (st.get("lowering_seconds") or 0) + (st.get("r1cs_write_seconds") or 0))
        return {
            "model": name, "generator": generator,
            "constraints": st["constraints"], "nonlinear": nonlinear, "linear": st["constraints"] - nonlinear,
            "wires": st["wires"], "multiply_adds": sum(int(w.nnz) for ly in qm.layers for w in ly.terms.values()),
            "ab_terms": int((cs.mat < 2).sum()), "c_terms": int((cs.mat == 2).sum()),
            "ptau_power": st["ptau_power"],
            "lowering_s": st.get("lowering_seconds"), "r1cs_write_s": st.get("r1cs_write_seconds"),
            "codegen_s": round(gen_s, 3), "ptau_s": st["ptau_seconds"], "setup_s": st["setup_seconds"],
            "compile_s": round(compile_s, 1), "python_peak_mib": round(py_peak, 1),
            "node_peak_rss_mib": round(node_rss, 0),
            "prove_ms_median": round(statistics.median(wall), 1),
            "snarkjs_prove_ms_median": round(statistics.median(prove_ms), 1),
            "witness_ms_median": round(statistics.median(wit_ms), 2),
            "self_check_verify_ms_median": round(statistics.median(check_ms), 1),
            "verify_ms": round(verify_ms, 1), "verify_ok": ok, "outputs_equal_reference": equal,
            "r1cs_bytes": st["r1cs_bytes"], "zkey_bytes": st["zkey_bytes"],
        }
    finally:
        backend.close()


COLUMNS = ["model", "generator", "constraints", "linear", "multiply_adds", "ab_terms", "ptau_power", "codegen_s",
           "setup_s", "compile_s", "python_peak_mib", "node_peak_rss_mib", "prove_ms_median",
           "witness_ms_median", "snarkjs_prove_ms_median", "self_check_verify_ms_median", "verify_ok",
           "outputs_equal_reference"]


def _table(rows: list[dict[str, Any]]) -> str:
    head = ["model", "gen", "constr", "linear", "MACs", "A+B terms", "2^p", "codegen s", "setup s", "compile s",
            "py MiB", "node MiB", "prove ms", "witness ms", "snarkjs ms", "check ms", "verify", "=ref"]
    cells = [[str(r.get(c, "")) for c in COLUMNS] for r in rows]
    w = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w[i]) for i, h in enumerate(head))]
    lines += ["  ".join(c[i].rjust(w[i]) for i in range(len(head))) for c in cells]
    return "\n".join(lines)


SCALING_MODELS = ["mlp-64-128-10", "mlp-64-256-256-10", "mlp-256-512-512-10", "mlp-784-1024-1024-10",
                  "mlp-1024-2048-2048-10", "cnn-28-6-16", "cnn-48-8-16", "lenet-max"]


def _scale_one(name: str, q: multiprocessing.Queue[str]) -> None:
    """One model in a forked child: its peak RSS (ru_maxrss) is this model's alone."""
    onnx_path, calib = source(name)
    t0 = time.perf_counter()
    qm = _qm(onnx_path, calib)                       # load + trace + quantize (+ _bounds)
    tq = time.perf_counter()
    tracemalloc.start()
    t0l = time.perf_counter()
    plan = Plan(qm, packed=True)
    cs = plan.constraints()
    t1 = time.perf_counter()
    size = write_r1cs(OUT / f"scaling-{name}.r1cs", cs)
    t2 = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    (OUT / f"scaling-{name}.r1cs").unlink()
    x = [0] * qm.input_size
    t3 = time.perf_counter()
    plan.witness(x, 1)
    wit_ms = (time.perf_counter() - t3) * 1e3
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    q.put(f"{name:24s} {plan.macs:9d} {cs.n_constraints:12d} {cs.n_terms:10d} {tq - t0:10.2f} {t1 - t0l:8.2f}"
          f" {t2 - t1:8.2f} {peak / 2**20:9.0f} {rss:8.0f} {(t2 - t0l) / plan.macs * 1e6:7.2f}"
          f" {peak / plan.macs:10.0f}   (r1cs {size / 2**20:.0f} MiB, witness {wit_ms:.0f} ms)")


def scaling(models: list[str]) -> None:
    """quantize (load + trace + quantize) and lowering + .r1cs write (no ceremony, no setup)
    against model size, each model in its own forked process (peak RSS = that model's): both
    should grow linearly in multiply-adds."""
    print("model                        MACs  constraints      terms quantize s  lower s  write s"
          "  peak MiB  RSS MiB  us/MAC  bytes/MAC")
    ctx = multiprocessing.get_context("fork")
    for name in models:
        q: multiprocessing.Queue[str] = ctx.Queue()
        proc = ctx.Process(target=_scale_one, args=(name, q))
        proc.start()
        proc.join()
        print(q.get() if proc.exitcode == 0 else f"{name:24s} FAILED (exit code {proc.exitcode})", flush=True)


def commute(models: list[str]) -> None:
    """Constraints with activation -> MaxPool traced as MaxPool -> activation (the default) and
    in graph order: the rewrite runs the activation's range checks on the pooled tensor."""
    from oracle.circuits.affine import trace
    from oracle.circuits.onnx_graph import load_graph
    from oracle.circuits.quantize import QuantSettings, load_calibration, quantize

    print("model                 pool first: constraints  steps   graph order: constraints  steps   saved")
    for name in models:
        onnx_path, calib_path = source(name)
        graph = load_graph(onnx_path)
        res = {}
        for first in (True, False):
            prog = trace(graph, commute_pools=first)
            qm = quantize(prog, load_calibration(calib_path, prog.input_size), QuantSettings())
            res[first] = (Plan(qm, packed=True).constraints().n_constraints, len(prog.steps))
        (a, sa), (b, sb) = res[True], res[False]
        print(f"{name:20s} {a:24d} {sa:6d} {b:25d} {sb:6d}  {1 - a / b:6.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--generators", nargs="+", default=["direct", "circom"], choices=["direct", "circom"])
    ap.add_argument("--runs", type=int, default=5, help="warm proofs per model (median)")
    ap.add_argument("--force-circom", action="store_true", help="run circom even past its known limits")
    ap.add_argument("--scaling", nargs="*", metavar="MODEL",
                    help="only lowering + r1cs write vs size (no ceremony); default models up to 8.5 M MACs")
    ap.add_argument("--commute", nargs="*", metavar="MODEL",
                    help="only constraints with MaxPool before / after its activation (default lenet-max)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if a.commute is not None:
        OUT.mkdir(parents=True, exist_ok=True)
        commute(a.commute or ["lenet-max"])
        return
    if a.scaling is not None:
        OUT.mkdir(parents=True, exist_ok=True)
        scaling(a.scaling or SCALING_MODELS)
        return
    logging.getLogger("oracle").setLevel(logging.ERROR)      # the dev-keys warning, once per compile

    # Size every circuit first (the lowering takes well under a second): one ceremony for all.
    plans: dict[str, tuple[Path, Path, QuantizedModel, int]] = {}
    for name in a.models:
        onnx_path, calib = source(name)
        qm = _qm(onnx_path, calib)
        cs = Plan(qm, packed=True).constraints()
        power = ptau.power_for(cs.n_constraints, cs.n_pub_out + cs.n_pub_in)
        plans[name] = (onnx_path, calib, qm, power)
        log.info("%s: %d multiply-adds, %d constraints (direct) -> 2^%d", name,
                 sum(int(w.nnz) for ly in qm.layers for w in ly.terms.values()),
                 cs.n_constraints, power)
    cache = prepare_ptau([p for *_, p in plans.values()])

    rows: list[dict[str, Any]] = []
    for name, (onnx_path, calib, qm, _) in plans.items():
        for gen in a.generators:
            why = circom_refusal(qm) if gen == "circom" and not a.force_circom else None
            if why:
                log.info("%s (circom): skipped, %s", name, why)
                rows.append({"model": name, "generator": "circom", "constraints": f"refused: {why}"})
                continue
            log.info("%s (%s): compiling", name, gen)
            try:
                r = bench_one(name, gen, onnx_path, calib, cache, a.runs)
            except BackendError as e:
                log.info("%s (%s): FAILED %s", name, gen, str(e)[-300:])
                rows.append({"model": name, "generator": gen, "constraints": f"failed: {str(e)[-120:]}"})
                continue
            log.info("%s (%s): %s", name, gen, json.dumps(r))
            rows.append(r)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(_table([r for r in rows if "linear" in r]))
    for r in rows:
        if "linear" not in r:
            print(f"{r['model']} ({r['generator']}): {r['constraints']}")
    m = Manifest.load(OUT / f"{a.models[0]}-{a.generators[0]}")
    print(f"\nptau: one local 2^{max(p for *_, p in plans.values())} ceremony for all "
          f"(symlinked per power); toolchain {m.toolchain}")


if __name__ == "__main__":
    main()
