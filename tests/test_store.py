"""The SQL store: migrations match the models, the state machine, idempotent reads, leases,
nonces, concurrent workers; and the service configuration. Every store test runs on SQLite
and on a real PostgreSQL server (tests/pg_server.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.orm.exc import StaleDataError

from oracle.service.config import ConfigError, ServiceConfig
from oracle.store import repo
from oracle.store.db import MIGRATIONS, Database, head_revision, make_engine, normalize_url
from oracle.store.models import Base, Request, State, StateChange

T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 't.db'}"
    return str(request.getfixturevalue("postgres").create_database())


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = Database(db_url)
    yield d
    d.dispose()


def _in_threads(n: int, fn: Callable[[int], T]) -> list[T]:
    """Runs fn(0..n-1) on n threads released together; returns the results in order."""
    barrier = threading.Barrier(n)

    def run(i: int) -> T:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as ex:
        return list(ex.map(run, range(n)))


def _seen(rid: int, block_hash: str = "0xaa", inp: list[int] | None = None) -> repo.SeenRequest:
    return repo.SeenRequest(
        chain_id=1, oracle="0x" + "11" * 20, request_id=rid, model_id="0x" + "22" * 32, requester="0x" + "33" * 20,
        input=inp or [1, -2, 3], callback="0x" + "00" * 20, callback_gas_limit=0, deadline=10**10, fee=5,
        block_number=7, block_hash=block_hash, tx_hash="0x" + "44" * 32, log_index=0,
    )


def test_migrations_match_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_state_machine_records_history_and_refuses_illegal_moves(db: Database) -> None:
    with db.session() as s:
        req = repo.record_seen(s, _seen(1))
        assert req is not None
        repo.transition(s, req, State.CONFIRMED)
        repo.transition(s, req, State.REJECTED, "input 1 = -2 is outside the circuit range")
        with pytest.raises(repo.InvalidTransition, match="rejected -> dispatched"):
            repo.transition(s, req, State.DISPATCHED)
    with db.session() as s:
        hist = [(c.from_state, c.to_state) for c in s.query(StateChange).order_by(StateChange.id)]
        assert hist == [(None, "seen"), ("seen", "confirmed"), ("confirmed", "rejected")]
        assert s.query(Request).one().reason == "input 1 = -2 is outside the circuit range"


def test_reading_a_log_twice_is_idempotent_and_orphans_are_revived(db: Database) -> None:
    with db.session() as s:
        assert repo.record_seen(s, _seen(1)) is not None
        assert repo.record_seen(s, _seen(1)) is None
    with db.session() as s:
        req = s.query(Request).one()
        repo.transition(s, req, State.ORPHANED, "reorg")
    with db.session() as s:
        revived = repo.record_seen(s, _seen(1, "0xbb", [9, 9, 9]))
        assert revived is not None and revived.state == State.SEEN.value
        assert revived.input_ints == [9, 9, 9] and revived.block_hash == "0xbb"
        assert s.query(Request).count() == 1


def test_a_fulfilment_is_recorded_once_whoever_sees_it_first(db: Database) -> None:
    """``fulfilled`` has two owners (the listener and the relayer, see oracle.store.models): the
    first record wins and a second one changes nothing; a request this oracle gave up on stays
    as it is when someone else fulfils it."""
    oracle = _seen(1).oracle
    with db.session() as s:
        for rid in (1, 2):
            r = repo.record_seen(s, _seen(rid))
            assert r is not None
            repo.transition(s, r, State.CONFIRMED)
        r = repo.find_request(s, 1, oracle, 2)
        assert r is not None
        repo.transition(s, r, State.FAILED, "no artifacts for its circuit")
    with db.session() as s:
        req, given_up = repo.find_request(s, 1, oracle, 1, for_update=True), repo.find_request(s, 1, oracle, 2)
        assert req is not None and given_up is not None
        assert repo.record_fulfilment(s, req, "InferenceFulfilled", tx_hash="0xaa", block_number=9,
                                      callback_succeeded=True)
        assert not repo.record_fulfilment(s, req, "own receipt", tx_hash="0xbb", block_number=10,
                                          callback_succeeded=False)
        assert not repo.record_fulfilment(s, given_up, "InferenceFulfilled", tx_hash="0xcc")
    with db.session() as s:
        rows = {r.request_id: r for r in s.query(Request)}
        assert (rows[1].state, rows[1].fulfil_tx, rows[1].fulfil_block, rows[1].callback_succeeded) == (
            "fulfilled", "0xaa", 9, True)
        assert (rows[2].state, rows[2].fulfil_tx) == ("failed", None)
        fulfilled = s.query(StateChange).filter_by(to_state="fulfilled").all()
        assert [(c.request_pk, c.reason) for c in fulfilled] == [(rows[1].id, "InferenceFulfilled")]


def test_leases_never_hand_one_request_to_two_workers(db: Database) -> None:
    with db.session() as s:
        for rid in range(1, 6):
            r = repo.record_seen(s, _seen(rid))
            assert r is not None
            repo.transition(s, r, State.CONFIRMED)
    with db.session() as s:
        a = {r.request_id for r in repo.claim(s, [State.CONFIRMED], "worker-a", limit=3)}
    with db.session() as s:
        b = {r.request_id for r in repo.claim(s, [State.CONFIRMED], "worker-b", limit=10)}
    assert len(a) == 3 and len(b) == 2 and not a & b
    with db.session() as s:
        assert repo.release_stale_leases(s, "worker-a") == 3
    with db.session() as s:
        assert len(repo.claim(s, [State.CONFIRMED], "worker-c", limit=10)) == 3


def test_nonces_are_consecutive_and_never_below_the_chain(db: Database) -> None:
    with db.session() as s:
        got = [repo.reserve_nonce(s, 1, "0xabc", chain_nonce=4) for _ in range(3)]
    assert got == [4, 5, 6]
    with db.session() as s:
        assert repo.reserve_nonce(s, 1, "0xabc", chain_nonce=10) == 10  # used elsewhere: skip ahead


def test_claims_from_concurrent_workers_never_overlap(db: Database) -> None:
    with db.session() as s:
        for rid in range(1, 41):
            r = repo.record_seen(s, _seen(rid))
            assert r is not None
            repo.transition(s, r, State.CONFIRMED)

    def worker(i: int) -> list[int]:
        got: list[int] = []
        while True:
            with db.session() as s:
                batch = [r.request_id for r in repo.claim(s, [State.CONFIRMED], f"w{i}", limit=3)]
            if not batch:
                return got
            got += batch

    per_worker = _in_threads(6, worker)
    claimed = [rid for ids in per_worker for rid in ids]
    assert sorted(claimed) == list(range(1, 41)), "each request claimed exactly once"
    with db.session() as s:
        owners = {r.request_id: r.lease_owner for r in s.query(Request)}
    assert all(owners[rid] == f"w{i}" for i, ids in enumerate(per_worker) for rid in ids)


def test_concurrent_nonce_reservations_are_distinct_and_consecutive(db: Database) -> None:
    # Eight relayers sharing one account, all starting on a counter that does not exist yet.
    def worker(_i: int) -> list[int]:
        out = []
        for _ in range(10):
            with db.session() as s:
                out.append(repo.reserve_nonce(s, 1, "0xshared", chain_nonce=7))
        return out

    got = sorted(n for ns in _in_threads(8, worker) for n in ns)
    assert got == list(range(7, 87))


def test_listeners_of_two_instances_take_turns(db: Database) -> None:
    # The same log stored by four listeners at once: one row, one insert, no unique-key error.
    def listener(_i: int) -> bool:
        with db.session() as s:
            repo.lock_listener(s, 1, "0x" + "11" * 20)
            return repo.record_seen(s, _seen(5)) is not None

    assert sorted(_in_threads(4, listener)) == [False, False, False, True]
    with db.session() as s:
        assert s.query(Request).count() == 1
        assert s.query(StateChange).count() == 1


def test_a_change_computed_from_a_stale_read_is_refused(db: Database) -> None:
    with db.session() as s:
        r = repo.record_seen(s, _seen(1))
        assert r is not None
        repo.transition(s, r, State.CONFIRMED)
    with db.session() as s:
        stale = s.query(Request).one()   # instance B reads `confirmed` ...
    with db.session() as s:
        fresh = s.query(Request).one()   # ... instance A moves it on meanwhile
        fresh.lease_owner = "A/dispatch"
        repo.transition(s, fresh, State.DISPATCHED)
    with pytest.raises(StaleDataError), db.session() as s:
        s.add(stale)                     # B's decision, based on `confirmed`, must not land
        repo.transition(s, stale, State.EXPIRED, "deadline passed")
    with db.session() as s:
        r = s.query(Request).one()
        assert r.state == State.DISPATCHED.value and r.version == 3
        hist = [(c.to_state, c.lease_owner) for c in s.query(StateChange).order_by(StateChange.id)]
        assert hist == [("seen", None), ("confirmed", None), ("dispatched", "A/dispatch")]


def test_instances_starting_together_migrate_once(db_url: str) -> None:
    dbs = _in_threads(3, lambda _i: Database(db_url))
    try:
        with dbs[0].engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head_revision() == "0006"
    finally:
        for d in dbs:
            d.dispose()


def test_upgrade_to_0003_keeps_existing_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(text(
            "INSERT INTO requests (chain_id, oracle, request_id, model_id, requester, input, callback, "
            "callback_gas_limit, deadline, fee, block_number, block_hash, tx_hash, log_index, state, attempts, "
            "next_attempt_at, lease_until, created_at, updated_at) VALUES (1, '0xo', 9, '0xm', '0xr', '[\"1\"]', "
            "'0xc', 0, 99, '5', 7, '0xb', '0xt', 0, 'confirmed', 0, 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ))
    engine.dispose()
    d = Database(db_url)
    try:
        with d.session() as s:
            r = s.query(Request).one()
            assert (r.request_id, r.version, r.input_ints) == (9, 1, [1])
            r.lease_owner = "x/dispatch"
            repo.transition(s, r, State.DISPATCHED)
        with d.session() as s:
            assert s.query(Request).one().version == 2
    finally:
        d.dispose()


def test_database_urls() -> None:
    assert normalize_url("postgres://u:p@h:5433/db") == "postgresql+psycopg://u:p@h:5433/db"
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_config_file(tmp_path: Path) -> None:
    f = tmp_path / "oracle.toml"
    f.write_text(
        '[database]\nurl = "sqlite:///x.db"\n[prover]\nmodels_dir = "artifacts"\nworkers = 3\n'
        '[[chains]]\nname = "a"\nrpc_url = "http://127.0.0.1:8545"\noracle = "0x' + "12" * 20 + '"\n'
        'confirmations = 3\n[[chains]]\nname = "b"\nrpc_url = "http://127.0.0.1:8546"\noracle = "0x' + "34" * 20 + '"\n'
    )
    cfg = ServiceConfig.load(f)
    assert cfg.database_url == "sqlite:///x.db" and cfg.prover.workers == 3
    assert [c.confirmations for c in cfg.chains] == [3, 1]
    f.write_text('[[chains]]\nrpc_url = "x"\noracle = "nope"\n[prover]\nmodels_dir = "a"\n')
    with pytest.raises(ConfigError, match="not an address"):
        ServiceConfig.load(f)
    f.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="invalid TOML"):
        ServiceConfig.load(f)


def test_oracle_run_without_chain_flags_is_a_clear_error() -> None:
    r = subprocess.run([sys.executable, "-m", "oracle.cli", "run", "--rpc", "http://x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "missing --oracle, --models" in r.stderr and "Traceback" not in r.stderr
