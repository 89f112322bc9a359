"""Long tool runs (ceremony steps, ``groth16 setup``) that say how far they are.

A local ceremony step or the setup of a large circuit runs for minutes on one core; without a
word the user cannot tell a slow step from a hung one. ``run`` streams the tool's output
(snarkjs prints its progress with ``-v``) and logs, every ``interval`` seconds, the elapsed time
against the expected duration (from measured figures) and the tool's last progress line.
Everything goes to ``logging`` (stderr), never to stdout, so JSON outputs stay clean.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from oracle.proving.base import BackendError

log = logging.getLogger(__name__)

INTERVAL = 15.0                   # seconds between progress lines
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def eta_text(elapsed: float, expected: float | None) -> str:
    """'40 s of ~120 s expected, ~80 s left' (or how far over the estimate it is)."""
    if not expected:
        return f"{elapsed:.0f} s elapsed"
    if elapsed <= expected:
        return f"{elapsed:.0f} s of ~{expected:.0f} s expected, ~{expected - elapsed:.0f} s left"
    return f"{elapsed:.0f} s, {elapsed - expected:.0f} s over the ~{expected:.0f} s expected"


class _Reader:
    """Collects a stream in a thread; remembers its last non-empty line."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.last = ""
        self._t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._t.start()

    def _run(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)
            clean = _ANSI.sub("", line).strip()
            if clean:
                self.last = clean

    def text(self) -> str:
        self._t.join(timeout=5)
        return "".join(self.lines)


def run(args: list[str], cwd: Path | None = None, what: str = "", expected: float | None = None,
        interval: float = INTERVAL, timeout: float = 6 * 3600) -> str:
    """Run a command like ``tools.run`` (stdout returned, BackendError with the tool's message on
    failure), logging progress every ``interval`` seconds while it runs."""
    name = what or args[0]
    t0 = time.monotonic()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Reader(proc.stdout), _Reader(proc.stderr)
    while True:
        try:
            proc.wait(timeout=interval)
            break
        except subprocess.TimeoutExpired:
            elapsed = time.monotonic() - t0
            if elapsed > timeout:
                proc.kill()
                proc.wait()
                raise BackendError(f"{name}: timed out after {timeout:.0f} s") from None
            last = out.last or err.last
            log.info("%s: %s%s", name, eta_text(elapsed, expected), f" | {last[-120:]}" if last else "")
    stdout, stderr = out.text(), err.text()
    elapsed = time.monotonic() - t0
    if elapsed >= interval:
        log.info("%s: done in %.0f s", name, elapsed)
    else:
        log.debug("%s: %.2f s", name, elapsed)
    # snarkjs prints errors on stdout and still exits 0 in some commands: check both.
    if proc.returncode != 0 or "[ERROR]" in stdout:
        tail = _ANSI.sub("", stderr.strip() or stdout.strip())[-2000:]
        raise BackendError(f"{name} failed (exit {proc.returncode}): {tail}")
    return stdout


def snarkjs(*args: str, cwd: Path | None = None, what: str = "", expected: float | None = None,
            interval: float = INTERVAL) -> str:
    """A snarkjs command with its verbose progress (``-v``) streamed as above."""
    from oracle.proving.groth16 import tools

    return run([tools.node_binary(), str(tools.snarkjs_cli()), *args, "-v"], cwd=cwd,
               what=what or f"snarkjs {args[0]}", expected=expected, interval=interval)
