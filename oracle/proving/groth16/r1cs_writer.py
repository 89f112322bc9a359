"""The iden3 binary formats snarkjs reads, written (and read back) from numpy arrays.

``.r1cs`` (version 1; what circom writes, what ``snarkjs groth16 setup`` and ``wtns check`` read):

    "r1cs" u32 version=1 u32 n_sections, then sections (u32 type, u64 byte size, body):
    1 header:      u32 n8=32, prime (n8 bytes LE), u32 n_wires, u32 n_pub_out, u32 n_pub_in,
                   u32 n_prv_in, u64 n_labels, u32 n_constraints
    2 constraints: per constraint the LCs A, B, C (A*B = C), each u32 n_terms then n_terms x
                   (u32 wire, coefficient n8 bytes LE)
    3 wire->label: u64 label id per wire

``.wtns`` (version 2; what circom's witness calculator writes, what ``groth16 prove`` reads):

    "wtns" u32 version=2 u32 n_sections=2;
    1 header: u32 n8=32, prime, u32 n_witness;   2 values: n_witness x n8 bytes LE

Field elements are stored in NORMAL form (not Montgomery): checked against node_modules/r1csfile
(``F.fromRprLE`` converts a plain little-endian integer), snarkjs' wtns_utils.js (``writeBigInt``)
and a circom-produced .r1cs of the risk circuit, where b*(b-1)=0 is stored as A={0: p-1, b: 1},
B={b: 1}, C={} with 1 as the bytes 01 00 .. 00. Section order is free (circom writes 2, 1, 3).

Coefficients travel as (mantissa, exponent) int64 pairs, value = mantissa * 2**exponent, so the
bulk (weights, +-1, constants) stays vectorised int64 while the few huge ones (2**252 in a packed
word, 2**s for the payee) need no Python integers. The whole writer is numpy: one stable sort of
the terms and scatter writes into one uint32 buffer, no Python loop per term.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from oracle.circuits.fixedpoint import BN254_R
from oracle.proving.base import BackendError

I64 = NDArray[np.int64]
U64 = NDArray[np.uint64]

N8 = 32                                   # bytes per BN254 scalar field element
PRIME = BN254_R
_MASK64 = (1 << 64) - 1
P_LIMBS = np.array([(PRIME >> (64 * i)) & _MASK64 for i in range(4)], dtype=np.uint64)
MAX_COEF_BITS = 253                       # mantissa * 2**exponent stays below p ~ 2**253.6


class R1csFormatError(BackendError):
    """A constraint system or witness that cannot be written (or a file that cannot be read)."""


# -- field elements as 4 little-endian uint64 limbs --------------------------------------------
def _neg_limbs(x: U64) -> U64:
    """p - x for nonzero rows of x (n, 4) < p; zero rows stay zero."""
    out = np.empty_like(x)
    borrow = np.zeros(len(x), dtype=np.uint64)
    for i in range(4):
        pi = P_LIMBS[i]
        xi = x[:, i]
        sub = xi + borrow                     # overflow only when xi = 2^64-1 and borrow: then xi+1 = 2^64 > pi
        over = (borrow == 1) & (xi == np.uint64(_MASK64))
        out[:, i] = pi - sub
        borrow = ((sub > pi) | over).astype(np.uint64)
    zero = ~x.any(axis=1)
    out[zero] = 0
    return out


def field_limbs(mant: I64 | Sequence[int], exp: I64 | int = 0) -> U64:
    """(n, 4) limbs of ``mant * 2**exp mod p`` for int64 mantissas and exponents >= 0."""
    m = np.asarray(mant, dtype=np.int64)
    n = len(m)
    e = np.broadcast_to(np.asarray(exp, dtype=np.int64), (n,))
    if n and (int(e.min()) < 0 or int(m.min()) == np.iinfo(np.int64).min):
        raise R1csFormatError("coefficient exponent < 0 or mantissa -2^63")
    a = np.abs(m).astype(np.uint64)
    if n:
        bits = np.zeros(n, dtype=np.int64)
        nz = a > 0
        bits[nz] = np.floor(np.log2(a[nz].astype(np.float64))).astype(np.int64) + 1
        if int((bits + e * nz).max()) > MAX_COEF_BITS:
            raise R1csFormatError(f"coefficient above 2^{MAX_COEF_BITS}: not a canonical field element")
    out = np.zeros((n, 4), dtype=np.uint64)
    q, r = e // 64, (e % 64).astype(np.uint64)
    idx = np.arange(n)
    out[idx, q] = a << r
    carry = (r > 0) & (q < 3)
    out[idx[carry], q[carry] + 1] = a[carry] >> (np.uint64(64) - r[carry])
    neg = m < 0
    if neg.any():
        out[neg] = _neg_limbs(out[neg])
    return out


def int_limbs(values: Sequence[int]) -> U64:
    """(n, 4) limbs of arbitrary Python integers mod p (for the few big ones: words, payee)."""
    out = np.zeros((len(values), 4), dtype=np.uint64)
    for i, v in enumerate(values):
        v %= PRIME
        for j in range(4):
            out[i, j] = (v >> (64 * j)) & _MASK64
    return out


def limbs_to_ints(limbs: U64) -> list[int]:
    return [int(r[0]) | int(r[1]) << 64 | int(r[2]) << 128 | int(r[3]) << 192 for r in limbs.tolist()]


# -- the constraint system ---------------------------------------------------------------------
@dataclass
class R1cs:
    """A constraint system as COO terms: ``mat`` 0/1/2 = A/B/C of constraint ``row``."""

    n_wires: int
    n_pub_out: int
    n_pub_in: int
    n_prv_in: int
    n_constraints: int
    mat: NDArray[np.uint8]
    row: I64
    wire: I64
    coef: U64                 # (n_terms, 4) limbs, normal form, < p

    @property
    def n_public(self) -> int:
        return self.n_pub_out + self.n_pub_in

    @property
    def n_terms(self) -> int:
        return len(self.row)


def _sorted_terms(cs: R1cs) -> tuple[NDArray[np.intp], I64]:
    """Term order for the file: by (row, matrix), keeping the given order inside each LC (so
    re-encoding a parsed file reproduces it byte for byte), and each term's group row*3+mat.
    Refuses duplicates: r1csfile builds each LC as ``lc[wire] = coef``, a repeated wire would
    silently drop a term."""
    if cs.n_terms and (cs.row.min() < 0 or cs.row.max() >= cs.n_constraints):
        raise R1csFormatError("term row outside [0, n_constraints)")
    if cs.n_terms and (cs.wire.min() < 0 or cs.wire.max() >= cs.n_wires):
        raise R1csFormatError("term wire outside [0, n_wires)")
    key = cs.row * 3 + cs.mat.astype(np.int64)
    by_wire = np.lexsort((cs.wire, key))
    k, w = key[by_wire], cs.wire[by_wire]
    dup = (k[1:] == k[:-1]) & (w[1:] == w[:-1])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise R1csFormatError(f"constraint {int(k[i]) // 3}: wire {int(w[i])} twice in one linear combination")
    order = np.argsort(key, kind="stable")
    return order, key[order]


def _section(stype: int, body: bytes | memoryview) -> bytes:
    return struct.pack("<IQ", stype, len(body))


def write_r1cs(path: Path, cs: R1cs) -> int:
    """Write ``cs`` as an iden3 .r1cs file; returns its size in bytes."""
    if cs.n_wires >= 1 << 32 or cs.n_constraints >= 1 << 32:
        raise R1csFormatError("more than 2^32 wires or constraints")
    order, group = _sorted_terms(cs)
    counts = np.bincount(group, minlength=3 * cs.n_constraints).astype(np.int64)
    # Section 2 as uint32 words: per LC one count word, per term 1 wire word + 8 coefficient words.
    sizes = 1 + 9 * counts
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    buf = np.zeros(int(sizes.sum()), dtype=np.uint32)
    buf[starts] = counts.astype(np.uint32)
    first = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    rank = np.arange(len(order), dtype=np.int64) - first[group]
    pos = starts[group] + 1 + 9 * rank
    buf[pos] = cs.wire[order].astype(np.uint32)
    coef32 = np.ascontiguousarray(cs.coef[order]).view(np.uint32)      # little-endian limbs
    for j in range(8):
        buf[pos + 1 + j] = coef32[:, j]
    body2 = buf.astype("<u4", copy=False).tobytes()
    header = struct.pack("<I", N8) + PRIME.to_bytes(N8, "little") + struct.pack(
        "<IIIIQI", cs.n_wires, cs.n_pub_out, cs.n_pub_in, cs.n_prv_in, cs.n_wires, cs.n_constraints)
    labels = np.arange(cs.n_wires, dtype="<u8").tobytes()       # wire i is label i
    with path.open("wb") as f:
        f.write(b"r1cs" + struct.pack("<II", 1, 3))
        for stype, body in ((1, header), (2, body2), (3, labels)):
            f.write(_section(stype, body))
            f.write(body)
    return 12 + 3 * 12 + len(header) + len(body2) + len(labels)


def write_wtns(path: Path, witness: U64) -> None:
    """Write a full witness ((n_wires, 4) limbs, wire 0 = 1) as an iden3 .wtns v2 file."""
    path.write_bytes(wtns_bytes(witness))


def wtns_bytes(witness: U64) -> bytes:
    if witness.ndim != 2 or witness.shape[1] != 4:
        raise R1csFormatError("witness must be (n_wires, 4) uint64 limbs")
    header = struct.pack("<I", N8) + PRIME.to_bytes(N8, "little") + struct.pack("<I", len(witness))
    body = np.ascontiguousarray(witness, dtype="<u8").tobytes()
    return b"".join([b"wtns", struct.pack("<II", 2, 2), _section(1, header), header,
                     _section(2, body), body])


# -- reading (tests, diagnostics, and circom's files for comparison) ---------------------------
def _sections(data: bytes, magic: bytes) -> dict[int, tuple[int, int]]:
    if data[:4] != magic:
        raise R1csFormatError(f"not a {magic.decode()} file")
    (n_sections,) = struct.unpack_from("<I", data, 8)
    pos, out = 12, {}
    for _ in range(n_sections):
        stype, size = struct.unpack_from("<IQ", data, pos)
        out[stype] = (pos + 12, size)
        pos += 12 + size
    return out


def read_r1cs(path: Path) -> R1cs:
    """Parse an .r1cs file (ours or circom's) back into COO terms (a loop per LC: diagnostics)."""
    data = path.read_bytes()
    sec = _sections(data, b"r1cs")
    p, _ = sec[1]
    (n8,) = struct.unpack_from("<I", data, p)
    if n8 != N8 or int.from_bytes(data[p + 4:p + 4 + n8], "little") != PRIME:
        raise R1csFormatError(f"{path}: not a BN254 r1cs")
    n_wires, n_out, n_pin, n_prv, _labels, n_c = struct.unpack_from("<IIIIQI", data, p + 4 + n8)
    p, size = sec[2]
    words = np.frombuffer(data, dtype="<u4", count=size // 4, offset=p)
    mats: list[int] = []
    rows: list[int] = []
    starts: list[int] = []
    at = 0
    for r in range(n_c):
        for m in range(3):
            k = int(words[at])
            at += 1
            mats += [m] * k
            rows += [r] * k
            starts += range(at, at + 9 * k, 9)
            at += 9 * k
    st = np.array(starts, dtype=np.int64)
    wire = words[st].astype(np.int64) if len(st) else np.zeros(0, np.int64)
    coef = np.stack([words[st + 1 + j] for j in range(8)], axis=1).copy().view(np.uint64) \
        if len(st) else np.zeros((0, 4), np.uint64)
    return R1cs(n_wires, n_out, n_pin, n_prv, n_c, np.array(mats, dtype=np.uint8),
                np.array(rows, dtype=np.int64), wire, coef.reshape(-1, 4))


def read_wtns(path: Path) -> list[int]:
    data = path.read_bytes()
    sec = _sections(data, b"wtns")
    p, _ = sec[1]
    (n8,) = struct.unpack_from("<I", data, p)
    (n,) = struct.unpack_from("<I", data, p + 4 + n8)
    p, _ = sec[2]
    return [int.from_bytes(data[p + i * n8:p + (i + 1) * n8], "little") for i in range(n)]


def unsatisfied(cs: R1cs, witness: Sequence[int]) -> list[int]:
    """Rows whose A*B != C (mod p) under ``witness``: an independent check in Python integers
    (object arrays, so no loop per term in Python code; meant for tests and debugging)."""
    w = np.array([int(v) % PRIME for v in witness], dtype=object)
    coef = np.array(limbs_to_ints(cs.coef), dtype=object)
    prod = coef * w[cs.wire] if cs.n_terms else np.zeros(0, dtype=object)
    sums = np.zeros((3, cs.n_constraints), dtype=object)
    key = cs.mat.astype(np.int64) * cs.n_constraints + cs.row
    order = np.argsort(key, kind="stable")
    key_s = key[order]
    if len(key_s):
        bounds = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]])
        red = np.add.reduceat(prod[order], bounds)
        flat = sums.reshape(-1)
        flat[key_s[bounds]] = red
    a, b, c = (sums[i] % PRIME for i in range(3))
    bad = (a * b - c) % PRIME
    return [int(i) for i in np.flatnonzero(bad != 0)]
