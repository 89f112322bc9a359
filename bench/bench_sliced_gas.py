"""On-chain gas of SLICED models (issue #12): k slice proofs checked by SlicedGroth16Adapter with
one batched pairing check (2k + 2 pairings), against k separate snarkjs verifier calls (4k
pairings), on a local anvil with real proofs.

    .venv/bin/python bench/bench_sliced_gas.py [--k 2 4 8] [--models DIR ...]

Models: the toy sliced models of scripts/sliced_adapter_fixture.py (8 inputs / 3 outputs of 12
bits, slices chained by circomlib Poseidon commitments; build/fixtures/slicedtoy-k{k}/, real
proofs in contracts/test/fixtures/slicedtoy_k{k}.json), registered through the project's own
registration path (oracle.chain.registration.register_circuit -> oracle.chain.sliced). Per k:

* fulfill: the whole transaction (intrinsic + calldata + execution), gasUsed of its receipt;
* verify alone: gasUsed of a transaction calling the adapter's verify (checked true first);
* fulfillBatch of the fixture's 3 requests (one pairing check for all: 3k + k + 2 pairings):
  per request;
* naive: each slice's own snarkjs verifier (verifyProof, 4 pairings) called in a transaction of
  its own (gasUsed, checked true first), summed: k separate verifier calls; and the same less
  (k - 1) x 21,000 intrinsic gas, as if the k calls were made from one transaction.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_abi.abi import encode  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_utils.address import to_checksum_address  # noqa: E402
from hexbytes import HexBytes  # noqa: E402

from oracle.chain.anvil import DEV_KEYS, Anvil  # noqa: E402
from oracle.chain.client import Chain  # noqa: E402
from oracle.chain.compiler import Artifact  # noqa: E402
from oracle.chain.deploy import deploy_all  # noqa: E402
from oracle.chain.registration import register_circuit  # noqa: E402
from oracle.chain.sliced import load_sliced  # noqa: E402

NO_CALLBACK = "0x" + "00" * 20
FIXTURES = ROOT / "contracts" / "test" / "fixtures"


def _fixture(k: int) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"slicedtoy_k{k}.json").read_text()))


def _naive(chain: Chain, model_dir: Path, req: dict[str, Any]) -> list[int]:
    """eth_estimateGas of each slice's snarkjs verifyProof on its own, true at that limit."""
    model = load_sliced(model_dir)
    gas = []
    for j, vk in enumerate(model.vk_files):
        art = json.loads((vk.parent / "verifier.json").read_text())
        addr = chain.deploy(f"slice {j} snarkjs verifier", artifact=Artifact(name="Groth16Verifier", abi=art["abi"],
                                                                              bytecode=art["bytecode"]))
        v = chain.w3.eth.contract(address=to_checksum_address(addr), abi=art["abi"])
        w = [int(x) for x in req["proofs"][j]]
        signals = [int(s) for s in req["public_signals"][j]]
        fn = v.functions.verifyProof(w[0:2], [w[2:4], w[4:6]], w[6:8], signals)
        # Not eth_estimateGas: it finds the limit where the pairing precompile fails and the
        # verifier returns false (docs/toolchain.md). A transaction with ample gas, checked true.
        if fn.call({"gas": 1_000_000}) is not True:
            raise SystemExit(f"slice {j}: its own snarkjs verifier refuses the fixture proof")
        gas.append(int(chain.transact(fn, gas=1_000_000)["gasUsed"]))
    return gas


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, nargs="+", default=[2, 4, 8])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows: list[tuple[str, str]] = []
    with Anvil() as node:
        chain = Chain.connect(node.url, Account.from_key(DEV_KEYS[0]))
        d = deploy_all(chain)
        oracle = chain.contract("InferenceOracle", d.oracle)
        deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
        for k in args.k:
            fx = _fixture(k)
            model_dir = ROOT / "build" / "fixtures" / f"slicedtoy-k{k}"
            reg = register_circuit(chain, d.registry, model_dir, rpc_url=node.url)
            if reg.circuit_id != fx["circuit_id"]:
                raise SystemExit(f"{model_dir} is not the folder the fixture was proven with: rerun "
                                 "scripts/sliced_adapter_fixture.py")
            mid = bytes.fromhex(reg.model_id[2:])
            adapter = chain.contract("SlicedGroth16Adapter", reg.adapter)
            payee = to_checksum_address(fx["payee"])

            def request(x: list[int], model: bytes = mid) -> int:
                fee = int(oracle.functions.quoteFee(model, 0).call())
                chain.transact(oracle.functions.requestInference(model, x, NO_CALLBACK, 0, deadline), value=fee)
                return int(oracle.functions.nextRequestId().call()) - 1

            req = fx["requests"][0]
            proof = HexBytes(req["proof"])
            assert proof == HexBytes(encode(["uint256[]", "uint256[8][]"],
                                            [[int(c) for c in req["commitments"]],
                                             [[int(w) for w in p] for p in req["proofs"]]]))
            verify = adapter.functions.verify(req["input"], req["output"], payee, proof)
            if verify.call({"gas": 3_000_000}) is not True:
                raise SystemExit(f"k={k}: the adapter refuses the fixture proof")
            g_verify = int(chain.transact(verify, gas=3_000_000)["gasUsed"])
            rid = request(req["input"])
            r = chain.transact(oracle.functions.fulfill(rid, req["output"], payee, proof), gas=3_000_000)
            g_fulfil = int(r["gasUsed"])
            naive = _naive(chain, model_dir, req)
            ids = [request(q["input"]) for q in fx["requests"]]
            r = chain.transact(oracle.functions.fulfillBatch(ids, [q["output"] for q in fx["requests"]], payee,
                                                             [HexBytes(q["proof"]) for q in fx["requests"]]),
                               gas=10_000_000)
            n = len(ids)
            rows += [
                (f"k={k}: fulfill (whole tx, {2 * k + 2} pairings)", f"{g_fulfil:,}"),
                (f"k={k}: verify alone (a verify tx)", f"{g_verify:,}"),
                (f"k={k}: adapter gas floor (minVerifyGas, = registered verifyGas)", f"{reg.verify_gas:,}"),
                (f"k={k}: fulfillBatch x{n}, per request ({n * k + k + 2} pairings in all)",
                 f"{int(r['gasUsed']) // n:,}"),
                (f"k={k}: naive, {k} snarkjs verifyProof txs ({4 * k} pairings), summed",
                 f"{sum(naive):,} ({' + '.join(f'{g:,}' for g in naive)})"),
                (f"k={k}: naive as one tx (less {k - 1} x 21,000 intrinsic)", f"{sum(naive) - 21_000 * (k - 1):,}"),
                (f"k={k}: batched verify tx / naive one tx", f"{g_verify / (sum(naive) - 21_000 * (k - 1)):.2f}"),
            ]
    width = max(len(a) for a, _ in rows)
    print(f"{'operation':<{width}}  gas")
    for a, b in rows:
        print(f"{a:<{width}}  {b}")
    print("estimates and receipts include the 21,000 intrinsic gas and the calldata of each transaction")


if __name__ == "__main__":
    main()
