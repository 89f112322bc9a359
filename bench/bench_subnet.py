"""Subnet dispatch cost: signing, HTTP and verification per request vs the proving itself, and
throughput with 1, 2 and 3 local miners (real ``oracle miner`` processes, real Groth16 proofs of
the 8-input risk model).

    .venv/bin/python bench/bench_subnet.py [--requests 60] [--k 1]

On a 2-core machine the miners, their snarkjs prover daemons and the validator's verifier all
share the same two cores: more miners cannot add throughput here; the figures show the
dispatch overhead and that it scales, not what three real machines would do.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bittensor import http_auth  # noqa: E402

from oracle.circuits.catalog import CircuitCatalog  # noqa: E402
from oracle.dispatch.provers import LocalProver, ProveResult, verify_offchain  # noqa: E402
from oracle.proving.groth16 import Groth16Backend  # noqa: E402
from oracle.proving.groth16.cache import compile_cached  # noqa: E402
from oracle.subnet import protocol as P  # noqa: E402
from oracle.subnet.auth import hotkey_of, load_or_create_wallet  # noqa: E402
from oracle.subnet.config import SubnetConfig  # noqa: E402
from oracle.subnet.local import start_local_miners, stop_local_miners  # noqa: E402
from oracle.subnet.metagraph import LocalMetagraph, write_local_metagraph  # noqa: E402
from oracle.subnet.validator import SubnetProver  # noqa: E402

log = logging.getLogger("bench_subnet")
# The fee recipient every proof is made for (the risk circuit binds it): any address will do.
PAYEE = "0x00000000000000000000000000000000000a11ce"


def ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:7.1f} ms (p90 {sorted(xs)[int(len(xs) * 0.9)] * 1000:6.1f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--k", type=int, default=1, help="miners asked per request in the throughput runs")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    backend = Groth16Backend(pool_size=2)
    circuit_dir = compile_cached(backend, ROOT / "models/risk/model.onnx", ROOT / "models/risk/calibration.json",
                                 ROOT / ".cache/bench-circuits/risk-groth16")
    backend.close()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="bench-subnet-") as tmp:
        base = Path(tmp)
        models = base / "models"
        models.mkdir()
        (models / "risk").symlink_to(circuit_dir, target_is_directory=True)
        catalog = CircuitCatalog.scan(models)
        circuit = catalog.get(catalog.ids()[0])
        assert circuit is not None
        m = circuit.manifest
        lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1

        def rand_input() -> list[int]:
            return [rng.randint(lo, hi) for _ in range(m.input_size)]

        def run(sp: SubnetProver, count: int, threads: int) -> list[ProveResult]:
            with ThreadPoolExecutor(threads) as ex:
                return list(ex.map(lambda _: sp.prove(circuit, rand_input(), timeout=60, payee=PAYEE), range(count)))

        wallet = load_or_create_wallet("validator", base / "wallets")
        print(f"machine: {os.cpu_count()} cores; circuit {m.name} ({m.stats.get('constraints')} constraints)")

        # ---- the parts, in this process
        local = LocalProver()
        local.prove(circuit, rand_input(), timeout=60, payee=PAYEE)        # warm the prover daemons
        prove_t, verify_t, proofs = [], [], []
        for _ in range(30):
            x = rand_input()
            t0 = time.perf_counter()
            r = local.prove(circuit, x, timeout=60, payee=PAYEE)
            prove_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            assert verify_offchain(circuit, r.proof, x, PAYEE) is None
            verify_t.append(time.perf_counter() - t0)
            proofs.append(r)
        miner_key = load_or_create_wallet("other", base / "wallets")
        body = P.dumps(P.ProveRequest(request_id="x" * 32, circuit_id=circuit.circuit_id, input_fixed=rand_input(),
                                       payee=PAYEE))
        sign_t, check_t = [], []
        store = http_auth.InMemoryNonceStore()
        for _ in range(200):
            t0 = time.perf_counter()
            h = http_auth.sign(wallet, method="POST", path=P.PROVE_PATH, body=body, receiver_ss58=hotkey_of(miner_key))
            sign_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            http_auth.verify(h, body, method="POST", path=P.PROVE_PATH, self_hotkey_ss58=hotkey_of(miner_key),
                             nonce_store=store)
            check_t.append(time.perf_counter() - t0)
        print("\nper-request parts (median, p90):")
        print(f"  local prove (snarkjs daemon)      {ms(prove_t)}")
        print(f"  off-chain verify                  {ms(verify_t)}")
        print(f"  http_auth.sign                    {ms(sign_t)}")
        print(f"  http_auth.verify                  {ms(check_t)}")

        # ---- through the subnet
        miners = start_local_miners(3, models, hotkey_of(wallet), base_dir=base / "miners", workers=2)
        try:
            mg_file = base / "one.json"
            write_local_metagraph(mg_file, [miners[0].info])
            cfg = SubnetConfig(metagraph=mg_file, k=1, exploration=0.0, miner_timeout=30)
            sp = SubnetProver(wallet, LocalMetagraph(mg_file), cfg)
            sp.prove(circuit, rand_input(), timeout=60, payee=PAYEE)          # warm the miner's daemons
            e2e, remote_prove = [], []
            for _ in range(30):
                t0 = time.perf_counter()
                r = sp.prove(circuit, rand_input(), timeout=60, payee=PAYEE)
                e2e.append(time.perf_counter() - t0)
                remote_prove.append(r.proof.prove_seconds)
            sp.close()
            overhead = [a - b for a, b in zip(e2e, remote_prove, strict=True)]
            print("\none miner, k=1, sequential:")
            print(f"  end to end                        {ms(e2e)}")
            print(f"  of which the miner's proving      {ms(remote_prove)}")
            print(f"  dispatch overhead                 {ms(overhead)}   "
                  "(sign, HTTP, miner auth + JSON, answer signature, verification)")

            print(f"\nthroughput, {args.requests} requests, k={args.k}, 2 workers per miner, "
                  "4 concurrent requests per miner:")
            # The baseline: the dispatcher's LocalProver with this process's 2-daemon pool.
            with ThreadPoolExecutor(4) as ex:
                t0 = time.perf_counter()
                list(ex.map(lambda _: local.prove(circuit, rand_input(), timeout=60, payee=PAYEE),
                            range(args.requests)))
                base_rate = args.requests / (time.perf_counter() - t0)
            print(f"  local prover (no subnet)          {base_rate:6.1f} proofs/s")
            for n in (1, 2, 3):
                mg_file = base / f"mg{n}.json"
                write_local_metagraph(mg_file, [mm.info for mm in miners[:n]])
                cfg = SubnetConfig(metagraph=mg_file, k=min(args.k, n), exploration=0.0, miner_timeout=30)
                sp = SubnetProver(wallet, LocalMetagraph(mg_file), cfg)
                run(sp, 4 * n, 4 * n)                        # warm-up round (connections, capacities)
                t0 = time.perf_counter()
                results = run(sp, args.requests, 4 * n)
                rate = args.requests / (time.perf_counter() - t0)
                by = {mm.hotkey: sum(1 for r in results if r.prover == mm.hotkey) for mm in miners[:n]}
                sp.close()
                print(f"  {n} miner(s)                        {rate:6.1f} proofs/s   "
                      f"(split {sorted(by.values(), reverse=True)})")
        finally:
            stop_local_miners(miners)
            from oracle.proving.registry import close_backends
            close_backends()


if __name__ == "__main__":
    main()
