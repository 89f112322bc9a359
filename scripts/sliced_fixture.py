"""Write the sliced-model fixtures used by the Solidity tests (contracts/test/fixtures/sliced_k*.json).

Compiles the small residual MLP of tests/sliced_model.py (8-16-16-16-3, the last layer also reads
the first hidden layer) as a sliced model with k = 2, 3 and 4 slices (local dev ceremony; every
slice of one model on the same ptau file), proves two inputs and writes per k::

    sliced_k<k>.json   {"k", "model_id", "cuts", "slice_circuit_ids", "input_bits", "output_bits",
                        "input_scale", "output_scale", "packing", "payee_slot", "payee",
                        "vk_words": [per slice: alpha1, beta2, gamma2, delta2, IC.. as in
                                     oracle.chain.vk.groth16_vk_words],
                        "requests": [{"input", "output", "commitments" (c_1..c_{k-1}, decimal),
                                      "proofs" (per slice 8 decimal words, calldata.proof_words),
                                      "public_signals" (per slice, snarkjs order: outputs then
                                      inputs), "proof" (0x abi.encode(uint256[] commitments,
                                      uint256[8][] proofs): the fulfil() argument)}, ...]}

Public signals per slice (docs/sliced-models.md): slice 0 ``[c_1, input words..]``; slice j
``[c_{j+1}, c_j]``; slice k-1 ``[output words with the payee (manifest payee slot).., c_{k-1}]``.
The two requests give the adapter tests proofs "of the right circuits from two requests".
The keys are whatever this run's ceremony produced; `--recompile` makes new ones, `--k 2,3`
picks the slicings.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle.chain.vk import groth16_vk_words  # noqa: E402
from oracle.circuits.manifest import Manifest  # noqa: E402
from oracle.proving.base import CompileOptions  # noqa: E402
from oracle.proving.groth16 import sliced  # noqa: E402
from oracle.proving.groth16.calldata import proof_words  # noqa: E402
from oracle.proving.groth16.pool import ProverPool  # noqa: E402
from tests.sliced_model import mlp_onnx  # noqa: E402

FIXTURES = ROOT / "contracts" / "test" / "fixtures"
BUILD = ROOT / "build" / "fixtures"
# Every fixture proof names this payee (the `relayer` of contracts/test/utils/OracleFixture.sol).
PAYEE = "0x0000000000000000000000000000000007e1a7e5"
CUTS = {2: [0, 2, 4], 3: [0, 1, 2, 4], 4: [0, 1, 2, 3, 4]}

log = logging.getLogger("sliced_fixture")


def inputs(m: Manifest) -> list[list[int]]:
    """Two distinct requests; the second has negative values (the offset encoding)."""
    half = 1 << (m.input_bits - 1)
    a = [(v * 37 + 11) % half for v in range(m.input_size)]
    b = [-(v * 53 + 5) % half if v % 2 else (v * 29) % half for v in range(m.input_size)]
    return [a, b]


def build(k: int, pool: ProverPool) -> Path:
    out = BUILD / f"sliced-k{k}"
    onnx_path, calib = mlp_onnx(BUILD / "sliced-src")
    if (out / "manifest.json").exists() and "--recompile" not in sys.argv:
        m = Manifest.load(out)             # keep the keys the committed fixture was made with
    else:
        m = sliced.compile_sliced(onnx_path, out, CompileOptions(calibration=calib, name=f"sliced-mlp-k{k}"),
                                  cuts=CUTS[k])
    sm = sliced.load(out)
    requests = []
    for x in inputs(m):
        p = sliced.prove_sliced(out, x, PAYEE, pool)
        assert sliced.verify_sliced(out, p.input_fixed, p.output_fixed, PAYEE, p.commitments, p.proofs, pool)
        log.info("k=%d: slices proved in %s ms (wall per slice)", k, [r.get("wall") for r in p.slice_ms])
        requests.append({
            "input": p.input_fixed, "output": p.output_fixed,
            "commitments": [str(c) for c in p.commitments],
            "proofs": [[str(w) for w in proof_words(pr)] for pr in p.proofs],
            "public_signals": p.public_signals,
            "proof": p.calldata,
        })
    doc = {
        "k": k, "model_id": m.circuit_id, "cuts": sm.cuts,
        "slice_circuit_ids": [s["circuit_id"] for s in m.slices or []],
        "input_bits": m.input_bits, "output_bits": m.output_bits,
        "input_scale": m.input_scale, "output_scale": m.output_scale,
        "packing": m.packing, "payee_slot": m.payee, "payee": PAYEE,
        "vk_words": [[str(w) for w in groth16_vk_words(sm.vk(j))] for j in range(sm.k)],
        "requests": requests,
    }
    FIXTURES.mkdir(parents=True, exist_ok=True)
    path = FIXTURES / f"sliced_k{k}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"{path.name}: model {m.circuit_id}, cuts {sm.cuts}, constraints {m.stats.get('constraints')}")
    return path


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ks = [int(v) for v in sys.argv[sys.argv.index("--k") + 1].split(",")] if "--k" in sys.argv else sorted(CUTS)
    with ProverPool(2) as pool:
        for k in ks:
            build(k, pool)


if __name__ == "__main__":
    main()
