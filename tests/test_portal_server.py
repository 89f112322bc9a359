"""The portal's server side without a browser (tests/browser drive it in Chromium): the pinned
npm assets it serves, the clear error when they are missing, pages that say why a request
is unknown, and the dashboard's server-sent events following the store."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from oracle.chain.anvil import DEV_KEYS, Anvil
from oracle.chain.client import Chain
from oracle.chain.deploy import deploy_all
from oracle.gateway import portal
from oracle.gateway.app import create_app
from oracle.gateway.config import ChainEndpoint, GatewaySettings
from oracle.gateway.context import GatewayContext
from oracle.gateway.portal.assets import AssetsMissing, vendor_files
from oracle.gateway.portal.dashboard import reader_of, snapshot
from oracle.gateway.server import GatewayServer
from oracle.paths import NODE_MODULES
from oracle.store import repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, GatewayContext]]:
    models = tmp_path / "models"
    models.mkdir()
    ctx = GatewayContext.open(GatewaySettings(database_url=f"sqlite:///{tmp_path / 'g.db'}", models_dir=models))
    with GatewayServer(create_app(ctx)) as server:
        yield server.url, ctx
    ctx.close()


def test_vendored_assets_are_the_pinned_npm_files(gateway: tuple[str, GatewayContext]) -> None:
    url, _ = gateway
    lock = json.loads((NODE_MODULES.parent / "package-lock.json").read_text())["packages"]
    for name, package, path in (("snarkjs.min.js", "snarkjs", "build/snarkjs.min.js"),
                                ("uPlot.iife.min.js", "uplot", "dist/uPlot.iife.min.js")):
        assert f"node_modules/{package}" in lock           # pinned through package-lock.json
        r = httpx.get(f"{url}/portal/vendor/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        assert r.content == (NODE_MODULES / package / path).read_bytes()
    assert httpx.get(f"{url}/portal/vendor/other.js").status_code == 404
    r = httpx.get(f"{url}/portal/static/js/proofcheck.mjs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")


def test_missing_npm_packages_say_what_to_run(tmp_path: Path) -> None:
    (tmp_path / "snarkjs" / "build").mkdir(parents=True)
    (tmp_path / "snarkjs" / "build" / "snarkjs.min.js").write_text("x")
    with pytest.raises(AssetsMissing, match=r"uplot .*run `make setup` \(npm ci\)"):
        vendor_files(tmp_path)


def test_pages_render_and_unknown_requests_say_why(gateway: tuple[str, GatewayContext]) -> None:
    url, _ = gateway
    home = httpx.get(url + "/")
    assert home.status_code == 200 and "No models are served by this gateway" in home.text
    r = httpx.get(url + "/inferences/77")
    assert r.status_code == 404 and "no off-chain inference 77" in r.text
    r = httpx.get(url + "/requests/31337/5")
    assert r.status_code == 404 and "no request 5 on chain 31337" in r.text
    assert httpx.get(url + "/dashboard").status_code == 200
    paths = httpx.get(url + "/openapi.json").json()["paths"]
    assert not any(p.startswith(("/dashboard", "/portal", "/models/", "/inferences/")) for p in paths)


def _events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield str(name), json.loads(line[6:])


def test_dashboard_events_follow_the_store(gateway: tuple[str, GatewayContext]) -> None:
    url, ctx = gateway
    with httpx.stream("GET", url + "/dashboard/events", timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.iter_lines())
        name, first = next(events)
        assert name == "snapshot" and first["totals"] == {} and first["latency"]["t"] == []
        t0 = time.monotonic()
        with ctx.db.session() as s:
            for _ in range(2):
                repo.record_offchain(s, model_id="0x" + "ab" * 32, input_fixed=[1, 2], payee=None,
                                     deadline=int(time.time()) + 60, submitted_by="t")
        name, second = next(events)       # only a change is sent (no event for an idle store)
        assert name == "snapshot" and time.monotonic() - t0 < 5
        assert second["totals"] == {"confirmed": 2} and second["states"] == {"offchain": {"confirmed": 2}}
        assert len(second["latency"]["t"]) == 2 and second["latency"]["fulfilled"] == [None, None]


def test_dashboard_relayer_rows_read_the_chains(tmp_path: Path, anvil: Anvil, chain: Chain) -> None:
    """Balances and nonces come from the chain the gateway reads; a chain whose RPC is down
    shows as unreachable on its row, it does not break the snapshot."""
    d = deploy_all(chain)
    relayer = Account.from_key(DEV_KEYS[5]).address
    dead = f"http://127.0.0.1:{free_port()}"       # nothing listens there
    models = tmp_path / "models"
    models.mkdir()
    settings = GatewaySettings(database_url=f"sqlite:///{tmp_path / 'g.db'}", models_dir=models, chain_timeout=2,
                               chains=[ChainEndpoint(name="down", rpc_url=dead, oracle=d.oracle),
                                       ChainEndpoint(name="anvil", rpc_url=anvil.url, oracle=d.oracle)])
    ctx = GatewayContext.open(settings)
    try:
        with ctx.db.session() as s:
            repo.reserve_nonce(s, chain.chain_id, relayer, 0)
            repo.reserve_nonce(s, 999, relayer, 0)              # a chain no configured RPC serves
        rows = {r["chain_id"]: r for r in snapshot(ctx.db, reader_of(ctx))["relayers"]}
        up = rows[chain.chain_id]
        assert up["error"] is None and up["next_nonce"] == 1
        assert int(up["balance_wei"]) == chain.w3.eth.get_balance(relayer)
        assert up["chain_nonce"] == chain.w3.eth.get_transaction_count(relayer)
        other = rows[999]
        assert other["balance_wei"] is None and "chain unreachable (down: " in other["error"]
    finally:
        ctx.close()


def test_open_dashboards_share_one_store_read(gateway: tuple[str, GatewayContext]) -> None:
    """Dashboards opened together are sent the same snapshot (its ``at`` is when the store was
    read): N open pages cost one store read per half interval, not N."""
    url, _ = gateway
    streams = 6

    def first_snapshot_at(_: int) -> float:
        with httpx.stream("GET", url + "/dashboard/events", timeout=10) as r:
            name, snap = next(_events(r.iter_lines()))
            assert name == "snapshot"
            return float(snap["at"])

    with ThreadPoolExecutor(streams) as pool:
        ats = list(pool.map(first_snapshot_at, range(streams)))
    # A store read happens only when the last one is half an interval old, however loaded the
    # box: distinct snapshots are at least that far apart (6 own reads would be milliseconds apart).
    taken = sorted(set(ats))
    assert all(b - a >= portal.EVENT_INTERVAL / 2 - 0.05 for a, b in pairwise(taken)), ats


def test_open_dashboard_streams_end_when_the_server_stops(tmp_path: Path) -> None:
    """With ``portal.stopping(app)`` set, an open /dashboard/events stream ends within a fraction
    of a second, so stopping the server is not held up for its grace period."""
    models = tmp_path / "models"
    models.mkdir()
    ctx = GatewayContext.open(GatewaySettings(database_url=f"sqlite:///{tmp_path / 'g.db'}", models_dir=models))
    app = create_app(ctx)
    try:
        with GatewayServer(app) as server, httpx.stream("GET", server.url + "/dashboard/events", timeout=10) as r:
            lines = r.iter_lines()
            assert next(lines) == "event: snapshot"
            portal.stopping(app).set()
            t0 = time.monotonic()
            rest = list(lines)                      # the server ends the response
            assert time.monotonic() - t0 < 1.5
            assert not any(line.startswith("event:") for line in rest[1:])
    finally:
        ctx.close()


def test_bad_query_values_get_the_apis_error(tmp_path: Path, risk_circuit: Path) -> None:
    """A page passes query values on to the API: a bad one is refused with the API's 400 and
    message, never replaced by a default."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "risk").symlink_to(risk_circuit.resolve(), target_is_directory=True)
    ctx = GatewayContext.open(GatewaySettings(database_url=f"sqlite:///{tmp_path / 'g.db'}", models_dir=models))
    model_id = ctx.catalog.ids()[0]
    try:
        with GatewayServer(create_app(ctx)) as server:
            ok = httpx.get(f"{server.url}/models/{model_id}?callback_gas=300000")
            assert ok.status_code == 200 and "Prove an inference" in ok.text
            for bad in ("abc", "-5", str(2**40)):
                for path in (f"/models/{model_id}?callback_gas={bad}", f"/?callback_gas={bad}"):
                    r = httpx.get(server.url + path)
                    assert r.status_code == 400 and "callback_gas" in r.text, (path, r.text[:300])
            r = httpx.get(f"{server.url}/models/0x1234")
            assert r.status_code == 400 and "is not 0x followed by 64 hex digits" in r.text
    finally:
        ctx.close()
