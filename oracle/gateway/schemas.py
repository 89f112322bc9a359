"""The gateway's JSON shapes: every body the API reads or writes is one of these pydantic
models (the OpenAPI document at ``/openapi.json`` is generated from them). The portal's pages
read the same shapes, so a change here is a change of the product's API: add fields, do not
rename or remove them.

Integers that can exceed 2^53 (fees in wei, field elements) travel as decimal strings; fixed-
point inputs and outputs are plain JSON integers (the models' bit widths keep them small).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Origin = Literal["chain", "offchain"]
HEX_ADDRESS = r"^0x[0-9a-fA-F]{40}$"
HEX_BYTES32 = r"^0x[0-9a-fA-F]{64}$"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    # Unknown fields are refused (400): a typo ("inputs") must not be silently ignored.
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- errors


class ErrorBody(_Out):
    code: str = Field(description="machine-readable: bad_request, unauthorized, forbidden, not_found, "
                                  "too_large, rate_limited, busy, ...")
    message: str = Field(description="what is wrong and, where it applies, the index and the bound")


class ErrorResponse(_Out):
    error: ErrorBody


# --------------------------------------------------------------------------- the catalog


class Setup(_Out):
    """Where the circuit's proving/verification keys come from."""

    dev_keys: bool = Field(description="True: keys from a local, UNSAFE ceremony (whoever ran it can forge proofs)")
    setup_hash: str | None = Field(default=None, description="sha256 of the ptau/SRS file the keys came from")
    source: str | None = Field(default=None, description="ptau/SRS file, as recorded at compile time")
    generator: str | None = Field(default=None, description="circuit generator (groth16: direct or circom)")
    toolchain: dict[str, str] = Field(default_factory=dict)


class Deployment(_Out):
    """The model as registered on one configured chain."""

    chain_id: int
    name: str
    oracle: str
    registry: str | None = None
    registered: bool
    adapter: str | None = Field(default=None, description="IInferenceVerifier the oracle calls (registry `verifier`)")
    verifier: str | None = Field(default=None, description="the generated proof verifier behind the adapter")
    verifier_version: int | None = None
    frozen: bool | None = None
    binds_payee: bool | None = None
    verify_gas: int | None = None
    fee_wei: str | None = Field(default=None, description="quoteFee(model_id, callback_gas), decimal wei")
    callback_gas: int = 0
    error: str | None = Field(default=None, description="why the chain could not be read (the rest is then null)")


class MeasuredStats(_Out):
    """From this oracle's own history (the store), not from the manifest."""

    proofs: int = Field(description="proofs stored for this circuit")
    prove_seconds_p50: float | None = None
    prove_seconds_p95: float | None = None
    fulfilments: int = Field(default=0, description="requests of the model fulfilled by this oracle's relayer")
    fulfil_gas_p50: int | None = Field(default=None, description="gas per fulfilled request, a batch's gas shared "
                                       "equally by its requests (median, nearest rank)")
    fulfil_gas_max: int | None = None


class ModelSummary(_Out):
    model_id: str
    name: str
    description: str
    backend: str
    proof_system: str
    circuit_id: str
    input_shape: list[int]
    output_shape: list[int]
    dev_keys: bool
    url: str


class ModelDetail(ModelSummary):
    input_size: int
    output_size: int
    input_scale: int = Field(description="fixed = round(x * 2**input_scale)")
    output_scale: int
    input_bits: int = Field(description="signed range [-(2**(bits-1)), 2**(bits-1) - 1] of each fixed-point input")
    output_bits: int
    input_range: tuple[int, int]
    binds_payee: bool
    public_signals: int
    setup: Setup
    deployments: list[Deployment]
    measured: MeasuredStats
    compile_stats: dict[str, Any] = Field(default_factory=dict, description="the manifest's compile-time stats")
    solidity: str = Field(description="copy-paste Solidity: requestInference + the callback")
    verification_key_url: str = Field(description="the verification key; sha256 of its bytes = circuit_id")


# --------------------------------------------------------------------------- inferences


class InferenceSubmit(_In):
    """``POST /api/v1/inferences``: exactly one of ``input`` (floats, quantized with the model's
    input scale) or ``input_fixed`` (integers at that scale)."""

    model_id: str = Field(pattern=HEX_BYTES32)
    input: list[float] | None = None
    input_fixed: list[int] | None = None
    payee: str | None = Field(default=None, pattern=HEX_ADDRESS,
                              description="address the proof names as fee recipient (default: zero address)")


class InferenceAccepted(_Out):
    id: int
    status_url: str
    state: str


class HistoryEntry(_Out):
    from_state: str | None
    to_state: str
    at: datetime
    reason: str | None = None
    by: str | None = Field(default=None, description="lease owner that made the change (which instance/job)")


class ProofView(_Out):
    backend: str
    circuit_id: str
    public_signals: list[str]
    proof: Any = Field(description="backend-native proof (snarkjs JSON for groth16)")
    calldata: str = Field(description="0x-hex: the `bytes proof` argument of InferenceOracle.fulfill")
    payee: str | None
    verified: bool
    prover: str = Field(description='"local" or the miner hotkey that proved it')
    prove_seconds: float
    created_at: datetime


class FulfilView(_Out):
    """How the request was (or can be) fulfilled on-chain."""

    function: str = "fulfill(uint256 requestId, int256[] output, address payee, bytes proof)"
    request_id: int
    output: list[int]
    payee: str | None
    proof: str
    calldata: str | None = Field(default=None, description="ABI-encoded fulfill(...) call (on-chain requests)")
    tx_hash: str | None = None
    block_number: int | None = None
    gas_used: int | None = None
    callback_succeeded: bool | None = None


class InferenceView(_Out):
    id: int = Field(description="off-chain: the inference id; on-chain: the request id")
    origin: Origin
    chain_id: int
    oracle: str | None
    request_id: int
    model_id: str
    circuit_id: str | None
    state: str
    final: bool
    reason: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    history: list[HistoryEntry]
    input_fixed: list[int]
    input: list[float] | None
    output_fixed: list[int] | None
    output: list[float] | None
    proof: ProofView | None
    fulfil: FulfilView | None
    adapter: str | None = Field(default=None, description="the verifier adapter the chain uses for the model")
    requester: str | None
    deadline: int
    fee_wei: str | None
    block_number: int | None
    tx_hash: str | None
    submit_to_proven_seconds: float | None


# --------------------------------------------------------------------------- verify


class VerifyRequest(_In):
    """``POST /api/v1/verify``: a proof for ``model_id``'s circuit, checked against this input
    and output (never against what the proof says about itself)."""

    model_id: str = Field(pattern=HEX_BYTES32)
    input: list[float] | None = None
    input_fixed: list[int] | None = None
    output_fixed: list[int]
    proof: Any = Field(description="backend-native proof object (groth16: snarkjs JSON), as in ProofView.proof")
    payee: str | None = Field(default=None, pattern=HEX_ADDRESS,
                              description="the payee the proof names (circuits that bind one)")


class Check(_Out):
    name: str
    ok: bool
    detail: str


class VerifyResult(_Out):
    valid: bool
    checks: list[Check]


# --------------------------------------------------------------------------- miners, health


class MinerView(_Out):
    hotkey: str
    score: float
    successes: int
    failures: int
    invalid: int
    latency_seconds: float = Field(description="exponential moving average of proving latency")
    proof_size_bytes: float
    proofs_stored: int = Field(description="proofs in the store made by this miner")
    updated_at: datetime


class HealthCheck(_Out):
    name: str
    ok: bool
    detail: str


class Readiness(_Out):
    ready: bool
    checks: list[HealthCheck]


class ModelList(_Out):
    models: list[ModelSummary]


class MinerList(_Out):
    miners: list[MinerView]
