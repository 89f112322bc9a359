"""Write the Groth16 fixture used by the Solidity tests (contracts/test/fixtures/).

Compiles models/risk/model.onnx with the Groth16 backend (local dev ceremony), proves one input
and writes:
  risk_groth16.json        {"input", "output" (fixed-point ints), "proof" (0x, 256 bytes, the
                           fulfill() argument), "payee" (the address every proof names),
                           "public_signals", "proof_json", "circuit_id",
                           "input_scale", "output_scale", "input_bits", "output_bits"}
  risk_groth16_vk.json     the verification key the proof is for
  RiskGroth16Verifier.sol  the snarkjs verifier for that key (contract Groth16Verifier)
and the same for the circuit with PACKED public signals (oracle/circuits/packing.py; 2 public
signals instead of 11), for PackedGroth16Adapter:
  risk_groth16_packed.json        the same fields (public_signals are the packed words), plus
                                  "packing" and a batch of 16 that includes negative inputs
  risk_groth16_packed_vk.json
  RiskGroth16PackedVerifier.sol   its snarkjs verifier, renamed contract RiskPackedGroth16Verifier
                                  (two contracts named Groth16Verifier cannot share a forge build)
The keys are whatever this run's ceremony produced: rerunning changes a fixture's files together.
`--only plain|packed` rewrites one of the two; `--recompile` makes new keys.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle.chain.vk import groth16_vk_words  # noqa: E402
from oracle.circuits.fixedpoint import to_fixed  # noqa: E402
from oracle.circuits.manifest import Manifest  # noqa: E402
from oracle.proving.base import CompileOptions  # noqa: E402
from oracle.proving.groth16 import Groth16Backend  # noqa: E402

FIXTURES = ROOT / "contracts" / "test" / "fixtures"
# allocations 40/30/20 %, strategy 1 slashed 15 %, 10 % idle, 5 % withdrawn
BATCH = 10
PACKED_BATCH = 16
INPUT = [0.4, 0.3, 0.2, 0.0, 0.15, 0.0, 0.1, 0.05]
# Every fixture proof names this payee (the `relayer` of contracts/test/utils/OracleFixture.sol).
PAYEE = "0x0000000000000000000000000000000007e1a7e5"


def _write(backend: Groth16Backend, packed: bool) -> None:
    suffix = "-packed" if packed else ""
    out = ROOT / "build" / "fixtures" / f"risk-groth16{suffix}"
    if (out / "manifest.json").exists() and "--recompile" not in sys.argv:
        m = Manifest.load(out)  # keep the key the committed fixture was made with
    else:
        m = backend.compile(ROOT / "models" / "risk" / "model.onnx", out,
                            CompileOptions(calibration=ROOT / "models" / "risk" / "calibration.json",
                                           packed_signals=packed))
    assert (m.packed is not None) == packed
    x = to_fixed(INPUT, m.input_scale, m.input_bits)
    p = backend.prove(out, x, PAYEE)
    assert backend.verify(out, p)
    # A batch of proofs for distinct inputs (batch adapter tests); the packed one also covers
    # negative inputs, whose offset encoding the adapter must get right.
    batch = []
    for k in range(PACKED_BATCH if packed else BATCH):
        xi = [(v * (k + 3) * 37 + k * 11) % (1 << m.input_scale) for v in range(1, 9)]
        if packed and k % 2:
            xi = [v - (1 << (m.input_bits - 1)) if j % 3 == 0 else v for j, v in enumerate(xi)]
        pi = backend.prove(out, xi, PAYEE)
        batch.append({"input": pi.input_fixed, "output": pi.output_fixed, "proof": pi.calldata})
    FIXTURES.mkdir(parents=True, exist_ok=True)
    doc = {
        "input": p.input_fixed,
        "output": p.output_fixed,
        "proof": p.calldata,
        "public_signals": p.public_signals,
        "proof_json": p.proof,
        "payee": PAYEE,
        "payee_slot": m.payee,
        "circuit_id": p.circuit_id,
        "input_scale": m.input_scale,
        "output_scale": m.output_scale,
        "input_bits": m.input_bits,
        "output_bits": m.output_bits,
        "vk_words": [str(w) for w in groth16_vk_words(m.path(out, "vk"))],
        "batch": batch,
    }
    name = "risk_groth16_packed" if packed else "risk_groth16"
    if packed:
        doc["packing"] = m.packing
    (FIXTURES / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    shutil.copyfile(m.path(out, "vk"), FIXTURES / f"{name}_vk.json")
    sol = m.path(out, "verifier_sol").read_text()
    if packed:
        sol = sol.replace("contract Groth16Verifier", "contract RiskPackedGroth16Verifier")
        (FIXTURES / "RiskGroth16PackedVerifier.sol").write_text(sol)
    else:
        (FIXTURES / "RiskGroth16Verifier.sol").write_text(sol)
    print(f"{name}: input {p.input_fixed}\noutput {p.output_fixed}\ncircuit {p.circuit_id}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    backend = Groth16Backend(pool_size=1)
    try:
        for packed in (False, True):
            if only is None or only == ("packed" if packed else "plain"):
                _write(backend, packed)
    finally:
        backend.close()


if __name__ == "__main__":
    main()
