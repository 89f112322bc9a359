"""Wire format between validator and miners (pydantic bodies, JSON over HTTP).

Every request is signed with ``bittensor.http_auth`` (btauth/1: method, path, sha256 of the
raw body, nanosecond nonce, sender and receiver hotkeys). Answers to ``/prove`` (and to
``/prove_slice``, one slice of a sliced model) are signed by
the miner the same way, with the pseudo-method ``RESPONSE`` so that a signed answer can never
be replayed as a request, and they echo the request's nonce and id so an answer cannot be
replayed against another request.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from oracle.proving.base import Proof

PROVE_PATH = "/prove"
PROVE_SLICE_PATH = "/prove_slice"     # one slice of a sliced model (docs/sliced-models.md)
CAPACITY_PATH = "/capacity"
HEALTH_PATH = "/health"
CIRCUITS_PATH = "/circuits"          # validator side: GET /circuits/{circuit_id} -> tar.gz
RESPONSE_METHOD = "RESPONSE"         # signed pseudo-method of a miner's answer


class ProveRequest(BaseModel):
    request_id: str = Field(min_length=1, max_length=128)   # validator-chosen, echoed back
    circuit_id: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    input_fixed: list[int] = Field(max_length=65_536)
    timeout: float = Field(default=60.0, gt=0, le=3600)     # the validator stops waiting after this
    # The fee recipient the proof must be made for (bound into it when the circuit binds a
    # payee): a proof for anyone else is worthless to the validator and counts as invalid.
    payee: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")


class SliceRequest(BaseModel):
    """One slice of a sliced model for one request: prove slice ``slice_index`` (circuit
    ``slice_circuit_id``) of model ``model_id`` on ``input_fixed``, its input activation as
    fixed-point ints (slice 0: the request's input; slice j: boundary j's values, the
    validator's work plan). The last slice binds ``payee``."""

    request_id: str = Field(min_length=1, max_length=128)
    model_id: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    slice_index: int = Field(ge=0, le=1024)
    slice_circuit_id: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    input_fixed: list[int] = Field(max_length=65_536)
    timeout: float = Field(default=60.0, gt=0, le=3600)
    payee: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")


class SliceResponse(BaseModel):
    request_id: str
    request_nonce: int          # X-Bittensor-Nonce of the request this answers
    miner_hotkey: str
    model_id: str
    slice_index: int
    slice_circuit_id: str
    proof: Any                  # the snarkjs Groth16 proof object
    public_signals: list[str]   # snarkjs order: [c_{j+1} | output words], [input words | c_j]
    output_fixed: list[int]     # boundary j+1's values, or the model's output (last slice)
    prove_seconds: float = 0.0


class ProofBody(BaseModel):
    """``oracle.proving.base.Proof`` as JSON (ints stay ints: Python's JSON has no size limit)."""

    backend: str
    circuit_id: str
    input_fixed: list[int]
    output_fixed: list[int]
    public_signals: list[str]
    proof: Any
    calldata: str
    prove_seconds: float = 0.0
    extra: dict[str, Any] = Field(default_factory=dict)
    payee: str | None = None

    @classmethod
    def of(cls, p: Proof) -> ProofBody:
        return cls(backend=p.backend, circuit_id=p.circuit_id, input_fixed=list(p.input_fixed),
                   output_fixed=list(p.output_fixed), public_signals=list(p.public_signals), proof=p.proof,
                   calldata=p.calldata, prove_seconds=p.prove_seconds, extra=dict(p.extra), payee=p.payee)

    def to_proof(self) -> Proof:
        return Proof(backend=self.backend, circuit_id=self.circuit_id, input_fixed=list(self.input_fixed),
                     output_fixed=list(self.output_fixed), public_signals=list(self.public_signals),
                     proof=self.proof, calldata=self.calldata, prove_seconds=self.prove_seconds,
                     extra=dict(self.extra), payee=self.payee)


class ProveResponse(BaseModel):
    request_id: str
    request_nonce: int          # X-Bittensor-Nonce of the request this answers
    miner_hotkey: str
    output_fixed: list[int]
    proof: ProofBody


class Capacity(BaseModel):
    hotkey: str
    circuits: list[str]
    max_concurrent: int
    in_flight: int
    can_fetch: bool             # the miner fetches unknown circuits from the validator
    # Sliced models: model id -> the slice indices this miner holds (their keys are here).
    slices: dict[str, list[int]] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: str                  # unauthorized | forbidden | busy | bad_request | unknown_circuit | prove_failed
    code: str                   # machine-readable sub-reason (e.g. replayed, stale, not_allowed)
    reason: str                 # one human-readable line


def dumps(model: BaseModel) -> bytes:
    """Canonical bytes of a body: what is hashed into the signature is exactly what is sent."""
    return json.dumps(model.model_dump(mode="json"), separators=(",", ":"), sort_keys=True).encode()
