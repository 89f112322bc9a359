"""The miner's HTTP app: a prover with a Bittensor hotkey, serving signed HTTP.

    POST /prove      signed by an authorized validator -> output + proof, signed by this miner
    GET  /capacity   signed; circuits served, max concurrent proofs, in flight
    GET  /health     public liveness + counters (proofs started, requests rejected by reason)

Every request to /prove and /capacity is authenticated (``bittensor.http_auth``: signature,
body hash, freshness, nonce replay cache, receiver = this miner's hotkey) and authorized
(allow-list, or a stake threshold from the chain metagraph) BEFORE the body is parsed; a
rejected request never reaches a prover. What needs no body (headers, receiver, freshness,
the sender's allow-list/stake) is checked before a single body byte is read, and the body is
read with a size cap and a deadline (``oracle.http_limits``), so an unauthenticated
peer cannot make the miner buffer more than ``max_body`` bytes. Proving runs on a bounded
worker pool; beyond it the miner answers 503 at once rather than queueing work the validator
will have given up on.

How a request becomes a proof and a signed answer goes through a ``ProofHook`` (honest here;
the tests' misbehaving miners supply their own, see tests/malicious_miner.py), so the
production path carries no test-only behaviour. The command line is ``oracle.subnet.miner.cli``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from bittensor import http_auth
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oracle.circuits.catalog import Circuit, CircuitCatalog
from oracle.circuits.manifest import ManifestError
from oracle.http_limits import BodyRefused, HttpLimits, read_body, uvicorn_config
from oracle.proving.base import BackendError, Proof
from oracle.proving.groth16 import slice_jobs
from oracle.proving.groth16.slice_jobs import groth16_pool
from oracle.proving.registry import get_backend
from oracle.subnet import protocol as P
from oracle.subnet.auth import AuthFailure, Policy, RequestVerifier, hotkey_of

log = logging.getLogger(__name__)

FETCHED_DIR = ".fetched"
WARM_UP_PAYEE = "0x" + "00" * 20      # circuits that bind a payee need one, any will do


class ProofHook(Protocol):
    """The steps of one /prove request that a miner could do differently. The production
    miner is ``HonestHook``; tests plug in misbehaving ones to check the validator."""

    async def admitted(self, req: P.ProveRequest) -> None:
        """An authenticated, well-formed request, before it takes a proving slot."""

    async def prove(self, circuit: Circuit, req: P.ProveRequest, pool: Executor) -> Proof:
        """The proof for ``req``, inside a proving slot (blocking work goes to ``pool``)."""

    def answer_signer(self, wallet: Any, req: P.ProveRequest) -> Any:
        """The key that signs the answer to ``req``."""


def prove_honestly(circuit: Circuit, input_fixed: list[int], payee: str | None) -> Proof:
    if circuit.manifest.slices:     # a whole request for a sliced model: every slice here
        return slice_jobs.prove_whole(circuit.dir, input_fixed, payee, groth16_pool())
    return get_backend(circuit.manifest.backend).prove(circuit.dir, input_fixed, payee)


def prove_slice_honestly(circuit: Circuit, req: P.SliceRequest) -> slice_jobs.SliceProof:
    return slice_jobs.prove_slice(circuit.dir, req.slice_index, list(req.input_fixed), req.payee, groth16_pool())


class SliceHook(Protocol):
    """How a miner proves one slice (``ProofHook.prove_slice`` when the hook has it; tests'
    misbehaving miners supply their own)."""

    async def prove_slice(self, circuit: Circuit, req: P.SliceRequest, pool: Executor) -> slice_jobs.SliceProof:
        """The proof of slice ``req.slice_index`` on ``req.input_fixed``, inside a proving slot."""


class HonestSliceHook:
    async def prove_slice(self, circuit: Circuit, req: P.SliceRequest, pool: Executor) -> slice_jobs.SliceProof:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, prove_slice_honestly, circuit, req)


class HonestHook:
    async def admitted(self, req: P.ProveRequest) -> None:
        return None

    async def prove(self, circuit: Circuit, req: P.ProveRequest, pool: Executor) -> Proof:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, prove_honestly, circuit, list(req.input_fixed), req.payee)

    def answer_signer(self, wallet: Any, req: P.ProveRequest) -> Any:
        return wallet


@dataclass
class MinerSettings:
    models_dir: Path
    workers: int = 2
    validator_url: str | None = None
    max_age: float = 10.0
    limits: HttpLimits = field(default_factory=HttpLimits)


@dataclass
class MinerState:
    settings: MinerSettings
    wallet: Any                          # bittensor.Wallet (its hotkey signs answers)
    verifier: RequestVerifier
    circuits: dict[str, Circuit]
    pool: ThreadPoolExecutor
    hook: ProofHook = field(default_factory=HonestHook)
    in_flight: int = 0
    proofs_started: int = 0
    proofs_done: int = 0
    slices_done: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    fetch_lock: threading.Lock = field(default_factory=threading.Lock)

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


async def _authenticate(state: MinerState, request: Request) -> tuple[http_auth.Caller, bytes] | Response:
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
            "proofs_done": state.proofs_done, "slices_done": state.slices_done,
            "rejected": dict(state.rejected),
        })

    async def capacity(request: Request) -> Response:
        auth = await _authenticate(state, request)
        if isinstance(auth, Response):
            return auth
        cap = P.Capacity(hotkey=state.hotkey, circuits=sorted(state.circuits),
                         max_concurrent=state.settings.workers, in_flight=state.in_flight,
                         can_fetch=state.settings.validator_url is not None, slices=held_slices(state))
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
        await state.hook.admitted(req)
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
            state.proofs_started += 1
            try:
                proof = await state.hook.prove(circuit, req, state.pool)
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
        headers = http_auth.sign(state.hook.answer_signer(state.wallet, req), method=P.RESPONSE_METHOD,
                                 path=P.PROVE_PATH, body=out, receiver_ss58=caller.hotkey_ss58)
        return Response(out, media_type="application/json", headers=headers)

    async def prove_slice(request: Request) -> Response:
        auth = await _authenticate(state, request)
        if isinstance(auth, Response):
            return auth
        caller, body = auth
        try:
            req = P.SliceRequest.model_validate_json(body)
        except ValidationError as e:
            return _error(400, "bad_request", "invalid_body", f"invalid slice request: {e.errors()[:3]}")
        if state.in_flight >= state.settings.workers:
            state.rejected["busy"] += 1
            return _error(503, "busy", "at_capacity",
                          f"at capacity: {state.in_flight} of {state.settings.workers} proofs in flight")
        state.in_flight += 1
        try:
            circuit = _held(state, req)
            if circuit is None:
                if state.settings.validator_url is None:
                    return _error(404, "unknown_circuit", "not_served",
                                  f"this miner does not hold slice {req.slice_index} of {req.model_id}")
                try:
                    circuit = await run_in_threadpool(_fetch_slice, state, req)
                except (ManifestError, OSError, ValueError) as e:
                    return _error(404, "unknown_circuit", "fetch_failed", str(e))
            state.proofs_started += 1
            hook: SliceHook = state.hook if hasattr(state.hook, "prove_slice") else HonestSliceHook()  # type: ignore[assignment]
            try:
                sp = await hook.prove_slice(circuit, req, state.pool)
            except BackendError as e:
                return _error(422, "bad_request", "bad_input", str(e))
            except Exception as e:  # prover crash: an error answer, the miner lives on
                log.exception("proving slice %d of %s failed", req.slice_index, req.request_id)
                return _error(500, "prove_failed", "prover_error", f"{type(e).__name__}: {e}")
            state.proofs_done += 1
            state.slices_done += 1
        finally:
            state.in_flight -= 1
        answer = P.SliceResponse(
            request_id=req.request_id, request_nonce=caller.nonce_ns, miner_hotkey=state.hotkey,
            model_id=req.model_id, slice_index=sp.index, slice_circuit_id=sp.circuit_id, proof=sp.proof,
            public_signals=sp.public_signals, output_fixed=sp.output, prove_seconds=sp.ms.get("wall", 0.0) / 1e3,
        )
        out = P.dumps(answer)
        headers = http_auth.sign(state.wallet, method=P.RESPONSE_METHOD, path=P.PROVE_SLICE_PATH, body=out,
                                 receiver_ss58=caller.hotkey_ss58)
        return Response(out, media_type="application/json", headers=headers)

    return Starlette(routes=[
        Route(P.PROVE_PATH, prove, methods=["POST"]),
        Route(P.PROVE_SLICE_PATH, prove_slice, methods=["POST"]),
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


def held_slices(state: MinerState) -> dict[str, list[int]]:
    """Sliced models here -> the slices this miner holds (advertised in /capacity)."""
    return {cid: c.manifest.held_slices(c.dir) for cid, c in sorted(state.circuits.items()) if c.manifest.slices}


def _held(state: MinerState, req: P.SliceRequest) -> Circuit | None:
    """The sliced model folder holding the asked slice, if this miner has it (the slice id
    asked must be the one the model's manifest lists at that index)."""
    c = state.circuits.get(req.model_id.lower())
    if c is None or not c.manifest.slices or req.slice_index >= len(c.manifest.slices):
        return None
    if str(c.manifest.slices[req.slice_index]["circuit_id"]).lower() != req.slice_circuit_id.lower():
        return None
    return c if req.slice_index in c.manifest.held_slices(c.dir) else None


def _fetch_slice(state: MinerState, req: P.SliceRequest) -> Circuit:
    from oracle.subnet.circuits import fetch_slice

    with state.fetch_lock:
        have = _held(state, req)
        if have is not None:
            return have
        assert state.settings.validator_url is not None
        c = fetch_slice(state.settings.validator_url, req.model_id, req.slice_index, req.slice_circuit_id,
                        state.settings.models_dir / FETCHED_DIR)
        state.circuits[c.circuit_id.lower()] = c
        if _held(state, req) is None:
            raise ManifestError(f"fetched slice {req.slice_index} of {req.model_id} is not the one asked")
        return c


def make_state(settings: MinerSettings, wallet: Any, policy: Policy, hook: ProofHook | None = None) -> MinerState:
    catalog = CircuitCatalog.scan(settings.models_dir)
    circuits = {cid: c for cid in catalog.ids() if (c := catalog.get(cid)) is not None}
    return MinerState(
        settings=settings, wallet=wallet,
        verifier=RequestVerifier(hotkey_of(wallet), policy, max_age=settings.max_age),
        circuits=circuits,
        pool=ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="miner-prove"),
        hook=hook or HonestHook(),
    )


def warm_up(state: MinerState) -> None:
    """One throw-away proof per circuit before serving: the prover processes start and load
    their keys now, not on the first real request (seconds, which a validator would count as a
    timeout)."""
    for cid, c in state.circuits.items():
        if c.manifest.slices:
            # k proofs per model at start-up is too dear: a slice's keys load on its first job.
            log.info("sliced model %s: slices %s held, not warmed up", cid, c.manifest.held_slices(c.dir))
            continue
        t0 = time.monotonic()
        try:
            prove_honestly(c, [0] * c.manifest.input_size, WARM_UP_PAYEE)
        except Exception as e:  # a circuit that cannot prove will answer errors later; keep serving the rest
            log.warning("warm-up of circuit %s failed: %s", cid, e)
            continue
        log.info("circuit %s (%s) warm in %.2f s", cid, c.manifest.name, time.monotonic() - t0)


def serve(state: MinerState, host: str, port: int) -> None:
    """Serves until SIGINT/SIGTERM (uvicorn's handlers), with the settings' HTTP limits."""
    limits = state.settings.limits
    uvicorn.Server(uvicorn_config(build_app(state), limits, host=host, port=port, log_level="warning",
                                  access_log=False, timeout_graceful_shutdown=3)).run()
