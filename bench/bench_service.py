"""Latency and throughput of the whole service on a local anvil chain with 1 s blocks and
1 confirmation, for the risk model (Groth16, local prover pool on this machine).

    .venv/bin/python bench/bench_service.py [--latency 30] [--throughput 300]

- latency: requests sent one every ~0.7 s; for each, the time from the block that included
  the request to the block that executed the fulfilment (and callback), from block timestamps,
  plus the wall-clock time from the request's receipt to seeing the fulfilment.
- throughput: --throughput requests sent as fast as 4 accounts can sign them; fulfilled per
  second measured from the first request block to the last fulfilment block.
Anchors: Subnet 2's circuit timeout is 60 s; Chainlink Functions' request timeout is 5 min.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402

from oracle.chain.anvil import DEV_KEYS, Anvil  # noqa: E402
from oracle.chain.client import Chain  # noqa: E402
from oracle.chain.deploy import deploy_all  # noqa: E402
from oracle.chain.registration import register_circuit  # noqa: E402
from oracle.proving.groth16 import Groth16Backend  # noqa: E402
from oracle.proving.groth16.cache import compile_cached  # noqa: E402
from oracle.service.app import OracleService  # noqa: E402
from oracle.service.config import ChainConfig, ProverConfig, RelayerSettings, ServiceConfig  # noqa: E402

NO_CALLBACK = "0x" + "00" * 20


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=int, default=30)
    ap.add_argument("--throughput", type=int, default=300)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    b = Groth16Backend(pool_size=1)
    circuit = compile_cached(
        b,
        ROOT / "models/risk/model.onnx",
        ROOT / "models/risk/calibration.json",
        ROOT / ".cache/bench-circuits/risk-groth16",
    )
    b.close()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "models").mkdir()
    (tmp / "models" / "risk").symlink_to(circuit, target_is_directory=True)
    with Anvil(block_time=1) as node:
        chain = Chain.connect(node.url, Account.from_key(DEV_KEYS[0]))
        d = deploy_all(chain)
        reg = register_circuit(chain, d.registry, circuit, rpc_url=node.url)   # local anvil: dev keys allowed
        mid = bytes.fromhex(reg.model_id[2:])
        oracle = chain.contract("InferenceOracle", d.oracle)
        fee = int(oracle.functions.quoteFee(mid, 0).call())
        cfg = ServiceConfig(
            database_url=f"sqlite:///{tmp / 'oracle.db'}",
            chains=[ChainConfig(rpc_url=node.url, oracle=d.oracle, confirmations=1, poll_interval=0.25)],
            prover=ProverConfig(models_dir=tmp / "models", workers=args.workers),
            relayer=RelayerSettings(max_batch=16),
        )
        svc = OracleService(cfg, account=Account.from_key(DEV_KEYS[5]))
        svc.start()
        try:
            accounts = [Account.from_key(k) for k in DEV_KEYS[1:5]]
            nonces = {a.address: chain.w3.eth.get_transaction_count(a.address) for a in accounts}
            lock = threading.Lock()

            def send(acct: Account, k: int, wait: bool) -> str:  # type: ignore[valid-type]
                deadline = int(time.time()) + 3600
                x = [(k * 37 + 11 * i) % 1024 for i in range(8)]
                with lock:
                    nonce = nonces[acct.address]  # type: ignore[attr-defined]
                    nonces[acct.address] += 1  # type: ignore[attr-defined]
                tx = oracle.functions.requestInference(mid, x, NO_CALLBACK, 0, deadline).build_transaction(
                    {
                        "from": acct.address,
                        "value": fee,
                        "gas": 300_000,
                        "nonce": nonce,  # type: ignore[attr-defined]
                        "chainId": chain.chain_id,
                        "maxFeePerGas": 10**11,
                        "maxPriorityFeePerGas": 10**9,
                    }
                )
                h = chain.w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)  # type: ignore[attr-defined]
                if wait:
                    chain.w3.eth.wait_for_transaction_receipt(h)
                return "0x" + bytes(h).hex()

            start_block = chain.w3.eth.block_number
            # --- latency: a watcher thread records when each fulfilment is first seen.
            seen_at: dict[int, tuple[float, int]] = {}
            stop_watch = threading.Event()

            def watch() -> None:
                scanned = start_block
                while not stop_watch.is_set():
                    head = chain.w3.eth.block_number
                    if head > scanned:
                        for e in oracle.events.InferenceFulfilled().get_logs(from_block=scanned + 1, to_block=head):
                            seen_at.setdefault(int(e["args"]["requestId"]), (time.monotonic(), int(e["blockNumber"])))
                        scanned = head
                    time.sleep(0.05)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            sent: dict[int, tuple[int, float]] = {}
            for k in range(args.latency):
                h = send(accounts[k % 4], k, wait=True)
                r = chain.w3.eth.get_transaction_receipt(h)
                ev = oracle.events.InferenceRequested().process_receipt(r)[0]
                ts = int(chain.w3.eth.get_block(r["blockNumber"])["timestamp"])
                sent[int(ev["args"]["requestId"])] = (ts, time.monotonic())
                time.sleep(0.7)
            end = time.monotonic() + 120
            while not all(rid in seen_at for rid in sent) and time.monotonic() < end:
                time.sleep(0.1)
            stop_watch.set()
            watcher.join()
            lat_block: list[float] = []
            lat_wall: list[float] = []
            for rid, (ts, wall) in sent.items():
                if rid in seen_at:
                    t_seen, blk = seen_at[rid]
                    lat_block.append(int(chain.w3.eth.get_block(blk)["timestamp"]) - ts)
                    lat_wall.append(t_seen - wall)
            print(f"latency over {len(lat_block)}/{len(sent)} requests (1 s blocks, 1 confirmation):")
            print(
                f"  request block -> fulfilment block: p50 {statistics.median(lat_block):.1f} s, "
                f"p95 {pct(lat_block, 0.95):.1f} s"
            )
            print(
                f"  request receipt -> fulfilment receipt seen (wall clock): p50 {statistics.median(lat_wall):.2f} s, "
                f"p95 {pct(lat_wall, 0.95):.2f} s"
            )

            # --- throughput
            tp_start = chain.w3.eth.block_number
            t0 = time.monotonic()
            threads = []
            per = args.throughput // 4
            for i, a in enumerate(accounts):
                th = threading.Thread(
                    target=lambda a=a, i=i: [send(a, 10_000 + i * per + k, False) for k in range(per)]
                )
                th.start()
                threads.append(th)
            for th in threads:
                th.join()
            t_sent = time.monotonic() - t0
            total = per * 4
            done: dict[int, int] = {}
            ids: set[int] = set()
            end = time.monotonic() + 600
            first_req_block = None
            scanned = tp_start
            # Incremental log reads, once a second: the measuring loop must not eat the CPU
            # the service is being measured on.
            while len(done) < total and time.monotonic() < end:
                head = chain.w3.eth.block_number
                if head > scanned:
                    reqs = oracle.events.InferenceRequested().get_logs(from_block=scanned + 1, to_block=head)
                    if reqs and first_req_block is None:
                        first_req_block = min(int(e["blockNumber"]) for e in reqs)
                    ids.update(int(e["args"]["requestId"]) for e in reqs)
                    for e in oracle.events.InferenceFulfilled().get_logs(from_block=scanned + 1, to_block=head):
                        done[int(e["args"]["requestId"])] = int(e["blockNumber"])
                    scanned = head
                time.sleep(1.0)
            done = {k: v for k, v in done.items() if k in ids}
            t_all = time.monotonic() - t0
            assert first_req_block is not None
            ts0 = int(chain.w3.eth.get_block(first_req_block)["timestamp"])
            ts1 = int(chain.w3.eth.get_block(max(done.values()))["timestamp"])
            print(
                f"throughput: {len(done)}/{total} fulfilled; sent in {t_sent:.1f} s; "
                f"first request block -> last fulfilment block {ts1 - ts0} s "
                f"= {len(done) / max(1, ts1 - ts0):.1f} requests/s (wall {t_all:.1f} s)"
            )
        finally:
            svc.stop()


if __name__ == "__main__":
    main()
