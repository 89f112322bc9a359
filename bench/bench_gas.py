"""On-chain gas of the protocol for the 8-input / 3-output risk model with real Groth16 proofs,
on a local anvil: requestInference, fulfill (verification included, with and without the vault
callback) and fulfillBatch per request, with the plain snarkjs adapter and the batch adapter
(circuit with one public signal per value plus one for the payee: 12 signals) and with the packed
adapters (the default circuit, 8 + 3 values of 12 bits packed into 2 public signals, the payee in
the output word's spare bits, oracle/circuits/packing.py and payee.py). Every proof names the
sender as its payee (the oracle credits the payee the proof names).

    .venv/bin/python bench/bench_gas.py [--batch 1 5 10 16]

Anchors (from the issue): a bare snarkjs Groth16 verify costs ~207 k + ~7 k per public signal;
RISC Zero's router path ~316 k per transaction; Chainlink Functions caps callbacks at 300 k.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from hexbytes import HexBytes  # noqa: E402
from web3.types import Wei  # noqa: E402

from oracle.chain.anvil import DEV_KEYS, Anvil  # noqa: E402
from oracle.chain.client import Chain  # noqa: E402
from oracle.chain.deploy import deploy_all  # noqa: E402
from oracle.chain.registration import register_circuit  # noqa: E402
from oracle.chain.structs import read_request  # noqa: E402
from oracle.proving.groth16 import Groth16Backend  # noqa: E402
from oracle.proving.groth16.cache import compile_cached  # noqa: E402

NO_CALLBACK = "0x" + "00" * 20
ETH = 10**18


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 5, 10, 16])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    backend = Groth16Backend(pool_size=2)
    circuit = compile_cached(backend, ROOT / "models/risk/model.onnx", ROOT / "models/risk/calibration.json",
                             ROOT / ".cache/bench-circuits/risk-groth16", packed=False)
    packed_circuit = compile_cached(backend, ROOT / "models/risk/model.onnx", ROOT / "models/risk/calibration.json",
                                    ROOT / ".cache/bench-circuits/risk-groth16-packed", packed=True)
    circuit_of: dict[str, Path] = {}
    rows: list[tuple[str, str]] = []
    try:
        with Anvil() as node:
            chain = Chain.connect(node.url, Account.from_key(DEV_KEYS[0]))
            d = deploy_all(chain)
            # Dev-keys circuits: accepted because the node is a local anvil (rpc_url).
            plain = register_circuit(chain, d.registry, circuit, model_id="0x" + "11" * 32, batch=False,
                                     rpc_url=node.url)
            batch = register_circuit(chain, d.registry, circuit, model_id="0x" + "22" * 32, batch=True,
                                     rpc_url=node.url)
            packed = register_circuit(chain, d.registry, packed_circuit, model_id="0x" + "33" * 32, batch=False,
                                      rpc_url=node.url)
            packed_batch = register_circuit(chain, d.registry, packed_circuit, model_id="0x" + "44" * 32,
                                            batch=True, rpc_url=node.url)
            for reg, c in ((plain, circuit), (batch, circuit), (packed, packed_circuit),
                           (packed_batch, packed_circuit)):
                circuit_of[reg.model_id] = c
            oracle = chain.contract("InferenceOracle", d.oracle)
            vault = chain.contract("LRTVault", d.vault)
            token = chain.contract("LRTToken", d.token)
            me = chain.account.address  # type: ignore[union-attr]
            deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
            counter = [0]

            def request(model: str) -> tuple[int, list[int], int]:
                counter[0] += 1
                x = [(counter[0] * 37 + 13 * i) % 1024 for i in range(8)]
                mid = bytes.fromhex(model[2:])
                fee = int(oracle.functions.quoteFee(mid, 0).call())
                r = chain.transact(oracle.functions.requestInference(mid, x, NO_CALLBACK, 0, deadline), value=fee)
                return int(oracle.functions.nextRequestId().call()) - 1, x, int(r["gasUsed"])

            rid, x, g_req = request(plain.model_id)
            rows.append(("requestInference (8 inputs, packed)", f"{g_req:,}"))
            p = backend.prove(circuit, x, me)
            r = chain.transact(oracle.functions.fulfill(rid, p.output_fixed, me, HexBytes(p.calldata)), gas=2_000_000)
            rows.append(("fulfill, snarkjs adapter, no callback", f"{int(r['gasUsed']):,}"))
            rid, x, _ = request(batch.model_id)
            p = backend.prove(circuit, x, me)
            r = chain.transact(oracle.functions.fulfill(rid, p.output_fixed, me, HexBytes(p.calldata)), gas=2_000_000)
            rows.append(("fulfill, batch adapter (single path), no callback", f"{int(r['gasUsed']):,}"))
            for label, reg in (("packed adapter", packed), ("packed batch adapter (single path)", packed_batch)):
                rid, x, _ = request(reg.model_id)
                p = backend.prove(packed_circuit, x, me)
                r = chain.transact(oracle.functions.fulfill(rid, p.output_fixed, me, HexBytes(p.calldata)),
                                   gas=2_000_000)
                rows.append((f"fulfill, {label}, no callback", f"{int(r['gasUsed']):,}"))

            # A light consumer callback (stores the output): the integrator's typical case.
            for label, reg, circ in (("snarkjs adapter", plain, circuit), ("packed adapter", packed, packed_circuit)):
                mid = bytes.fromhex(reg.model_id[2:])
                board = chain.deploy("ScoreBoard", d.oracle, mid)
                cb_fee = int(oracle.functions.quoteFee(mid, 100_000).call())
                x = [5, 10, 15, 20, 25, 30, 35, 40]
                chain.transact(oracle.functions.requestInference(mid, x, board, 100_000, deadline), value=cb_fee)
                rid = int(oracle.functions.nextRequestId().call()) - 1
                p = backend.prove(circ, x, me)
                r = chain.transact(oracle.functions.fulfill(rid, p.output_fixed, me, HexBytes(p.calldata)),
                                   gas=2_000_000)
                rows.append((f"fulfill + ScoreBoard callback (stores 3 outputs), {label}", f"{int(r['gasUsed']):,}"))

            # The vault: request (features + fee) and fulfil with its rebalancing callback.
            chain.transact(token.functions.mint(me, 1000 * ETH))
            chain.transact(token.functions.approve(d.vault, 1000 * ETH))
            chain.transact(vault.functions.deposit(1000 * ETH))
            chain.w3.eth.send_transaction({"from": me, "to": d.vault, "value": Wei(ETH)})
            # Both callbacks from the same vault state: snapshot, measure one, revert, the other.
            snap = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
            for label, reg in (("snarkjs adapter", plain), ("packed adapter", packed)):
                if reg is packed:
                    chain.w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]
                chain.transact(vault.functions.setRiskModel(bytes.fromhex(reg.model_id[2:])))
                r = chain.transact(vault.functions.requestRebalance())
                rows.append((f"LRTVault.requestRebalance (features + request), {label}", f"{int(r['gasUsed']):,}"))
                vid = int(oracle.functions.nextRequestId().call()) - 1
                vin = read_request(oracle, vid).input
                p = backend.prove(circuit_of[reg.model_id], vin, me)
                r = chain.transact(oracle.functions.fulfill(vid, p.output_fixed, me, HexBytes(p.calldata)),
                                   gas=3_000_000)
                rows.append((f"fulfill + LRTVault callback (re-weighting), {label}", f"{int(r['gasUsed']):,}"))

            for label, model in (("snarkjs adapter", plain.model_id), ("batch adapter", batch.model_id),
                                 ("packed adapter", packed.model_id), ("packed batch adapter", packed_batch.model_id)):
                for n in args.batch:
                    ids, outs, proofs = [], [], []
                    for _ in range(n):
                        rid, x, _ = request(model)
                        pr = backend.prove(circuit_of[model], x, me)
                        ids.append(rid)
                        outs.append(pr.output_fixed)
                        proofs.append(HexBytes(pr.calldata))
                    r = chain.transact(oracle.functions.fulfillBatch(ids, outs, me, proofs), gas=30_000_000)
                    rows.append((f"fulfillBatch x{n}, {label}: per request", f"{int(r['gasUsed']) // n:,}"))
    finally:
        backend.close()
    width = max(len(k) for k, _ in rows)
    print(f"{'operation':<{width}}  gas")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("anchors: snarkjs verify ~207k + ~7k/signal (12 signals: ~291k, 2 packed: ~221k); RISC Zero router "
          "~316k/tx; Chainlink Functions callback cap 300k")


if __name__ == "__main__":
    main()
