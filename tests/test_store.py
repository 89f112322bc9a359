"""The SQL store: migrations match the models, the state machine, idempotent reads, leases,
nonces; and the service configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from oracle.service.config import ConfigError, ServiceConfig
from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import Base, Request, State, StateChange


@pytest.fixture
def db(tmp_path: Path) -> Database:
    d = Database(f"sqlite:///{tmp_path / 't.db'}")
    yield d  # type: ignore[misc]
    d.dispose()


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
