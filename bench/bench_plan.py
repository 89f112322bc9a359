"""The compile plan (oracle/proving/groth16/estimate.py) against measured compiles, and what a
larger ptau costs ``groth16 setup``.

    .venv/bin/python bench/bench_plan.py [--models risk digits mlp-64-128-10 mlp-64-256-256-10]
        [--reuse-models risk digits mlp-64-128-10] [--runs 3]

Per model (direct generator, one forked process per compile so RUSAGE_CHILDREN is this compile's
node processes): the plan's constraints (exact) vs the R1CS; estimated vs measured lowering,
setup and compile seconds, peak memory (Python: tracemalloc + the interpreter's own RSS before;
node: the largest child RSS, i.e. groth16 setup) and warm prove time (median of --runs, plus the
prover daemon's RSS). The ptau used is whatever ``ptau.choose`` picks from .cache/ptau (the
reuse rule), so no new ceremony is built when a larger one is cached.

Reuse: ``snarkjs groth16 setup`` of the same .r1cs from the smallest cached ptau that fits and
from the largest cached one (alternating, best of 2), to show whether a much larger ptau costs
setup time (it reads only the prefix of the Lagrange section it needs).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_r1cs import source  # noqa: E402

from oracle.circuits.manifest import Manifest  # noqa: E402
from oracle.proving.base import CompileOptions  # noqa: E402
from oracle.proving.groth16 import Groth16Backend, ptau, tools  # noqa: E402
from oracle.proving.groth16.r1cs import r1cs_info  # noqa: E402

log = logging.getLogger("bench_plan")
OUT = ROOT / "build" / "bench-plan"
PAYEE = "0x00000000000000000000000000000000000a11ce"


def _compile(onnx_path: Path, calib: Path, out: Path, q: multiprocessing.Queue[tuple[float, float, float]]) -> None:
    base = psutil.Process().memory_info().rss / 2**20
    tracemalloc.start()
    Groth16Backend().compile(onnx_path, out, CompileOptions(calibration=calib))
    py_peak = base + tracemalloc.get_traced_memory()[1] / 2**20
    q.put((py_peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, base))


def measure(name: str, runs: int) -> dict[str, Any]:
    onnx_path, calib = source(name)
    plan = Groth16Backend().plan(onnx_path, CompileOptions(calibration=calib))
    out = OUT / name
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue[tuple[float, float, float]] = ctx.Queue()
    t0 = time.monotonic()
    proc = ctx.Process(target=_compile, args=(onnx_path, calib, out, q))
    proc.start()
    py_peak, node_peak, _ = q.get()
    proc.join()
    compile_s = time.monotonic() - t0
    m = Manifest.load(out)
    info = r1cs_info(out / m.files["r1cs"])
    b = Groth16Backend(pool_size=1)
    try:
        lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1
        rng = np.random.default_rng(1)
        xs = [[int(v) for v in rng.integers(lo, hi + 1, m.input_size)] for _ in range(runs + 1)]
        b.prove(out, xs[0], PAYEE)                                 # loads the key in the daemon
        wall = []
        for x in xs[1:]:
            t = time.perf_counter()
            b.prove(out, x, PAYEE)
            wall.append(time.perf_counter() - t)
        daemon_rss = max(psutil.Process(pid).memory_info().rss for pid in b.pool.pids()) / 2**20
    finally:
        b.close()
    st = m.stats
    return {
        "model": name, "constraints": (plan.constraints, info.n_constraints),
        "wires": (plan.wires, info.n_wires), "macs": plan.multiply_adds,
        "ptau": f"2^{plan.power} from 2^{plan.ptau_power}",
        "lowering_s": (plan.seconds["lowering"], round(st["lowering_seconds"] + st["r1cs_write_seconds"], 2)),
        "setup_s": (plan.seconds["setup"], st["setup_seconds"]),
        "compile_s": (plan.seconds["total"], round(compile_s, 1)),
        "py_mib": (plan.memory_mib["lowering"], round(py_peak)),
        "node_mib": (plan.memory_mib["setup"], round(node_peak)),
        "prove_s": (plan.prove_seconds, round(statistics.median(wall), 2)),
        "daemon_mib": (plan.memory_mib["prove"], round(daemon_rss)),
    }


def reuse(name: str) -> tuple[str, int, int, float, float, int, int]:
    """groth16 setup of model ``name``'s r1cs from the smallest fitting vs the largest cached ptau."""
    m = Manifest.load(OUT / name)
    r1cs = OUT / name / m.files["r1cs"]
    need = int(m.stats["ptau_power"])
    have = ptau.cached_powers()
    small, large = min(p for p in have if p >= need), max(have)
    times: dict[int, list[float]] = {small: [], large: []}
    rss: dict[int, int] = {small: 0, large: 0}
    for _ in range(2):
        for p in (small, large):
            t = time.perf_counter()
            # /usr/bin/time -f %M: this one node process's peak RSS (KiB), on stderr's last line
            r = subprocess.run(["/usr/bin/time", "-f", "%M", tools.node_binary(), str(tools.snarkjs_cli()),
                                "groth16", "setup", str(r1cs), str(ptau.local_file(p)), str(OUT / "reuse.zkey")],
                               capture_output=True, text=True, check=True)
            times[p].append(time.perf_counter() - t)
            rss[p] = max(rss[p], int(r.stderr.strip().splitlines()[-1]) // 1024)
    (OUT / "reuse.zkey").unlink()
    return name, small, large, min(times[small]), min(times[large]), rss[small], rss[large]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["risk", "digits", "mlp-64-128-10", "mlp-64-256-256-10"])
    ap.add_argument("--reuse-models", nargs="*", default=["risk", "digits", "mlp-64-128-10"])
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {psutil.getloadavg()}; cached ptau powers: {ptau.cached_powers()}")
    print("estimate / measured per model (direct generator)")
    cols = ["model", "constraints", "wires", "macs", "ptau", "lowering_s", "setup_s", "compile_s",
            "py_mib", "node_mib", "prove_s", "daemon_mib"]
    print("  ".join(cols))
    for name in a.models:
        r = measure(name, a.runs)
        print("  ".join(" / ".join(str(v) for v in r[c]) if isinstance(r[c], tuple) else str(r[c]) for c in cols),
              flush=True)
    if a.reuse_models:
        print("\ngroth16 setup from the smallest fitting ptau vs the largest cached one (best of 2)")
        print("model  small  large  small_s  large_s  small_node_MiB  large_node_MiB")
        for name in a.reuse_models:
            n, s, lg, ts, tl, rs, rl = reuse(name)
            print(f"{n}  2^{s}  2^{lg}  {ts:.2f}  {tl:.2f}  {rs}  {rl}", flush=True)
    print(f"load average at end: {psutil.getloadavg()}")


if __name__ == "__main__":
    main()
