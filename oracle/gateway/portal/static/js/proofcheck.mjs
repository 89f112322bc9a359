// Checking a Groth16 inference proof in the visitor's own browser, trusting nothing the
// server computed: the verification key is hashed here and compared with the circuit id
// (registered on chain and in the catalog), the public signals are rebuilt here from the
// request's input, output and payee exactly as the on-chain adapter rebuilds them, and the
// pairing check is snarkjs' own (its browser bundle, served by the gateway).
//
// Ports of oracle/circuits/manifest.py (circuit_id_of, Manifest.public_signals),
// oracle/circuits/packing.py (pack), oracle/circuits/payee.py (payee_int, place_payee) and
// oracle/proving/groth16/calldata.py (decode_proof). tests/test_portal_js.py runs this file in
// node against the Python originals; tests/browser run it in Chromium.

export const BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
export const WORD_BITS = 253;
export const PAYEE_BITS = 160;
export const PROOF_BYTES = 256;

export class CheckError extends Error {}

// ----------------------------------------------------------------------------- sha256

// WebCrypto exists only in secure contexts (https, or http on localhost): a portal served over
// plain http on another host has no crypto.subtle, so a small pure-JS SHA-256 stands in.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export function sha256Js(bytes) {
  const n = bytes.length;
  const total = Math.ceil((n + 9) / 64) * 64;
  const m = new Uint8Array(total);
  m.set(bytes);
  m[n] = 0x80;
  const dv = new DataView(m.buffer);
  dv.setUint32(total - 8, Math.floor(n / 0x20000000));   // bit length, high word
  dv.setUint32(total - 4, (n * 8) >>> 0);                 // bit length, low word
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, r) => (x >>> r) | (x << (32 - r));
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    const v = [a, b, c, d, e, f, g, hh];
    for (let i = 0; i < 8; i++) h[i] = (h[i] + v[i]) >>> 0;
  }
  return Array.from(h, (x) => x.toString(16).padStart(8, "0")).join("");
}

export async function sha256Hex(bytes) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) return sha256Js(bytes);
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes));
  return Array.from(digest, (x) => x.toString(16).padStart(2, "0")).join("");
}

// circuit id = "0x" + sha256 of the verification key FILE's bytes (manifest.circuit_id_of):
// hash the bytes as served, never a re-serialised JSON object.
export async function circuitIdOf(vkBytes) {
  return "0x" + (await sha256Hex(vkBytes));
}

// ------------------------------------------------------------------- public signals

function checkInt(v, what, i) {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (typeof v === "string" && /^-?\d+$/.test(v.trim())) return BigInt(v.trim());
  throw new CheckError(`${what} ${i} = ${JSON.stringify(v)} is not an integer`);
}

export function checkRange(values, bits, what = "value") {
  const half = 1n << BigInt(bits - 1);
  return values.map((raw, i) => {
    const v = checkInt(raw, what, i);
    if (v < -half || v >= half) {
      throw new CheckError(`${what} ${i} = ${v} is outside the ${bits}-bit signed range [${-half}, ${half - 1n}]`);
    }
    return v;
  });
}

export function perWord(bits) {
  if (!(bits >= 1 && bits <= WORD_BITS)) throw new CheckError(`cannot pack ${bits}-bit values into ${WORD_BITS}-bit words`);
  return Math.floor(WORD_BITS / bits);
}

// packing.pack: offset each value by 2**(bits-1), k = floor(253 / bits) values per word,
// little-endian by index.
export function pack(values, bits, what = "value") {
  const k = perWord(bits);
  const ints = checkRange(values, bits, what);
  const half = 1n << BigInt(bits - 1);
  const words = [];
  ints.forEach((v, i) => {
    if (i % k === 0) words.push(0n);
    words[words.length - 1] |= (v + half) << BigInt(bits * (i % k));
  });
  return words;
}

export function payeeInt(payee) {
  if (payee === null || payee === undefined) {
    throw new CheckError("this circuit binds a payee: the request names none");
  }
  const h = payee.startsWith("0x") || payee.startsWith("0X") ? payee.slice(2) : payee;
  if (!/^[0-9a-fA-F]{40}$/.test(h)) throw new CheckError(`payee ${JSON.stringify(payee)} is not a 20-byte hex address`);
  return BigInt("0x" + h);
}

export function placePayee(signals, slot, payee) {
  const out = signals.slice();
  if (slot.extra) out.splice(slot.signal, 0, payee);
  else out[slot.signal] += payee << BigInt(slot.shift);
  return out;
}

const mod = (v, m) => ((v % m) + m) % m;

// manifest.Manifest.public_signals: decimal strings, in the order the adapter rebuilds them.
// ``m`` carries the manifest fields signal_layout, input_bits, output_bits, packing, payee.
export function publicSignals(m, inputFixed, outputFixed, payee) {
  const x = checkRange(inputFixed, m.input_bits, "input");
  const y = checkRange(outputFixed, m.output_bits, "output");
  let signals;
  if (m.signal_layout === "packed_outputs_then_inputs") {
    const p = m.packing;
    if (!p) throw new CheckError("packed signal layout without a packing entry");
    if (p.input_bits !== m.input_bits || p.output_bits !== m.output_bits) {
      throw new CheckError("packing bit widths differ from input/output_bits");
    }
    signals = [...pack(y, p.output_bits, "output"), ...pack(x, p.input_bits, "input")];
  } else if (m.signal_layout === "outputs_then_inputs") {
    signals = [...y, ...x].map((v) => mod(v, BN254_R));
  } else if (m.signal_layout === "inputs_then_outputs") {
    signals = [...x, ...y].map((v) => mod(v, BN254_R));
  } else {
    throw new CheckError(`unknown signal layout ${JSON.stringify(m.signal_layout)}`);
  }
  if (m.payee) signals = placePayee(signals, m.payee, payeeInt(payee));
  return signals.map((v) => v.toString());
}

// ------------------------------------------------------------------- proof bytes

// calldata.decode_proof: eight 32-byte words a, b (G2 pairs as (im, re)), c.
export function decodeProof(hex) {
  const h = String(hex).trim().replace(/^0x/i, "");
  if (!/^[0-9a-fA-F]*$/.test(h)) throw new CheckError("the proof is not hex");
  if (h.length !== 2 * PROOF_BYTES) {
    throw new CheckError(`a Groth16 proof is ${PROOF_BYTES} bytes, this one is ${h.length / 2}`);
  }
  const w = [];
  for (let i = 0; i < 8; i++) w.push(BigInt("0x" + h.slice(64 * i, 64 * i + 64)).toString());
  return {
    pi_a: [w[0], w[1], "1"],
    pi_b: [[w[3], w[2]], [w[5], w[4]], ["1", "0"]],
    pi_c: [w[6], w[7], "1"],
    protocol: "groth16",
    curve: "bn128",
  };
}

// ------------------------------------------------------------------- the whole check

// Runs every check and never stops at the first failure, so the page can say which failed.
// req: {expectedIds: [{source, id}], model: manifest fields, inputFixed, outputFixed, payee,
//       proofHex, vkBytes (Uint8Array, as served)}; snarkjs: the browser bundle's global.
export async function verifyInBrowser(snarkjs, req) {
  const checks = [];
  const add = (name, ok, detail) => checks.push({ name, ok, detail });

  const got = await circuitIdOf(req.vkBytes);
  const ids = req.expectedIds || [];
  if (ids.length === 0) add("verification key", false, `sha256 ${got}: no registered circuit id to compare with`);
  for (const { source, id } of ids) {
    const same = String(id).toLowerCase() === got;
    add(`verification key = circuit id (${source})`, same,
        same ? `sha256 of the key ${got}` : `sha256 of the key ${got} != ${id}`);
  }

  let signals = null;
  try {
    signals = publicSignals(req.model, req.inputFixed, req.outputFixed, req.payee);
    add("public signals rebuilt from input, output and payee", true, `${signals.length} signal(s)`);
  } catch (e) {
    add("public signals rebuilt from input, output and payee", false, e.message);
  }

  let proof = null;
  try {
    proof = decodeProof(req.proofHex);
    add("proof bytes", true, `${PROOF_BYTES} bytes`);
  } catch (e) {
    add("proof bytes", false, e.message);
  }

  let vk = null;
  try {
    vk = JSON.parse(new TextDecoder().decode(req.vkBytes));
  } catch (e) {
    add("verification key", false, `not JSON: ${e.message}`);
  }

  if (signals && proof && vk) {
    let ok = false;
    let detail;
    try {
      // snarkjs logs to the console it is given; null keeps the page's console clean.
      ok = await snarkjs.groth16.verify(vk, signals, proof, null);
      detail = ok ? "snarkjs groth16.verify: pairing equation holds" : "snarkjs groth16.verify: pairing equation fails";
    } catch (e) {
      detail = `snarkjs refused the proof: ${e.message || e}`;
    }
    add("Groth16 pairing check", ok, detail);
  } else {
    add("Groth16 pairing check", false, "not run: an earlier check failed");
  }
  return { valid: checks.every((c) => c.ok), checks };
}
