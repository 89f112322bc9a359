"""Local miners for the demo, the benchmarks and the tests: real ``oracle miner`` processes,
each with its own hotkey, on free ports of 127.0.0.1. (The tests' misbehaving miners are the
same processes started through another launcher: tests/malicious_miner.py.)

    miners = start_local_miners(3, models_dir, validator_hotkey, base_dir=Path("run/miners"))
    ...  # the local metagraph file is base_dir / "miners.json"
    stop_local_miners(miners)
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from oracle.errors import OracleError
from oracle.subnet.auth import hotkey_of, load_or_create_wallet
from oracle.subnet.metagraph import MinerInfo, write_local_metagraph

log = logging.getLogger(__name__)

# What follows the Python interpreter on a miner's command line.
MINER_LAUNCHER = ("-m", "oracle.cli", "miner")


class MinerStartError(OracleError):
    """A local miner process did not start (a development tool: neither bad input nor worth a retry)."""


@dataclass
class MinerProcess:
    name: str
    hotkey: str
    port: int
    proc: subprocess.Popen[bytes]
    log_file: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def info(self) -> MinerInfo:
        return MinerInfo(hotkey=self.hotkey, url=self.url)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def health(self, timeout: float = 2.0) -> dict[str, Any]:
        r = httpx.get(self.url + "/health", timeout=timeout)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def kill(self) -> None:
        """SIGKILL: the miner dies mid-request, as in a crash."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully), SIGKILL if it does not exit in time."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("miner %s did not stop in %.0f s: killing it", self.name, timeout)
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_local_miners(
    n: int,
    models_dir: Path,
    validator_hotkey: str,
    *,
    base_dir: Path | None = None,
    metagraph_file: Path | None = None,
    workers: int = 2,
    validator_url: str | None = None,
    extra_args: Sequence[str] = (),
    launcher: Sequence[str] = MINER_LAUNCHER,
    per_miner_args: Sequence[Sequence[str]] | None = None,
    startup_timeout: float = 30.0,
) -> list[MinerProcess]:
    """Spawns ``n`` miners (wallets ``miner-<i>`` under ``base_dir/wallets``, logs under
    ``base_dir``), waits until each answers /health, writes the local metagraph file
    (default ``base_dir/miners.json``). ``extra_args`` go to every miner's command line (e.g.
    HTTP limits), ``per_miner_args[i]`` to miner i's; ``launcher`` replaces ``-m oracle.cli
    miner`` (a program taking the same options). On any failure the miners already started
    are stopped."""
    base = (base_dir or Path.cwd() / "miners").resolve()
    base.mkdir(parents=True, exist_ok=True)
    wallets = base / "wallets"
    miners: list[MinerProcess] = []
    try:
        for i in range(n):
            args = [*extra_args, *(per_miner_args[i] if per_miner_args else ())]
            miners.append(_spawn(i, models_dir, validator_hotkey, base, wallets, workers, validator_url,
                                 launcher, args))
        end = time.monotonic() + startup_timeout
        for m in miners:
            _wait_healthy(m, end)
    except BaseException:
        stop_local_miners(miners)
        raise
    path = metagraph_file or base / "miners.json"
    write_local_metagraph(path, [m.info for m in miners], {validator_hotkey: 0.0})
    log.info("%d local miner(s) up; metagraph %s", n, path)
    return miners


def _spawn(i: int, models_dir: Path, validator_hotkey: str, base: Path, wallets: Path, workers: int,
           validator_url: str | None, launcher: Sequence[str], args: Sequence[str]) -> MinerProcess:
    name = f"miner-{i}"
    hotkey = hotkey_of(load_or_create_wallet(name, wallets))
    port = free_port()
    cmd = [sys.executable, *launcher, "--port", str(port), "--models", str(models_dir),
           "--allow", validator_hotkey, "--wallet", name, "--wallet-path", str(wallets),
           "--workers", str(workers)]
    if validator_url:
        cmd += ["--validator-url", validator_url]
    cmd += list(args)
    log_file = base / f"{name}.log"
    out = log_file.open("ab")
    # Own session: a Ctrl-C in the demo's terminal reaches the demo, which stops miners cleanly.
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return MinerProcess(name=name, hotkey=hotkey, port=port, proc=proc, log_file=log_file, _log=out)


def _wait_healthy(m: MinerProcess, end: float) -> None:
    while time.monotonic() < end:
        if not m.alive():
            raise MinerStartError(f"{m.name} exited with code {m.proc.returncode}: see {m.log_file}\n"
                                  + _tail(m.log_file))
        with contextlib.suppress(httpx.HTTPError):
            if m.health(timeout=1.0).get("hotkey") == m.hotkey:
                return
        time.sleep(0.1)
    raise MinerStartError(f"{m.name} did not answer /health in time: see {m.log_file}\n" + _tail(m.log_file))


def _tail(p: Path, n: int = 15) -> str:
    try:
        return "\n".join(p.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def stop_local_miners(miners: Sequence[MinerProcess]) -> None:
    for m in miners:                  # signal all first: they shut down in parallel
        if m.alive():
            m.proc.send_signal(signal.SIGTERM)
    for m in miners:
        m.stop()
