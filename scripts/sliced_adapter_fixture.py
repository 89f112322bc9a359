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
and the model folders build/fixtures/slicedtoy-k{k}/ in the layout of oracle.proving.groth16.sliced
(manifest.json with ``slices``, slices/<j>/ with keys, slice.json and the snarkjs verifier), which
oracle.chain.registration registers and bench/bench_sliced_gas.py measures. Keys are kept between
runs; `--recompile` makes new ones (and new fixtures).
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
from oracle.circuits.manifest import PACKED_LAYOUT, Manifest, circuit_id_of, sha256_file  # noqa: E402
from oracle.circuits.packing import Packing, pack, per_word  # noqa: E402
from oracle.circuits.payee import slot_for  # noqa: E402
from oracle.circuits.slicing import model_id  # noqa: E402
from oracle.proving.groth16 import tools  # noqa: E402
from oracle.proving.groth16.calldata import proof_words  # noqa: E402
from oracle.proving.groth16.circuit import TEMPLATES  # noqa: E402
from oracle.proving.groth16.solidity import compile_verifier  # noqa: E402

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


def _compile(d: Path, j: int, k: int) -> str:
    """Slice j of the k-slice toy model in d/slices/<j>/ (the layout of
    oracle.proving.groth16.sliced: keys, slice.json, the snarkjs verifier for the one-by-one gas
    baseline); kept unless --recompile. Returns the slice's circuit id."""
    sd = d / "slices" / str(j)
    if (sd / "slice.json").exists() and "--recompile" not in sys.argv:
        return str(json.loads((sd / "slice.json").read_text())["circuit_id"])
    sd.mkdir(parents=True, exist_ok=True)
    (sd / "model.circom").write_text(slice_circom(j, k))
    rel = sd.relative_to(ROOT)
    # circom2 (WASI) only sees paths below its working directory: run it from the repository root.
    tools.run([tools.node_binary(), str(tools.circom_cli()), str(rel / "model.circom"),
               "--r1cs", "--wasm", "--O2", "-o", str(rel), "-l", "node_modules"],
              cwd=ROOT, what=f"circom slice {j}")
    os.replace(sd / "model_js" / "model.wasm", sd / "model.wasm")
    shutil.rmtree(sd / "model_js", ignore_errors=True)
    sj = tools.snarkjs
    sj("groth16", "setup", "model.r1cs", str(PTAU), "z0.zkey", cwd=sd, what="groth16 setup")
    sj("zkey", "contribute", "z0.zkey", "z1.zkey", "--name=toy slice", f"-e={os.urandom(32).hex()}",
       cwd=sd, what="zkey contribute")
    sj("zkey", "beacon", "z1.zkey", "model.zkey", os.urandom(32).hex(), "10", "-n=beacon", cwd=sd,
       what="zkey beacon")
    for f in ("z0.zkey", "z1.zkey"):
        (sd / f).unlink()
    sj("zkey", "export", "verificationkey", "model.zkey", "verification_key.json", cwd=sd, what="export vk")
    return _finish_slice(sd, j, k)


def _finish_slice(sd: Path, j: int, k: int) -> str:
    """The slice's snarkjs verifier (compiled) and its slice.json."""
    tools.snarkjs("zkey", "export", "solidityverifier", "model.zkey", "Verifier.sol", cwd=sd,
                  what="export solidity verifier")
    (sd / "verifier.json").write_text(json.dumps(compile_verifier(sd / "Verifier.sol", "Groth16Verifier")))
    cid = circuit_id_of(sd / "verification_key.json")
    files = {"circom": "model.circom", "r1cs": "model.r1cs", "wasm": "model.wasm", "zkey": "model.zkey",
             "vk": "verification_key.json", "verifier_sol": "Verifier.sol", "verifier_json": "verifier.json"}
    (sd / "slice.json").write_text(json.dumps({"index": j, "of": k, "layers": [j, j + 1], "circuit_id": cid,
                                               "files": files, "toy": True}, indent=2) + "\n")
    return cid


def _prove(d: Path, j: int, inp: dict[str, Any]) -> tuple[list[int], list[int]]:
    sd = d / "slices" / str(j)
    (sd / "input.json").write_text(json.dumps(inp))
    tools.snarkjs("groth16", "fullprove", "input.json", "model.wasm", "model.zkey", "proof.json",
                  "public.json", cwd=sd, what=f"prove slice {j}")
    proof = json.loads((sd / "proof.json").read_text())
    public = [int(s) for s in json.loads((sd / "public.json").read_text())]
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
    ids = [_compile(d, j, k) for j in range(k)]
    cid = model_id(ids)
    # The model folder oracle.chain.sliced registers (one adapter for all slices).
    Manifest(
        backend="groth16", name=f"slicedtoy-k{k}", circuit_id=cid, input_shape=[N_IN], output_shape=[N_OUT],
        input_scale=0, output_scale=0, input_bits=IN_BITS, output_bits=OUT_BITS, signal_layout=PACKED_LAYOUT,
        files={}, verifier_contract="SlicedGroth16Adapter", dev_keys=True,
        settings={"ptau": {"file": PTAU.name, "sha256": sha256_file(PTAU)}, "toy": "scripts/sliced_adapter_fixture.py"},
        packing=Packing.for_bits(IN_BITS, OUT_BITS).to_dict(), payee=slot_for(N_OUT * OUT_BITS, 0),
        slices=[{"circuit_id": c, "layers": [j, j + 1], "dir": f"slices/{j}"} for j, c in enumerate(ids)],
    ).save(d)
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
        "vks": [[str(w) for w in groth16_vk_words(d / "slices" / str(j) / "verification_key.json")]
                for j in range(k)],
        "circuit_id": cid,
        "requests": requests,
    }
    out = FIXTURES / f"slicedtoy_k{k}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    log.info("wrote %s", out)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ks = [int(a) for a in sys.argv[1:] if a.isdigit()] or [2, 4, 8]
    for k in ks:
        build(k)


if __name__ == "__main__":
    main()
