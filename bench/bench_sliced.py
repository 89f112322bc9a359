"""Sliced models: what the boundary commitments cost, and per-slice figures of a compiled model.

    .venv/bin/python bench/bench_sliced.py                      # costs only (seconds, no ceremony)
    .venv/bin/python bench/bench_sliced.py --prove FOLDER [--runs 3]   # + warm per-slice prove times
    .venv/bin/python bench/bench_sliced.py --compare models/lenet --whole FOLDER --ks 2 4 8 \
        [--compile] [--gas] [--miners 1 2 4]                    # whole vs sliced (issue #12)

Costs (rows = R1CS constraints of the direct generator):
* one 16-input Poseidon call (t = 17) in our gadget vs circomlib's Poseidon(16) under circom --O2
  (609 rows, counted by tests/test_poseidon.py);
* per 1,000 boundary values at bit widths b = 8, 12, 16, 24: the producer's side (linear packing,
  the sponge) and the consumer's side (the sponge plus b booleans and a recomposition per value);
* the slices of the residual MLP of tests/sliced_model.py for k = 2, 3, 4 (the cost model's
  estimate is exact: tests/test_sliced.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle.circuits.manifest import ManifestError  # noqa: E402
from oracle.circuits.packing import n_words  # noqa: E402
from oracle.circuits.quantize import quantize_onnx, quantized_forward  # noqa: E402
from oracle.circuits.slicing import Boundary  # noqa: E402
from oracle.proving.base import BackendError  # noqa: E402
from oracle.proving.groth16 import poseidon, sliced  # noqa: E402
from oracle.proving.groth16.pool import ProverPool  # noqa: E402
from oracle.proving.groth16.slices import SlicePlan  # noqa: E402
from tests.sliced_model import mlp_onnx  # noqa: E402

CIRCOMLIB_ROWS = 609


def costs() -> None:
    cs, _, _ = poseidon.standalone(poseidon.RATE)
    ab = int((cs.mat < 2).sum())
    print(f"Poseidon(16) call: {cs.n_constraints - 1} rows + 1 output row, {ab} A+B terms "
          f"(max_terms {poseidon.MAX_TERMS}); circomlib under circom --O2: {CIRCOMLIB_ROWS} rows")
    print("\nper 1,000 boundary values:  bits  words  calls  producer rows  consumer rows")
    for bits in (8, 12, 16, 24):
        bd = Boundary(1, 1, (1,), (1000,), bits)
        prod, cons = sliced.boundary_rows(bd)
        print(f"{'':27}{bits:>4}  {n_words(1000, bits):>5}  {poseidon.calls(bd.n_words):>5}  {prod:>13,}  {cons:>13,}")
    onnx_path, calib = mlp_onnx(ROOT / "build" / "bench" / "sliced-src")
    qm = quantize_onnx(onnx_path, np.array(json.loads(calib.read_text())["input"], dtype=np.float64))
    whole = sliced.CostModel(qm)
    rows_whole = whole.input_rows + sum(whole.steps) + whole.output_rows
    print(f"\nresidual MLP 8-16-16-16-3 (tests/sliced_model.py): whole {rows_whole} rows")
    for k in (2, 3, 4):
        cuts = sliced.choose_cuts(qm, k)
        t0 = time.monotonic()
        rows = [SlicePlan(qm, cuts, j).constraints().n_constraints for j in range(k)]
        print(f"  k={k} cuts {cuts}: rows per slice {rows}, total {sum(rows)}, lowering {time.monotonic() - t0:.2f} s")


def prove(folder: Path, runs: int) -> None:
    sm = sliced.load(folder)
    lo, hi = sm.qm.input_range()
    rng = np.random.default_rng(1)
    with ProverPool(2) as pool:
        for r in range(runs + 1):
            x = [int(v) for v in rng.integers(lo, hi + 1, sm.qm.input_size)]
            p = sliced.prove_sliced(folder, x, "0x" + "11" * 20, pool)
            if r == 0:
                continue                                  # cold: loads the zkeys
            print(f"run {r}: wall {p.prove_seconds:.2f} s; per slice snarkjs prove ms "
                  f"{[round(m.get('prove', 0)) for m in p.slice_ms]}")


# -- whole vs sliced -------------------------------------------------------------------------------
def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads: snarkjs' worker threads included) of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _measured(prove_one: Callable[[ProverPool], object]) -> dict[str, float]:
    """One unit (a whole circuit or one slice) on a fresh single prover daemon: a warm-up proof
    (the daemon reads the zkey), then a timed one: wall, CPU time (the daemon's and this
    process's witness computation), and the daemon's peak RSS (the memory one prover needs for
    this unit; the witness side is small next to it)."""
    with ProverPool(1) as pool:
        prove_one(pool)
        pid = pool.pids()[0]
        cpu0, own0, t0 = _proc_cpu(pid), time.process_time(), time.monotonic()
        prove_one(pool)
        wall, cpu, own = time.monotonic() - t0, _proc_cpu(pid) - cpu0, time.process_time() - own0
        # CPU = the daemon's (snarkjs prove, its threads included) + ours (the witness in Python).
        return {"wall_s": round(wall, 2), "snarkjs_cpu_s": round(cpu, 2), "witness_cpu_s": round(own, 2),
                "prover_cpu_s": round(cpu + own, 2), "peak_rss_mb": round(_proc_peak_mb(pid), 1)}


def _lpt(times: Sequence[float], miners: int) -> float:
    """Makespan of the slices on ``miners`` one-at-a-time provers (longest first): the latency
    with that many miners on machines of their own."""
    load = [0.0] * miners
    for t in sorted(times, reverse=True):
        i = load.index(min(load))
        load[i] += t
    return max(load)


def _gas(folder: Path, x: list[int], proof_calldata: str, output: list[int], payee: str) -> int:
    """gasUsed of the model's registered adapter ``verify(input, output, payee, proof)`` sent as a
    transaction on a fresh anvil (explicit gas: eth_estimateGas under-prices the pairing check)."""
    from eth_account import Account

    from oracle.chain.anvil import DEV_KEYS, Anvil
    from oracle.chain.client import Chain
    from oracle.chain.deploy import deploy_all
    from oracle.chain.registration import register_circuit

    with Anvil() as node:
        chain = Chain.connect(node.url, Account.from_key(DEV_KEYS[0]))
        d = deploy_all(chain)
        reg = register_circuit(chain, d.registry, folder, rpc_url=node.url)
        fn = chain.contract("IInferenceVerifier", reg.adapter).functions.verify(
            x, output, payee, bytes.fromhex(proof_calldata.removeprefix("0x")))
        assert fn.call({"gas": 10_000_000}) is True, "the adapter refuses the bench's own proof"
        rc = chain.transact(fn, gas=10_000_000)
        return int(rc["gasUsed"])


def subnet_latency(folder: Path, x: list[int], payee: str, miners: int, runs: int = 2) -> list[float]:
    """Seconds for one request of the sliced model through the real validator (SubnetProver) and
    ``miners`` local miner processes with one proving worker each (all on this box: they share
    its 2 cores); one warm-up request first (each miner's prover daemon reads its zkeys)."""
    import tempfile

    from oracle.circuits.catalog import CircuitCatalog
    from oracle.subnet.auth import hotkey_of, load_or_create_wallet
    from oracle.subnet.config import SubnetConfig
    from oracle.subnet.local import start_local_miners, stop_local_miners
    from oracle.subnet.metagraph import LocalMetagraph
    from oracle.subnet.validator import SubnetProver

    with tempfile.TemporaryDirectory(prefix="bench-sliced-") as tmp:
        t = Path(tmp)
        (t / "models").mkdir()
        (t / "models" / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
        wallet = load_or_create_wallet("validator", t / "wallets")
        ms = start_local_miners(miners, t / "models", hotkey_of(wallet), base_dir=t / "miners", workers=1)
        cfg = SubnetConfig(metagraph=t / "miners" / "miners.json", wallet_name="validator", wallet_path=t / "wallets",
                           k=1, miner_timeout=300.0, hedge_delay=300.0, exploration=0.0)
        catalog = CircuitCatalog.scan(t / "models")
        circuit = catalog.get(sliced.load(folder).manifest.circuit_id)
        assert circuit is not None
        p = SubnetProver(wallet, LocalMetagraph(t / "miners" / "miners.json"), cfg, catalog=catalog)
        out = []
        try:
            for r in range(runs + 1):
                t0 = time.monotonic()
                res = p.prove(circuit, x, timeout=600.0, payee=payee)
                if r:
                    out.append(round(time.monotonic() - t0, 2))
                assert res.proof.output_fixed == quantized_forward(sliced.load(folder).qm, x)
        finally:
            p.close()
            stop_local_miners(ms)
        return out


def compare(model_dir: Path, name: str, ks: Sequence[int], whole: Path | None, do_compile: bool,
            gas: bool, miners: Sequence[int] = ()) -> dict[str, Any]:
    from oracle.circuits.quantize import load_calibration
    from oracle.proving.base import CompileOptions
    from oracle.proving.groth16 import direct, ptau, slice_jobs
    from oracle.proving.groth16.calldata import encode_proof
    from oracle.proving.groth16.lowering import Plan

    onnx_path, calib = model_dir / "model.onnx", model_dir / "calibration.json"
    import onnx

    n_in = 1
    for dim in onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim[1:]:
        n_in *= int(dim.dim_value)
    qm = quantize_onnx(onnx_path, load_calibration(calib, n_in))
    cost = sliced.CostModel(qm)
    plan_w = Plan(qm, True)
    n_pub = len(plan_w.in_sizes) + len(plan_w.out_sizes) + 1
    rows_whole = cost.input_rows + sum(cost.steps) + cost.output_rows
    rng = np.random.default_rng(3)
    lo, hi = qm.input_range()
    x = [int(v) for v in rng.integers(lo, hi + 1, qm.input_size)]
    payee = "0x" + "11" * 20
    out: dict[str, Any] = {"model": name, "layers": len(qm.layers), "whole": {
        "rows": rows_whole, "power": ptau.power_for(rows_whole, n_pub)}}
    print(f"\n{name}: {len(qm.layers)} layers; whole circuit {rows_whole:,} rows -> 2^{out['whole']['power']}")
    if whole is not None:
        from oracle.circuits.manifest import Manifest
        from oracle.proving.groth16.backend import Groth16Backend

        mw = Manifest.load(whole)
        c = Groth16Backend().load(whole)
        plan = c.plan
        assert plan is not None, f"{whole}: not a direct-generator circuit"
        pv = int(payee, 16)
        w = _measured(lambda pool: direct.prove(pool, plan, c.zkey, c.vk, x, pv))
        out["whole"].update({"compile_s": mw.stats.get("compile_seconds"), "setup_s": mw.stats.get("setup_seconds"),
                             "measured_rows": mw.stats.get("constraints"), **w})
        if gas:
            with ProverPool(1) as pool:
                resp = direct.prove(pool, plan, c.zkey, c.vk, x, pv)
            out["whole"]["verify_gas"] = _gas(whole, x, encode_proof(resp["proof"]), quantized_forward(qm, x), payee)
        print(f"  whole  compiled {out['whole']['compile_s']} s; prove {w}")
    for k in ks:
        cuts = sliced.choose_cuts(qm, k)
        rows = [cost(a, e) for a, e in itertools.pairwise(cuts)]
        pub = [2 if 0 < j < k - 1 else n_pub for j in range(k)]
        entry: dict[str, Any] = {"k": k, "cuts": cuts, "rows": rows, "total_rows": sum(rows),
                                 "power": max(ptau.power_for(r, p) for r, p in zip(rows, pub, strict=True))}
        folder = ROOT / ".cache" / "bench-circuits" / f"{name}-k{k}"
        ok = False
        try:
            sm = sliced.load(folder)
            ok = sm.cuts == cuts and len(sm.held) == k
        except (ManifestError, BackendError, FileNotFoundError):
            pass
        if not ok and do_compile:
            t0 = time.monotonic()
            sliced.compile_sliced(onnx_path, folder, CompileOptions(calibration=calib, name=f"{name}-k{k}",
                                                                    cache_dir=ROOT / ".cache"), cuts=cuts)
            print(f"  k={k}: compiled in {time.monotonic() - t0:.0f} s")
            ok = True
        print(f"  k={k}: cuts {cuts}, rows {rows} -> one ceremony of 2^{entry['power']}")
        if ok:
            sm = sliced.load(folder)
            entry["compile_s"] = sm.manifest.stats.get("compile_seconds")
            wp = slice_jobs.work_plan(sm, x)
            def one_slice(j: int, f: Path = folder, w: slice_jobs.WorkPlan = wp) -> Callable[[ProverPool], object]:
                return lambda pool: slice_jobs.prove_slice(f, j, w.inputs[j], payee, pool)

            per = [_measured(one_slice(j)) for j in range(k)]
            walls = [p["wall_s"] for p in per]
            with ProverPool(2) as pool:
                sliced.prove_sliced(folder, x, payee, pool)                 # warm
                sp = sliced.prove_sliced(folder, x, payee, pool)
            entry.update({
                "slices": per, "prover_cpu_s": round(sum(p["prover_cpu_s"] for p in per), 2),
                "peak_rss_mb": max(p["peak_rss_mb"] for p in per),
                "latency_s": {str(mm): round(_lpt(walls, mm), 2) for mm in (1, 2, 4)},
                "critical_path_s": max(walls), "measured_all_at_once_2_daemons_s": round(sp.prove_seconds, 2)})
            if gas:
                entry["verify_gas"] = _gas(folder, x, sp.calldata, sp.output_fixed, payee)
            if miners:
                entry["subnet_latency_s"] = {str(mm): subnet_latency(folder, x, payee, mm) for mm in miners}
                print(f"  k={k}: one request through the validator and m one-worker miners on this box, "
                      f"seconds per run: {entry['subnet_latency_s']}")
            print(f"  k={k}: compile {entry['compile_s']} s; per-slice prove wall {walls} s; prover CPU "
                  f"{entry['prover_cpu_s']} s; peak RSS per prover {entry['peak_rss_mb']} MB; latency 1/2/4 miners "
                  f"{entry['latency_s']} s (critical path {entry['critical_path_s']} s); all slices at once on "
                  f"2 daemons here: {entry['measured_all_at_once_2_daemons_s']} s"
                  + (f"; verify gas {entry['verify_gas']:,}" if gas else ""))
        out[f"k{k}"] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prove", type=Path, help="a compiled sliced model folder")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compare", type=Path, help="a model folder (model.onnx + calibration.json): whole vs sliced")
    ap.add_argument("--name", help="name for the compiled folders (.cache/bench-circuits/NAME-kK)")
    ap.add_argument("--whole", type=Path, help="the model compiled whole (a circuit folder), if it fits")
    ap.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--compile", action="store_true", help="compile the sliced folders that are missing")
    ap.add_argument("--gas", action="store_true", help="verify gas of each on anvil (registered adapters)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--miners", type=int, nargs="*", default=[],
                    help="also measure one request through the real validator with this many local miners (e.g. 1 2 4)")
    a = ap.parse_args()
    if a.compare:
        res = compare(a.compare, a.name or a.compare.name, a.ks, a.whole, a.compile, a.gas, a.miners)
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(res, indent=1) + "\n")
        return
    costs()
    if a.prove:
        prove(a.prove, a.runs)


if __name__ == "__main__":
    main()
