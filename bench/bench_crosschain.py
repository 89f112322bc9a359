"""What a destination-chain delivery adds: gas (request, fulfilment, delivery with its parts)
and latency (fulfilled on A -> delivered on B), for the risk model (Groth16) on two local anvil
chains with different chain ids.

    .venv/bin/python bench/bench_crosschain.py [--requests 10] [--block-time 1]

Gas: one cross-chain request on A, its fulfilment on A and its delivery on B, sent by hand with
real proofs (automine). The delivery is split with anvil's call tracer into verification (the
adapter + snarkjs verifier), the consumer callback and the rest (overhead priced by
InferenceOracle.DELIVERY_OVERHEAD_GAS).
Latency: the oracle service runs both chains (--block-time s blocks, 1 confirmation); a watcher
thread stamps, in wall-clock time, when each request's fulfilment on A and its delivery on B
first become visible.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from hexbytes import HexBytes  # noqa: E402
from web3.contract import Contract  # noqa: E402

from oracle.chain.anvil import DEV_KEYS, Anvil  # noqa: E402
from oracle.chain.client import Chain  # noqa: E402
from oracle.chain.deploy import deploy_all, deploy_cross_chain  # noqa: E402
from oracle.chain.registration import register_circuit  # noqa: E402
from oracle.chain.structs import read_model  # noqa: E402
from oracle.proving.groth16 import Groth16Backend  # noqa: E402
from oracle.proving.groth16.cache import compile_cached  # noqa: E402
from oracle.service.app import OracleService  # noqa: E402
from oracle.service.config import ChainConfig, ProverConfig, RelayerSettings, ServiceConfig  # noqa: E402

NO_CALLBACK = "0x" + "00" * 20
DST_GAS = 300_000
CHAIN_B = 31338


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


class Setup:
    """Both chains deployed, the model registered on both, inbox + consumer on B."""

    def __init__(self, a: Chain, b: Chain, circuit: Path) -> None:
        self.a, self.b = a, b
        self.da, self.db = deploy_all(a), deploy_all(b)
        # Dev-keys circuits: A is a local anvil (its URL says so); B's chain id (31338) is not a
        # development id, so registering there needs the explicit override.
        reg_a = register_circuit(a, self.da.registry, circuit, rpc_url=str(a.w3.provider.endpoint_uri))  # type: ignore[attr-defined]
        register_circuit(b, self.db.registry, circuit, rpc_url=str(b.w3.provider.endpoint_uri),  # type: ignore[attr-defined]
                         allow_dev_keys_on_public_chain=True)
        self.model_id = bytes.fromhex(reg_a.model_id[2:])
        x = deploy_cross_chain(b, self.db.registry)
        assert b.account is not None
        self.inbox: Contract = b.contract("CrossChainInbox", x.inbox)
        self.results: Contract = b.contract("ProvenResults", x.proven_results)
        consumer = b.deploy("CommittedInputConsumer", x.inbox, self.model_id, b.account.address)
        self.consumer: Contract = b.contract("CommittedInputConsumer", consumer)
        self.oracle_a: Contract = a.contract("InferenceOracle", self.da.oracle)
        a.transact(self.oracle_a.functions.setDestination(b.chain_id, True))

    def request_to(self, x: list[int]) -> tuple[int, int]:
        self.b.transact(self.consumer.functions.expect(x))
        fee = int(self.oracle_a.functions.quoteFeeTo(self.model_id, DST_GAS).call())
        deadline = int(self.a.w3.eth.get_block("latest")["timestamp"]) + 3600
        r = self.a.transact(self.oracle_a.functions.requestInferenceTo(
            self.b.chain_id, self.consumer.address, self.model_id, x, DST_GAS, deadline), value=fee)
        return int(self.oracle_a.functions.nextRequestId().call()) - 1, int(r["gasUsed"])


def _input(k: int) -> list[int]:
    return [(k * 71 + 37 * i) % 1024 for i in range(8)]


def _frames(trace: dict[str, Any]) -> list[dict[str, Any]]:
    out = [trace]
    for c in trace.get("calls", []) or []:
        out += _frames(c)
    return out


def gas_figures(circuit: Path, backend: Groth16Backend) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with Anvil() as na, Anvil(chain_id=CHAIN_B) as nb:
        key = Account.from_key(DEV_KEYS[0])
        s = Setup(Chain.connect(na.url, key), Chain.connect(nb.url, key), circuit)
        a, b = s.a, s.b
        deadline = int(a.w3.eth.get_block("latest")["timestamp"]) + 3600
        fee0 = int(s.oracle_a.functions.quoteFee(s.model_id, 0).call())
        # Twice: the first request ever also pays for zero -> non-zero escrow totals.
        for k in (0, 1):
            r = a.transact(s.oracle_a.functions.requestInference(s.model_id, _input(k), NO_CALLBACK, 0, deadline),
                           value=fee0)
        g_plain = int(r["gasUsed"])
        x = _input(2)
        rid, g_to = s.request_to(x)
        rows.append(("A: requestInference (plain, no callback)", f"{g_plain:,}"))
        rows.append(("A: requestInferenceTo (+ CrossChainRequested, target slot)", f"{g_to:,} (+{g_to - g_plain:,})"))
        assert a.account is not None
        payee = a.account.address                  # the payee the proof names (credited on A only)
        p = backend.prove(circuit, x, payee)
        r = a.transact(s.oracle_a.functions.fulfill(rid, p.output_fixed, payee, HexBytes(p.calldata)), gas=2_000_000)
        rows.append(("A: fulfill (no callback; same as a plain request)", f"{int(r['gasUsed']):,}"))
        relayer = Chain(w3=b.w3, account=Account.from_key(DEV_KEYS[3]), artifacts=b.artifacts)
        inbox = relayer.contract("CrossChainInbox", s.inbox.address)
        msg = (a.chain_id, s.da.oracle, rid, s.model_id, s.consumer.address, DST_GAS, payee)
        r = relayer.transact(inbox.functions.deliver(msg, x, p.output_fixed, HexBytes(p.calldata)), gas=2_000_000)
        g_deliver = int(r["gasUsed"])
        rows.append(("B: deliver (verify + CommittedInputConsumer callback)", f"{g_deliver:,}"))
        trace = b.w3.provider.make_request("debug_traceTransaction",  # type: ignore[arg-type]
                                           [r["transactionHash"].to_0x_hex(), {"tracer": "callTracer"}])["result"]
        frames = _frames(trace)
        adapter = read_model(b.contract("ModelRegistry", s.db.registry), s.model_id).verifier.lower()
        verify = sum(int(f["gasUsed"], 16) for f in frames if f.get("to", "").lower() == adapter)
        callback = sum(int(f["gasUsed"], 16) for f in frames if f.get("to", "").lower() == s.consumer.address.lower())
        overhead = g_deliver - verify - callback
        rows.append(("  of which verification (adapter + snarkjs verifier)", f"{verify:,}"))
        rows.append(("  of which consumer callback", f"{callback:,}"))
        rows.append(("  of which the rest (21k base, calldata, replay slot, event, registry reads)",
                     f"{overhead:,}  (priced: DELIVERY_OVERHEAD_GAS "
                     f"{int(s.oracle_a.functions.DELIVERY_OVERHEAD_GAS().call()):,})"))
        fee_plain = int(s.oracle_a.functions.quoteFee(s.model_id, 0).call())
        fee_to = int(s.oracle_a.functions.quoteFeeTo(s.model_id, DST_GAS).call())
        gp = int(s.oracle_a.functions.gasPrice().call())
        rows.append((f"fee quote at {gp / 1e9:g} gwei/gas: plain / cross-chain ({DST_GAS:,} dst gas)",
                     f"{fee_plain / 1e9:,.0f} / {fee_to / 1e9:,.0f} gwei; delivery priced "
                     f"{(fee_to - fee_plain) // gp:,} gas for {g_deliver:,} used (callback budget {DST_GAS:,})"))
        r = relayer.transact(relayer.contract("ProvenResults", s.results.address).functions.submit(
            s.model_id, x, p.output_fixed, payee, HexBytes(p.calldata)), gas=2_000_000)
        rows.append(("B: ProvenResults.submit (same proof, 3 outputs stored)", f"{int(r['gasUsed']):,}"))
        got = s.results.functions.provenOutput(s.model_id, x).call()
        read = b.w3.eth.estimate_gas({"to": s.results.address,
                                      "data": s.results.encode_abi("provenOutput", [s.model_id, x])})
        rows.append(("B: provenOutput(modelId, input) read (eth_estimateGas, incl. 21k base)",
                     f"{int(read):,}  proven={got[1]}"))
    return rows


def latency_figures(circuit: Path, n: int, block_time: float) -> list[tuple[str, str]]:
    with Anvil(block_time=block_time) as na, Anvil(chain_id=CHAIN_B, block_time=block_time) as nb, \
            tempfile.TemporaryDirectory() as tmp:
        key = Account.from_key(DEV_KEYS[0])
        s = Setup(Chain.connect(na.url, key), Chain.connect(nb.url, key), circuit)
        models = Path(tmp) / "models"
        models.mkdir()
        (models / circuit.name).symlink_to(circuit.resolve(), target_is_directory=True)
        cfg = ServiceConfig(
            database_url=f"sqlite:///{tmp}/oracle.db",
            chains=[ChainConfig(name="A", rpc_url=na.url, oracle=s.da.oracle),
                    ChainConfig(name="B", rpc_url=nb.url, oracle=s.db.oracle, inbox=s.inbox.address)],
            prover=ProverConfig(models_dir=models, workers=2),
            relayer=RelayerSettings(stuck_after=10.0),
        )
        seen_a: dict[int, float] = {}
        seen_b: dict[int, float] = {}
        sent: dict[int, float] = {}
        stop = threading.Event()

        def watch() -> None:
            # Own connections: the watcher must not share web3 sessions with the sender.
            oa = Chain.connect(na.url).contract("InferenceOracle", s.da.oracle)
            ib = Chain.connect(nb.url).contract("CrossChainInbox", s.inbox.address)
            fa = oa.events.InferenceFulfilled()
            fb = ib.events.CrossChainDelivered()
            while not stop.is_set():
                now = time.perf_counter()
                for e in fa.get_logs(from_block=0):
                    seen_a.setdefault(int(e["args"]["requestId"]), now)
                for e in fb.get_logs(from_block=0):
                    seen_b.setdefault(int(e["args"]["requestId"]), now)
                time.sleep(0.05)

        svc = OracleService(cfg, account=Account.from_key(DEV_KEYS[5]))
        svc.start()
        t = threading.Thread(target=watch, daemon=True)
        t.start()
        try:
            for k in range(n):
                rid, _ = s.request_to(_input(100 + k))
                sent[rid] = time.perf_counter()
                time.sleep(0.7)
            end = time.monotonic() + 180
            while time.monotonic() < end and not all(r in seen_b for r in sent):
                time.sleep(0.2)
        finally:
            stop.set()
            t.join()
            svc.stop()
        done = [r for r in sent if r in seen_a and r in seen_b]
        to_a = [seen_a[r] - sent[r] for r in done]
        extra = [seen_b[r] - seen_a[r] for r in done]
        total = [seen_b[r] - sent[r] for r in done]
        return [
            (f"requests delivered ({block_time:g} s blocks on both chains, 1 confirmation)", f"{len(done)}/{n}"),
            ("request receipt on A -> fulfilled on A (wall): p50 / p95",
             f"{statistics.median(to_a):.2f} / {pct(to_a, 0.95):.2f} s"),
            ("fulfilled on A -> delivered on B (wall), the cross-chain extra: p50 / p95",
             f"{statistics.median(extra):.2f} / {pct(extra, 0.95):.2f} s"),
            ("request receipt on A -> delivered on B (wall): p50 / p95",
             f"{statistics.median(total):.2f} / {pct(total, 0.95):.2f} s"),
        ] if done else [("requests delivered", f"0/{n}")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--block-time", type=float, default=1.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    backend = Groth16Backend(pool_size=1)
    try:
        circuit = compile_cached(backend, ROOT / "models/risk/model.onnx", ROOT / "models/risk/calibration.json",
                                 ROOT / ".cache/bench-circuits/risk-groth16")
        rows = gas_figures(circuit, backend)
    finally:
        backend.close()
    rows += latency_figures(circuit, args.requests, args.block_time)
    width = max(len(k) for k, _ in rows)
    print(f"{'cross-chain (risk model, Groth16, 2 anvil chains)':<{width}}  value")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
