"""Sliced models: what the boundary commitments cost, and per-slice figures of a compiled model.

    .venv/bin/python bench/bench_sliced.py                      # costs only (seconds, no ceremony)
    .venv/bin/python bench/bench_sliced.py --prove FOLDER [--runs 3]   # + warm per-slice prove times

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
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle.circuits.packing import n_words  # noqa: E402
from oracle.circuits.quantize import quantize_onnx  # noqa: E402
from oracle.circuits.slicing import Boundary  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prove", type=Path, help="a compiled sliced model folder")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    costs()
    if a.prove:
        prove(a.prove, a.runs)


if __name__ == "__main__":
    main()
