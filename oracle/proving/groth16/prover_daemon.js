#!/usr/bin/env node
// Long-lived Groth16 prover: loads snarkjs once, then serves JSON lines on stdin/stdout.
//
//   {"id": 1, "cmd": "prove", "wasm": "/abs/model.wasm", "zkey": "/abs/model.zkey",
//    "input": {"in": ["12", ...]}}
//     -> {"id": 1, "ok": true, "proof": {...}, "publicSignals": [...], "ms": {...}}
//   {"id": 4, "cmd": "prove_wtns", "wtns": "/abs/w.wtns", "zkey": "/abs/model.zkey", "vk": "/abs/vk.json"}
//     -> {"id": 4, "ok": true, "proof": {...}, "publicSignals": [...], "valid": true|null, "ms": {...}}
//     (a ready .wtns, e.g. from the direct generator; "vk" optional: verify the fresh proof too)
//   {"id": 2, "cmd": "verify", "vk": "/abs/vk.json", "proof": {...}, "publicSignals": [...]}
//     -> {"id": 2, "ok": true, "valid": true|false}
//   {"id": 3, "cmd": "ping"}  -> {"id": 3, "ok": true, "pid": 1234}
// Errors: {"id": n, "ok": false, "error": "message"}.
//
// Why: each snarkjs CLI call costs ~0.3 s of Node start-up plus reading the keys; a warm
// process proves a small circuit in tens of milliseconds. The compiled witness generator,
// zkey bytes and verification key are cached per file (keyed by path, size and mtime, so a
// rebuilt circuit folder is picked up). Requests are handled one at a time: the Python pool
// runs several daemons for parallelism.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

// snarkjs and its logger may print to stdout; stdout is reserved for responses.
const out = process.stdout;
console.log = console.info = console.debug = (...a) => process.stderr.write(a.join(' ') + '\n');

function resolveModule(name) {
  const dirs = [];
  if (process.env.ORACLE_NODE_MODULES) dirs.push(process.env.ORACLE_NODE_MODULES);
  dirs.push(path.resolve(__dirname, '..', '..', '..', 'node_modules'));
  for (const d of dirs) {
    const p = path.join(d, name);
    if (fs.existsSync(p)) return require(p);
  }
  return require(name);
}

const snarkjs = resolveModule('snarkjs');
const { WitnessCalculatorBuilder } = resolveModule('circom_runtime');

const cache = new Map();   // key -> {stamp, value}

async function cached(file, kind, load) {
  const st = fs.statSync(file);
  const stamp = `${st.size}:${st.mtimeMs}`;
  const key = `${kind}:${file}`;
  const hit = cache.get(key);
  if (hit && hit.stamp === stamp) return hit.value;
  const value = await load(file);
  cache.set(key, { stamp, value });
  return value;
}

const loadWasm = (f) => WitnessCalculatorBuilder(fs.readFileSync(f));
const loadBytes = (f) => new Uint8Array(fs.readFileSync(f));
const loadJson = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));

async function handle(req) {
  switch (req.cmd) {
    case 'ping':
      return { pid: process.pid };
    case 'prove': {
      const t0 = process.hrtime.bigint();
      const wc = await cached(req.wasm, 'wasm', loadWasm);
      const zkey = await cached(req.zkey, 'zkey', loadBytes);
      const t1 = process.hrtime.bigint();
      const wtns = await wc.calculateWTNSBin(req.input, true);
      const t2 = process.hrtime.bigint();
      const { proof, publicSignals } = await snarkjs.groth16.prove(zkey, wtns);
      const t3 = process.hrtime.bigint();
      const ms = (a, b) => Number(b - a) / 1e6;
      return { proof, publicSignals, ms: { load: ms(t0, t1), witness: ms(t1, t2), prove: ms(t2, t3) } };
    }
    case 'prove_wtns': {
      // A witness computed elsewhere (the direct generator, in Python). snarkjs' prover does not
      // check it against the constraints, so with "vk" the fresh proof is verified as well.
      const t0 = process.hrtime.bigint();
      const zkey = await cached(req.zkey, 'zkey', loadBytes);
      const t1 = process.hrtime.bigint();
      const wtns = new Uint8Array(fs.readFileSync(req.wtns));
      const t2 = process.hrtime.bigint();
      const { proof, publicSignals } = await snarkjs.groth16.prove(zkey, wtns);
      const t3 = process.hrtime.bigint();
      let valid = null;
      if (req.vk) {
        const vk = await cached(req.vk, 'vk', loadJson);
        valid = (await snarkjs.groth16.verify(vk, publicSignals, proof)) === true;
      }
      const t4 = process.hrtime.bigint();
      const ms = (a, b) => Number(b - a) / 1e6;
      return { proof, publicSignals, valid,
               ms: { load: ms(t0, t1), witness: ms(t1, t2), prove: ms(t2, t3), verify: ms(t3, t4) } };
    }
    case 'verify': {
      const vk = await cached(req.vk, 'vk', loadJson);
      const valid = await snarkjs.groth16.verify(vk, req.publicSignals, req.proof);
      return { valid: valid === true };
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(req.cmd)}`);
  }
}

// One request at a time, in order: the pool never pipelines, but be safe if a client does.
let chain = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    let req;
    let res;
    try {
      req = JSON.parse(line);
      res = { id: req.id, ok: true, ...(await handle(req)) };
    } catch (e) {
      const msg = (e && e.message) ? e.message : String(e);
      res = { id: req ? req.id : null, ok: false, error: msg.split('\n').slice(0, 5).join(' | ') };
    }
    out.write(JSON.stringify(res) + '\n');
  });
});
rl.on('close', () => {
  chain.then(() => process.exit(0));
});
