"""Runs the oracle service in-process against a test chain, and helpers to wait on it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


class OracleProcess:
    """`oracle run` as a separate process (crash tests kill it with SIGKILL)."""

    def __init__(self, rpc: str, oracle: str, models: Path, db_url: str, log_path: Path,
                 key_index: int = RELAYER_KEY_INDEX, extra: tuple[str, ...] = ()) -> None:
        self.args = [sys.executable, "-m", "oracle.cli", "run", "--rpc", rpc, "--oracle", oracle,
                     "--models", str(models), "--db", db_url, *extra]
        self.env = dict(os.environ, ORACLE_PRIVATE_KEY=DEV_KEYS[key_index])
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, wait: bool = True, timeout: float = 60.0) -> None:
        mark = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                     cwd=Path(__file__).resolve().parent.parent)
        log.close()
        self.starts += 1
        if wait:
            wait_for(lambda: self._started_since(mark), timeout, "the oracle process to start", every=0.1)

    def _started_since(self, mark: int) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"oracle exited with {self.proc.returncode}: {self.tail()}")
        with self.log_path.open("rb") as f:
            f.seek(mark)
            return b"oracle service started" in f.read()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
