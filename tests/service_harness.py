"""Runs the oracle service in-process against a test chain, and helpers to wait on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from eth_account import Account

from oracle.chain.anvil import DEV_KEYS
from oracle.service.app import OracleService
from oracle.service.config import ChainConfig, ProverConfig, RelayerSettings, ServiceConfig
from oracle.store.models import Request

RELAYER_KEY_INDEX = 5


def models_dir_with(tmp: Path, *circuits: Path) -> Path:
    d = tmp / "models"
    d.mkdir(exist_ok=True)
    for c in circuits:
        link = d / c.name
        if not link.exists():
            link.symlink_to(c.resolve(), target_is_directory=True)
    return d


def service_config(rpc: str, oracle: str, models: Path, db_url: str, **chain_kw: object) -> ServiceConfig:
    return ServiceConfig(
        database_url=db_url,
        chains=[ChainConfig(rpc_url=rpc, oracle=oracle, **chain_kw)],  # type: ignore[arg-type]
        prover=ProverConfig(models_dir=models, workers=2),
        relayer=RelayerSettings(stuck_after=5.0),
    )


@contextmanager
def running_service(cfg: ServiceConfig) -> Iterator[OracleService]:
    svc = OracleService(cfg, account=Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]))
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


def wait_for(cond: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def db_states(svc: OracleService) -> dict[int, str]:
    with svc.db.session() as s:
        return {r.request_id: r.state for r in s.query(Request).all()}
