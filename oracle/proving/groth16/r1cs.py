"""Reading the header of a circom .r1cs file (counts only), without starting snarkjs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from oracle.proving.base import BackendError


@dataclass(frozen=True)
class R1csInfo:
    n_wires: int
    n_outputs: int
    n_public_inputs: int
    n_private_inputs: int
    n_constraints: int


def r1cs_info(path: Path) -> R1csInfo:
    with path.open("rb") as f:
        head = f.read(12)
        if head[:4] != b"r1cs":
            raise BackendError(f"{path}: not an r1cs file")
        for _ in range(int.from_bytes(head[8:12], "little")):
            sh = f.read(12)
            stype = int.from_bytes(sh[:4], "little")
            size = int.from_bytes(sh[4:12], "little")
            if stype != 1:
                f.seek(size, os.SEEK_CUR)
                continue
            n8 = int.from_bytes(f.read(4), "little")
            f.read(n8)                                  # the prime
            vals = [int.from_bytes(f.read(4), "little") for _ in range(4)]
            f.read(8)                                   # number of labels
            n_constraints = int.from_bytes(f.read(4), "little")
            return R1csInfo(vals[0], vals[1], vals[2], vals[3], n_constraints)
    raise BackendError(f"{path}: no header section")
