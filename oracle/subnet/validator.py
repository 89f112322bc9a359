"""The validator side: ``SubnetProver``, the dispatcher's ``Prover`` backed by the miners.

One request: rank the metagraph's miners by score, ask the best ``k`` at once (plus, with
probability ``exploration``, one random lower-ranked miner as a probe, so a recovered miner
can climb back), verify each answer as it arrives (signed by the miner asked, echoing our
nonce, a valid proof for the request's OWN input), keep the first valid one and cancel the
rest. A miner that errors, lies or times out is replaced by the next in rank; if nobody has
answered after ``hedge_delay`` one more miner is asked. Only when every candidate failed does
``prove`` raise (the dispatcher then retries the request later), or, if configured, prove
locally.

A background thread flushes scores to the store, sets weights (network mode), and when the
oracle is idle sends rate-limited synthetic requests (random valid inputs) to keep every
miner's score fresh.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx
from bittensor import http_auth
from pydantic import ValidationError

from oracle.circuits.catalog import Circuit, CircuitCatalog
from oracle.dispatch.provers import LocalProver, Prover, ProveResult, verify_offchain
from oracle.errors import TransientError, UserError
from oracle.proving.base import BackendError
from oracle.store.db import Database
from oracle.subnet import protocol as P
from oracle.subnet.auth import ResponseVerifier, hotkey_of
from oracle.subnet.config import SubnetConfig
from oracle.subnet.metagraph import Metagraph, MinerInfo
from oracle.subnet.scoring import Outcome, Scoreboard

log = logging.getLogger(__name__)

Ask = Callable[[MinerInfo, float], Coroutine[Any, Any, "Attempt"]]    # (miner, time budget) -> checked answer


DEFAULT_CAPACITY = 2          # proofs at once per miner until its /capacity says otherwise
BUSY_BACKOFF = 0.05           # seconds before asking a busy miner again (doubling)
MAX_BUSY_RETRIES = 6
PATIENT_BACKOFF_CAP = 0.5     # a slice waiting for a free miner asks again at most this often
PAYEE_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")     # as ProveRequest.payee
ERROR_BODY_CAP = 4096         # bytes of a non-200 answer kept (for the reason line)
CAPACITY_CAP = 64 * 1024      # a /capacity answer is a few hundred bytes
# Asked on every request: the bytes the miner signed are the bytes we count and verify, and a
# compressed answer cannot expand past the cap after we counted it.
NO_ENCODING = {"Accept-Encoding": "identity"}


class AnswerTooLarge(UserError):
    """A miner's answer is larger than its cap (the peer's fault: that miner is skipped)."""


async def read_capped(resp: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
    """At most ``cap`` bytes of a streamed answer, raw (not decoded). Beyond: AnswerTooLarge,
    decided from Content-Length before reading when it is given; or, with ``truncate``, the
    first ``cap`` bytes. Stops reading at the cap either way: a miner streaming gigabytes costs
    us ``cap`` bytes and closes the connection."""
    declared = resp.headers.get("content-length")
    if not truncate and declared is not None and declared.isdigit() and int(declared) > cap:
        raise AnswerTooLarge(f"answer of {int(declared)} bytes exceeds the {cap}-byte limit")
    buf = bytearray()
    async for chunk in resp.aiter_raw():
        buf += chunk
        if len(buf) > cap:
            if truncate:
                return bytes(buf[:cap])
            raise AnswerTooLarge(f"answer exceeds the {cap}-byte limit")
    return bytes(buf)


class SubnetError(TransientError):
    """No miner produced a valid proof (transient: the dispatcher retries)."""


SLICE_PROOF_BYTES = 256       # one slice's Groth16 proof on-chain (8 words)


@dataclass(frozen=True)
class Attempt:
    miner: MinerInfo
    outcome: Outcome
    latency: float = 0.0
    reason: str = ""
    proof: Any = None            # oracle.proving.base.Proof when verified (a slice: SliceResponse)

    def proof_bytes(self) -> int:
        calldata = getattr(self.proof, "calldata", None)
        if isinstance(calldata, str):
            return (len(calldata) - 2) // 2
        return SLICE_PROOF_BYTES if self.proof is not None else 0


@dataclass(frozen=True)
class Dispatch:
    """What happened to one request (kept for observability and tests)."""

    circuit_id: str
    asked: list[str]             # hotkeys, in launch order (asked[0] = first choice)
    winner: str | None
    seconds: float
    failures: list[str] = field(default_factory=list)
    benchmark: bool = False


class SubnetProver(Prover):
    """The subnet validator, seen by the dispatcher as one more ``Prover``.

    Owns the conversation with the miners: the validator's hotkey and the signed HTTP client
    (on its own event-loop thread), the ranking of the metagraph's miners, hedged dispatch (the
    best ``k`` at once, exploration, one more after ``hedge_delay``, busy miners asked again),
    the check of every answer (signed by the miner asked, for this request and nonce, a valid
    proof for the request's own input and payee: ``verify_offchain``), the miners' scores and,
    in network mode, their weights; and a maintenance thread that flushes scores and, when the
    oracle is idle, sends synthetic benchmark requests. ``prove`` returns the first answer that
    verifies (``ProveResult.verified``), or raises ``SubnetError`` (transient: the dispatcher
    retries) unless a local fallback prover is configured.

    Never touches a request's row or state (the dispatcher does, with what ``prove`` returns;
    the store sees only miner scores), never sends a transaction to an oracle chain, and proves
    nothing itself except through the optional local fallback.
    """

    def __init__(
        self,
        wallet: Any,
        metagraph: Metagraph,
        cfg: SubnetConfig,
        *,
        scoreboard: Scoreboard | None = None,
        catalog: CircuitCatalog | None = None,
        fallback: Prover | None = None,
        closeables: list[Any] | None = None,
        seed: int | None = None,
    ) -> None:
        self.wallet = wallet
        self.hotkey = hotkey_of(wallet)
        self.metagraph = metagraph
        self.cfg = cfg
        self.scores = scoreboard or Scoreboard()
        self.catalog = catalog
        self.fallback = fallback
        self._closeables = closeables or []
        self._rng = random.Random(seed)
        self._answers = ResponseVerifier(self.hotkey, max_age=cfg.auth_max_age)
        self.history: deque[Dispatch] = deque(maxlen=1000)
        # Touched only on the IO loop's thread: no locks.
        self._inflight: dict[str, int] = {}
        self._capacity: dict[str, int] = {}
        self._capacity_asked: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._last_real = time.monotonic()
        self._stop = threading.Event()
        # One event loop thread does all HTTP (hedging = cheap concurrent awaits, real cancels).
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="subnet-io", daemon=True)
        self._loop_thread.start()
        self._client: httpx.AsyncClient = self._run(self._make_client()).result()
        logging.getLogger("httpx").setLevel(logging.WARNING)     # one INFO line per request otherwise
        self._maint = threading.Thread(target=self._maintenance, name="subnet-maint", daemon=True)
        self._maint.start()

    async def _make_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))

    def _run(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # ------------------------------------------------------------------ Prover

    def prove(self, circuit: Circuit, input_fixed: list[int], *, timeout: float,
              payee: str | None = None) -> ProveResult:
        if payee is not None and not PAYEE_RE.match(payee):
            # The request's fault, not any miner's: refuse it before a miner is scored for it.
            raise BackendError(f"payee {payee!r} is not a 0x-prefixed 20-byte hex address")
        self._last_real = time.monotonic()
        if circuit.manifest.slices:
            return self._prove_sliced(circuit, list(input_fixed), timeout, payee)
        fut = self._run(self._hedged(circuit, list(input_fixed), timeout, payee))
        try:
            attempt = fut.result(timeout + 10)
        except TimeoutError:
            fut.cancel()                # the IO loop is stuck or overloaded: don't leak the work
            raise
        except SubnetError:
            if self.fallback is None:
                raise
            log.warning("every miner failed for circuit %s: proving locally", circuit.circuit_id)
            return self.fallback.prove(circuit, input_fixed, timeout=timeout, payee=payee)
        finally:
            self._last_real = time.monotonic()
        return ProveResult(proof=attempt.proof, prover=attempt.miner.hotkey, verified=True)

    def _prove_sliced(self, circuit: Circuit, input_fixed: list[int], timeout: float,
                      payee: str | None) -> ProveResult:
        """A sliced model: its slices on different miners at once (``SlicedDispatch``)."""
        from oracle.subnet.sliced import SlicedDispatch  # it builds on this module's classes

        fut = self._run(SlicedDispatch(self, circuit, input_fixed, timeout, payee).run())
        try:
            proof, prover = fut.result(timeout + 10)
        except TimeoutError:
            fut.cancel()
            raise
        except SubnetError:
            if self.fallback is None:
                raise
            log.warning("a slice of %s found no miner: proving every slice locally", circuit.circuit_id)
            return self.fallback.prove(circuit, input_fixed, timeout=timeout, payee=payee)
        finally:
            self._last_real = time.monotonic()
        return ProveResult(proof=proof, prover=prover, verified=True)

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._maint.join(timeout=10)
        try:
            self.scores.flush()
        except Exception:  # never block shutdown on the store
            log.exception("could not save miner scores at shutdown")
        self._run(self._client.aclose()).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=5)
        for c in self._closeables:
            c.stop()
        if self.fallback is not None:
            self.fallback.close()

    # ------------------------------------------------------------------ selection

    def ranked(self) -> list[MinerInfo]:
        """Miners best first: those with a free slot (as far as we know) before those at
        capacity, then by score, random among equals."""
        miners = self.metagraph.miners()
        keys = {m.hotkey: (self._full(m.hotkey), -self.scores.score(m.hotkey), self._rng.random()) for m in miners}
        return sorted(miners, key=lambda m: keys[m.hotkey])

    def _full(self, hotkey: str) -> bool:
        return self._inflight.get(hotkey, 0) >= self._capacity.get(hotkey, DEFAULT_CAPACITY)

    def _plan(self, rotate: int = 0, ranked: list[MinerInfo] | None = None) -> tuple[list[MinerInfo], list[MinerInfo]]:
        """(miners to ask at once, the rest in order of preference). ``rotate`` = j starts
        ``ranked`` (one ranking shared by the slices of a request) at its j-th miner: slice j of
        a sliced model goes first to a different miner than the other slices whenever there
        are enough miners."""
        ranked = list(ranked) if ranked is not None else self.ranked()
        if ranked and rotate:
            r = rotate % len(ranked)
            ranked = ranked[r:] + ranked[:r]
        ranked = ranked[: self.cfg.max_attempts]
        first, rest = ranked[: self.cfg.k], ranked[self.cfg.k:]
        if rest and self._rng.random() < self.cfg.exploration:
            # A probe in addition to the best k: it never displaces them, so exploring costs
            # one extra proof and no latency.
            first.append(rest.pop(self._rng.randrange(len(rest))))
        return first, rest

    # ------------------------------------------------------------------ one request

    async def _hedged(self, circuit: Circuit, input_fixed: list[int], timeout: float,
                      payee: str | None) -> Attempt:
        return await self._hedge(circuit.circuit_id,
                                 lambda m, budget: self._ask(m, circuit, input_fixed, budget, payee), timeout)

    async def _hedge(self, label: str, ask: Ask, timeout: float, rotate: int = 0,
                     ranked: list[MinerInfo] | None = None, patient: bool = False) -> Attempt:
        """One unit of work (a whole request, or one slice of one), hedged over the miners:
        the first ``k`` at once, one more after ``hedge_delay``, a failed or busy one replaced;
        the first VERIFIED attempt wins and the others are cancelled."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        deadline = t0 + timeout
        first, rest = self._plan(rotate, ranked)
        if not first:
            raise SubnetError("no miners in the metagraph")
        # (ready_at, miner): the candidates not asked yet, and busy miners to ask again later.
        queue: list[tuple[float, MinerInfo]] = [(t0, m) for m in rest]
        pending: dict[asyncio.Task[Attempt], MinerInfo] = {}
        asked: list[str] = []
        failures: list[str] = []
        busy_retries: dict[str, int] = {}

        def launch(m: MinerInfo) -> None:
            budget = max(0.1, min(self.cfg.miner_timeout, deadline - loop.time()))
            pending[loop.create_task(ask(m, budget))] = m
            asked.append(m.hotkey)

        def launch_ready() -> bool:
            now = loop.time()
            for i, (ready_at, m) in enumerate(queue):
                if ready_at <= now:
                    del queue[i]
                    launch(m)
                    return True
            return False

        for m in first:
            launch(m)
        want = len(first)                     # answers we wait on at once
        next_hedge = t0 + self.cfg.hedge_delay
        winner: Attempt | None = None
        try:
            while winner is None:
                while len(pending) < want and launch_ready():
                    pass
                now = loop.time()
                if now >= deadline or (not pending and not queue):
                    break
                wake = [deadline]
                if queue:
                    wake.append(max(now, min(r for r, _ in queue)) if len(pending) < want else next_hedge)
                done: set[asyncio.Task[Attempt]] = set()
                if pending:
                    done, _ = await asyncio.wait(pending, timeout=max(0.0, min(wake) - now),
                                                 return_when=asyncio.FIRST_COMPLETED)
                else:
                    await asyncio.sleep(max(0.0, min(wake) - now))
                if not done:
                    if queue and pending and loop.time() >= next_hedge:
                        want += 1                        # nobody answered yet: hedge with one more
                        next_hedge = loop.time() + self.cfg.hedge_delay
                    continue
                for t in done:
                    pending.pop(t)
                    a = t.result()
                    if a.outcome == Outcome.VERIFIED:
                        winner = winner or a
                        continue
                    if not (patient and a.outcome == Outcome.BUSY):     # waiting is not a failure
                        failures.append(f"{a.miner.hotkey[:8]}: {a.outcome.value} ({a.reason})")
                    n = busy_retries.get(a.miner.hotkey, 0)
                    if a.outcome == Outcome.BUSY and (n < MAX_BUSY_RETRIES or patient):
                        # Busy is honest and transient: ask it again shortly (backing off). A
                        # patient job (a slice: k of them queue for the same miners at once)
                        # waits for a free slot until its deadline, asking at most every
                        # PATIENT_BACKOFF_CAP seconds.
                        busy_retries[a.miner.hotkey] = n + 1
                        delay = BUSY_BACKOFF * 2 ** min(n, 8)
                        queue.append((loop.time() + (min(delay, PATIENT_BACKOFF_CAP) if patient else delay), a.miner))
        finally:
            for t in pending:
                t.cancel()                                   # losers: closes their connections
        elapsed = loop.time() - t0
        self.history.append(Dispatch(label, asked, winner.miner.hotkey if winner else None, elapsed, failures))
        if winner is None:
            why = "; ".join(failures[-6:]) or f"no answer within {timeout:.0f} s"
            raise SubnetError(f"no valid proof after asking {len(asked)} time(s): {why}")
        # Busy answers are honest and expected when slices queue up: only the others are news.
        # (Matched on the outcome, not on the miner's text: a busy body contains '"error"'.)
        news = [f for f in failures if ": busy (" not in f]
        if news:
            log.info("%s: proof from %s after failure(s): %s", label[:24], winner.miner.hotkey[:8],
                     "; ".join(news[-6:]))
        return winner

    async def _ask(self, m: MinerInfo, circuit: Circuit, input_fixed: list[int], timeout: float,
                   payee: str | None) -> Attempt:
        """One miner, one answer, fully checked and scored. Never raises (except cancellation)."""
        return await self._scored(m, circuit.circuit_id,
                                  lambda: self._ask_unscored(m, circuit, input_fixed, timeout, payee))

    async def _scored(self, m: MinerInfo, circuit_id: str, exchange: Callable[[], Awaitable[Attempt]],
                      *, score_busy: bool = True) -> Attempt:
        """Runs one exchange with ``m`` (its in-flight count held meanwhile) and scores its
        outcome under ``circuit_id`` (a slice's own id for a slice: one slice = one unit of
        work, its latency compared with the same slice's median). ``score_busy=False``: a busy
        answer is not scored (the slices of one request queue for the same miners: their being
        full is the validator's doing, not theirs)."""
        if m.hotkey not in self._capacity_asked:
            self._capacity_asked.add(m.hotkey)
            self._background.add(t := asyncio.get_running_loop().create_task(self._learn_capacity(m)))
            t.add_done_callback(self._background.discard)
        self._inflight[m.hotkey] = self._inflight.get(m.hotkey, 0) + 1
        try:
            a = await exchange()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # e.g. an undecodable miner hotkey: that miner's problem only
            a = Attempt(m, Outcome.ERROR, 0.0, f"{type(e).__name__}: {e}")
        finally:
            self._inflight[m.hotkey] -= 1
        if a.outcome == Outcome.BUSY and not score_busy:
            return a
        proof_bytes = a.proof_bytes()
        self.scores.record(m.hotkey, a.outcome, circuit_id=circuit_id, latency=a.latency,
                           proof_bytes=proof_bytes, reason=a.reason)
        if a.outcome == Outcome.INVALID:
            log.warning("miner %s (%s) sent an invalid answer: %s", m.hotkey, m.url, a.reason)
        return a

    async def _learn_capacity(self, m: MinerInfo) -> None:
        """GET /capacity (signed): how many proofs this miner takes at once. A hint for ranking
        only; a wrong value costs a 503 and a retry, nothing more."""
        headers = http_auth.sign(self.wallet, method="GET", path=P.CAPACITY_PATH, receiver_ss58=m.hotkey)
        try:
            async with asyncio.timeout(3.0), self._client.stream(
                    "GET", m.url + P.CAPACITY_PATH, headers={**headers, **NO_ENCODING}, timeout=3.0) as r:
                if r.status_code == 200:
                    cap = P.Capacity.model_validate_json(await read_capped(r, CAPACITY_CAP))
                    self._capacity[m.hotkey] = max(1, cap.max_concurrent)
        except (httpx.HTTPError, ValidationError, AnswerTooLarge, TimeoutError) as e:
            log.debug("capacity of %s unknown: %s", m.hotkey, e)
            self._capacity_asked.discard(m.hotkey)          # ask again next time

    async def exchange(self, m: MinerInfo, path: str, body: bytes, timeout: float,
                       what: str = "") -> tuple[bytes, int, float] | Attempt:
        """One signed POST to miner ``m`` under one deadline: (answer body, our nonce, latency)
        once a 200 answer signed by that miner is read, else the failed Attempt (timeout,
        transport error, oversized, non-200, unsigned or forged). ``what`` prefixes messages."""
        headers = http_auth.sign(self.wallet, method="POST", path=path, body=body, receiver_ss58=m.hotkey)
        nonce = int(headers[http_auth.HEADER_NONCE])
        t0 = time.monotonic()
        try:
            # One deadline for the whole exchange: httpx's timeouts are per read, so a miner
            # trickling its answer could otherwise stretch it indefinitely.
            async with asyncio.timeout(timeout), self._client.stream(
                "POST", m.url + path, content=body,
                headers={**headers, **NO_ENCODING, "Content-Type": "application/json"},
                timeout=httpx.Timeout(timeout, connect=min(3.0, timeout)),
            ) as resp:
                status, resp_headers = resp.status_code, resp.headers
                if status == 200:
                    content = await read_capped(resp, self.cfg.max_answer_bytes)
                else:
                    content = await read_capped(resp, ERROR_BODY_CAP, truncate=True)
        except (httpx.TimeoutException, TimeoutError):
            return Attempt(m, Outcome.TIMEOUT, time.monotonic() - t0, f"{what}no answer in {timeout:.1f} s")
        except AnswerTooLarge as e:
            # An honest answer is a few kB: gigabytes are an attack on the validator.
            return Attempt(m, Outcome.INVALID, time.monotonic() - t0, f"{what}{e}")
        except httpx.HTTPError as e:
            return Attempt(m, Outcome.ERROR, time.monotonic() - t0, f"{what}{type(e).__name__}: {e}")
        latency = time.monotonic() - t0
        if status != 200:
            outcome = Outcome.BUSY if status == 503 else Outcome.ERROR
            return Attempt(m, outcome, latency, f"{what}HTTP {status}: {content[:200].decode(errors='replace')}")
        why = self._answers.verify(resp_headers, content, path=path, miner_hotkey=m.hotkey)
        if why is not None:
            return Attempt(m, Outcome.INVALID, latency, f"{what}{why}")
        return content, nonce, latency

    async def _ask_unscored(self, m: MinerInfo, circuit: Circuit, input_fixed: list[int], timeout: float,
                            payee: str | None) -> Attempt:
        req = P.ProveRequest(request_id=uuid.uuid4().hex, circuit_id=circuit.circuit_id,
                             input_fixed=input_fixed, timeout=timeout, payee=payee)
        ex = await self.exchange(m, P.PROVE_PATH, P.dumps(req), timeout)
        if isinstance(ex, Attempt):
            return ex
        content, nonce, latency = ex
        try:
            ans = P.ProveResponse.model_validate_json(content)
        except ValidationError as e:
            return Attempt(m, Outcome.INVALID, latency, f"malformed answer ({e.error_count()} error(s))")
        if ans.request_id != req.request_id or ans.request_nonce != nonce or ans.miner_hotkey != m.hotkey:
            return Attempt(m, Outcome.INVALID, latency, "answer is not for this request")
        proof = ans.proof.to_proof()
        if list(ans.output_fixed) != list(proof.output_fixed):
            return Attempt(m, Outcome.INVALID, latency, "claimed output differs from the proof's")
        # Verified against the request's OWN input and payee: a valid proof of another input, or
        # one paying someone else, is rejected.
        # A thread: verification is CPU work (the backend's verifier process) off the IO loop.
        why = await asyncio.to_thread(verify_offchain, circuit, proof, input_fixed, payee)
        if why is not None:
            return Attempt(m, Outcome.INVALID, latency, why)
        return Attempt(m, Outcome.VERIFIED, latency, "", proof)

    # ------------------------------------------------------------------ background

    def _maintenance(self) -> None:
        last_flush = last_weights = last_bench = time.monotonic()
        bench_turn = 0
        while not self._stop.wait(0.2):
            now = time.monotonic()
            try:
                if now - last_flush >= self.cfg.flush_interval:
                    last_flush = now
                    self.scores.flush()
                if self.cfg.netuid is not None and self.cfg.weights_interval and \
                        now - last_weights >= self.cfg.weights_interval:
                    last_weights = now
                    self.set_weights()
                if self.cfg.benchmark_interval and now - self._last_real >= self.cfg.idle_after and \
                        now - last_bench >= self.cfg.benchmark_interval:
                    last_bench = now
                    self.benchmark_once(bench_turn)
                    bench_turn += 1
            except Exception as e:  # background chores must never stop
                log.warning("subnet maintenance: %s: %s", type(e).__name__, e)

    def set_weights(self) -> dict[str, float]:
        weights = self.scores.weights([m.hotkey for m in self.metagraph.miners()])
        if weights:
            self.metagraph.set_weights(weights)
        return weights

    def benchmark_once(self, turn: int = 0) -> Attempt | None:
        """One synthetic request (random valid input) to one miner, in rotation; scored like
        real work. The rotation (not the ranking) picks the miner, so low scorers get re-measured."""
        if self.catalog is None or not len(self.catalog):
            return None
        miners = self.metagraph.miners()
        if not miners:
            return None
        # Whole circuits only: a synthetic request for a sliced model would cost one miner k proofs.
        ids = [cid for cid in self.catalog.ids() if not (c := self.catalog.get(cid)) or not c.manifest.slices]
        if not ids:
            return None
        circuit = self.catalog.get(ids[turn % len(ids)])
        assert circuit is not None
        m = miners[turn % len(miners)]
        bits = circuit.manifest.input_bits
        x = [self._rng.randint(-(1 << (bits - 1)), (1 << (bits - 1)) - 1) for _ in range(circuit.manifest.input_size)]
        # A fresh random payee too: a miner cannot answer from a cache of earlier proofs.
        payee = "0x" + self._rng.randbytes(20).hex()
        a: Attempt = self._run(self._ask(m, circuit, x, self.cfg.miner_timeout, payee)).result(
            self.cfg.miner_timeout + 10)
        ok = a.outcome == Outcome.VERIFIED
        self.history.append(Dispatch(circuit.circuit_id, [m.hotkey], m.hotkey if ok else None, a.latency,
                                     [] if ok else [a.reason], benchmark=True))
        log.debug("benchmark %s: %s %.0f ms", m.hotkey[:8], a.outcome.value, a.latency * 1000)
        return a


def build_subnet_prover(cfg: SubnetConfig, catalog: CircuitCatalog, db: Database | None) -> SubnetProver:
    """The SubnetProver the service uses when ``[subnet]`` is configured."""
    from oracle.subnet.auth import load_or_create_wallet
    from oracle.subnet.metagraph import ChainMetagraph, LocalMetagraph

    wallet = load_or_create_wallet(cfg.wallet_name, cfg.wallet_path, cfg.wallet_hotkey)
    metagraph: Metagraph
    if cfg.metagraph is not None:
        metagraph = LocalMetagraph(cfg.metagraph)
    else:
        assert cfg.netuid is not None
        metagraph = ChainMetagraph(cfg.netuid, network=cfg.network, wallet=wallet)
    closeables: list[Any] = []
    if cfg.circuits_port is not None:
        from oracle.subnet.circuits import CircuitServer

        closeables.append(CircuitServer(catalog, cfg.circuits_host, cfg.circuits_port).start())
    log.info("subnet prover: validator hotkey %s, k=%d, %s", hotkey_of(wallet), cfg.k,
             f"local metagraph {cfg.metagraph}" if cfg.metagraph else f"netuid {cfg.netuid} on {cfg.network}")
    return SubnetProver(wallet, metagraph, cfg, scoreboard=Scoreboard(db), catalog=catalog,
                        fallback=LocalProver() if cfg.fallback_local else None, closeables=closeables)
