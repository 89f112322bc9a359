"""Write the Groth16 fixture used by the Solidity tests (contracts/test/fixtures/).

Compiles models/risk/model.onnx with the Groth16 backend (local dev ceremony), proves one input
and writes:
  risk_groth16.json        {"input", "output" (fixed-point ints), "proof" (0x, 256 bytes, the
                           fulfill() argument), "public_signals", "proof_json", "circuit_id",
                           "input_scale", "output_scale", "input_bits", "output_bits"}
  risk_groth16_vk.json     the verification key the proof is for
  RiskGroth16Verifier.sol  the snarkjs verifier for that key (contract Groth16Verifier)
The keys are whatever this run's ceremony produced: rerunning changes all three files together.
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
INPUT = [0.4, 0.3, 0.2, 0.0, 0.15, 0.0, 0.1, 0.05]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = ROOT / "build" / "fixtures" / "risk-groth16"
    backend = Groth16Backend(pool_size=1)
    try:
        if (out / "manifest.json").exists() and "--recompile" not in sys.argv:
            m = Manifest.load(out)  # keep the key the committed fixture was made with
        else:
            m = backend.compile(ROOT / "models" / "risk" / "model.onnx", out,
                                CompileOptions(calibration=ROOT / "models" / "risk" / "calibration.json"))
        x = to_fixed(INPUT, m.input_scale, m.input_bits)
        p = backend.prove(out, x)
        assert backend.verify(out, p)
        # A batch of proofs for distinct inputs (Groth16BatchAdapter tests).
        batch = []
        for k in range(BATCH):
            xi = [(v * (k + 3) * 37 + k * 11) % (1 << m.input_scale) for v in range(1, 9)]
            pi = backend.prove(out, xi)
            batch.append({"input": pi.input_fixed, "output": pi.output_fixed, "proof": pi.calldata})
    finally:
        backend.close()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    doc = {
        "input": p.input_fixed,
        "output": p.output_fixed,
        "proof": p.calldata,
        "public_signals": p.public_signals,
        "proof_json": p.proof,
        "circuit_id": p.circuit_id,
        "input_scale": m.input_scale,
        "output_scale": m.output_scale,
        "input_bits": m.input_bits,
        "output_bits": m.output_bits,
        "vk_words": [str(w) for w in groth16_vk_words(m.path(out, "vk"))],
        "batch": batch,
    }
    (FIXTURES / "risk_groth16.json").write_text(json.dumps(doc, indent=2) + "\n")
    shutil.copyfile(m.path(out, "vk"), FIXTURES / "risk_groth16_vk.json")
    shutil.copyfile(m.path(out, "verifier_sol"), FIXTURES / "RiskGroth16Verifier.sol")
    print(f"input {p.input_fixed}\noutput {p.output_fixed}\ncircuit {p.circuit_id}")


if __name__ == "__main__":
    main()
