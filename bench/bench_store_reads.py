"""What one read of the store's reports costs as the history grows: the ``/metrics`` scrape
(``StoreCollector``: counts by state, three histograms, give-up reasons), a model page's
measured figures (``GET /api/v1/models/{id}``: proving-time p50/p95, gas p50/max) and one
dashboard snapshot (``/dashboard/events``: every request of the last hour here, as the store is
filled just before).

    .venv/bin/python bench/bench_store_reads.py [--sizes 1000 10000 100000] [--runs 5]
                                                [--db sqlite|postgres|postgresql://...]

The store is filled through the repo's own write functions (seen -> confirmed -> dispatched ->
proven with a proof -> verified -> submitted -> fulfilled by a mined transaction; one in four
transactions a batch of four), one model, proving times and gas drawn at random. Then, at each
size, each read runs ``--runs`` times and the median is printed, next to what the same figures
cost when every row is read into Python and sorted there (what the catalog did before the
database computed them; the scrape's own "before" is in the git history, 1,331 ms at 100 k).

Progress goes to stderr, figures to stdout.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_gateway import database  # noqa: E402

from oracle.gateway.metrics import StoreCollector  # noqa: E402
from oracle.gateway.portal.dashboard import snapshot  # noqa: E402
from oracle.store import repo  # noqa: E402
from oracle.store.db import Database  # noqa: E402
from oracle.store.models import Proof, RelayerTx, Request, State  # noqa: E402

ORACLE = "0x" + "11" * 20
ACCOUNT = "0x" + "22" * 20
MODEL = "0x" + "ab" * 32
CIRCUIT = "0x" + "cd" * 32
LIFE = (State.CONFIRMED, State.DISPATCHED, State.PROVEN)


def fill(db: Database, start: int, stop: int, rng: random.Random) -> None:
    """Requests ``start..stop-1``, fulfilled (a chunk's last few stay submitted, in flight),
    committed in chunks of 2,000."""
    chunk = 2000
    for lo in range(start, stop, chunk):
        with db.session() as s:
            batch: list[Request] = []      # submitted, waiting for their transaction
            for rid in range(lo, min(stop, lo + chunk)):
                req = repo.record_seen(s, repo.SeenRequest(
                    chain_id=31337, oracle=ORACLE, request_id=rid, model_id=MODEL, requester=ACCOUNT, input=[1, 2],
                    callback=ACCOUNT, callback_gas_limit=100_000, deadline=2**40, fee=0, block_number=rid,
                    block_hash="0x" + "00" * 32, tx_hash="0x" + f"{rid:064x}", log_index=0))
                assert req is not None
                for st in LIFE:
                    repo.transition(s, req, st)
                repo.save_proof(s, req, Proof(circuit_id=CIRCUIT, backend="groth16", output=["5"], calldata="0x",
                                              public_signals=["1"], prover="m", prove_seconds=rng.lognormvariate(0, 1)))
                repo.transition(s, req, State.VERIFIED)
                repo.transition(s, req, State.SUBMITTED)
                batch.append(req)
                if len(batch) == 4 or rng.random() < 0.75:
                    kind = "fulfillBatch" if len(batch) > 1 else "fulfill"
                    tx = repo.add_tx(s, RelayerTx(
                        chain_id=31337, account=ACCOUNT, nonce=rid, kind=kind,
                        request_pks=[r.id for r in batch], tx_hash="0x" + f"{rid:064x}", raw_tx="0x", to=ORACLE,
                        data="0x", gas_limit=10**6, max_fee="1", priority_fee="1", status="confirmed",
                        gas_used=rng.randint(250_000, 300_000) * len(batch), sent_at=time.time()))
                    for r in batch:
                        repo.record_fulfilment(s, r, "mined", tx_hash=tx.tx_hash, block_number=rid)
                    batch = []
        print(f"  filled {min(stop, lo + chunk):,} / {stop:,}", file=sys.stderr, flush=True)


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def scrape(db: Database) -> int:
    return sum(1 for _ in StoreCollector(db).collect())


def figures_in_db(db: Database) -> tuple[object, object]:
    with db.session() as s:
        return repo.prove_seconds_spread(s, CIRCUIT), repo.fulfil_gas_spread(s, MODEL)


def figures_in_python(db: Database) -> tuple[object, object]:
    with db.session() as s:
        prove = sorted(repo.prove_seconds(s, CIRCUIT))
        gas = sorted(repo.fulfil_gas(s, MODEL))
    k = round(0.5 * (len(prove) - 1))
    return (len(prove), prove[k], prove[round(0.95 * (len(prove) - 1))]), (len(gas), statistics.median(gas), max(gas))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--db", default="sqlite", help="sqlite (default), postgres (throwaway embedded server) or a "
                                                    "postgresql:// URL")
    a = ap.parse_args()
    if min(a.sizes) < 1 or a.runs < 1:
        ap.error("--sizes and --runs must be at least 1 (a size is a number of fulfilled requests)")
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp, database(a.db, Path(tmp)) as url:
        db = Database(url)
        try:
            print(f"store: {db.engine.dialect.name}; median of {a.runs} reads", flush=True)
            print(f"{'requests':>9} | {'/metrics store read':>19} | {'model figures (db)':>18} | "
                  f"{'model figures (rows in Python)':>30} | {'dashboard snapshot':>18}")
            have = 0
            for n in sorted(a.sizes):
                fill(db, have, n, rng)
                have = n
                scrape(db)                                 # warm the page cache and the plans
                db_spread = figures_in_db(db)
                py = figures_in_python(db)
                prove, gas = db_spread
                assert prove.count == py[0][0] and gas.count == py[1][0], (db_spread, py)  # type: ignore[attr-defined]
                print(f"{n:>9,} | {median_ms(lambda: scrape(db), a.runs):>16.1f} ms | "
                      f"{median_ms(lambda: figures_in_db(db), a.runs):>15.1f} ms | "
                      f"{median_ms(lambda: figures_in_python(db), a.runs):>27.1f} ms | "
                      f"{median_ms(lambda: snapshot(db), a.runs):>15.1f} ms", flush=True)
        finally:
            db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
