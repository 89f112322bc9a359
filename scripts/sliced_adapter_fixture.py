"""Real slice proofs of a TOY sliced model, for the on-chain adapter's tests
(contracts/test/SlicedAdapter.t.sol) and gas bench, independent of the slice compiler.

The toy model has 8 inputs and 3 outputs of 12 signed bits (the risk model's I/O, so its packing
and payee slot are the ones the oracle uses today) and k slices (k = 2, 4, 8); slice j adds 1 to
every value of its 8-value activation, the last slice outputs values 0..2 minus (k - 1), so
output = input[0..3]. What matters is not the arithmetic but that every slice is a real circom
circuit that follows the sliced-model design of docs/sliced-models.md exactly:

* public signals: slice 0 ``[c_1, input words]``, slice j ``[c_{j+1}, c_j]``, the last slice
  ``[output words (payee in the spare bits of the last one), c_{k-1}]``;
* ``c_j`` = circomlib Poseidon(16) sponge over the boundary activation packed like public I/O
  (b = 16 bits here): h_0 = Poseidon([j, n_values, w_0..w_13]), h_{i+1} = Poseidon([h_i, next 15
  words]); the consumer takes the words as PRIVATE inputs, range-checks them by unpacking and
  hashes them again;
* all slices of all models from the same ptau (the cached local 2^11 ceremony), each with its own
  phase-2 keys.

Writes contracts/test/fixtures/slicedtoy_k{2,4,8}.json:
  {"k", "input_bits", "output_bits", "boundary_bits", "n_inputs", "n_outputs", "payee",
   "vks": [[vk words of slice j (oracle.chain.vk.groth16_vk_words)]...],
   "requests": [{"input", "output", "commitments", "proofs": [[8 words]...],
                 "public_signals": [[...] per slice], "proof" (0x, the fulfill() argument)}]}
  with requests for the inputs INPUTS (request 2 = request 0 with one input value changed).
Keys are kept between runs (build/fixtures/slicedtoy-k*/); `--recompile` makes new ones.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_abi import encode  # noqa: E402

from oracle.chain.vk import groth16_vk_words  # noqa: E402
from oracle.circuits.packing import pack, per_word  # noqa: E402
from oracle.proving.groth16 import tools  # noqa: E402
from oracle.proving.groth16.calldata import proof_words  # noqa: E402
from oracle.proving.groth16.circuit import TEMPLATES  # noqa: E402

log = logging.getLogger("sliced_adapter_fixture")

FIXTURES = ROOT / "contracts" / "test" / "fixtures"
BUILD = ROOT / "build" / "fixtures"
PTAU = ROOT / ".cache" / "ptau" / "pot11_dev_final.ptau"
N_IN, N_OUT, N_ACT = 8, 3, 8
IN_BITS = OUT_BITS = 12
ACT_BITS = 16
PAYEE = "0x0000000000000000000000000000000007e1a7e5"  # the forge tests' relayer, as in groth16_fixture
# Request 2 is request 0 with input 0 one higher: its slices 1.. are slices "re-proven on another
# activation" (one value off) for request 0.
INPUTS = [[410, 307, 205, 0, 154, 0, 102, 51], [-2048, 2047, -1, 7, 300, -300, 1000, -999],
          [411, 307, 205, 0, 154, 0, 102, 51]]

SPONGE = """\
// c = Poseidon sponge over the packed boundary words (docs/sliced-models.md): domain separated by
// the boundary index and the value count.
template Sponge(nWords, boundary, nValues) {
    signal input w[nWords];
    signal output c;
    var nCalls = nWords <= 14 ? 1 : 1 + nWords \\ 15;  // 1 + ceil((nWords - 14) / 15)
    component h[nCalls];
    h[0] = Poseidon(16);
    h[0].inputs[0] <== boundary;
    h[0].inputs[1] <== nValues;
    for (var i = 0; i < 14; i++) {
        if (i < nWords) {
            h[0].inputs[2 + i] <== w[i];
        } else {
            h[0].inputs[2 + i] <== 0;
        }
    }
    for (var t = 1; t < nCalls; t++) {
        h[t] = Poseidon(16);
        h[t].inputs[0] <== h[t - 1].out;
        for (var i = 0; i < 15; i++) {
            var at = 14 + 15 * (t - 1) + i;
            if (at < nWords) {
                h[t].inputs[1 + i] <== w[at];
            } else {
                h[t].inputs[1 + i] <== 0;
            }
        }
    }
    c <== h[nCalls - 1].out;
}
"""


def _words(n: int, bits: int) -> int:
    return -(-n // per_word(bits))


def _unpack(name: str, src: str, n: int, bits: int) -> list[str]:
    """circom lines unpacking words ``src[]`` into ``name[n]`` (range-checked)."""
    k = per_word(bits)
    lines = [f"    signal {name}[{n}];"]
    for w in range(_words(n, bits)):
        cnt = min(k, n - w * k)
        lines += [f"    component u{name}{w} = UnpackSigned({cnt}, {bits});",
                  f"    u{name}{w}.word <== {src}[{w}];"]
        lines += [f"    {name}[{w * k + i}] <== u{name}{w}.out[{i}];" for i in range(cnt)]
    return lines


def _pack(name: str, dst: str, vals: list[str], bits: int) -> list[str]:
    """circom lines packing expressions ``vals`` into words ``{name}{w}.word`` (range-checked)."""
    k = per_word(bits)
    lines = []
    for w in range(_words(len(vals), bits)):
        part = vals[w * k:(w + 1) * k]
        lines.append(f"    component {name}{w} = PackSigned({len(part)}, {bits});")
        lines += [f"    {name}{w}.in[{i}] <== {v};" for i, v in enumerate(part)]
    return lines


def slice_circom(j: int, k: int) -> str:
    act_words = _words(N_ACT, ACT_BITS)
    body: list[str] = []
    if j == 0:
        body += [f"    signal input in[{_words(N_IN, IN_BITS)}];", "    signal output c;"]
        body += _unpack("x", "in", N_IN, IN_BITS)
        # The toy inputs are 8 values; a wider activation would zero-extend.
        vals = [f"x[{i}] + 1" for i in range(N_ACT)]
    else:
        body += [f"    signal input w[{act_words}];", "    signal input cin;"]
        body += _unpack("x", "w", N_ACT, ACT_BITS)
        body += [f"    component hin = Sponge({act_words}, {j}, {N_ACT});"]
        body += [f"    hin.w[{i}] <== w[{i}];" for i in range(act_words)]
        body += ["    hin.c === cin;"]
        if j < k - 1:
            body += ["    signal output c;"]
            vals = [f"x[{i}] + 1" for i in range(N_ACT)]
    if j < k - 1:
        body += _pack("p", "", vals, ACT_BITS)
        body += [f"    component hout = Sponge({act_words}, {j + 1}, {N_ACT});"]
        body += [f"    hout.w[{i}] <== p{i}.word;" for i in range(act_words)]
        body += ["    c <== hout.c;"]
        public = "in" if j == 0 else "cin"
    else:
        out_words = _words(N_OUT, OUT_BITS)
        shift = (N_OUT - (out_words - 1) * per_word(OUT_BITS)) * OUT_BITS
        assert shift + 160 <= 253, "toy: the payee fits in the last output word"
        body += [f"    signal output out[{out_words}];", "    signal input payee;",
                 "    component pb = PayeeBits(160);", "    pb.in <== payee;"]
        body += _pack("q", "", [f"x[{i}] - {k - 1}" for i in range(N_OUT)], OUT_BITS)
        for w in range(out_words):
            extra = f" + payee * {1 << shift}" if w == out_words - 1 else ""
            body.append(f"    out[{w}] <== q{w}.word{extra};")
        public = "cin"
    return "\n".join([
        "pragma circom 2.0.0;",
        'include "circomlib/circuits/poseidon.circom";',
        TEMPLATES, SPONGE,
        f"template Slice{j}() {{", *body, "}",
        f"component main {{public [{public}]}} = Slice{j}();", "",
    ])


def _compile(d: Path, j: int, k: int) -> None:
    name = f"slice{j}"
    if (d / f"{name}.zkey").exists() and "--recompile" not in sys.argv:
        return
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.circom").write_text(slice_circom(j, k))
    rel = d.relative_to(ROOT)
    # circom2 (WASI) only sees paths below its working directory: run it from the repository root.
    tools.run([tools.node_binary(), str(tools.circom_cli()), str(rel / f"{name}.circom"),
               "--r1cs", "--wasm", "--O2", "-o", str(rel), "-l", "node_modules"],
              cwd=ROOT, what=f"circom {name}")
    os.replace(d / f"{name}_js" / f"{name}.wasm", d / f"{name}.wasm")
    shutil.rmtree(d / f"{name}_js", ignore_errors=True)
    sj = tools.snarkjs
    sj("groth16", "setup", f"{name}.r1cs", str(PTAU), "z0.zkey", cwd=d, what="groth16 setup")
    sj("zkey", "contribute", "z0.zkey", "z1.zkey", "--name=toy slice", f"-e={os.urandom(32).hex()}",
       cwd=d, what="zkey contribute")
    sj("zkey", "beacon", "z1.zkey", f"{name}.zkey", os.urandom(32).hex(), "10", "-n=beacon", cwd=d,
       what="zkey beacon")
    for f in ("z0.zkey", "z1.zkey"):
        (d / f).unlink()
    sj("zkey", "export", "verificationkey", f"{name}.zkey", f"{name}_vk.json", cwd=d, what="export vk")


def _prove(d: Path, j: int, inp: dict[str, Any]) -> tuple[list[int], list[int]]:
    name = f"slice{j}"
    (d / "input.json").write_text(json.dumps(inp))
    tools.snarkjs("groth16", "fullprove", "input.json", f"{name}.wasm", f"{name}.zkey", "proof.json",
                  "public.json", cwd=d, what=f"prove {name}")
    proof = json.loads((d / "proof.json").read_text())
    public = [int(s) for s in json.loads((d / "public.json").read_text())]
    return proof_words(proof), public


def _chain(d: Path, k: int, x: list[int]) -> dict[str, Any]:
    """Proves slices 0..k-1 on input x: the commitments, proofs and public signals of the chain."""
    proofs, publics, commitments = [], [], []
    a = [v + 1 for v in x]
    cin = 0
    for j in range(k):
        if j == 0:
            inp: dict[str, Any] = {"in": [str(w) for w in pack(x, IN_BITS)]}
        else:
            inp = {"w": [str(w) for w in pack(a, ACT_BITS)], "cin": str(cin)}
            if j == k - 1:
                inp["payee"] = str(int(PAYEE, 16))
            else:
                a = [v + 1 for v in a]
        words, public = _prove(d, j, inp)
        proofs.append(words)
        publics.append(public)
        if j < k - 1:
            cin = public[0]
            commitments.append(cin)
    output = [v - (k - 1) for v in a[:N_OUT]]
    return {"proofs": proofs, "public_signals": publics, "commitments": commitments, "output": output}


def _encoded(commitments: list[int], proofs: list[list[int]]) -> str:
    return "0x" + encode(["uint256[]", "uint256[8][]"], [commitments, proofs]).hex()


def build(k: int) -> None:
    d = BUILD / f"slicedtoy-k{k}"
    for j in range(k):
        _compile(d, j, k)
    requests = []
    for x in INPUTS:
        ch = _chain(d, k, x)
        assert ch["output"] == x[:N_OUT], ch["output"]
        requests.append({"input": x, "output": ch["output"], "commitments": [str(c) for c in ch["commitments"]],
                         "proofs": [[str(w) for w in p] for p in ch["proofs"]],
                         "public_signals": [[str(s) for s in p] for p in ch["public_signals"]],
                         "proof": _encoded(ch["commitments"], ch["proofs"])})
    doc: dict[str, Any] = {
        "k": k, "input_bits": IN_BITS, "output_bits": OUT_BITS, "boundary_bits": ACT_BITS,
        "n_inputs": N_IN, "n_outputs": N_OUT, "payee": PAYEE,
        "vks": [[str(w) for w in groth16_vk_words(d / f"slice{j}_vk.json")] for j in range(k)],
        "requests": requests,
    }
    out = FIXTURES / f"slicedtoy_k{k}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    log.info("wrote %s", out)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for k in (2, 4, 8):
        build(k)


if __name__ == "__main__":
    main()
