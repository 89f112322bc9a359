"""The sliced-model demo (issue #12): a model too large for one circuit, proven slice-parallel by
miners and fulfilled on-chain.

    .venv/bin/python scripts/demo_sliced.py [--digits 3] [--miners 4] [--workdir build/demo-sliced]

models/deep-mlp (64 -> (320 -> 32) x 6 -> 10 on scikit-learn digits) needs 65.8 k R1CS rows as
one circuit: more than a 2^16 ceremony (65,536) holds, so it cannot be one Groth16 circuit under
the largest ceremony cached here. Cut in 8 slices (7.7 k - 15.5 k rows each) it needs ONE 2^14
ceremony shared by all slices (a fresh 2-core machine builds 2^14 in ~17 min, 2^16 in ~27 min;
on this box the cached 2^16 file serves them). Then:

1. compile the sliced model (cached in .cache/bench-circuits/deep-mlp-k8), start anvil, deploy,
   register it behind one SlicedGroth16Adapter;
2. start N miners (separate processes, Bittensor hotkeys, signed HTTP, one proving worker each)
   and the oracle service as their validator;
3. request held-out digit classifications on-chain; the validator sends the 8 slices of each to
   the miners at once, checks every slice proof as it arrives, assembles the fulfilment;
4. check each fulfilled output against the integer reference, print per-request latency, which
   miner proved which slice, fulfil gas, and run ``oracle audit`` on the first request (every
   slice and the chaining re-verified from chain data).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from eth_account import Account  # noqa: E402

from oracle.chain.anvil import DEV_KEYS, Anvil  # noqa: E402
from oracle.chain.client import Chain  # noqa: E402
from oracle.chain.deploy import deploy_all  # noqa: E402
from oracle.chain.registration import register_circuit  # noqa: E402
from oracle.circuits.manifest import ManifestError  # noqa: E402
from oracle.circuits.quantize import quantized_forward  # noqa: E402
from oracle.proving.base import BackendError, CompileOptions  # noqa: E402
from oracle.proving.groth16 import sliced  # noqa: E402

MODEL = ROOT / "models" / "deep-mlp"
FOLDER = ROOT / ".cache" / "bench-circuits" / "deep-mlp-k8"   # shared with bench/bench_sliced.py --compare
SLICES = 8
RELAYER_KEY = DEV_KEYS[5]
NO_CALLBACK = "0x" + "00" * 20
log = logging.getLogger("demo-sliced")


def banner(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 74 - len(text)), flush=True)


def compiled(folder: Path = FOLDER) -> Path:
    """The sliced folder, compiled once (reused while it was made from the same model.onnx)."""
    onnx_sha = hashlib.sha256((MODEL / "model.onnx").read_bytes()).hexdigest()
    try:
        sm = sliced.load(folder)
        if sm.manifest.settings.get("onnx_sha256") == onnx_sha and sm.k == SLICES and len(sm.held) == SLICES:
            return folder
    except (ManifestError, BackendError, FileNotFoundError):
        pass
    print(f"compiling {MODEL / 'model.onnx'} into {SLICES} slices (one ceremony; ~15-25 min on a loaded 2-core box)")
    t0 = time.monotonic()
    sliced.compile_sliced(MODEL / "model.onnx", folder, CompileOptions(calibration=MODEL / "calibration.json",
                                                                       name="deep-mlp", cache_dir=ROOT / ".cache"),
                          slices=SLICES)
    print(f"compiled in {time.monotonic() - t0:.0f} s")
    return folder


def held_out(n: int) -> tuple[np.ndarray, np.ndarray]:
    sys.path.insert(0, str(MODEL))
    from train import data  # models/deep-mlp/train.py: its held-out split

    _, x_test, _, y_test = data()
    return np.asarray(x_test[:n]), np.asarray(y_test[:n])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--digits", type=int, default=3)
    ap.add_argument("--miners", type=int, default=4)
    ap.add_argument("--workdir", type=Path, default=ROOT / "build" / "demo-sliced")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    a.workdir.mkdir(parents=True, exist_ok=True)

    banner("1. the model: too large for one circuit, cut into slices on one ceremony")
    folder = compiled()
    sm = sliced.load(folder)
    m = sm.manifest
    rows = m.stats["constraints"]
    cost = sliced.CostModel(sm.qm)
    whole = cost.input_rows + sum(cost.steps) + cost.output_rows
    print(f"models/deep-mlp: {len(sm.qm.layers)} layers, whole circuit {whole:,} rows (> 2^16 = 65,536: needs 2^17)")
    print(f"{sm.k} slices, cuts {sm.cuts}, rows {rows} (largest {max(rows):,}): ONE ceremony of "
          f"2^{m.stats['ptau_power']} (file used here: {m.settings['ptau']['file']}); "
          f"compile {m.stats['compile_seconds']:.0f} s")

    with Anvil(block_time=1) as node:
        owner = Chain.connect(node.url, Account.from_key(DEV_KEYS[0]))
        d = deploy_all(owner)
        t0 = time.monotonic()
        reg = register_circuit(owner, d.registry, folder, rpc_url=node.url)
        print(f"registered model {reg.model_id} behind SlicedGroth16Adapter {reg.adapter} "
              f"(verify gas budget {reg.verify_gas:,}) in {time.monotonic() - t0:.1f} s")
        oracle = owner.contract("InferenceOracle", d.oracle)
        return _run(a, node, owner, d.oracle, oracle, bytes.fromhex(reg.model_id[2:]), folder, sm)


def _run(a: argparse.Namespace, node: Anvil, owner: Chain, oracle_addr: str, oracle: object, model_id: bytes,
         folder: Path, sm: sliced.SlicedModel) -> int:
    from oracle.subnet.auth import hotkey_of, load_or_create_wallet
    from oracle.subnet.local import start_local_miners, stop_local_miners

    banner(f"2. {a.miners} miners (one proving worker each) and the oracle service as their validator")
    models = a.workdir / "models"
    models.mkdir(exist_ok=True)
    link = models / "deep-mlp-k8"
    if not link.exists():
        link.symlink_to(folder.resolve(), target_is_directory=True)
    subnet_dir = a.workdir / "subnet"
    wallet_dir = subnet_dir / "wallets"
    validator = load_or_create_wallet("validator", wallet_dir)
    miners = start_local_miners(a.miners, models, hotkey_of(validator), base_dir=subnet_dir, workers=1)
    names = {mm.hotkey: f"miner-{i}" for i, mm in enumerate(miners)}
    db_url = f"sqlite:///{a.workdir / 'oracle.db'}"
    for f in a.workdir.glob("oracle.db*"):
        f.unlink()
    config = a.workdir / "oracle.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n\n[prover]\nmodels_dir = "{models}"\nworkers = 4\ntimeout = 600.0\n\n'
        f'[subnet]\nmetagraph = "{subnet_dir / "miners.json"}"\nwallet_name = "validator"\n'
        f'wallet_path = "{wallet_dir}"\nk = 1\nminer_timeout = 240.0\nhedge_delay = 200.0\nexploration = 0.0\n\n'
        f'[[chains]]\nname = "A"\nrpc_url = "{node.url}"\noracle = "{oracle_addr}"\nconfirmations = 1\n'
    )
    log_path = a.workdir / "oracle.log"
    log_file = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "oracle.cli", "run", "--config", str(config)],
                            stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT,
                            env=dict(os.environ, ORACLE_PRIVATE_KEY=RELAYER_KEY))
    try:
        end = time.monotonic() + 90
        while "oracle service started" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > end:
                print(f"!! the oracle did not start; see {log_path}")
                return 1
            time.sleep(0.3)
        return _requests(a, owner, oracle, model_id, sm, names, db_url)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()
        stop_local_miners(miners)


def _requests(a: argparse.Namespace, owner: Chain, oracle: object, model_id: bytes, sm: sliced.SlicedModel,
              names: dict[str, str], db_url: str) -> int:
    from oracle.store import repo
    from oracle.store.db import Database

    o = oracle  # a web3 Contract
    banner(f"3. {a.digits} held-out digits requested on-chain, each proven as {sm.k} slices in parallel")
    xs, ys = held_out(a.digits)
    scale = 1 << sm.qm.input_scale
    fee = int(o.functions.quoteFee(model_id, 0).call())  # type: ignore[attr-defined]
    sent: list[tuple[int, list[int], int, float]] = []
    for x_f, y in zip(xs, ys, strict=True):
        x = [int(v) for v in np.round(x_f * scale)]
        deadline = int(owner.w3.eth.get_block("latest")["timestamp"]) + 3600
        owner.transact(o.functions.requestInference(model_id, x, NO_CALLBACK, 0, deadline), value=fee)  # type: ignore[attr-defined]
        sent.append((int(o.functions.nextRequestId().call()) - 1, x, int(y), time.monotonic()))  # type: ignore[attr-defined]
    print(f"requested {len(sent)} inferences (fee {fee / 1e9:,.0f} gwei each)")
    done: dict[int, float] = {}
    end = time.monotonic() + 1800
    while len(done) < len(sent) and time.monotonic() < end:
        for rid, _, _, _ in sent:
            if rid not in done and int(o.functions.requestStatus(rid).call()) == 2:  # type: ignore[attr-defined]
                done[rid] = time.monotonic()
        time.sleep(1.0)
    logs = o.events.InferenceFulfilled().get_logs(from_block=0)  # type: ignore[attr-defined]
    got = {int(e["args"]["requestId"]): ([int(v) for v in e["args"]["output"]], e) for e in logs}
    db = Database(db_url, run_migrations=False)
    with db.session() as s:
        provers = {r.request_id: (r.proof.prover, r.proof.prove_seconds) for r in repo.all_requests(s)
                   if r.proof is not None}
    db.dispose()
    banner("4. results: on-chain outputs vs the integer reference")
    ok = True
    for rid, x, y, t_req in sent:
        if rid not in got:
            print(f"request {rid}: NOT fulfilled")
            ok = False
            continue
        out, ev = got[rid]
        ref = quantized_forward(sm.qm, x)
        rc = owner.w3.eth.get_transaction_receipt(ev["transactionHash"])
        who, secs = provers.get(rid, ("?", 0.0))
        same = out == ref
        ok = ok and same
        print(f"request {rid}: digit {y}, predicted {int(np.argmax(out))}; output {'==' if same else '!='} integer "
              f"reference; {done.get(rid, time.monotonic()) - t_req:.1f} s request->fulfilled (slices proven and "
              f"checked in {secs:.1f} s) by {who}; fulfil gas {int(rc['gasUsed']):,}")
    print("slice miners: " + ", ".join(f"{v}={k[:8]}" for k, v in names.items()))
    if got and sent[0][0] in got:
        banner(f"5. oracle audit of request {sent[0][0]} (chain data + the circuit folder)")
        r = subprocess.run([sys.executable, "-m", "oracle.cli", "audit", "--rpc", owner.w3.provider.endpoint_uri,  # type: ignore[attr-defined]
                            "--oracle", o.address, "--request", str(sent[0][0]), "--models",  # type: ignore[attr-defined]
                            str(a.workdir / "models"), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
        rep = json.loads(r.stdout)
        for c in rep["checks"]:
            print(f"  {c['status']:4}  {c['name']:16} {c['detail'][:110]}")
        fails = {c["name"] for c in rep["checks"] if c["status"] != "PASS"}
        print("audit: every check passes except 'setup' (local development keys)" if fails == {"setup"}
              else f"audit: FAILED checks {sorted(fails)}")
        ok = ok and fails == {"setup"}
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
