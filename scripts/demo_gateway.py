"""The demo's gateway part (scripts/demo.py): where the oracle process serves its HTTP API and
portal, and one off-chain inference through that API, checked end to end.

The key comes from ``oracle gateway key create`` run as a command (the operator's path), the
inference is submitted with it, followed until final, its output compared with the integer
reference, its proof checked again by ``POST /api/v1/verify`` (off-chain and by the chain's
adapter through ``eth_call``) and the served verification key hashed against the circuit id."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from oracle.circuits.quantize import QuantizedModel, quantized_forward

ROOT = Path(__file__).resolve().parent.parent
OFFCHAIN_STATES = ["confirmed", "dispatched", "proven", "verified", "fulfilled"]


def listen_address(preferred: int = 8000) -> str:
    """127.0.0.1:8000 when free, else a free port the OS picks (another demo or test may hold 8000)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def wait_gateway(url: str, timeout: float = 60.0) -> None:
    """Until ``/readyz`` answers 200 (database at head, circuits loaded, chains reachable)."""
    end = time.monotonic() + timeout
    last = ""
    while time.monotonic() < end:
        try:
            r = httpx.get(url + "/readyz", timeout=5)
            if r.status_code == 200:
                return
            last = r.text[:300]
        except httpx.HTTPError as e:
            last = type(e).__name__
        time.sleep(0.3)
    raise SystemExit(f"the gateway at {url} was not ready within {timeout:.0f} s: {last}")


def print_urls(url: str) -> None:
    print(f"gateway {url}:  portal {url}/   dashboard {url}/dashboard   API docs {url}/docs   "
          f"metrics {url}/metrics", flush=True)


def create_key(db_url: str, name: str) -> str:
    out = subprocess.run([sys.executable, "-m", "oracle.cli", "gateway", "key", "create", name, "--db", db_url],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"oracle gateway key create failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return out.stdout.strip()


def offchain_round(url: str, db_url: str, model_id: str, qm: QuantizedModel, x: list[int],
                   timeout: float = 120.0) -> bool:
    """One off-chain inference through the API; True when every check holds."""
    key = create_key(db_url, f"demo-{int(time.time())}")
    print(f"API key created with `oracle gateway key create` (shown once, stored hashed): {key[:8]}..")
    scale = 1 << qm.input_scale
    body = {"model_id": model_id, "input": [v / scale for v in x]}
    t0 = time.monotonic()
    r = httpx.post(url + "/api/v1/inferences", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    if r.status_code != 202:
        print(f"!! POST /api/v1/inferences answered {r.status_code}: {r.text[:300]}")
        return False
    status_url = r.json()["status_url"]
    inference_id = r.json()["id"]
    print(f"POST /api/v1/inferences -> 202, id {inference_id}; its page: {url}/inferences/{inference_id}")
    v: dict[str, object] = {}
    end = t0 + timeout
    while time.monotonic() < end:
        v = httpx.get(status_url, timeout=30).json()
        if v.get("final"):
            break
        time.sleep(0.3)
    else:
        print(f"!! not final within {timeout:.0f} s: state {v.get('state')}")
        return False
    ref = quantized_forward(qm, x)
    history = [h["to_state"] for h in v["history"]]  # type: ignore[attr-defined]
    proof = v.get("proof")
    checks = {
        "fulfilled (never relayed)": v["state"] == "fulfilled" and history == OFFCHAIN_STATES,
        "input as sent": v["input_fixed"] == x,
        "output == numpy integer reference": v["output_fixed"] == ref,
        "proof verified by the dispatcher": isinstance(proof, dict) and proof.get("verified") is True,
    }
    if isinstance(proof, dict):
        res = httpx.post(url + "/api/v1/verify", timeout=60, json={
            "model_id": model_id, "input_fixed": x, "output_fixed": v["output_fixed"], "proof": proof["proof"],
            "payee": proof["payee"]}).json()
        onchain = [c["name"] for c in res["checks"] if c["name"].startswith("onchain:") and c["ok"]]
        checks["POST /api/v1/verify: valid off-chain and by the chain's adapter (eth_call)"] = (
            res["valid"] is True and bool(onchain))
        detail = httpx.get(f"{url}/api/v1/models/{model_id}", timeout=30).json()
        vk = httpx.get(f"{url}/api/v1/models/{model_id}/vk", timeout=30).content
        checks["sha256(served vk) == circuit id"] = "0x" + hashlib.sha256(vk).hexdigest() == detail["circuit_id"]
        print(f"proven by miner {str(proof['prover'])[:12]}.. in {float(proof['prove_seconds'] or 0):.2f} s; "
              f"submit -> proven {v['submit_to_proven_seconds']:.1f} s, final seen after {time.monotonic() - t0:.1f} s")
    print(f"input {x} -> output {v['output_fixed']} (float {json.dumps(v['output'])})")
    for what, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {what}")
    return all(checks.values())
