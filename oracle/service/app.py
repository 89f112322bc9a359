"""Wires listeners, dispatcher and relayers together on an APScheduler scheduler.

Jobs (per chain where it applies): poll (listener), dispatch, relay, receipts, expiry, and on
chains with an inbox the cross-chain deliveries (deliver, deliveries). A job that fails (RPC
down, timeout) is logged and backs off exponentially; the others go on.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from eth_account.signers.local import LocalAccount
from web3 import Web3

from listeners.chain_listener import ChainListener, ListenerConfig
from oracle.chain.client import ErrorDecoder, probe_chain_id
from oracle.chain.compiler import Artifact, compile_project
from oracle.chain.keys import load_account
from oracle.chain.structs import read_model
from oracle.circuits.catalog import CircuitCatalog
from oracle.dispatch.dispatcher import Dispatcher, DispatcherConfig, OnChainModel
from oracle.dispatch.offchain import offchain_model
from oracle.dispatch.provers import LocalProver, Prover
from oracle.proving.registry import close_backends
from oracle.service.config import ChainConfig, ServiceConfig
from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import OFFCHAIN_CHAIN_ID, State
from relayer.delivery import DeliveryConfig, DeliveryJob
from relayer.relayer import Relayer, RelayerConfig
from relayer.transactions import TransactionManager

log = logging.getLogger(__name__)

MODEL_CACHE_SECONDS = 30.0


@dataclass
class _Backoff:
    failures: int = 0
    until: float = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self.until

    def ok(self) -> None:
        self.failures = 0
        self.until = 0.0

    def fail(self) -> float:
        self.failures += 1
        delay = min(10.0, 0.5 * 2.0 ** (self.failures - 1))
        self.until = time.monotonic() + delay
        return delay


FAST_INTERVAL = 0.25    # seconds: the request path (dispatch, relay, receipts, deliveries)
SLOW_INTERVAL = 5.0     # seconds: housekeeping (reorg re-checks of settled txs, expiry)


@dataclass(frozen=True)
class Job:
    """A scheduled job: a name (logs, back-off), what it runs, how often."""

    name: str
    run: Callable[[], object]
    interval: float


@dataclass
class ChainRuntime:
    cfg: ChainConfig
    chain_id: int
    w3: Web3
    listener: ChainListener
    txs: TransactionManager          # the relayer account's transactions on this chain
    relayer: Relayer
    registry: Any
    oracle: Any = None
    delivery: DeliveryJob | None = None
    models: dict[str, tuple[float, OnChainModel | None]] = field(default_factory=dict)
    head_time: tuple[float, int] = (0.0, 0)


class OracleService:
    """``oracle run``: one oracle instance, the pipeline's stages wired together and scheduled.

    Owns the process-wide pieces: the database, the circuit catalog, the prover (the local pool,
    or the ``SubnetProver`` when ``[subnet]`` is configured), one ``Dispatcher``, and per
    configured chain a ``ChainRuntime`` (web3, ``ChainListener``, ``Relayer`` and, on a chain
    with an inbox, a ``DeliveryJob``). It runs their jobs on an APScheduler scheduler (or once
    each, in order, with ``step``), backs a failing job off without stopping the others, caches
    the registry entries and head timestamps the dispatcher asks for, releases the leases this
    instance held before a restart, and runs one job of its own: ``expire``, for requests past
    their deadline that nothing sent.

    Holds no pipeline logic besides that expiry: it never reads logs, proves, verifies or
    signs; the stages do, and they meet only in the store.
    """

    def __init__(
        self,
        cfg: ServiceConfig,
        *,
        prover: Prover | None = None,
        account: LocalAccount | None = None,
        artifacts: dict[str, Artifact] | None = None,
    ) -> None:
        self.cfg = cfg
        self.db = Database(cfg.database_url)
        self.catalog = CircuitCatalog.scan(cfg.prover.models_dir)
        self.artifacts = artifacts or compile_project()
        self.errors = ErrorDecoder(self.artifacts)
        if prover is None and cfg.subnet is not None:
            from oracle.subnet.validator import build_subnet_prover  # bittensor imported only when configured

            prover = build_subnet_prover(cfg.subnet, self.catalog, self.db)
        self.prover = prover or LocalProver()
        self._account = account
        self.chains: dict[int, ChainRuntime] = {}
        self._backoff: dict[str, _Backoff] = {}
        self._lock = threading.Lock()
        for c in cfg.chains:
            rt = self._connect(c)
            self.chains[rt.chain_id] = rt
        self.dispatcher = Dispatcher(
            self.db, self.catalog, self.prover, self._model, self._chain_time,
            DispatcherConfig(
                owner=f"{cfg.instance}/dispatch", workers=cfg.prover.workers,
                prove_timeout=cfg.prover.timeout, max_attempts=cfg.prover.max_attempts,
                payees={cid: rt.relayer.payee for cid, rt in self.chains.items()},
            ),
        )
        owners = [f"{cfg.instance}/dispatch"] + [
            f"{cfg.instance}/{job}/{cid}" for cid in self.chains for job in ("relay", "deliver")
        ]
        with self.db.session() as s:
            released = sum(repo.release_stale_leases(s, owner) for owner in owners)
        if released:
            log.info("released %d lease(s) held before the last shutdown", released)
        self._scheduler: BackgroundScheduler | None = None

    # ------------------------------------------------------------------ set-up

    def _connect(self, c: ChainConfig) -> ChainRuntime:
        chain_id = probe_chain_id(c.rpc_url)     # a dead or wrong rpc_url: ChainUnavailable/NodeError
        w3 = Web3(Web3.HTTPProvider(c.rpc_url, request_kwargs={"timeout": 10}))
        account = self._account or load_account(chain_id=chain_id, keystore=self.cfg.relayer.keystore,
                                                rpc_url=c.rpc_url)
        oracle_abi = self.artifacts["InferenceOracle"].abi
        oracle = w3.eth.contract(address=Web3.to_checksum_address(c.oracle), abi=oracle_abi)
        registry = w3.eth.contract(address=oracle.functions.registry().call(), abi=self.artifacts["ModelRegistry"].abi)
        listener = ChainListener(
            self.db, w3, oracle_abi,
            ListenerConfig(chain_id=chain_id, oracle=c.oracle, confirmations=c.confirmations,
                           start_block=c.start_block, max_range=c.max_log_range),
        )

        def verify_gas(model_id: str) -> int:
            # Through the dispatcher's cached registry view: no RPC per request on the send path.
            model = self._model(chain_id, model_id)
            if model is None:
                raise LookupError(f"model {model_id} is not registered on chain {chain_id}")
            return model.verify_gas

        txs = TransactionManager(self.db, w3, account, self.errors, chain_id=chain_id,
                                 confirmations=c.confirmations, stuck_after=self.cfg.relayer.stuck_after)
        relayer = Relayer(
            self.db, txs, oracle_abi, verify_gas,
            RelayerConfig(chain_id=chain_id, oracle=c.oracle, confirmations=c.confirmations,
                          max_batch=self.cfg.relayer.max_batch, stuck_after=self.cfg.relayer.stuck_after,
                          owner=f"{self.cfg.instance}/relay/{chain_id}", payee=self.cfg.relayer.payee),
        )
        rt = ChainRuntime(cfg=c, chain_id=chain_id, w3=w3, listener=listener, txs=txs, relayer=relayer,
                          registry=registry, oracle=oracle)
        if c.inbox is not None:
            rt.delivery = DeliveryJob(
                self.db, w3, txs, self.artifacts["CrossChainInbox"].abi, registry, self._source,
                DeliveryConfig(chain_id=chain_id, inbox=c.inbox, owner=f"{self.cfg.instance}/deliver/{chain_id}"),
            )
        log.info("chain %s (id %d): oracle %s, relayer %s, %d confirmation(s)%s",
                 c.name, chain_id, c.oracle, account.address, c.confirmations,
                 f", cross-chain inbox {c.inbox}" if c.inbox else "")
        return rt

    def _source(self, chain_id: int) -> tuple[Web3, Any] | None:
        """A source chain's web3 and oracle, for deliveries that need its fulfilment calldata."""
        rt = self.chains.get(chain_id)
        return None if rt is None else (rt.w3, rt.oracle)

    def _model(self, chain_id: int, model_id: str) -> OnChainModel | None:
        if chain_id == OFFCHAIN_CHAIN_ID:
            # An off-chain request: resolved as the gateway resolved it when accepting it.
            lookups = [functools.partial(self._model, cid) for cid in self.chains]
            return offchain_model(self.catalog, model_id, lookups)
        rt = self.chains[chain_id]
        cached = rt.models.get(model_id)
        if cached and time.monotonic() - cached[0] < MODEL_CACHE_SECONDS:
            return cached[1]
        if not rt.registry.functions.isRegistered(bytes.fromhex(model_id[2:])).call():
            model = None
        else:
            m = read_model(rt.registry, bytes.fromhex(model_id[2:]))
            model = OnChainModel(circuit_id=m.circuit_id, input_size=m.input_size,
                                 output_size=m.output_size, input_bits=m.input_bits, verify_gas=m.verify_gas)
        rt.models[model_id] = (time.monotonic(), model)
        return model

    def _chain_time(self, chain_id: int) -> int:
        if chain_id == OFFCHAIN_CHAIN_ID:
            return int(time.time())     # off-chain deadlines are wall-clock times
        rt = self.chains[chain_id]
        fetched, ts = rt.head_time
        if time.monotonic() - fetched > 0.5:
            ts = int(rt.w3.eth.get_block("latest")["timestamp"])
            rt.head_time = (time.monotonic(), ts)
        return ts

    # ------------------------------------------------------------------ jobs

    def _guarded(self, name: str, fn: Callable[[], object]) -> Callable[[], None]:
        b = self._backoff.setdefault(name, _Backoff())

        def run() -> None:
            if not b.ready():
                return
            try:
                fn()
                if b.failures:
                    log.info("%s recovered after %d failure(s)", name, b.failures)
                b.ok()
            except Exception as e:
                delay = b.fail()
                log.warning("%s failed (%s: %s); retrying in %.1f s", name, type(e).__name__, e, delay)

        return run

    def step(self) -> None:
        """One pass of every job, in order (used by tests and the demo's synchronous mode)."""
        for job in self.jobs():
            self._guarded(job.name, job.run)()

    def jobs(self) -> list[Job]:
        """Every scheduled job of this instance, in the order one ``step`` runs them."""
        jobs: list[Job] = [Job(f"poll[{cid}]", rt.listener.poll, rt.cfg.poll_interval)
                           for cid, rt in self.chains.items()]
        jobs.append(Job("dispatch", self._dispatch_job, FAST_INTERVAL))
        for cid, rt in self.chains.items():
            jobs.append(Job(f"relay[{cid}]", rt.relayer.submit_ready, FAST_INTERVAL))
            jobs.append(Job(f"receipts[{cid}]", rt.txs.track, FAST_INTERVAL))
            jobs.append(Job(f"reorgs[{cid}]", rt.txs.recheck_confirmed, SLOW_INTERVAL))
            if rt.delivery is not None:
                jobs.append(Job(f"deliver[{cid}]", rt.delivery.submit_ready, FAST_INTERVAL))
                jobs.append(Job(f"deliveries[{cid}]", rt.delivery.track, FAST_INTERVAL))
        jobs.append(Job("expiry", self.expire, SLOW_INTERVAL))
        return jobs

    def _dispatch_job(self) -> int:
        # Under the scheduler, never block the job thread on proofs (see Dispatcher.run_once).
        return self.dispatcher.run_once(wait=self._scheduler is None)

    def expire(self) -> int:
        """Requests past their deadline that were never submitted become ``expired``. A chain
        whose RPC is down is skipped (and reported) without holding up the others."""
        n = 0
        down: list[str] = []
        for cid in [OFFCHAIN_CHAIN_ID, *self.chains]:
            try:
                now = self._chain_time(cid)
            except Exception as e:
                down.append(f"chain {cid}: {type(e).__name__}")
                continue
            with self.db.session() as s:
                for r in repo.past_deadline(s, cid, now):
                    repo.transition(s, r, State.EXPIRED, "deadline passed")
                    n += 1
        if down:
            raise ConnectionError("expiry skipped " + ", ".join(down))
        return n

    def start(self) -> None:
        # "skipped: maximum number of running instances" is the intended back-pressure.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        sched = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 5})
        for job in self.jobs():
            sched.add_job(self._guarded(job.name, job.run), "interval", seconds=job.interval, id=job.name,
                          name=job.name)
        sched.start()
        self._scheduler = sched
        log.info("oracle service started: %d chain(s), %d circuit(s)", len(self.chains), len(self.catalog))

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self.dispatcher.close()
        self.prover.close()
        close_backends()
        self.db.dispose()
        log.info("oracle service stopped")

    def run_forever(self, stop: threading.Event) -> None:
        self.start()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()
