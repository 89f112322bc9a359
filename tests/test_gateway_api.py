"""The gateway's JSON API against a real uvicorn server on a free port, a real SQLite file, a
real anvil chain with the risk model registered, the oracle service proving through two real
local miner processes, and a plain snarkjs CLI call to verify what the API hands out.

One module-scoped set-up (chain, miners, service, gateway) serves every test; each test uses
its own API key so rate limits and counts do not leak between tests."""

from __future__ import annotations

import hashlib
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from oracle.chain.anvil import DEV_KEYS
from oracle.chain.client import Chain
from oracle.chain.deploy import deploy_all
from oracle.circuits.quantize import QuantizedModel, quantized_forward
from oracle.gateway.app import create_app
from oracle.gateway.config import ChainEndpoint, GatewaySettings
from oracle.gateway.context import GatewayContext
from oracle.gateway.server import GatewayServer, ListenError, parse_listen
from oracle.paths import NODE_MODULES, ROOT
from oracle.service.app import OracleService
from oracle.store.db import Database
from oracle.store.models import OFFCHAIN, RelayerTx, Request
from oracle.subnet.auth import hotkey_of, load_or_create_wallet
from oracle.subnet.config import SubnetConfig
from oracle.subnet.local import start_local_miners, stop_local_miners
from tests.protocol import Protocol, last_request_id, rpc_url, setup_protocol
from tests.service_harness import RELAYER_KEY_INDEX, models_dir_with, service_config, wait_for

PAYEE = "0x" + "ab" * 20
NO_CALLBACK = "0x" + "00" * 20
ISSUE_PATHS = ["/api/v1/models", "/api/v1/models/{model_id}", "/api/v1/inferences", "/api/v1/inferences/{inference_id}",
               "/api/v1/requests/{chain_id}/{request_id}", "/api/v1/verify", "/api/v1/miners", "/metrics",
               "/healthz", "/readyz"]


@dataclass
class Env:
    url: str
    db_url: str
    db: Database
    p: Protocol
    chain: Chain
    model_id: str
    circuit: Path
    miners: list[str]
    settings: GatewaySettings
    ctx: GatewayContext

    def key(self, name: str) -> str:
        return create_key_cli(self.db_url, name)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, body: Any = None, key: str | None = None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.post(self.url + path, json=body, headers=headers, timeout=30, **kw)

    def offchain_count(self) -> int:
        with self.db.session() as s:
            return s.query(Request).filter(Request.origin == OFFCHAIN).count()


def create_key_cli(db_url: str, name: str, *cmd: str) -> str:
    out = subprocess.run([sys.executable, "-m", "oracle.cli", "gateway", "key", *(cmd or ("create",)), name,
                          "--db", db_url], capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def env(chain: Chain, risk_circuit: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("gateway")
    d = deploy_all(chain)
    p = setup_protocol(chain, d, risk_circuit, vault_deposit=0)
    models = models_dir_with(tmp, risk_circuit)
    validator = hotkey_of(load_or_create_wallet("validator", tmp / "wallets"))
    miners = start_local_miners(2, models, validator, base_dir=tmp / "miners")
    db_url = f"sqlite:///{tmp / 'oracle.db'}"
    cfg = service_config(rpc_url(chain), d.oracle, models, db_url)
    cfg.subnet = SubnetConfig(metagraph=tmp / "miners" / "miners.json", wallet_name="validator",
                              wallet_path=tmp / "wallets", k=1, miner_timeout=20.0, hedge_delay=5.0)
    svc = OracleService(cfg, account=Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]))
    svc.start()
    # The gateway as its own process would run it: its own Database object on the same file.
    settings = GatewaySettings(database_url=db_url, models_dir=models, rate_per_second=0.2, burst=3,
                               max_body=8192, chains=[ChainEndpoint(name="anvil", rpc_url=rpc_url(chain),
                                                                    oracle=d.oracle)])
    ctx = GatewayContext.open(settings)
    server = GatewayServer(create_app(ctx)).start()
    try:
        yield Env(url=server.url, db_url=db_url, db=ctx.db, p=p, chain=chain, model_id=p.reg.model_id.lower(),
                  circuit=risk_circuit, miners=[m.hotkey for m in miners], settings=settings, ctx=ctx)
    finally:
        server.stop()
        ctx.close()
        svc.stop()
        stop_local_miners(miners)


def wait_final(env: Env, status_url: str, timeout: float = 120.0) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.update(httpx.get(status_url, timeout=10).json())
        return bool(seen["final"])

    wait_for(done, timeout, f"{status_url} to be final", every=0.3)
    return seen


def error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return str(body["error"]["message"])


# --------------------------------------------------------------------------- ops and docs


def test_health_ready_openapi_and_local_docs(env: Env) -> None:
    assert env.get("/healthz").json()["status"] == "ok"
    r = env.get("/readyz")
    assert r.status_code == 200, r.text
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert {"database", "migrations", "models", "chain:anvil"} <= set(checks)
    assert all(c["ok"] for c in checks.values())
    paths = env.get("/openapi.json").json()["paths"]
    missing = [p for p in ISSUE_PATHS if p not in paths]
    assert not missing, missing
    html = env.get("/docs").text
    assert "/docs/static/swagger-ui-bundle.js" in html and "/docs/static/swagger-ui.css" in html
    assert "cdn" not in html.lower() and "https://" not in html.split("<body>")[-1]
    js = env.get("/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.content == (NODE_MODULES / "swagger-ui-dist/swagger-ui-bundle.js").read_bytes()


def test_readyz_names_an_unreachable_chain_and_a_database_behind(env: Env, tmp_path: Path) -> None:
    settings = env.settings.model_copy(update={
        "database_url": f"sqlite:///{tmp_path / 'other.db'}",
        "chains": [ChainEndpoint(name="dead", rpc_url=f"http://127.0.0.1:{_free_port()}", oracle=env.p.d.oracle)]})
    ctx = GatewayContext.open(settings)
    with ctx.db.session() as s:
        s.execute(__import__("sqlalchemy").text("UPDATE alembic_version SET version_num = '0004'"))
    try:
        with GatewayServer(create_app(ctx)) as srv:
            r = httpx.get(srv.url + "/readyz", timeout=30)
            assert r.status_code == 503
            checks = {c["name"]: c for c in r.json()["checks"]}
            assert not checks["chain:dead"]["ok"] and not checks["migrations"]["ok"]
            assert "0004" in checks["migrations"]["detail"]
            assert checks["database"]["ok"] and checks["models"]["ok"]
    finally:
        ctx.close()


# --------------------------------------------------------------------------- catalog


def test_model_catalog(env: Env) -> None:
    models = env.get("/api/v1/models").json()["models"]
    assert [m["model_id"] for m in models] == [env.model_id]
    gas = 123_456
    d = env.get(f"/api/v1/models/{env.model_id}", params={"callback_gas": gas}).json()
    assert (d["input_size"], d["output_size"], d["input_bits"], d["input_scale"]) == (8, 3, 12, 10)
    assert d["proof_system"].startswith("Groth16") and d["dev_keys"] is True and d["setup"]["dev_keys"] is True
    assert d["setup"]["setup_hash"] and len(d["setup"]["setup_hash"]) == 64
    [dep] = d["deployments"]
    o = env.p.oracle
    assert dep["registered"] and dep["chain_id"] == env.chain.chain_id
    assert dep["adapter"] == env.p.reg.adapter and dep["verifier"] == env.p.reg.verifier
    assert int(dep["fee_wei"]) == int(o.functions.quoteFee(bytes.fromhex(env.model_id[2:]), gas).call())
    assert int(dep["fee_wei"]) != int(env.get(f"/api/v1/models/{env.model_id}",
                                              params={"callback_gas": 0}).json()["deployments"][0]["fee_wei"])
    assert env.model_id in d["solidity"] and "requestInference" in d["solidity"]
    assert "onInferenceResult(uint256 requestId, bytes32 modelId" in d["solidity"]
    vk = env.get(d["verification_key_url"].removeprefix(env.url))
    assert "0x" + hashlib.sha256(vk.content).hexdigest() == d["circuit_id"]
    error(env.get("/api/v1/models/0x" + "12" * 32), 404)
    assert "64 hex" in error(env.get("/api/v1/models/0x1234"), 400)
    error(env.get(f"/api/v1/models/{env.model_id}", params={"callback_gas": -1}), 400)
    error(env.get("/api/v1/no/such/path"), 404)


# --------------------------------------------------------------------------- auth, limits, validation


def test_auth_statuses_and_nothing_stored(env: Env) -> None:
    body = {"model_id": env.model_id, "input_fixed": [1] * 8}
    before = env.offchain_count()
    assert "API key" in error(env.post("/api/v1/inferences", body), 401)
    assert env.post("/api/v1/inferences", body).headers["www-authenticate"].startswith("Bearer")
    error(env.post("/api/v1/inferences", body, headers={"Authorization": "Basic abc"}), 401)
    error(env.post("/api/v1/inferences", body, key="not-a-key"), 401)
    error(env.post("/api/v1/inferences", body, key="poi_" + "A" * 43), 403)
    revoked = env.key("revoked-one")
    create_key_cli(env.db_url, "revoked-one", "revoke")
    assert "revoked" in error(env.post("/api/v1/inferences", body, key=revoked), 403)
    listed = subprocess.run([sys.executable, "-m", "oracle.cli", "gateway", "key", "list", "--db", env.db_url],
                            capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert revoked not in listed and '"revoked-one"' in listed     # never shows the key itself
    with env.db.session() as s:
        from oracle.store.models import ApiKey

        row = s.query(ApiKey).filter(ApiKey.name == "revoked-one").one()
        assert row.key_hash == hashlib.sha256(revoked.encode()).hexdigest() and row.revoked_at is not None
    assert env.offchain_count() == before


def test_bad_input_is_refused_with_index_and_bound(env: Env) -> None:
    key = env.key("validation")
    before = env.offchain_count()
    m = env.model_id
    assert "takes 8" in error(env.post("/api/v1/inferences", {"model_id": m, "input": [0.1] * 7}, key), 400)
    msg = error(env.post("/api/v1/inferences", {"model_id": m, "input": [0.1] * 7 + [5.0]}, key), 400)
    assert "input[7]" in msg and "1.99902" in msg and "[-2048, 2047]" in msg
    msg = error(env.post("/api/v1/inferences", {"model_id": m, "input_fixed": [0] * 5 + [4096, 0, 0]}, key), 400)
    assert "input_fixed[5] = 4096" in msg and "[-2048, 2047]" in msg
    raw = json.dumps({"model_id": m, "input": [0.1] * 3}).replace("[0.1, 0.1, 0.1]", "[0.1, NaN, 0.1, 0, 0, 0, 0, 0]")
    assert "input[1]" in error(httpx.post(env.url + "/api/v1/inferences", content=raw, timeout=10, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"}), 400)
    assert "exactly one" in error(env.post("/api/v1/inferences", {"model_id": m, "input": [0.1] * 8,
                                                                  "input_fixed": [1] * 8}, key), 400)
    assert "unknown field" in error(env.post("/api/v1/inferences", {"model_id": m, "inputs": [1] * 8}, key), 400)
    assert "not valid JSON" in error(httpx.post(env.url + "/api/v1/inferences", content=b"{nope", timeout=10,
                                                headers={"Authorization": f"Bearer {key}",
                                                         "Content-Type": "application/json"}), 400)
    error(env.post("/api/v1/inferences", {"model_id": "0x" + "77" * 32, "input": [0.1] * 8}, key), 404)
    # Over the body limit: refused from Content-Length, and when streamed without one.
    big = {"model_id": m, "input": [0.1] * 8, "payee": None, "x": "y" * 10_000}
    assert "8192-byte" in error(env.post("/api/v1/inferences", big, key), 413)

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 1024

    assert "8192-byte" in error(httpx.post(env.url + "/api/v1/inferences", content=chunks(), timeout=10, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"}), 413)
    assert env.offchain_count() == before


def test_rate_limit_is_per_key_and_shared_by_gateways(env: Env) -> None:
    key, other = env.key("limited"), env.key("unlimited-neighbour")
    body = {"model_id": env.model_id, "input_fixed": [3] * 8}
    for _ in range(3):                                   # burst 3
        assert env.post("/api/v1/inferences", body, key).status_code == 202
    r = env.post("/api/v1/inferences", body, key)
    assert "rate limit" in error(r, 429)
    assert 1 <= int(r.headers["retry-after"]) <= 5       # 0.2 tokens/s
    assert env.post("/api/v1/inferences", body, other).status_code == 202   # another key's bucket
    # A second gateway on the same database draws from the same bucket (kept in the DB).
    ctx2 = GatewayContext.open(env.settings.model_copy(update={"chains": []}))
    try:
        with GatewayServer(create_app(ctx2)) as second:
            r2 = httpx.post(second.url + "/api/v1/inferences", json=body, timeout=10,
                            headers={"Authorization": f"Bearer {key}"})
            error(r2, 429)
    finally:
        ctx2.close()
    time.sleep(float(r.headers["retry-after"]))
    assert env.post("/api/v1/inferences", body, key).status_code == 202


def test_queue_bound_answers_503(env: Env, tmp_path: Path) -> None:
    # A gateway on a database no service proves from: pending requests stay pending.
    db_url = f"sqlite:///{tmp_path / 'idle.db'}"
    ctx = GatewayContext.open(env.settings.model_copy(update={"database_url": db_url, "max_pending": 2,
                                                              "chains": []}))
    key = create_key_cli(db_url, "q")
    try:
        with GatewayServer(create_app(ctx)) as srv:
            def post() -> httpx.Response:
                return httpx.post(srv.url + "/api/v1/inferences", json={"model_id": env.model_id,
                                                                         "input_fixed": [0] * 8},
                                  headers={"Authorization": f"Bearer {key}"}, timeout=10)
            assert [post().status_code for _ in range(2)] == [202, 202]
            r = post()
            assert "pending" in error(r, 503) and r.headers["retry-after"]
    finally:
        ctx.close()


def test_listen_is_loopback_unless_public() -> None:
    assert parse_listen("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert parse_listen("[::1]:0") == ("::1", 0)
    with pytest.raises(ListenError, match="not loopback"):
        parse_listen("0.0.0.0:8000")
    assert parse_listen("0.0.0.0:8000", public=True) == ("0.0.0.0", 8000)
    with pytest.raises(ListenError, match="HOST:PORT"):
        parse_listen("8000")


# --------------------------------------------------------------------------- end to end


def test_offchain_inference_proven_by_miners_and_verified_by_plain_snarkjs(env: Env, tmp_path: Path) -> None:
    key = env.key("e2e")
    x = [0.25, 0.5, 0.125, 0.0, 0.75, 0.1, 0.05, 0.3]
    r = env.post("/api/v1/inferences", {"model_id": env.model_id, "input": x, "payee": PAYEE}, key)
    assert r.status_code == 202, r.text
    acc = r.json()
    assert r.headers["location"] == acc["status_url"] and acc["state"] == "confirmed"
    v = wait_final(env, acc["status_url"])
    assert v["state"] == "fulfilled", v
    assert [h["to_state"] for h in v["history"]] == ["confirmed", "dispatched", "proven", "verified", "fulfilled"]
    qm = QuantizedModel.load(env.circuit / "quantized.json")
    expected = quantized_forward(qm, [round(f * 1024) for f in x])
    assert v["input_fixed"] == [round(f * 1024) for f in x]
    assert v["output_fixed"] == expected
    assert all(math.isclose(o, e / 1024) for o, e in zip(v["output"], expected, strict=True))
    proof = v["proof"]
    assert proof["prover"] in env.miners and proof["payee"] == PAYEE and proof["verified"]
    assert v["submit_to_proven_seconds"] > 0 and proof["prove_seconds"] > 0
    assert v["fulfil"]["proof"] == proof["calldata"] and v["fulfil"]["output"] == expected
    with env.db.session() as s:     # never relayed
        pk = s.query(Request).filter(Request.request_id == v["id"], Request.origin == OFFCHAIN).one().id
        assert not [t for t in s.query(RelayerTx).all() if pk in (t.request_pks or [])]

    # Verified outside the project's code: snarkjs' own CLI on the served vk.
    vk = env.get(f"/api/v1/models/{env.model_id}/vk").content
    (tmp_path / "vk.json").write_bytes(vk)
    (tmp_path / "proof.json").write_text(json.dumps(proof["proof"]))
    (tmp_path / "public.json").write_text(json.dumps(proof["public_signals"]))

    def snarkjs_ok() -> bool:
        out = subprocess.run(["node", str(NODE_MODULES / "snarkjs/build/cli.cjs"), "groth16", "verify",
                              "vk.json", "public.json", "proof.json"], cwd=tmp_path, capture_output=True, text=True)
        return out.returncode == 0 and "OK" in out.stdout

    assert snarkjs_ok()
    tampered = list(proof["public_signals"])
    tampered[0] = str(int(tampered[0]) + 1)
    (tmp_path / "public.json").write_text(json.dumps(tampered))
    assert not snarkjs_ok()

    # POST /api/v1/verify: valid off-chain and by the chain's adapter; a changed output is not.
    body = {"model_id": env.model_id, "input_fixed": v["input_fixed"], "output_fixed": expected,
            "proof": proof["proof"], "payee": PAYEE}
    res = env.post("/api/v1/verify", body).json()
    names = {c["name"]: c["ok"] for c in res["checks"]}
    assert res["valid"] is True and names["offchain"] and names[f"onchain:anvil:{env.chain.chain_id}"], res
    assert env.post("/api/v1/verify", {**body, "proof": proof["calldata"]}).json()["valid"] is True
    bad = env.post("/api/v1/verify", {**body, "output_fixed": [expected[0] + 1, *expected[1:]]}).json()
    assert bad["valid"] is False
    assert {c["name"]: c["ok"] for c in bad["checks"]} == {**names, "offchain": False,
                                                             f"onchain:anvil:{env.chain.chain_id}": False}
    other_payee = env.post("/api/v1/verify", {**body, "payee": "0x" + "cd" * 20}).json()
    assert other_payee["valid"] is False
    assert "malformed proof" in error(env.post("/api/v1/verify", {**body, "proof": {"pi_a": [1]}}), 400)
    assert "payee" in error(env.post("/api/v1/verify", {**body, "payee": None}), 400)
    assert "output_fixed[0]" in error(env.post("/api/v1/verify", {**body, "output_fixed": [9999, 0, 0]}), 400)
    error(env.post("/api/v1/verify", {**body, "model_id": "0x" + "55" * 32}), 404)

    # It shows in the metrics and the miners' list.
    metrics = env.get("/metrics").text
    assert 'oracle_requests{origin="offchain",state="fulfilled"}' in metrics
    count = next(line for line in metrics.splitlines()
                 if line.startswith('oracle_request_submit_to_proven_seconds_count{origin="offchain"}'))
    assert float(count.split()[-1]) >= 1
    assert 'route="/api/v1/inferences/{inference_id}"' in metrics
    assert 'oracle_gateway_api_refusals_total{code="bad_request"}' in metrics
    miners = env.get("/api/v1/miners").json()["miners"]
    assert proof["prover"] in {m["hotkey"] for m in miners}
    error(env.get("/api/v1/inferences/12345"), 404)


def test_onchain_request_page(env: Env) -> None:
    p = env.p
    fee = int(p.oracle.functions.quoteFee(bytes.fromhex(env.model_id[2:]), 0).call())
    deadline = int(env.chain.w3.eth.get_block("latest")["timestamp"]) + 900
    env.chain.transact(p.oracle.functions.requestInference(bytes.fromhex(env.model_id[2:]), [7] * 8, NO_CALLBACK, 0,
                                                           deadline), value=fee)
    rid = last_request_id(p)
    url = f"{env.url}/api/v1/requests/{env.chain.chain_id}/{rid}"
    wait_for(lambda: httpx.get(url, timeout=10).status_code == 200, 30, "the listener to store the request")
    v = wait_final(env, url)
    assert v["state"] == "fulfilled" and v["origin"] == "chain", v
    assert v["adapter"] == p.reg.adapter and v["fee_wei"] == str(fee)
    f = v["fulfil"]
    assert f["tx_hash"] and f["gas_used"] > 100_000
    tx = env.chain.w3.eth.get_transaction(f["tx_hash"])
    assert f["calldata"] is not None and p.oracle.decode_function_input(f["calldata"])[0].fn_name == "fulfill"
    assert str(tx["to"]).lower() == p.d.oracle.lower()
    error(env.get(f"/api/v1/requests/{env.chain.chain_id}/{rid + 1000}"), 404)
    d = env.get(f"/api/v1/models/{env.model_id}").json()["measured"]
    assert d["proofs"] >= 2 and d["fulfilments"] >= 1 and d["fulfil_gas_p50"] > 100_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
