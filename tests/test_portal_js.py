"""The portal's in-browser proof check (oracle/gateway/portal/static/js/proofcheck.mjs) agrees
with the Python it ports: the circuit id (sha256 of the verification key bytes), the public
signals (packing, payee placement, field encoding of negatives), the proof bytes, and a real
snarkjs verification of real proofs. Runs the module in node (Chromium runs it in
tests/browser); node imports snarkjs' own CommonJS build here."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from oracle.circuits.manifest import Manifest, circuit_id_of
from oracle.circuits.packing import PackingError
from oracle.circuits.payee import PayeeError, slot_for
from oracle.proving.groth16 import Groth16Backend

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "oracle" / "gateway" / "portal" / "static" / "js" / "proofcheck.mjs"
SNARKJS = ROOT / "node_modules" / "snarkjs" / "build" / "main.cjs"
PAYEE = "0x00000000000000000000000000000000000000a1"

# Reads {"op": ..., ...} cases from stdin, answers one JSON result per case.
DRIVER = """
import * as pc from %(module)s;
import { createRequire } from "module";
const snarkjs = createRequire(import.meta.url)(%(snarkjs)s);
let raw = "";
for await (const chunk of process.stdin) raw += chunk;
const out = [];
for (const c of JSON.parse(raw)) {
  try {
    if (c.op === "sha256") {
      const bytes = Buffer.from(c.hex, "hex");
      out.push({ ok: [pc.sha256Js(bytes), await pc.sha256Hex(bytes)] });
    } else if (c.op === "circuit_id") {
      out.push({ ok: await pc.circuitIdOf(Buffer.from(c.hex, "hex")) });
    } else if (c.op === "signals") {
      out.push({ ok: pc.publicSignals(c.m, c.input, c.output, c.payee) });
    } else if (c.op === "decode") {
      out.push({ ok: pc.decodeProof(c.hex) });
    } else if (c.op === "verify") {
      const r = await pc.verifyInBrowser(snarkjs, {
        expectedIds: c.ids, model: c.m, inputFixed: c.input, outputFixed: c.output, payee: c.payee,
        proofHex: c.proof, vkBytes: new Uint8Array(Buffer.from(c.vk, "hex")),
      });
      out.push({ ok: r });
    }
  } catch (e) {
    out.push({ error: e.message, kind: e.constructor.name });
  }
}
process.stdout.write(JSON.stringify(out));
process.exit(0);  // snarkjs keeps worker threads alive
"""


def run_js(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    script = DRIVER % {"module": json.dumps(MODULE.as_uri()), "snarkjs": json.dumps(str(SNARKJS))}
    res = subprocess.run(["node", "--input-type=module", "-e", script], input=json.dumps(cases),
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    out: list[dict[str, Any]] = json.loads(res.stdout)
    assert len(out) == len(cases)
    return out


def fields(m: Manifest) -> dict[str, Any]:
    """The manifest fields the page hands to publicSignals (what the catalog API serves)."""
    return {"signal_layout": m.signal_layout, "input_bits": m.input_bits, "output_bits": m.output_bits,
            "packing": m.packing, "payee": m.payee}


def test_sha256_matches_hashlib_at_block_edges() -> None:
    rng = random.Random(7)
    blobs = [b"", b"abc"] + [rng.randbytes(n) for n in (55, 56, 63, 64, 65, 119, 120, 128, 1000, 4099)]
    got = run_js([{"op": "sha256", "hex": b.hex()} for b in blobs])
    for b, r in zip(blobs, got, strict=True):
        want = hashlib.sha256(b).hexdigest()
        assert r["ok"] == [want, want], len(b)   # the pure-JS fallback and WebCrypto


def test_circuit_id_of_real_verification_keys(risk_circuit: Path, risk_circuit_unpacked: Path) -> None:
    vks = [c / Manifest.load(c).files["vk"] for c in (risk_circuit, risk_circuit_unpacked)]
    got = run_js([{"op": "circuit_id", "hex": vk.read_bytes().hex()} for vk in vks])
    for vk, c, r in zip(vks, (risk_circuit, risk_circuit_unpacked), got, strict=True):
        assert r["ok"] == circuit_id_of(vk) == Manifest.load(c).circuit_id


def _variants(risk_circuit: Path, risk_circuit_unpacked: Path) -> list[Manifest]:
    """The real manifests plus every layout the encoding has: several words per list, a payee
    in the last output word's spare bits and in a word of its own, no payee, unpacked layouts
    in both orders (negatives as p - |v|)."""
    packed, unpacked = Manifest.load(risk_circuit), Manifest.load(risk_circuit_unpacked)
    wide = replace(packed, input_shape=[1, 64], output_shape=[1, 10], input_bits=6, output_bits=28,
                   packing={"input_bits": 6, "output_bits": 28, "per_word_in": 42, "per_word_out": 9},
                   payee=slot_for(28, 1))                                     # digits: 2 output words
    full = replace(packed, output_shape=[1, 21], payee=slot_for(21 * 12, 0))  # full word: payee apart
    assert full.payee is not None and full.payee["extra"] == 1
    return [packed, unpacked, wide, full, replace(packed, payee=None),
            replace(unpacked, signal_layout="inputs_then_outputs", payee=None)]


def test_public_signals_match_python(risk_circuit: Path, risk_circuit_unpacked: Path) -> None:
    rng = random.Random(11)
    cases, want = [], []
    for m in _variants(risk_circuit, risk_circuit_unpacked):
        for trial in range(6):
            lo_i, lo_o = -(1 << (m.input_bits - 1)), -(1 << (m.output_bits - 1))
            if trial == 0:    # the range's edges
                x = [lo_i if i % 2 else -lo_i - 1 for i in range(m.input_size)]
                y = [lo_o if i % 2 else -lo_o - 1 for i in range(m.output_size)]
            else:
                x = [rng.randrange(lo_i, -lo_i) for _ in range(m.input_size)]
                y = [rng.randrange(lo_o, -lo_o) for _ in range(m.output_size)]
            payee = "0x" + rng.randbytes(20).hex() if trial else "0x" + "ff" * 20
            cases.append({"op": "signals", "m": fields(m), "input": x, "output": y, "payee": payee})
            want.append(m.public_signals(x, y, payee if m.binds_payee else None))
    got = run_js(cases)
    for c, w, r in zip(cases, want, got, strict=True):
        assert r.get("ok") == w, (c["m"], r)


def test_bad_values_are_refused_like_python(risk_circuit: Path) -> None:
    m = Manifest.load(risk_circuit)
    top = 1 << (m.input_bits - 1)
    bad: list[tuple[list[int], list[int], str | None, type[Exception]]] = [
        ([top] + [0] * (m.input_size - 1), [0] * m.output_size, PAYEE, PackingError),    # input too big
        ([0] * m.input_size, [-top - 1] + [0] * (m.output_size - 1), PAYEE, PackingError),
        ([0] * m.input_size, [0] * m.output_size, None, PayeeError),                      # payee missing
        ([0] * m.input_size, [0] * m.output_size, "0x1234", PayeeError),                  # payee short
    ]
    got = run_js([{"op": "signals", "m": fields(m), "input": x, "output": y, "payee": p} for x, y, p, _ in bad])
    for (x, y, p, exc), r in zip(bad, got, strict=True):
        with pytest.raises(exc):
            m.public_signals(x, y, p)
        assert r.get("kind") == "CheckError", r
    assert "outside the 12-bit signed range" in got[0]["error"]
    assert "binds a payee" in got[2]["error"]


def test_verify_real_proofs_and_name_the_failed_check(
    risk_circuit: Path, risk_circuit_unpacked: Path, groth16_backend: Groth16Backend
) -> None:
    cases: list[dict[str, Any]] = []
    for c in (risk_circuit, risk_circuit_unpacked):
        m = Manifest.load(c)
        x = [random.Random(3).randrange(0, 1 << 10) for _ in range(m.input_size)]
        p = groth16_backend.prove(c, x, PAYEE)
        vk = (c / m.files["vk"]).read_bytes()
        base = {"op": "verify", "m": fields(m), "input": p.input_fixed, "output": p.output_fixed,
                "payee": PAYEE, "proof": p.calldata, "vk": vk.hex(),
                "ids": [{"source": "catalog", "id": m.circuit_id}]}
        flipped = p.calldata[:100] + ("1" if p.calldata[100] != "1" else "2") + p.calldata[101:]
        other_vk = json.loads(vk)
        other_vk["IC"][0][0] = str(int(other_vk["IC"][0][0]) + 1)
        cases += [
            base,
            {**base, "proof": flipped},                                             # tampered byte
            {**base, "output": [p.output_fixed[0] + 1, *p.output_fixed[1:]]},       # another output
            {**base, "payee": "0x" + "00" * 19 + "a2"},                             # another payee
            {**base, "vk": json.dumps(other_vk).encode().hex()},                    # another key
            {**base, "proof": p.calldata[:-2]},                                     # truncated
        ]
    got = run_js(cases)
    for i in range(2):
        ok, tampered, output, payee, vk_, short = (g["ok"] for g in got[6 * i: 6 * i + 6])
        failed = lambda r: [c["name"] for c in r["checks"] if not c["ok"]]  # noqa: E731
        assert ok["valid"] is True and failed(ok) == [], ok
        for r in (tampered, output, payee):
            assert r["valid"] is False and failed(r) == ["Groth16 pairing check"], r
        assert failed(vk_)[0] == "verification key = circuit id (catalog)"
        assert failed(short) == ["proof bytes", "Groth16 pairing check"]
        assert "256 bytes, this one is 255" in next(c["detail"] for c in short["checks"] if c["name"] == "proof bytes")
