"""Powers of tau for Groth16: a ceremony file given by the operator, or a cached local one.

A local ceremony has two contributions with random entropy and a random beacon, so its toxic
waste is whatever this machine happened to keep in memory: fine for development and tests,
never for production (the manifest says ``dev_keys: true``). ``prepare phase2`` dominates the
cost (about 22 s at 2^10, 86 s at 2^12 on 2 cores), so the result is cached per power and shared
by every circuit that fits.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import shutil
import time
from pathlib import Path

from oracle.proving.base import BackendError
from oracle.proving.groth16 import tools

log = logging.getLogger(__name__)

MIN_POWER = 10
MAX_POWER = 24


def power_for(n_constraints: int, n_public: int) -> int:
    """Smallest power of two whose domain fits the circuit.

    snarkjs' groth16 setup needs a domain of at least constraints + public inputs + 1 (the
    public inputs get one extra constraint each, plus the constant one).
    """
    need = n_constraints + n_public + 1
    return max(MIN_POWER, math.ceil(math.log2(need)))


def default_cache_dir() -> Path:
    return tools.REPO_ROOT / ".cache"


def local_ptau(power: int, cache_dir: Path | None = None) -> Path:
    """Return a prepared (phase-2 ready) local ptau of this power, building it once."""
    if not MIN_POWER <= power <= MAX_POWER:
        raise BackendError(f"powers of tau 2^{power} outside [{MIN_POWER}, {MAX_POWER}]")
    d = (cache_dir or default_cache_dir()) / "ptau"
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"pot{power}_dev_final.ptau"
    if final.exists():
        return final
    # Several processes (test workers, two compiles) may want the same power: one builds it.
    with (d / f"pot{power}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.exists():
            return final
        log.warning(
            "building a LOCAL powers-of-tau ceremony 2^%d in %s: keys built on it are for "
            "DEVELOPMENT ONLY (pass a ceremony --ptau file for production)", power, d
        )
        t0 = time.monotonic()
        work = d / f"pot{power}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            _ceremony(power, work)
            os.replace(work / "final.ptau", final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("ptau 2^%d ready in %.1f s: %s", power, time.monotonic() - t0, final)
        return final


def _ceremony(power: int, work: Path) -> None:
    sj = tools.snarkjs
    sj("powersoftau", "new", "bn128", str(power), "p0.ptau", cwd=work, what="ptau new")
    for i in (1, 2):
        sj(
            "powersoftau", "contribute", f"p{i - 1}.ptau", f"p{i}.ptau",
            f"--name=dev contribution {i}", f"-e={os.urandom(32).hex()}",
            cwd=work, what=f"ptau contribute {i}",
        )
    sj(
        "powersoftau", "beacon", "p2.ptau", "beacon.ptau", os.urandom(32).hex(), "10",
        "-n=dev beacon", cwd=work, what="ptau beacon",
    )
    sj("powersoftau", "prepare", "phase2", "beacon.ptau", "final.ptau", cwd=work,
       what="ptau prepare phase2")


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
