"""oracle.proving.groth16.poseidon against the real circomlib: hashes from circom's own witness
calculator, our rows checked by ``snarkjs wtns check``, forged witnesses refused.

The circomlib circuit (Poseidon(1), (2), (5) and (16) side by side) is compiled once with the
project's circom2 into .cache/test-circuits/poseidon-circomlib (about 30 s).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from oracle.proving.groth16 import poseidon, tools
from oracle.proving.groth16.r1cs_writer import (
    PRIME,
    R1cs,
    int_limbs,
    read_r1cs,
    read_wtns,
    unsatisfied,
    write_r1cs,
    write_wtns,
)

ROOT = Path(__file__).resolve().parent.parent
CIRCOM_DIR = ROOT / ".cache" / "test-circuits" / "poseidon-circomlib"
WIDTHS = (1, 2, 5, 16)
CIRCOM_SRC = """pragma circom 2.0.0;
include "circomlib/circuits/poseidon.circom";
template Main() {
    signal input a[1]; signal input b[2]; signal input c[5]; signal input d[16];
    signal output out[4];
    component h1 = Poseidon(1); component h2 = Poseidon(2);
    component h5 = Poseidon(5); component h16 = Poseidon(16);
    for (var i = 0; i < 1; i++) { h1.inputs[i] <== a[i]; }
    for (var i = 0; i < 2; i++) { h2.inputs[i] <== b[i]; }
    for (var i = 0; i < 5; i++) { h5.inputs[i] <== c[i]; }
    for (var i = 0; i < 16; i++) { h16.inputs[i] <== d[i]; }
    out[0] <== h1.out; out[1] <== h2.out; out[2] <== h5.out; out[3] <== h16.out;
}
component main = Main();
"""
INPUTS = [
    list(range(1, 17)),
    [0] * 16,
    [PRIME - 1 - i for i in range(16)],
    [(7 ** (i + 40)) % PRIME for i in range(16)],
]


def wtns_check(r1cs: Path, wtns: Path) -> bool:
    """snarkjs' verdict; a crash (unreadable file) is an error, not a rejection."""
    r = subprocess.run([tools.node_binary(), str(tools.snarkjs_cli()), "wtns", "check", str(r1cs), str(wtns)],
                       capture_output=True, text=True, timeout=300, check=False)
    if "WITNESS IS CORRECT" in r.stdout and r.returncode == 0:
        return True
    assert "WITNESS IS NOT CORRECT" in r.stdout and r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    return False


@pytest.fixture(scope="module")
def circomlib() -> Path:
    """circomlib's Poseidon compiled by circom2 (cached; rebuilt if the source changes)."""
    CIRCOM_DIR.mkdir(parents=True, exist_ok=True)
    src = CIRCOM_DIR / "widths.circom"
    if not (CIRCOM_DIR / "widths_js" / "widths.wasm").exists() or src.read_text() != CIRCOM_SRC:
        src.write_text(CIRCOM_SRC)
        rel = CIRCOM_DIR.relative_to(ROOT)
        # circom2 (WASI) sees only paths below its working directory: run it at the repo root.
        tools.run([tools.node_binary(), str(tools.circom_cli()), str(rel / "widths.circom"), "--r1cs", "--wasm",
                   "--O2", "-l", "node_modules", "-o", str(rel)], cwd=ROOT, what="circom")
    return CIRCOM_DIR


def _circom_hashes(d: Path, xs: list[int], tmp: Path) -> list[int]:
    inp = {"a": xs[:1], "b": xs[:2], "c": xs[:5], "d": xs[:16]}
    (tmp / "in.json").write_text(json.dumps({k: [str(v) for v in vs] for k, vs in inp.items()}))
    tools.snarkjs("wtns", "calculate", str(d / "widths_js" / "widths.wasm"), str(tmp / "in.json"),
                  str(tmp / "w.wtns"), what="wtns calculate")
    return read_wtns(tmp / "w.wtns")[1:5]          # wire 0 is 1, then main's outputs


@pytest.mark.parametrize("xs", INPUTS, ids=["counting", "zeros", "near-p", "powers"])
def test_hash_equals_circomlib(circomlib: Path, xs: list[int], tmp_path: Path) -> None:
    ours = [poseidon.hash(xs[:n]) for n in WIDTHS]
    assert ours == _circom_hashes(circomlib, xs, tmp_path)


def test_known_vector() -> None:
    # circomlibjs' published test vector for poseidon([1, 2])
    assert poseidon.hash([1, 2]) == 0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a


def test_widths_outside_circomlib_are_refused() -> None:
    with pytest.raises(poseidon.PoseidonError, match=r"widths 2\.\.17"):
        poseidon.hash([1] * 17)
    with pytest.raises(poseidon.PoseidonError, match=r"widths 2\.\.17"):
        poseidon.hash([])


@pytest.mark.parametrize("max_terms", [10 ** 9, poseidon.MAX_TERMS, 1])
def test_rows_accept_the_hash_and_refuse_forgeries(max_terms: int, tmp_path: Path) -> None:
    cs, g, out = poseidon.standalone(16, max_terms)
    write_r1cs(tmp_path / "p.r1cs", cs)
    xs = INPUTS[3]
    w = poseidon.standalone_witness(g, xs, cs.n_wires)
    assert w[out] == poseidon.hash(xs)
    write_wtns(tmp_path / "ok.wtns", int_limbs(w))
    assert wtns_check(tmp_path / "p.r1cs", tmp_path / "ok.wtns")
    assert unsatisfied(cs, w) == []
    # another output, a wrong S-box output, a wrong materialised input: each breaks a row
    bad_out = list(w)
    bad_out[out] = (w[out] + 1) % PRIME
    sboxes = [s for s in g.tape if s is not None]
    bad_y = list(w)
    bad_y[sboxes[len(sboxes) // 2].y] += 1
    forgeries = [bad_out, bad_y]
    mats = [s.mat for s in sboxes if s.mat >= 0]
    if mats:
        bad_mat = list(w)
        bad_mat[mats[0]] += 1
        forgeries.append(bad_mat)
    for i, f in enumerate(forgeries):
        write_wtns(tmp_path / f"bad{i}.wtns", int_limbs(f))
        assert not wtns_check(tmp_path / "p.r1cs", tmp_path / f"bad{i}.wtns")


def test_cost_against_circomlib(circomlib: Path) -> None:
    """Three rows per non-constant S-box, one per materialised input, one for the output; the
    count is within a few percent of circom --O2's for the same call (figures in the docs)."""
    cs, g, _ = poseidon.standalone(16)
    sboxes = [s for s in g.tape if s is not None]
    assert len(g.tape) == 8 * 17 + 68
    assert len(sboxes) == len(g.tape) - 1              # the capacity element's first S-box folds
    mats = sum(s.mat >= 0 for s in sboxes)
    assert cs.n_constraints == 3 * len(sboxes) + mats + 1
    # circom's own count for the Poseidon(16) component alone: the widths circuit minus the others
    theirs = read_r1cs(circomlib / "widths.r1cs").n_constraints
    small = sum(3 * (8 * (n + 1) + poseidon.N_ROUNDS_P[n - 1]) - 3 for n in (1, 2, 5))
    assert theirs - small == 609
    assert cs.n_constraints <= 609 * 1.15


@pytest.mark.parametrize("n_words", [1, 14, 15, 29, 30, 44])
def test_commitment_gadget_equals_the_sponge(n_words: int, tmp_path: Path) -> None:
    """The in-circuit sponge over word wires = ``commit`` (1 to 4 calls, full and partial blocks)."""
    words = [(3 ** (i + 5)) % (1 << 253) for i in range(n_words)]
    nxt = [2 + n_words]

    def alloc(n: int) -> int:
        w = nxt[0]
        nxt[0] += n
        return w

    g = poseidon.PoseidonCs(alloc)
    c = g.commit(5, 77, [poseidon.Lin.wire(2 + i) for i in range(n_words)])
    g.equal(poseidon.Lin.wire(1), c)
    empty = R1cs(nxt[0], 1, 0, n_words, 0, np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64),
                 np.zeros((0, 4), np.uint64))
    cs = poseidon.append_rows(empty, g, nxt[0])
    value, sbox_in = poseidon.commit_trace(5, 77, words)
    w = [0] * cs.n_wires
    w[0], w[1] = 1, value
    w[2:2 + n_words] = words
    for wire, v in g.assign(sbox_in).items():
        w[wire] = v
    assert unsatisfied(cs, w) == []
    assert len(g.tape) == poseidon.calls(n_words) * (8 * 17 + 68)
    w[1] = poseidon.commit(6, 77, words)               # another boundary index: another value
    assert w[1] != value and unsatisfied(cs, w) != []
    assert poseidon.commit(5, 76, words) != value      # the value count is a domain separator too
