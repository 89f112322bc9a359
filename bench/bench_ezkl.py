"""EZKL (Halo2-KZG) figures per model: logrows, setup time, proving time (median of N), verify
time, proof size, key sizes, and the gas of one on-chain verifyProof on a local anvil.

    .venv/bin/python bench/bench_ezkl.py [--models mlp risk digits] [--runs 5] [--no-chain]

"mlp" is the test model (8 -> 16 -> Relu -> 3 -> Sigmoid, tests/ezkl_model.py); the others are
models/<name>/model.onnx with their calibration.json. Each is compiled fresh into
build/bench/<name>-ezkl (the dev SRS is reused from .cache/srs, so the setup figure is
EZKL's key generation for the circuit).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle.circuits.fixedpoint import to_field  # noqa: E402
from oracle.circuits.manifest import Manifest  # noqa: E402
from oracle.proving.base import CompileOptions, Proof  # noqa: E402
from oracle.proving.ezkl import EzklBackend  # noqa: E402

VERIFY_GAS = 3_000_000


def _sources(name: str, work: Path) -> tuple[Path, Path]:
    if name == "mlp":
        from tests.ezkl_model import calibration_json, mlp_onnx_bytes

        work.mkdir(parents=True, exist_ok=True)
        (work / "model.onnx").write_bytes(mlp_onnx_bytes())
        (work / "calibration.json").write_bytes(calibration_json())
        return work / "model.onnx", work / "calibration.json"
    d = ROOT / "models" / name
    return d / "model.onnx", d / "calibration.json"


def _sample_inputs(m: Manifest, calibration: Path, n: int) -> list[list[int]]:
    raw = json.loads(calibration.read_text())
    xs = np.asarray(raw["input"] if isinstance(raw, dict) else raw, dtype=np.float64)
    xs = xs.reshape(-1, m.input_size)
    idx = np.linspace(0, len(xs) - 1, num=min(n, len(xs))).astype(int)
    return [[int(v) for v in np.round(xs[i] * (1 << m.input_scale))] for i in idx]


def _onchain_gas(circuit: Path, m: Manifest, proof: Proof) -> dict[str, int]:
    from eth_account import Account
    from web3 import Web3

    from oracle.chain.anvil import DEV_KEYS, Anvil

    art = json.loads(m.path(circuit, "verifier_json").read_text())
    acct = Account.from_key(DEV_KEYS[0])
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))

        def send(tx: dict[str, Any]) -> Any:
            tx.update(nonce=w3.eth.get_transaction_count(acct.address),
                      gasPrice=w3.eth.gas_price, chainId=w3.eth.chain_id)
            h = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
            return w3.eth.wait_for_transaction_receipt(h)

        r = send({"from": acct.address, "data": art["bytecode"], "gas": 8_000_000})
        assert r["status"] == 1, "verifier deployment failed"
        v = w3.eth.contract(address=r["contractAddress"], abi=art["abi"])
        pb = bytes.fromhex(proof.calldata[2:])
        inst = [to_field(x) for x in [*proof.input_fixed, *proof.output_fixed]]
        assert v.functions.verifyProof(pb, inst).call({"gas": VERIFY_GAS}) is True
        tx = v.functions.verifyProof(pb, inst).build_transaction(
            {"from": acct.address, "gas": VERIFY_GAS, "nonce": 0, "gasPrice": 0, "chainId": 1})
        rv = send({k: tx[k] for k in ("from", "to", "data", "gas")})
        assert rv["status"] == 1
        return {"deploy_gas": int(r["gasUsed"]), "verify_tx_gas": int(rv["gasUsed"])}


def bench(backend: EzklBackend, name: str, runs: int, chain: bool) -> dict[str, Any]:
    out = ROOT / "build" / "bench" / f"{name}-ezkl"
    onnx_path, calib = _sources(name, ROOT / "build" / "bench" / "src" / name)
    t0 = time.monotonic()
    m = backend.compile(onnx_path, out, CompileOptions(calibration=calib, name=name))
    compile_s = time.monotonic() - t0
    inputs = _sample_inputs(m, calib, runs)
    backend.prove(out, inputs[0])                       # warm-up (page cache, tables)
    prove_s: list[float] = []
    proofs: list[Proof] = []
    for i in range(runs):
        t0 = time.monotonic()
        proofs.append(backend.prove(out, inputs[i % len(inputs)]))
        prove_s.append(time.monotonic() - t0)
    verify_s: list[float] = []
    for p in proofs:
        t0 = time.monotonic()
        assert backend.verify(out, p)
        verify_s.append(time.monotonic() - t0)
    res: dict[str, Any] = {
        "model": name,
        "inputs/outputs": f"{m.input_size}/{m.output_size}",
        "scales in/out": f"{m.input_scale}/{m.output_scale}",
        "bits in/out": f"{m.input_bits}/{m.output_bits}",
        "logrows": m.stats["logrows"],
        "compile s": round(compile_s, 1),
        "setup s": m.stats["setup_seconds"],
        "prove s (median)": round(statistics.median(prove_s), 2),
        "prove s (min/max)": f"{min(prove_s):.2f}/{max(prove_s):.2f}",
        "verify s (median)": round(statistics.median(verify_s), 3),
        "proof bytes": len(proofs[0].calldata) // 2 - 1,
        "pk MB": round(m.stats["pk_bytes"] / 1e6, 1),
        "vk KB": round(m.stats["vk_bytes"] / 1e3, 1),
        "srs MB": round(m.stats["srs_bytes"] / 1e6, 1),
        "verifier runtime bytes": m.stats["verifier_runtime_bytes"],
        "lookup overflows at input edges":
            f"{m.settings['input_range_probe']['lookup_overflows']}/"
            f"{m.settings['input_range_probe']['probes']}",
    }
    if chain:
        res.update(_onchain_gas(out, m, proofs[0]))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mlp"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-chain", action="store_true", help="skip the anvil gas measurement")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    backend = EzklBackend()
    for name in args.models:
        res = bench(backend, name, args.runs, not args.no_chain)
        print(f"== {name} (ezkl) ==")
        width = max(len(k) for k in res)
        for k, v in res.items():
            print(f"  {k:<{width}}  {v}")


if __name__ == "__main__":
    main()
