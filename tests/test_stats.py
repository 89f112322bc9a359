"""The dashboard's read-only series (oracle/store/repo/stats.py) on a real store, SQLite and
PostgreSQL: requests moved through their life cycle by the repo's own transitions, a proof,
relayer transactions and nonces."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import Proof, RelayerTx, Request, State
from oracle.store.repo import stats

ORACLE = "0x" + "11" * 20
ACCOUNT = "0x" + "22" * 20


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'stats.db'}"
    else:
        url = str(request.getfixturevalue("postgres").create_database())
    d = Database(url)
    yield d
    d.dispose()


def _seen(s: object, rid: int) -> Request:
    ev = repo.SeenRequest(chain_id=31337, oracle=ORACLE, request_id=rid, model_id="0x" + "ab" * 32,
                          requester=ACCOUNT, input=[1, 2], callback=ACCOUNT, callback_gas_limit=100_000,
                          deadline=2**40, fee=0, block_number=rid, block_hash="0x" + "00" * 32,
                          tx_hash="0x" + f"{rid:064x}", log_index=0)
    req = repo.record_seen(s, ev)  # type: ignore[arg-type]
    assert req is not None
    return req


def _walk(s: object, req: Request, *states: State) -> None:
    for st in states:
        repo.transition(s, req, st, reason=f"to {st.value}" if st in (State.REJECTED, State.FAILED) else None)  # type: ignore[arg-type]


def _tx(nonce: int, kind: str, pks: list[int], status: str, gas: int | None) -> RelayerTx:
    return RelayerTx(chain_id=31337, account=ACCOUNT, nonce=nonce, kind=kind, request_pks=pks,
                     tx_hash="0x" + f"{nonce:064x}", raw_tx="0x", to=ORACLE, data="0x", gas_limit=10**6,
                     max_fee="1", priority_fee="1", status=status, gas_used=gas, sent_at=time.time())


def test_series(db: Database) -> None:
    t0 = time.time() - 1
    with db.session() as s:
        done, rejected, failed, waiting = (_seen(s, i) for i in (1, 2, 3, 4))
        _walk(s, done, State.CONFIRMED, State.DISPATCHED, State.PROVEN)
        repo.save_proof(s, done, Proof(circuit_id="0x" + "cd" * 32, backend="groth16", output=["5"], calldata="0x",
                                       public_signals=["1"], prover="miner-a", prove_seconds=0.75))
        _walk(s, done, State.VERIFIED, State.SUBMITTED)
        repo.add_tx(s, _tx(0, "fulfillBatch", [done.id, 99], "confirmed", 300_001))
        repo.add_tx(s, _tx(1, "fulfill", [4], "pending", None))
        assert repo.reserve_nonce(s, 31337, ACCOUNT, 0) == 0
        assert repo.reserve_nonce(s, 31337, ACCOUNT, 0) == 1
        repo.record_fulfilment(s, done, "mined", tx_hash="0x" + f"{0:064x}", block_number=9)
        _walk(s, rejected, State.CONFIRMED, State.REJECTED)
        _walk(s, failed, State.CONFIRMED, State.DISPATCHED, State.FAILED)
        _walk(s, waiting, State.CONFIRMED)

    with db.session() as s:
        timings = stats.request_timings(s, t0)
        assert [t.pk for t in timings] == sorted(t.pk for t in timings) and len(timings) == 4
        by_pk = {t.pk: t for t in timings}
        d = by_pk[done.id]
        assert d.state == "fulfilled" and d.origin == "chain"
        assert d.proven_at is not None and d.fulfilled_at is not None
        assert t0 <= d.created_at <= d.proven_at <= d.fulfilled_at <= time.time() + 1
        assert by_pk[waiting.id].proven_at is None and by_pk[waiting.id].fulfilled_at is None
        assert stats.request_timings(s, time.time() + 60) == []          # nothing after "since"
        assert [t.pk for t in stats.request_timings(s, t0, limit=2)] == [failed.id, waiting.id]  # the newest

        [p] = stats.proof_timings(s, t0)
        assert (p.seconds, p.prover) == (0.75, "miner-a")

        [g] = stats.fulfilment_gas(s, t0)          # the pending tx has no gas yet
        assert (g.kind, g.requests, g.gas_per_request, g.chain_id) == ("fulfillBatch", 2, 150_000, 31337)

        reasons = {(r.state, r.reason): r.count for r in stats.give_up_reasons(s)}
        assert reasons == {("rejected", "to rejected"): 1, ("failed", "to failed"): 1}

        [acct] = stats.relayer_accounts(s)
        assert (acct.chain_id, acct.account, acct.next_nonce, acct.open_txs) == (31337, ACCOUNT, 2, 1)


def test_metric_histograms_are_bucketed_by_the_database(db: Database) -> None:
    """``/metrics`` histograms come from one aggregate query each (not every row read into
    Python): they equal the same histograms computed from the rows themselves."""
    import random
    from datetime import timedelta

    from oracle.gateway.metrics import GAS_BUCKETS, LATENCY_BUCKETS, PROVE_BUCKETS

    rng = random.Random(7)
    with db.session() as s:
        reqs = [_seen(s, 100 + i) for i in range(40)]
        for i, req in enumerate(reqs):
            _walk(s, req, State.CONFIRMED, State.DISPATCHED, State.PROVEN)
            # Latency set exactly (created this long before it was proven), away from every bucket
            # bound: with the box's own delay added, a value within 1 ms of a bound fell on either
            # side (SQLite's julianday keeps milliseconds, Python microseconds).
            proven_at = next(c.at for c in repo.history(s, req.id) if c.to_state == State.PROVEN.value)
            req.created_at = proven_at - timedelta(seconds=rng.choice([0.1, 0.7, 3.0, 45.0, 65.0, 400.0]))
            repo.save_proof(s, req, Proof(circuit_id="0x" + "cd" * 32, backend="groth16", output=["5"], calldata="0x",
                                          public_signals=["1"], prover="m", prove_seconds=rng.uniform(0.001, 40)))
            if i % 4 == 3:       # a batch of the last 1-4 requests, or a single fulfil
                pks = [r.id for r in reqs[i - rng.randint(0, 3): i + 1]]
                tx = _tx(i, "fulfillBatch" if len(pks) > 1 else "fulfill", pks, "confirmed",
                         rng.randint(90_000, 2_500_000))
                repo.add_tx(s, tx)
                for r in reqs:
                    if r.id in pks and r.state == State.PROVEN.value:
                        _walk(s, r, State.VERIFIED, State.SUBMITTED)
                        repo.record_fulfilment(s, r, "mined", tx_hash=tx.tx_hash, block_number=i)
        _walk(s, _seen(s, 999), State.CONFIRMED, State.REJECTED)
        _walk(s, _seen(s, 998), State.CONFIRMED, State.REJECTED)

    def expected(values: list[float], buckets: tuple[float, ...]) -> tuple[list[int], int, float]:
        return [sum(1 for v in values if v <= b) for b in buckets], len(values), sum(values)

    def same(h: repo.Histogram | None, values: list[float], buckets: tuple[float, ...]) -> None:
        assert h is not None
        cum, n, total = expected(values, buckets)
        assert (h.cumulative, h.count) == (cum, n)
        assert h.total == pytest.approx(total, rel=1e-6)

    with db.session() as s:
        timings = [t for t in stats.request_timings(s, 0) if t.proven_at is not None]
        lat = [max(0.0, t.proven_at - t.created_at) for t in timings if t.proven_at is not None]
        assert len(lat) == 40 and len({b for b in LATENCY_BUCKETS if any(v <= b for v in lat)}) > 5
        same(repo.submit_to_proven_histograms(s, LATENCY_BUCKETS)["chain"], lat, LATENCY_BUCKETS)
        same(repo.prove_seconds_histogram(s, PROVE_BUCKETS), repo.prove_seconds(s), PROVE_BUCKETS)
        gas = [float(g) for g in repo.fulfil_gas(s)]
        assert len(gas) >= 10
        same(repo.fulfil_gas_histogram(s, GAS_BUCKETS), gas, GAS_BUCKETS)
        assert sorted(repo.given_up_counts(s)) == [("chain", "rejected", "to rejected", 2)]


def test_catalog_spreads_are_computed_by_the_database(db: Database) -> None:
    """The catalog's measured figures (count, nearest-rank p50/p95, max) of one model come
    from the database, and equal the same figures computed from the rows; another model's
    proofs and fulfilments are not counted."""
    import random

    rng = random.Random(11)

    def nearest(values: list[float], p: int) -> float:      # nearest rank, halves rounded up
        v = sorted(values)
        return v[int(p / 100 * (len(v) - 1) + 0.5)]

    with db.session() as s:
        assert repo.prove_seconds_spread(s, "0x" + "cd" * 32) == repo.Spread(0, None, None, None)
        reqs = [_seen(s, 300 + i) for i in range(23)]
        for i, req in enumerate(reqs):
            _walk(s, req, State.CONFIRMED, State.DISPATCHED, State.PROVEN)
            cid = "0x" + ("cd" if i % 5 else "ef") * 32           # every 5th proof: another circuit
            repo.save_proof(s, req, Proof(circuit_id=cid, backend="groth16", output=["5"], calldata="0x",
                                          public_signals=["1"], prover="m", prove_seconds=rng.uniform(0.01, 30)))
            _walk(s, req, State.VERIFIED, State.SUBMITTED)
            if i % 3 == 0:
                continue                                     # fulfilled with the next one, in a batch
            pair = [reqs[i - 1], req] if i % 3 == 1 else [req]
            tx = _tx(i, "fulfillBatch" if len(pair) > 1 else "fulfill", [r.id for r in pair], "confirmed",
                     rng.randint(90_000, 900_000) | 1)      # odd: a batch's share has a remainder
            repo.add_tx(s, tx)
            for r in pair:
                repo.record_fulfilment(s, r, "mined", tx_hash=tx.tx_hash, block_number=i)

    with db.session() as s:
        secs = [float(p) for p in repo.prove_seconds(s, "0x" + "CD" * 32)]
        assert len(secs) == 18
        got = repo.prove_seconds_spread(s, "0x" + "CD" * 32)
        assert got.count == 18
        assert (got.p50, got.p95, got.max) == pytest.approx((nearest(secs, 50), nearest(secs, 95), max(secs)))
        gas = [float(g) for g in repo.fulfil_gas(s, "0x" + "AB" * 32)]
        g = repo.fulfil_gas_spread(s, "0x" + "ab" * 32)
        assert g.count == len(gas) == 23
        assert (g.p50, g.p95, g.max) == (nearest(gas, 50), nearest(gas, 95), max(gas))
        assert repo.fulfil_gas_spread(s, "0x" + "99" * 32).count == 0
        other = [float(p) for p in repo.prove_seconds(s, "0x" + "ef" * 32)]
        o = repo.prove_seconds_spread(s, "0x" + "ef" * 32)
        assert (o.count, o.p50, o.max) == (5, nearest(other, 50), max(other))
