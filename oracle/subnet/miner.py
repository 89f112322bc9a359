"""``oracle miner``: a prover with a Bittensor hotkey, serving signed HTTP.

    POST /prove      signed by an authorized validator -> output + proof, signed by this miner
    GET  /capacity   signed; circuits served, max concurrent proofs, in flight
    GET  /health     public liveness + counters (proofs started, requests rejected by reason)

Every request to /prove and /capacity is authenticated (``bittensor.http_auth``: signature,
body hash, freshness, nonce replay cache, receiver = this miner's hotkey) and authorized
(allow-list, or a stake threshold from the chain metagraph) BEFORE the body is parsed; a
rejected request never reaches a prover. What needs no body (headers, receiver, freshness,
the sender's allow-list/stake) is checked before a single body byte is read, and the body is
read with a size cap and a deadline (``oracle.subnet.http_limits``), so an unauthenticated
peer cannot make the miner buffer more than ``max_body`` bytes. Proving runs on a bounded worker pool; beyond it the
miner answers 503 at once rather than queueing work the validator will have given up on.

Test-only knobs (``--behaviour``, ``--delay``) simulate slow and malicious miners; they are
refused unless ORACLE_TEST_MODE=1.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oracle.circuits.catalog import Circuit, CircuitCatalog
from oracle.circuits.manifest import ManifestError
from oracle.circuits.packing import PackingError
from oracle.proving.base import BackendError, Proof
from oracle.proving.registry import get_backend
from oracle.subnet import protocol as P
from oracle.subnet.auth import AuthFailure, Policy, RequestVerifier, hotkey_of
from oracle.subnet.http_limits import BodyRefused, HttpLimits, read_body, uvicorn_config

log = logging.getLogger(__name__)

TEST_MODE_ENV = "ORACLE_TEST_MODE"
BEHAVIOURS = ("honest", "wrong_output", "invalid_proof", "other_input", "other_payee", "bad_signature", "hang",
              "mixed")
FETCHED_DIR = ".fetched"
WARM_UP_PAYEE = "0x" + "00" * 20      # circuits that bind a payee need one, any will do


@dataclass
class MinerSettings:
    models_dir: Path
    workers: int = 2
    validator_url: str | None = None
    behaviour: str = "honest"           # test mode only
    delay: float = 0.0                  # test mode only: extra seconds per proof
    max_age: float = 10.0
    limits: HttpLimits = field(default_factory=HttpLimits)


@dataclass
class MinerState:
    settings: MinerSettings
    wallet: Any                          # bittensor.Wallet (its hotkey signs answers)
    verifier: RequestVerifier
    circuits: dict[str, Circuit]
    pool: ThreadPoolExecutor
    in_flight: int = 0
    proofs_started: int = 0
    proofs_done: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    fetch_lock: threading.Lock = field(default_factory=threading.Lock)
    bad_cycle: Any = None

    @property
    def hotkey(self) -> str:
        return hotkey_of(self.wallet)


def _error(status: int, error: str, code: str, reason: str) -> JSONResponse:
    return JSONResponse(P.ErrorBody(error=error, code=code, reason=reason).model_dump(), status_code=status)


def _target(request: Request) -> str:
    """The request target exactly as signed: path plus ?query."""
    q = request.url.query
    return request.url.path + (f"?{q}" if q else "")


def _rejected(state: MinerState, request: Request, e: AuthFailure) -> Response:
    state.rejected[e.code] += 1
    log.warning("rejected %s %s from %s: %s (%s)", request.method, request.url.path,
                request.headers.get("x-bittensor-hotkey", "?"), e.code, e.reason)
    return _error(e.status, "unauthorized" if e.status == 401 else "forbidden", e.code, e.reason)


async def _authenticate(state: MinerState, request: Request) -> tuple[Any, bytes] | Response:
    """(caller, raw body) of an authenticated, authorized request, else the refusal. The head
    is checked first and the body read only after it passed, with a size cap and a deadline."""
    headers = dict(request.headers)
    try:
        # Threads: in network mode the policy may refresh the metagraph (a chain call).
        await run_in_threadpool(state.verifier.precheck, headers)
    except AuthFailure as e:
        return _rejected(state, request, e)
    try:
        body = await read_body(request, state.settings.limits)
    except BodyRefused as e:
        state.rejected[e.code] += 1
        log.warning("refused the body of %s %s from %s: %s", request.method, request.url.path,
                    headers.get("x-bittensor-hotkey", "?"), e.reason)
        return _error(e.status, "bad_request", e.code, e.reason)
    try:
        caller = await run_in_threadpool(state.verifier.verify, headers, body,
                                         method=request.method, path=_target(request))
    except AuthFailure as e:
        return _rejected(state, request, e)
    return caller, body


def build_app(state: MinerState) -> Starlette:
    async def health(_request: Request) -> Response:
        return JSONResponse({
            "status": "ok", "hotkey": state.hotkey, "circuits": sorted(state.circuits),
            "in_flight": state.in_flight, "proofs_started": state.proofs_started,
            "proofs_done": state.proofs_done, "rejected": dict(state.rejected),
        })

    async def capacity(request: Request) -> Response:
        auth = await _authenticate(state, request)
        if isinstance(auth, Response):
            return auth
        cap = P.Capacity(hotkey=state.hotkey, circuits=sorted(state.circuits),
                         max_concurrent=state.settings.workers, in_flight=state.in_flight,
                         can_fetch=state.settings.validator_url is not None)
        return JSONResponse(cap.model_dump())

    async def prove(request: Request) -> Response:
        auth = await _authenticate(state, request)
        if isinstance(auth, Response):
            return auth
        caller, body = auth                  # raw bytes, as hashed into the signature check
        try:
            req = P.ProveRequest.model_validate_json(body)
        except ValidationError as e:
            return _error(400, "bad_request", "invalid_body", f"invalid prove request: {e.errors()[:3]}")
        behaviour = _behaviour(state)
        if behaviour == "hang":
            # Holds the connection without using a worker: the validator must time out.
            await asyncio.sleep(3600)
        if state.in_flight >= state.settings.workers:
            state.rejected["busy"] += 1
            return _error(503, "busy", "at_capacity",
                          f"at capacity: {state.in_flight} of {state.settings.workers} proofs in flight")
        state.in_flight += 1        # the event loop is single-threaded: check-and-increment is atomic
        try:
            circuit = state.circuits.get(req.circuit_id.lower())
            if circuit is None:
                if state.settings.validator_url is None:
                    return _error(404, "unknown_circuit", "not_served", f"this miner does not serve {req.circuit_id}")
                try:
                    circuit = await run_in_threadpool(_fetch, state, req.circuit_id)
                except (ManifestError, OSError, ValueError) as e:
                    return _error(404, "unknown_circuit", "fetch_failed", str(e))
            loop = asyncio.get_running_loop()
            if state.settings.delay:
                await asyncio.sleep(state.settings.delay)
            state.proofs_started += 1
            try:
                proof = await loop.run_in_executor(state.pool, _prove, circuit, req.input_fixed, req.payee,
                                                   behaviour)
            except BackendError as e:
                return _error(422, "bad_request", "bad_input", str(e))
            except Exception as e:  # prover crash: an error answer, the miner lives on
                log.exception("proving %s failed", req.request_id)
                return _error(500, "prove_failed", "prover_error", f"{type(e).__name__}: {e}")
            state.proofs_done += 1
        finally:
            state.in_flight -= 1
        answer = P.ProveResponse(
            request_id=req.request_id, request_nonce=caller.nonce_ns, miner_hotkey=state.hotkey,
            output_fixed=list(proof.output_fixed), proof=P.ProofBody.of(proof),
        )
        out = P.dumps(answer)
        signer = state.wallet
        if behaviour == "bad_signature":
            signer = _throwaway_key()
        from bittensor import http_auth

        headers = http_auth.sign(signer, method=P.RESPONSE_METHOD, path=P.PROVE_PATH, body=out,
                                 receiver_ss58=caller.hotkey_ss58)
        return Response(out, media_type="application/json", headers=headers)

    return Starlette(routes=[
        Route(P.PROVE_PATH, prove, methods=["POST"]),
        Route(P.CAPACITY_PATH, capacity, methods=["GET"]),
        Route(P.HEALTH_PATH, health, methods=["GET"]),
    ])


def _fetch(state: MinerState, circuit_id: str) -> Circuit:
    from oracle.subnet.circuits import fetch_circuit

    with state.fetch_lock:                      # one download per circuit, not one per request
        have = state.circuits.get(circuit_id.lower())
        if have is not None:
            return have
        assert state.settings.validator_url is not None
        c = fetch_circuit(state.settings.validator_url, circuit_id, state.settings.models_dir / FETCHED_DIR)
        state.circuits[c.circuit_id.lower()] = c
        return c


def _prove(circuit: Circuit, input_fixed: list[int], payee: str | None, behaviour: str) -> Proof:
    backend = get_backend(circuit.manifest.backend)
    if behaviour == "other_input":
        # A valid proof, but of a neighbouring input, relabelled as the requested one.
        other = list(input_fixed)
        other[0] = other[0] - 1 if other[0] > 0 else other[0] + 1
        p = backend.prove(circuit.dir, other, payee)
        return replace(p, input_fixed=list(input_fixed))
    if behaviour == "other_payee":
        # A valid proof of the right input, made out to the miner's own address instead.
        return backend.prove(circuit.dir, input_fixed, "0x" + "ee" * 20)
    p = backend.prove(circuit.dir, input_fixed, payee)
    if behaviour == "wrong_output":
        out = [p.output_fixed[0] + 1, *p.output_fixed[1:]]
        # Signals consistent with the wrong claim, so only the proof check can catch it.
        try:
            signals = circuit.manifest.public_signals(list(p.input_fixed), out, p.payee)
        except PackingError:   # out of the packed range: no consistent signals exist
            signals = list(p.public_signals)
        return replace(p, output_fixed=out, public_signals=signals)
    if behaviour == "invalid_proof":
        from oracle.proving.groth16.calldata import encode_proof

        forged = dict(p.proof)
        forged["pi_a"] = [forged["pi_c"][0], forged["pi_c"][1], "1"]   # a curve point, the wrong one
        return replace(p, proof=forged, calldata=encode_proof(forged))
    return p


def _behaviour(state: MinerState) -> str:
    b = state.settings.behaviour
    if b != "mixed":
        return b
    if state.bad_cycle is None:
        state.bad_cycle = itertools.cycle(["wrong_output", "invalid_proof", "other_input", "bad_signature", "hang"])
    return str(next(state.bad_cycle))


def _throwaway_key() -> Any:
    from bittensor.keyfiles import Keypair

    return Keypair.create_from_mnemonic(Keypair.generate_mnemonic(12))


# ---------------------------------------------------------------------------------- CLI

def add_miner_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("miner", help="run a subnet miner (signed HTTP prover with a Bittensor hotkey)")
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--host", default="127.0.0.1")
    m.add_argument("--models", type=Path, required=True, help="folder with one circuit folder per model")
    m.add_argument("--allow", default="", help="comma-separated validator hotkeys (ss58) allowed to call (local mode)")
    m.add_argument("--wallet", default="miner", help="wallet name (its hotkey is created if missing)")
    m.add_argument("--wallet-path", default=None, help="wallets folder (default ~/.bittensor/wallets)")
    m.add_argument("--hotkey", default="default", help="hotkey name inside the wallet")
    m.add_argument("--workers", type=int, default=2, help="proofs in flight at most (beyond: 503)")
    m.add_argument("--validator-url", help="fetch missing circuits from {URL}/circuits/{id}")
    m.add_argument("--max-age", type=float, default=10.0, help="request freshness window, seconds")
    d = HttpLimits()
    lim = m.add_argument_group("HTTP limits (bound what an unauthenticated peer can make the miner hold)")
    lim.add_argument("--max-body", type=int, default=d.max_body, help="request body bytes at most (beyond: 413)")
    lim.add_argument("--header-timeout", type=float, default=d.header_timeout,
                     help="seconds for a whole request head to arrive (beyond: connection closed)")
    lim.add_argument("--body-timeout", type=float, default=d.body_timeout,
                     help="seconds for a whole request body to arrive (beyond: 408)")
    lim.add_argument("--keep-alive", type=int, default=d.keep_alive, help="idle seconds between requests")
    lim.add_argument("--max-connections", type=int, default=d.max_connections,
                     help="open connections at most (beyond: closed at once)")
    lim.add_argument("--limit-concurrency", type=int, default=d.limit_concurrency,
                     help="connections or requests in flight before answering 503")
    net = m.add_argument_group("network mode (instead of --allow)")
    net.add_argument("--netuid", type=int, help="subnet uid: allow validators by stake on the chain metagraph")
    net.add_argument("--network", default="finney")
    net.add_argument("--min-stake", type=float, default=1000.0, help="minimum validator stake (TAO)")
    t = m.add_argument_group(f"test only (refused unless {TEST_MODE_ENV}=1)")
    t.add_argument("--behaviour", choices=BEHAVIOURS, default="honest")
    t.add_argument("--delay", type=float, default=0.0, help="extra seconds before each proof")
    m.set_defaults(func=cmd_miner)


def make_state(settings: MinerSettings, wallet: Any, policy: Policy) -> MinerState:
    catalog = CircuitCatalog.scan(settings.models_dir)
    circuits = {cid: c for cid in catalog.ids() if (c := catalog.get(cid)) is not None}
    return MinerState(
        settings=settings, wallet=wallet,
        verifier=RequestVerifier(hotkey_of(wallet), policy, max_age=settings.max_age),
        circuits=circuits,
        pool=ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="miner-prove"),
    )


def warm_up(state: MinerState) -> None:
    """One throw-away proof per circuit before serving: the prover processes start and load
    their keys now, not on the first real request (seconds, which a validator would count as a
    timeout)."""
    for cid, c in state.circuits.items():
        t0 = time.monotonic()
        try:
            _prove(c, [0] * c.manifest.input_size, WARM_UP_PAYEE, "honest")
        except Exception as e:  # a circuit that cannot prove will answer errors later; keep serving the rest
            log.warning("warm-up of circuit %s failed: %s", cid, e)
            continue
        log.info("circuit %s (%s) warm in %.2f s", cid, c.manifest.name, time.monotonic() - t0)


def cmd_miner(a: argparse.Namespace) -> int:
    import uvicorn

    from oracle.subnet.auth import AllowList, StakeThreshold, load_or_create_wallet

    if (a.behaviour != "honest" or a.delay) and os.environ.get(TEST_MODE_ENV) != "1":
        raise ValueError(f"--behaviour/--delay are test-only: set {TEST_MODE_ENV}=1 to use them")
    if a.workers < 1:
        raise ValueError("--workers must be at least 1")
    wallet = load_or_create_wallet(a.wallet, a.wallet_path, a.hotkey)
    policy: Policy
    if a.netuid is not None:
        from oracle.subnet.metagraph import ChainMetagraph

        policy = StakeThreshold(ChainMetagraph(a.netuid, network=a.network), a.min_stake)
        who = f"validators with >= {a.min_stake:g} stake on netuid {a.netuid} ({a.network})"
    else:
        allowed = [h for h in a.allow.split(",") if h.strip()]
        if not allowed:
            raise ValueError("give --allow SS58[,SS58...] (local mode) or --netuid (network mode)")
        policy = AllowList(allowed)
        who = f"{len(allowed)} allowed validator hotkey(s)"
    limits = HttpLimits(max_body=a.max_body, header_timeout=a.header_timeout, body_timeout=a.body_timeout,
                        keep_alive=a.keep_alive, max_connections=a.max_connections,
                        limit_concurrency=a.limit_concurrency)
    a.models.mkdir(parents=True, exist_ok=True)
    settings = MinerSettings(models_dir=a.models, workers=a.workers, validator_url=a.validator_url,
                             behaviour=a.behaviour, delay=a.delay, max_age=a.max_age, limits=limits)
    state = make_state(settings, wallet, policy)
    if a.behaviour != "honest" or a.delay:
        log.warning("TEST MODE: behaviour=%s delay=%.2fs", a.behaviour, a.delay)
    log.info("miner %s on %s:%d: %d circuit(s), %d worker(s), serving %s",
             state.hotkey, a.host, a.port, len(state.circuits), a.workers, who)
    warm_up(state)
    t0 = time.monotonic()
    uvicorn.Server(uvicorn_config(build_app(state), limits, host=a.host, port=a.port, log_level="warning",
                                  access_log=False, timeout_graceful_shutdown=3)).run()
    state.pool.shutdown(wait=False, cancel_futures=True)
    log.info("miner stopped after %.0f s (%d proofs)", time.monotonic() - t0, state.proofs_done)
    return 0
