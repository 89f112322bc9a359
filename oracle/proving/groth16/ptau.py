"""Powers of tau for Groth16: a ceremony file given by the operator, or a cached local one.

A local ceremony has two contributions with random entropy and a random beacon, so its toxic
waste is whatever this machine happened to keep in memory: fine for development and tests,
never for production (the manifest says ``dev_keys: true``). It is slow and grows faster than
the circuit (``CEREMONY_SECONDS``; ``prepare phase2`` is ~80 % of it, on one core), so it is
paid once: the result is cached per power in ``<cache>/ptau/potN_dev_final.ptau``, and

* **reuse rule**: a circuit that needs 2^n uses the smallest cached prepared ptau of power
  >= n (a larger ptau serves a smaller circuit: ``groth16 setup`` reads only the prefix of the
  Lagrange section it needs; measured, bench/bench_ptau.py), and a ceremony is built only when
  no cached one is large enough;
* ``power=`` (``--ptau-power N``) forces one power for every circuit, so that circuits that must
  share a ceremony (the slices of one model) are set up from the same file.

One process builds a given power at a time (``potN.lock``, an flock); it keeps a JSON status
next to the lock (``potN.status.json``: pid, start, current step, expected durations). A process
that wants the same power waits, and says every ``POLL_SECONDS`` what it waits for and the ETA;
if the builder dies its flock is released and the waiter takes the build over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import math
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oracle.circuits.manifest import Manifest, sha256_file
from oracle.proving.base import BackendError
from oracle.proving.groth16 import progress, tools

log = logging.getLogger(__name__)

MIN_POWER = 10
MAX_POWER = 24
POLL_SECONDS = 20.0

# Whole local ceremony (new, 2 contributions, beacon, prepare phase2) in seconds, measured on
# this 2-core box (docs/toolchain.md; 2^13..2^15 with other work running). Other powers are
# interpolated geometrically; above 2^16 each power is taken as ~2.2x the previous one (the
# FFTs of prepare phase2 are n log n, and the box slows as the files outgrow its caches).
CEREMONY_SECONDS = {10: 22.0, 12: 86.0, 13: 352.0, 14: 996.0, 15: 1870.0, 16: 1596.0}
_GROWTH_ABOVE = 2.2
# Share of the ceremony per step (prepare phase2 ~81 %: issue 11; the rest measured at 2^10).
STEPS = (("ptau new", 0.01), ("ptau contribute 1", 0.06), ("ptau contribute 2", 0.06),
         ("ptau beacon", 0.06), ("ptau prepare phase2", 0.81))

_FILE = re.compile(r"^pot(\d+)_dev_final\.ptau$")


def power_for(n_constraints: int, n_public: int) -> int:
    """Smallest power of two whose domain fits the circuit.

    snarkjs' groth16 setup needs a domain of at least constraints + public inputs + 1 (the
    public inputs get one extra constraint each, plus the constant one).
    """
    need = n_constraints + n_public + 1
    return max(MIN_POWER, math.ceil(math.log2(need)))


def default_cache_dir() -> Path:
    return tools.REPO_ROOT / ".cache"


def ptau_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "ptau"


def local_file(power: int, cache_dir: Path | None = None) -> Path:
    return ptau_dir(cache_dir) / f"pot{power}_dev_final.ptau"


def cached_powers(cache_dir: Path | None = None) -> list[int]:
    """Powers of the prepared local ptau files present in the cache, ascending."""
    d = ptau_dir(cache_dir)
    if not d.is_dir():
        return []
    found = (_FILE.match(p.name) for p in d.iterdir())
    return sorted(int(m.group(1)) for m in found if m is not None)


def expected_ceremony_seconds(power: int) -> float:
    """How long a local ceremony of this power is expected to take here (measured table)."""
    known = sorted(CEREMONY_SECONDS)
    if power in CEREMONY_SECONDS:
        return CEREMONY_SECONDS[power]
    if power < known[0]:
        return CEREMONY_SECONDS[known[0]]
    if power > known[-1]:
        return CEREMONY_SECONDS[known[-1]] * _GROWTH_ABOVE ** (power - known[-1])
    lo = max(p for p in known if p < power)
    hi = min(p for p in known if p > power)
    f = (power - lo) / (hi - lo)
    return float(CEREMONY_SECONDS[lo] ** (1 - f) * CEREMONY_SECONDS[hi] ** f)


def _check_range(power: int, what: str) -> None:
    if not MIN_POWER <= power <= MAX_POWER:
        raise BackendError(f"{what} 2^{power} outside [2^{MIN_POWER}, 2^{MAX_POWER}]")


@dataclass(frozen=True)
class PtauChoice:
    """The ptau a compile uses (or would use): the file, its power, the circuit's need."""

    path: Path
    power: int              # the file's power
    needed: int             # the circuit's power
    local: bool             # a local development ceremony (keys flagged dev_keys)
    cached: bool            # the file exists now (False: a ceremony must be built first)

    def record(self) -> dict[str, Any]:
        """What the manifest keeps of it (settings.ptau); the hash pins the exact file."""
        return {"file": self.path.name, "path": str(self.path.resolve()), "power": self.power,
                "needed_power": self.needed, "local_dev_ceremony": self.local,
                "sha256": sha256_file(self.path)}


def choose(needed: int, cache_dir: Path | None = None, *, power: int | None = None,
           setup_file: Path | None = None) -> PtauChoice:
    """Which ptau serves a circuit of power ``needed``, without building anything.

    ``setup_file`` (``--ptau``, the production path) must be large enough; ``power`` forces
    that local power (it must be >= the need); otherwise the smallest cached local ptau of
    power >= ``needed``, or a new one of exactly ``needed`` when none is cached.
    """
    if setup_file is not None:
        have = ptau_power(setup_file)
        if have < needed:
            raise BackendError(f"{setup_file}: powers of tau 2^{have} too small for this circuit "
                               f"(needs 2^{needed})")
        return PtauChoice(setup_file, have, needed, False, True)
    if power is not None:
        _check_range(power, "--ptau-power")
        if power < needed:
            raise BackendError(f"--ptau-power {power} is too small: this circuit needs 2^{needed}")
        f = local_file(power, cache_dir)
        return PtauChoice(f, power, needed, True, f.exists())
    _check_range(needed, "this circuit needs powers of tau")
    bigger = [p for p in cached_powers(cache_dir) if p >= needed]
    p = min(bigger) if bigger else needed
    return PtauChoice(local_file(p, cache_dir), p, needed, True, bool(bigger))


def local_ptau(power: int, cache_dir: Path | None = None, *, exact: bool = False) -> Path:
    """A prepared (phase-2 ready) local ptau serving circuits of ``power``: the smallest cached
    one of power >= ``power`` unless ``exact``; built once (exactly ``power``) when missing."""
    c = choose(power, cache_dir, power=power if exact else None)
    return c.path if c.cached else build(c.power, cache_dir)


# -- building, with a status file and waiting ------------------------------------------------------
def status_file(power: int, cache_dir: Path | None = None) -> Path:
    return ptau_dir(cache_dir) / f"pot{power}.status.json"


def build(power: int, cache_dir: Path | None = None, poll: float = POLL_SECONDS) -> Path:
    """Build the local ptau of exactly ``power`` unless it exists; one process per power."""
    _check_range(power, "powers of tau")
    d = ptau_dir(cache_dir)
    d.mkdir(parents=True, exist_ok=True)
    final = local_file(power, cache_dir)
    if final.exists():
        return final
    with (d / f"pot{power}.lock").open("w") as lock:
        _lock_or_wait(lock, power, cache_dir, final, poll)
        if final.exists():           # the holder we waited for finished it
            return final
        log.warning(
            "building a LOCAL powers-of-tau ceremony 2^%d in %s (expected ~%.0f s on this box): keys "
            "built on it are for DEVELOPMENT ONLY (pass a ceremony --ptau file for production)",
            power, d, expected_ceremony_seconds(power))
        t0 = time.monotonic()
        work = d / f"pot{power}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        status = _Status(power, status_file(power, cache_dir))
        try:
            _ceremony(power, work, status)
            os.replace(work / "final.ptau", final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            status.path.unlink(missing_ok=True)
        log.info("ptau 2^%d ready in %.1f s: %s", power, time.monotonic() - t0, final)
        return final


class _Status:
    """The builder's side of potN.status.json (rewritten atomically at each step)."""

    def __init__(self, power: int, path: Path) -> None:
        self.path = path
        total = expected_ceremony_seconds(power)
        self.doc: dict[str, Any] = {
            "power": power, "pid": os.getpid(), "host": socket.gethostname(),
            "started_at": time.time(), "step": None, "step_index": 0, "steps": len(STEPS),
            "step_started_at": None,
            "expected_seconds": {name: round(total * share, 1) for name, share in STEPS},
        }

    def step(self, index: int, name: str) -> None:
        self.doc.update(step=name, step_index=index, step_started_at=time.time())
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1) + "\n")
        os.replace(tmp, self.path)


def _ceremony(power: int, work: Path, status: _Status) -> None:
    expected = status.doc["expected_seconds"]

    def step(i: int, name: str, *args: str) -> None:
        status.step(i, name)
        progress.snarkjs(*args, cwd=work, what=f"{name} (2^{power}, step {i}/{len(STEPS)})",
                         expected=expected[name])

    step(1, "ptau new", "powersoftau", "new", "bn128", str(power), "p0.ptau")
    for i in (1, 2):
        step(1 + i, f"ptau contribute {i}", "powersoftau", "contribute", f"p{i - 1}.ptau", f"p{i}.ptau",
             f"--name=dev contribution {i}", f"-e={os.urandom(32).hex()}")
    step(4, "ptau beacon", "powersoftau", "beacon", "p2.ptau", "beacon.ptau", os.urandom(32).hex(), "10",
         "-n=dev beacon")
    step(5, "ptau prepare phase2", "powersoftau", "prepare", "phase2", "beacon.ptau", "final.ptau")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_status(power: int, cache_dir: Path | None = None) -> dict[str, Any] | None:
    """The builder's status of a ceremony in progress, or None (none, or an unreadable one)."""
    try:
        doc = json.loads(status_file(power, cache_dir).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def waiting_message(power: int, doc: dict[str, Any] | None, waited: float, now: float | None = None) -> str:
    """One line on what a waiting compile waits for, from the holder's status."""
    head = f"waiting {waited:.0f} s for the local 2^{power} powers-of-tau ceremony"
    if doc is None:
        return (f"{head}: another process holds pot{power}.lock and left no status file (an older "
                f"build); a 2^{power} ceremony takes ~{expected_ceremony_seconds(power):.0f} s here")
    now = time.time() if now is None else now
    pid = int(doc.get("pid", 0))
    started = float(doc.get("started_at", now))
    since = dt.datetime.fromtimestamp(started).strftime("%H:%M:%S")
    expected: dict[str, float] = {str(k): float(v) for k, v in doc.get("expected_seconds", {}).items()}
    names = list(expected)
    step, idx = doc.get("step"), int(doc.get("step_index", 0))
    dead = "" if _alive(pid) else f" (pid {pid} is gone: the build is taken over once its lock is free)"
    if step is None or step not in expected:
        left = sum(expected.values()) - (now - started)
        return f"{head}, built by pid {pid} since {since}{dead}; ETA ~{max(left, 0):.0f} s"
    in_step = now - float(doc.get("step_started_at") or now)
    later = sum(expected[n] for n in names[names.index(step) + 1:])
    left = max(expected[step] - in_step, 0.0) + later
    eta = (f"whole ceremony ETA ~{left:.0f} s" if left > 0 else
           "the estimate is exceeded: it assumes an idle box, so expect several times more when loaded")
    return (f"{head}, built by pid {pid} since {since}{dead}: step {idx}/{len(names)} '{step}' "
            f"{progress.eta_text(in_step, expected[step])}; {eta} (estimates from measured figures)")


def _lock_or_wait(lock: Any, power: int, cache_dir: Path | None, final: Path, poll: float) -> None:
    """Take the build lock; while another process holds it, say what it builds, every ``poll``
    seconds. A holder that dies releases its flock with it, so the wait ends and we take over."""
    t0 = time.monotonic()
    next_log = t0
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            now = time.monotonic()
            if now >= next_log:
                log.warning("%s", waiting_message(power, read_status(power, cache_dir), now - t0))
                next_log = now + poll
            time.sleep(min(1.0, poll))
            continue
        if time.monotonic() - t0 > 1 and not final.exists():
            doc = read_status(power, cache_dir)
            log.warning("the 2^%d ceremony's builder%s stopped without finishing: taking the build over",
                        power, f" (pid {doc['pid']})" if doc else "")
        with contextlib.suppress(OSError):
            if not final.exists():
                status_file(power, cache_dir).unlink(missing_ok=True)
        return


def ptau_used(circuit_dir: Path) -> PtauChoice:
    """The ptau a compiled circuit folder was set up from (its manifest's record). Circuits that
    must share one ceremony (the slices of a model) compare these paths and hashes."""
    m = Manifest.load(circuit_dir)
    rec = m.settings.get("ptau")
    if not isinstance(rec, dict) or "path" not in rec:
        raise BackendError(f"{circuit_dir}: the manifest does not record its ptau path (compiled "
                           "before ptau paths were recorded: recompile)")
    path = Path(str(rec["path"]))
    needed: int = rec.get("needed_power") or rec["power"]
    return PtauChoice(path, int(rec["power"]), int(needed), bool(rec["local_dev_ceremony"]), path.is_file())


def ptau_power(ptau: Path) -> int:
    """The power of a ptau file, read from its header (section 1: n8, q, power)."""
    if not ptau.is_file():
        raise BackendError(f"{ptau}: no such powers-of-tau file")
    with ptau.open("rb") as f:
        head = f.read(12)
        if head[:4] != b"ptau":
            raise BackendError(f"{ptau}: not a powers-of-tau file")
        n_sections = int.from_bytes(head[8:12], "little")
        for _ in range(n_sections):
            sh = f.read(12)
            stype = int.from_bytes(sh[:4], "little")
            size = int.from_bytes(sh[4:12], "little")
            if stype == 1:
                n8 = int.from_bytes(f.read(4), "little")
                f.read(n8)
                return int.from_bytes(f.read(4), "little")
            f.seek(size, os.SEEK_CUR)
    raise BackendError(f"{ptau}: no header section")
