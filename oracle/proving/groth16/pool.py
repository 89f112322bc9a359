"""A pool of long-lived Node prover daemons (``prover_daemon.js``), safe to share across threads.

Each daemon handles one request at a time; the pool hands a request to an idle daemon, waits
for its answer line, and replaces a daemon that died or timed out. Daemons start lazily, so a
pool that is never used costs nothing.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

from oracle.proving.base import BackendError
from oracle.proving.groth16 import tools

log = logging.getLogger(__name__)

DAEMON_JS = Path(__file__).with_name("prover_daemon.js")


class _Daemon:
    def __init__(self, index: int) -> None:
        self.index = index
        env = dict(os.environ)
        env.setdefault("ORACLE_NODE_MODULES", str(tools.node_modules()))
        self.proc = subprocess.Popen(
            [tools.node_binary(), str(DAEMON_JS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True,
                         name=f"prover-{index}-out").start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True,
                         name=f"prover-{index}-err").start()
        log.debug("prover daemon %d started (pid %d)", index, self.proc.pid)

    def _pump(self, stream: IO[str], is_stdout: bool) -> None:
        # Reader threads keep the pipes drained (a full stderr pipe would block node).
        for line in stream:
            if is_stdout:
                self.lines.put(line)
            elif line.strip():
                log.debug("prover %d: %s", self.index, line.rstrip())
        if is_stdout:
            self.lines.put(None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def call(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise _DaemonDied(f"prover daemon {self.index} is gone ({e})") from e
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty as e:
            raise _DaemonTimeout(f"prover daemon {self.index}: no answer in {timeout:.0f} s") from e
        if line is None:
            raise _DaemonDied(f"prover daemon {self.index} exited (code {self.proc.poll()})")
        resp: dict[str, Any] = json.loads(line)
        if resp.get("id") != req["id"]:
            raise _DaemonDied(f"prover daemon {self.index}: answer out of order")
        return resp

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class SnarkjsError(BackendError):
    """snarkjs itself refused the request (bad witness input, malformed proof...)."""


class _DaemonDied(Exception):
    pass


class _DaemonTimeout(Exception):
    pass


class ProverPool:
    """N prover daemons (default: one per core) behind a thread-safe ``request``."""

    def __init__(self, size: int | None = None, timeout: float = 300.0) -> None:
        self.size = max(1, size or os.cpu_count() or 1)
        self.timeout = timeout
        self._idle: queue.Queue[_Daemon | None] = queue.Queue()
        self._lock = threading.Lock()
        self._started = 0
        self._all: list[_Daemon] = []
        self._ids = itertools.count(1)
        self._closed = False

    def _acquire(self) -> _Daemon:
        with self._lock:
            if self._closed:
                raise BackendError("prover pool is closed")
            try:
                d = self._idle.get_nowait()
            except queue.Empty:
                d = None
                if self._started < self.size:
                    self._started += 1
                    d = self._spawn(self._started - 1)
        if d is None:
            d = self._idle.get()         # wait for a daemon to come back
            if d is None:
                raise BackendError("prover pool is closed")
        if not d.alive():
            log.warning("prover daemon %d died (code %s): restarting", d.index, d.proc.poll())
            d = self._replace(d)
        return d

    def _spawn(self, index: int) -> _Daemon:
        d = _Daemon(index)
        self._all.append(d)
        return d

    def _replace(self, d: _Daemon) -> _Daemon:
        d.stop()
        with self._lock:
            if d in self._all:
                self._all.remove(d)
            return self._spawn(d.index)

    def request(self, req: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request; retry once on a fresh daemon if the first one died."""
        for attempt in (1, 2):
            d = self._acquire()
            payload = {**req, "id": next(self._ids)}
            try:
                resp = d.call(payload, timeout or self.timeout)
            except _DaemonTimeout as e:
                self._release(self._replace(d))
                raise BackendError(str(e)) from e
            except _DaemonDied as e:
                self._release(self._replace(d))
                if attempt == 2:
                    raise BackendError(str(e)) from e
                log.warning("%s; retrying on a new daemon", e)
                continue
            self._release(d)
            if not resp.get("ok"):
                raise SnarkjsError(f"snarkjs: {resp.get('error', 'unknown error')}")
            return resp
        raise AssertionError("unreachable")

    def _release(self, d: _Daemon) -> None:
        if self._closed:
            d.stop()
        else:
            self._idle.put(d)

    def pids(self) -> list[int]:
        return [d.proc.pid for d in self._all if d.alive()]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            daemons = list(self._all)
            self._all.clear()
        for d in daemons:
            d.stop()
        for _ in range(self.size):
            self._idle.put(None)       # wake any waiter so it sees the pool is closed

    def __enter__(self) -> ProverPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
