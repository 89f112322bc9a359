"""The model ladder of issue 11, end to end: compile, prove (warm), verify on-chain, per model.

    .venv/bin/python bench/bench_ladder.py [--models mlp-64-128-10,lenet] [--skip-ezkl]
        [--skip-circom] [--build-ceremonies] [--runs 3] [--ezkl-budget 900]

Models (ONNX built with the onnx helper API, deterministic, seed 0, except ``lenet``):

    mlp-64-128-10, mlp-64-256-256-10, mlp-256-400-400-10, mlp-256-512-512-10
        Gemm + Relu layers, N(0, 1/fan_in) weights, calibration uniform in [-1, 1]
    cnn-8x8     1x8x8 -> Conv 8@3x3 -> Relu -> Conv 16@3x3 -> Relu -> Flatten -> Gemm 10
    lenet-like  1x28x28 -> Conv 6@5x5 -> Relu -> MaxPool 2 -> Conv 16@5x5 -> Relu -> MaxPool 2
                -> Gemm 120 -> Relu -> Gemm 84 -> Relu -> Gemm 10 (the issue's; random weights)
    lenet       models/lenet (trained on upscaled digits; BatchNormalization + AveragePool)

CNN calibration inputs are pixel-like, k/16 in [0, 1]; lenet uses its own calibration.json.

Per model, with the direct generator (what the oracle compiles with): constraints,
multiply-adds, compile time split into its steps (trace + quantize; lowering; .r1cs write;
ceremony: cached or built; groth16 setup; the rest of the compile, mostly the verifier contract),
peak memory (max RSS of the compiling Python process, which runs in a forked child, and of the
snarkjs processes it waits for; and the prover daemon's peak RSS while proving), warm prove time
(median of --runs after one warm-up proof), gas of one verifyProof transaction on the circuit's
own verifier contract on anvil, the proven output compared bit for bit with the integer
reference (asserted), and the largest |output - onnxruntime| over the proven inputs (calibration
samples, or the held-out digits for lenet) in real units.

In the same run: today's circom generator where it still works (a neuron with more than ~420
terms or more than ~170 k multiply-adds breaks circom2; those rows say so instead), and EZKL
(Halo2-KZG) on the same ONNX within a time budget per model (compile + prove + verify + gas in a
child process; "skipped: over budget" when it runs out).

Ceremony: the compile uses the smallest cached local ptau of power >= its need (one ceremony
serves every smaller circuit). Each model is planned first (``estimate.plan_compile``: exact
constraints, multiply-adds, power, whether a cached ptau serves it); one that no cached ptau
serves is reported as needing that ceremony, with its expected cost here, and not set up or
proven unless --build-ceremonies is given. Dev keys, as in every local ceremony.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import multiprocessing
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle.circuits.affine import trace  # noqa: E402
from oracle.circuits.manifest import Manifest  # noqa: E402
from oracle.circuits.onnx_graph import load_graph  # noqa: E402
from oracle.circuits.quantize import QuantizedModel, QuantSettings, load_calibration, quantize  # noqa: E402
from oracle.errors import OracleError  # noqa: E402
from oracle.proving.base import CompileOptions, Proof  # noqa: E402
from oracle.proving.ezkl.build import write_explicit_defaults  # noqa: E402
from oracle.proving.groth16 import (  # noqa: E402
    Groth16Backend,
    estimate,
    ptau,
)

log = logging.getLogger("bench_ladder")
OUT = ROOT / "build" / "bench-ladder"
PAYEE = "0x00000000000000000000000000000000000a11ce"
VERIFY_GAS = 5_000_000          # explicit: at eth_estimateGas' limit the pairing check fails silently
LADDER = ["mlp-64-128-10", "mlp-64-256-256-10", "cnn-8x8", "mlp-256-400-400-10", "mlp-256-512-512-10",
          "lenet-like", "lenet"]


# -- models -----------------------------------------------------------------------------------
def _save(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray[Any, Any]], in_shape: list[int],
          n_out: int, path: Path) -> None:
    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32 if v.dtype.kind == "f" else v.dtype), k)
         for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _dense(sizes: list[int], first_in: str, rng: np.random.Generator, prefix: str = "fc"
           ) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray[Any, Any]]]:
    """Gemm (+ Relu but the last) layers; weights (out, in) with transB=1, output "y"."""
    nodes, inits, cur = [], {}, first_in
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        inits[f"{prefix}{i}_W"] = rng.normal(0, 1 / np.sqrt(a), (b, a))
        inits[f"{prefix}{i}_B"] = rng.normal(0, 0.1, b)
        last = i == len(sizes) - 2
        out = "y" if last else f"{prefix}{i}_g"
        nodes.append(helper.make_node("Gemm", [cur, f"{prefix}{i}_W", f"{prefix}{i}_B"], [out],
                                      name=f"{prefix}{i}", transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"{prefix}{i}_r"], name=f"{prefix}{i}_relu"))
            cur = f"{prefix}{i}_r"
    return nodes, inits


def _mlp(sizes: list[int], path: Path) -> None:
    nodes, inits = _dense(sizes, "x", np.random.default_rng(0))
    _save(nodes, inits, [1, sizes[0]], sizes[-1], path)


def _convs(hw: int, layers: list[tuple[int, int, bool]], rng: np.random.Generator
           ) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray[Any, Any]], int]:
    """Conv(c@kxk, bias) -> Relu [-> MaxPool 2x2] per layer, then Flatten; returns the flat size."""
    nodes, inits, cur, c_in = [], {}, "x", 1
    for i, (c, k, pool) in enumerate(layers):
        inits[f"K{i}"] = rng.normal(0, 1 / (k * np.sqrt(c_in)), (c, c_in, k, k))
        inits[f"KB{i}"] = rng.normal(0, 0.1, c)
        nodes += [helper.make_node("Conv", [cur, f"K{i}", f"KB{i}"], [f"c{i}"], name=f"conv{i}",
                                   kernel_shape=[k, k]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}")]
        cur, hw, c_in = f"r{i}", hw - k + 1, c
        if pool:
            nodes.append(helper.make_node("MaxPool", [cur], [f"p{i}"], name=f"pool{i}",
                                          kernel_shape=[2, 2], strides=[2, 2]))
            cur, hw = f"p{i}", hw // 2
    nodes.append(helper.make_node("Flatten", [cur], ["flat"], name="flatten", axis=1))
    return nodes, inits, c_in * hw * hw


def _cnn(hw: int, layers: list[tuple[int, int, bool]], dense: list[int], path: Path) -> None:
    rng = np.random.default_rng(0)
    nodes, inits, flat = _convs(hw, layers, rng)
    more, dinits = _dense([flat, *dense], "flat", rng)
    _save(nodes + more, {**inits, **dinits}, [1, 1, hw, hw], dense[-1], path)


def source(name: str) -> tuple[Path, Path]:
    """ONNX + calibration file of a ladder model (generated ones are rebuilt, deterministically)."""
    if name == "lenet":
        d = ROOT / "models" / "lenet"
        return d / "model.onnx", d / "calibration.json"
    d = OUT / "src"
    d.mkdir(parents=True, exist_ok=True)
    onnx_path, calib = d / f"{name}.onnx", d / f"{name}.calibration.json"
    rng = np.random.default_rng(0)
    if name.startswith("mlp-"):
        sizes = [int(v) for v in name.split("-")[1:]]
        _mlp(sizes, onnx_path)
        x = rng.uniform(-1.0, 1.0, (256, sizes[0]))
    elif name == "cnn-8x8":
        _cnn(8, [(8, 3, False), (16, 3, False)], [10], onnx_path)
        x = np.round(rng.uniform(0, 1, (256, 64)) * 16) / 16
    elif name == "lenet-like":
        _cnn(28, [(6, 5, True), (16, 5, True)], [120, 84, 10], onnx_path)
        x = np.round(rng.uniform(0, 1, (256, 784)) * 16) / 16
    else:
        raise SystemExit(f"unknown model {name!r}; the ladder: {', '.join(LADDER)}")
    calib.write_text(json.dumps({"input": x.tolist()}))
    return onnx_path, calib


# -- helpers ----------------------------------------------------------------------------------
class Ticker:
    """Says every 30 s that a long step is still running (stderr)."""

    def __init__(self, what: str) -> None:
        self.what, self.t0, self.stop = what, time.monotonic(), threading.Event()
        log.info("%s ...", what)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.wait(30):
            log.info("  ... %s: %.0f s", self.what, time.monotonic() - self.t0)

    def done(self) -> float:
        self.stop.set()
        return time.monotonic() - self.t0


def ceremony_estimate(power: int) -> str:
    return f"~{ptau.expected_ceremony_seconds(power) / 60:.0f} min here"


def circom_refusal(qm: QuantizedModel) -> str | None:
    """Why today's circom generator cannot compile this model (the compile's own early check)."""
    try:
        estimate.check(estimate.plan_compile(qm, "circom")[0])
    except estimate.CompileRefused as e:
        return f"refused: {e}"
    return None


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the peak resident set of a live process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sample_inputs(name: str, calib: Path, n_in: int, n: int) -> list[list[float]]:
    """Float inputs to prove: held-out digits for lenet, calibration samples otherwise."""
    if name == "lenet":
        sys.path.insert(0, str(ROOT / "models" / "lenet"))
        from train import data

        x_te = data()[1].reshape(-1, n_in)
        return [list(map(float, x_te[i])) for i in range(n)]
    xs = load_calibration(calib, n_in)
    return [list(map(float, xs[i])) for i in np.linspace(0, len(xs) - 1, n).astype(int)]


def onnx_reference(onnx_path: Path, shape: list[int], xs: list[list[float]]) -> np.ndarray[Any, Any]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    return np.concatenate([np.asarray(sess.run(None, {inp: np.asarray(x, np.float32).reshape(shape)})[0])
                           .reshape(1, -1) for x in xs])


@dataclass
class Row:
    model: str
    system: str
    constraints: str = ""
    macs: str = ""
    steps: str = ""            # compile split
    compile_s: str = ""
    rss: str = ""              # python / node / prover peak MiB
    prove_s: str = ""
    gas: str = ""
    proof_bytes: str = ""
    equal: str = ""
    err: str = ""
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)


# -- groth16: compile in a forked child (its own RSS and its own snarkjs children) ---------------
def _compile_child(generator: str, onnx_path: Path, calib: Path, out: Path, name: str,
                   q: multiprocessing.Queue[dict[str, Any]]) -> None:
    res: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        Groth16Backend(generator=generator).compile(onnx_path, out, CompileOptions(
            calibration=calib, name=name))
        res["wall_s"] = time.monotonic() - t0
    except OracleError as e:
        res["error"] = " ".join(str(e).split())[:400]
    except Exception as e:    # circom2's WebAssembly failures surface as many types
        res["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    res["py_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["node_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    q.put(res)


def compile_forked(generator: str, onnx_path: Path, calib: Path, out: Path, name: str
                   ) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue[dict[str, Any]] = ctx.Queue()
    t = Ticker(f"{name}: compile ({generator})")
    proc = ctx.Process(target=_compile_child, args=(generator, onnx_path, calib, out, name, q))
    proc.start()
    while True:
        try:
            res: dict[str, Any] = q.get(timeout=5)
            break
        except Exception:        # queue.Empty: check the child is still alive
            if not proc.is_alive():
                res = {"error": f"compile process died (exit code {proc.exitcode})"}
                break
    proc.join()
    t.done()
    return res


class Chain:
    """One anvil for the run: deploy a circuit's verifier, send one verifyProof transaction."""

    def __init__(self) -> None:
        from oracle.chain.anvil import Anvil

        self.node = Anvil().start()
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(self.node.url))
        self.sender = self.w3.eth.accounts[0]

    def verify_gas(self, circuit: Path, m: Manifest, p: Proof) -> int:
        from eth_abi.abi import decode

        art = json.loads(m.path(circuit, "verifier_json").read_text())
        tx = self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_transaction(
            {"from": self.sender, "data": art["bytecode"], "gas": 5_000_000}))
        v = self.w3.eth.contract(address=tx["contractAddress"], abi=art["abi"])
        words = decode(["uint256[2]", "uint256[2][2]", "uint256[2]"], bytes.fromhex(p.calldata[2:]))
        signals = [int(s) for s in p.public_signals]
        fn = v.functions.verifyProof(*words, signals)
        assert fn.call({"gas": VERIFY_GAS}) is True, "the verifier contract rejected an honest proof"
        bad = v.functions.verifyProof(*words, [signals[0] ^ 1, *signals[1:]])
        assert bad.call({"gas": VERIFY_GAS}) is False, "the verifier contract accepted another output"
        r = self.w3.eth.wait_for_transaction_receipt(fn.transact({"from": self.sender, "gas": VERIFY_GAS}))
        assert r["status"] == 1
        return int(r["gasUsed"])

    def close(self) -> None:
        self.node.stop()


def bench_groth16(name: str, generator: str, onnx_path: Path, calib: Path, qm: QuantizedModel,
                  xs_float: list[list[float]], ref_float: np.ndarray[Any, Any], runs: int,
                  chain: Chain | None, sizing: Sizing) -> Row:
    row = Row(name, f"groth16-{generator}")
    out = OUT / f"{name}-{generator}"
    res = compile_forked(generator, onnx_path, calib, out, name)
    row.rss = f"{res['py_rss_mib']:.0f}/{res['node_rss_mib']:.0f}"
    if "error" in res:
        row.note = f"compile failed: {res['error']}"
        return row
    m = Manifest.load(out)
    st = m.stats
    row.constraints = f"{st['constraints']:,}"
    row.macs = f"{sizing.plan.multiply_adds:,}"
    gen = (f"circom {st.get('circom_seconds', 0):.1f}" if generator == "circom" else
           f"lower {st.get('lowering_seconds', 0):.2f} + write {st.get('r1cs_write_seconds', 0):.2f}")
    rest = st["compile_seconds"] - sizing.quantize_s - st["ptau_seconds"] - st["setup_seconds"] - (
        st.get("circom_seconds", 0) if generator == "circom"
        else st.get("lowering_seconds", 0) + st.get("r1cs_write_seconds", 0))
    row.steps = (f"quant {sizing.quantize_s:.1f} + {gen} + ptau 2^{st.get('ptau_file_power', st['ptau_power'])} "
                 f"{st['ptau_seconds']:.1f} + setup {st['setup_seconds']:.0f} + rest {max(rest, 0):.1f}")
    row.compile_s = f"{st['compile_seconds']:.0f}"
    row.data.update(stats=st, compile=res)
    backend = Groth16Backend(pool_size=1, generator=generator)
    try:
        s_in, s_out = m.input_scale, m.output_scale
        lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1
        xq = [[int(v) for v in np.clip(np.round(np.asarray(x) * (1 << s_in)), lo, hi)] for x in xs_float]
        t = Ticker(f"{name}: first proof ({generator}, loads the zkey)")
        first = backend.prove(out, xq[0], PAYEE)
        t.done()
        proofs, wall = [first], []
        for x in xq[1:runs + 1]:
            t0 = time.perf_counter()
            proofs.append(backend.prove(out, x, PAYEE))
            wall.append(time.perf_counter() - t0)
        prover_rss = max(peak_rss_mib(pid) for pid in backend.pool.pids())
        row.rss += f"/{prover_rss:.0f}"
        got = np.array([p.output_fixed for p in proofs], dtype=np.int64)
        want = qm.forward_batch(np.array(xq[:len(proofs)], dtype=np.int64))
        assert np.array_equal(got, want), f"{name}: proven outputs differ from the integer reference"
        row.equal = "yes"
        err = np.abs(got / float(1 << s_out) - ref_float[:len(proofs)])
        row.err = f"{float(err.max()):.3g}"
        row.prove_s = f"{statistics.median(wall):.2f}" if wall else ""
        assert backend.verify(out, proofs[-1]), "snarkjs rejected an honest proof"
        row.proof_bytes = "256"
        if chain is not None:
            row.gas = f"{chain.verify_gas(out, m, proofs[-1]):,}"
        row.data.update(prove_s=wall, max_abs_err=float(err.max()))
    finally:
        backend.close()
    return row


# -- EZKL in a child with a time budget -------------------------------------------------------
def with_explicit_defaults(onnx_path: Path) -> Path:
    """The copy EZKL is given (the backend writes the same into its circuit folder): Conv/pool
    default strides, pads and dilations spelled out, which EZKL's reader requires."""
    out = OUT / "src" / f"{onnx_path.stem}.{onnx_path.parent.name}.ezkl.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_explicit_defaults(onnx_path, out)
    return out


def _ezkl_child(name: str, onnx_path: Path, calib: Path, runs: int, chain: bool,
                q: multiprocessing.Queue[dict[str, Any]]) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_ezkl import _onchain_gas, _sample_inputs

    from oracle.proving.ezkl import EzklBackend

    res: dict[str, Any] = {}
    try:
        backend = EzklBackend()
        out = OUT / f"{name}-ezkl"
        t0 = time.monotonic()
        m = backend.compile(onnx_path, out, CompileOptions(calibration=calib, name=name))
        res["compile_s"] = time.monotonic() - t0
        res["logrows"] = m.stats["logrows"]
        res["setup_s"] = m.stats.get("setup_seconds")
        q.put({**res, "partial": True})
        xs = _sample_inputs(m, calib, runs + 1)
        backend.prove(out, xs[0])
        wall, proofs = [], []
        for x in xs[1:runs + 1] or xs[:1]:
            t0 = time.monotonic()
            proofs.append(backend.prove(out, x))
            wall.append(time.monotonic() - t0)
        assert backend.verify(out, proofs[-1])
        res["prove_s"] = statistics.median(wall)
        res["proof_bytes"] = len(proofs[-1].calldata) // 2 - 1
        res["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if chain:
            res.update(_onchain_gas(out, m, proofs[-1]))
    except Exception as e:    # EZKL raises plain RuntimeErrors among others
        res["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    q.put(res)


def bench_ezkl(name: str, onnx_path: Path, calib: Path, runs: int, chain: bool, budget: float) -> Row:
    row = Row(name, "ezkl")
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue[dict[str, Any]] = ctx.Queue()
    t = Ticker(f"{name}: ezkl (budget {budget:.0f} s)")
    proc = ctx.Process(target=_ezkl_child, args=(name, with_explicit_defaults(onnx_path), calib, runs, chain, q))
    proc.start()
    res: dict[str, Any] = {}
    end = time.monotonic() + budget
    finished = False
    while not finished and time.monotonic() < end:
        try:
            res = q.get(timeout=2)
            finished = not res.get("partial")
        except Exception:       # queue.Empty
            if not proc.is_alive() and q.empty():
                res = {"error": f"ezkl process died (exit code {proc.exitcode})"}
                finished = True
    elapsed = t.done()
    if not finished:
        proc.kill()
        proc.join()
        row.note = f"skipped: over budget ({budget:.0f} s)"
        if "logrows" in res:
            row.note += f"; compiled (logrows {res['logrows']}) in {res['compile_s']:.0f} s"
        return row
    proc.join(60)
    if proc.is_alive():          # the figures are in; a child stuck in teardown is not our concern
        proc.kill()
        proc.join()
    if "error" in res:
        row.note = f"failed after {elapsed:.0f} s: {res['error']}"
        return row
    row.constraints = f"2^{res['logrows']} rows"
    row.compile_s = f"{res['compile_s']:.0f}"
    row.steps = f"setup {res['setup_s']:.0f}" if res.get("setup_s") is not None else ""
    row.rss = f"{res['rss_mib']:.0f}"
    row.prove_s = f"{res['prove_s']:.2f}"
    row.proof_bytes = str(res["proof_bytes"])
    row.gas = f"{res['verify_tx_gas']:,}" if "verify_tx_gas" in res else ""
    row.data = res
    return row


# -- the run ----------------------------------------------------------------------------------
@dataclass
class Sizing:
    onnx_path: Path
    calib: Path
    qm: QuantizedModel
    quantize_s: float          # load + trace + quantize
    plan: estimate.CompilePlan


def size(name: str) -> Sizing | Row:
    """Trace, quantize and plan the direct compile (exact constraints, power, cached ptau)."""
    onnx_path, calib = source(name)
    t0 = time.monotonic()
    try:
        program = trace(load_graph(onnx_path))
        qm = quantize(program, load_calibration(calib, program.input_size), QuantSettings())
    except OracleError as e:
        return Row(name, "groth16-direct", note=f"refused: {str(e).splitlines()[0]}")
    t1 = time.monotonic()
    return Sizing(onnx_path, calib, qm, t1 - t0, estimate.plan_compile(qm, "direct")[0])


HEAD = ["model", "system", "constraints", "MACs", "compile steps (s)", "compile s",
        "peak MiB py/node/prover", "prove s", "verify gas", "proof B", "=ref", "max |err|", "note"]


def cells(r: Row) -> list[str]:
    return [r.model, r.system, r.constraints, r.macs, r.steps, r.compile_s, r.rss, r.prove_s, r.gas,
            r.proof_bytes, r.equal, r.err, r.note]


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(LADDER), help=f"comma-separated, from {','.join(LADDER)}")
    ap.add_argument("--runs", type=int, default=3, help="warm proofs per model (median)")
    ap.add_argument("--skip-ezkl", action="store_true")
    ap.add_argument("--skip-circom", action="store_true")
    ap.add_argument("--skip-direct", action="store_true", help="only size the models for the direct generator")
    ap.add_argument("--build-ceremonies", action="store_true",
                    help="build a missing local ceremony (tens of minutes each) instead of skipping")
    ap.add_argument("--ezkl-budget", type=float, default=900.0, help="seconds per model for EZKL")
    ap.add_argument("--no-chain", action="store_true", help="skip the on-chain verify gas")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    logging.getLogger("oracle").setLevel(logging.ERROR)     # the dev-keys warning, once per compile
    names = [n.strip() for n in a.models.split(",") if n.strip()]
    for n in names:
        if n not in LADDER:
            raise SystemExit(f"unknown model {n!r}; the ladder: {', '.join(LADDER)}")
    OUT.mkdir(parents=True, exist_ok=True)
    chain = None if a.no_chain else Chain()
    rows: list[Row] = []
    try:
        for name in names:
            sized = size(name)
            if isinstance(sized, Row):
                log.info("%s: %s", name, sized.note)
                rows.append(sized)
                continue
            p, qm = sized.plan, sized.qm
            log.info("%s: %d multiply-adds -> %d constraints (direct), ceremony 2^%d (%s)", name,
                     p.multiply_adds, p.constraints, p.power,
                     f"cached 2^{p.ptau_power}" if p.ptau_cached else "not cached")
            xs = sample_inputs(name, sized.calib, qm.input_size, a.runs + 1)
            ref = onnx_reference(sized.onnx_path, [1, *qm.input_shape[1:]], xs)
            ceremony = p.ptau_cached or a.build_ceremonies
            if a.skip_direct:
                rows.append(Row(name, "groth16-direct", f"{p.constraints:,}", f"{p.multiply_adds:,}",
                                note="sized only (--skip-direct)"))
            elif not ceremony:
                rows.append(Row(name, "groth16-direct", f"{p.constraints:,}", f"{p.multiply_adds:,}",
                                note=f"needs a 2^{p.power} ceremony, not cached (cached: "
                                     f"{ptau.cached_powers()}); {ceremony_estimate(p.power)} to build: "
                                     "--build-ceremonies"))
            else:
                rows.append(bench_groth16(name, "direct", sized.onnx_path, sized.calib, qm, xs, ref, a.runs,
                                          chain, sized))
            log.info("%s", " | ".join(cells(rows[-1])))
            if not a.skip_circom:
                why = circom_refusal(qm)
                if why is not None or not ceremony:
                    rows.append(Row(name, "groth16-circom", note=why or "no ceremony (see direct)"))
                else:
                    rows.append(bench_groth16(name, "circom", sized.onnx_path, sized.calib, qm, xs, ref,
                                              a.runs, chain, sized))
                log.info("%s", " | ".join(cells(rows[-1])))
            if not a.skip_ezkl:
                rows.append(bench_ezkl(name, sized.onnx_path, sized.calib, a.runs, chain is not None, a.ezkl_budget))
                log.info("%s", " | ".join(cells(rows[-1])))
    finally:
        if chain is not None:
            chain.close()
    print(table(rows))
    if a.json is not None:
        a.json.write_text(json.dumps([{k: v for k, v in r.__dict__.items()} for r in rows], indent=1,
                                     default=str) + "\n")


if __name__ == "__main__":
    main()
