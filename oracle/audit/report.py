"""The audit report: typed results, the exit-code policy, and its text and JSON renderings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class CheckStatus(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    # Not run. Only two causes: no --models (artifacts not available), or a prerequisite that
    # is itself reported as FAIL (so a SKIP never hides a failure).
    SKIP = "SKIPPED"


class RequestStatus(StrEnum):
    # Same order as InferenceOracle.Status.
    UNKNOWN = "unknown"
    PENDING = "pending"
    FULFILLED = "fulfilled"
    REFUNDED = "refunded"


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNKNOWN_REQUEST = 2


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str


@dataclass(frozen=True)
class Fulfilment:
    """Where and how the request was fulfilled, as read from the log and the transaction."""

    tx_hash: str
    block_number: int
    payee: str                       # credited with the fee (named by the proof)
    sender: str                      # who sent the transaction (may differ: e.g. a copier)
    callback_succeeded: bool
    function: str                    # "fulfill" or "fulfillBatch"
    batch_index: int | None          # entry of the batch (None for fulfill)
    batch_size: int
    event_output: list[int]
    calldata_output: list[int] | None
    proof: str | None                # 0x-hex `bytes proof` of the entry


@dataclass(frozen=True)
class ModelInfo:
    model_id: str
    verifier: str                    # the registered IInferenceVerifier adapter
    proof_system: str
    circuit_id: str
    input_size: int
    output_size: int


@dataclass
class AuditReport:
    request_id: int
    oracle: str
    chain_id: int
    block: int                       # every read is pinned to this block (the head at start)
    status: RequestStatus
    model: ModelInfo | None = None
    setup: dict[str, Any] | None = None   # ModelRegistry.setups of the circuit (setup_hash, dev_keys)
    input: list[int] = field(default_factory=list)
    request_block: int | None = None
    request_tx: str | None = None
    fulfilment: Fulfilment | None = None
    circuit_dir: str | None = None
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: CheckStatus, detail: str) -> Check:
        c = Check(name, status, detail)
        self.checks.append(c)
        return c

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status is CheckStatus.FAIL]

    @property
    def ok(self) -> bool:
        return self.status is RequestStatus.FULFILLED and not self.failed

    @property
    def exit_code(self) -> int:
        if self.status is RequestStatus.UNKNOWN:
            return EXIT_UNKNOWN_REQUEST
        return EXIT_OK if self.ok else EXIT_FAILED

    @property
    def reason(self) -> str:
        if self.ok:
            skipped = [c.name for c in self.checks if c.status is CheckStatus.SKIP]
            return "all checks passed" + (f" ({', '.join(skipped)} skipped)" if skipped else "")
        fails = self.failed
        if fails:
            # "request" and "fulfilled" details are whole sentences already.
            return "; ".join(c.detail if c.name in ("request", "fulfilled") else f"{c.name}: {c.detail}"
                             for c in fails)
        return f"request {self.request_id} is not fulfilled (status: {self.status.value})"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        d["checks"] = [{"name": c.name, "status": c.status.value, "detail": c.detail} for c in self.checks]
        d.update(ok=self.ok, exit_code=self.exit_code, reason=self.reason)
        return d


def render_text(r: AuditReport) -> str:
    lines = [
        f"Audit of request {r.request_id} on oracle {r.oracle} (chain {r.chain_id}, block {r.block})",
        f"  status:       {r.status.value}",
    ]
    if r.model is not None:
        m = r.model
        lines += [
            f"  model:        {m.model_id} ({m.proof_system}, circuit {m.circuit_id})",
            f"  verifier:     {m.verifier}",
        ]
    if r.input:
        lines.append(f"  input:        {r.input}")
    if r.request_tx is not None:
        lines.append(f"  requested:    tx {r.request_tx} (block {r.request_block})")
    if (f := r.fulfilment) is not None:
        how = f.function if f.batch_index is None else f"{f.function} entry {f.batch_index} of {f.batch_size}"
        lines += [
            f"  fulfilled:    tx {f.tx_hash} (block {f.block_number}) by {f.sender}, fee to {f.payee} via {how}",
            f"  output:       {f.event_output} (callback {'succeeded' if f.callback_succeeded else 'FAILED'})",
        ]
    if r.circuit_dir is not None:
        lines.append(f"  artifacts:    {r.circuit_dir}")
    lines.append("")
    width = max((len(c.name) for c in r.checks), default=0)
    lines += [f"  [{c.status.value:<7}] {c.name:<{width}}  {c.detail}" for c in r.checks]
    lines += ["", f"RESULT: {'PASS' if r.ok else 'FAIL'}: {r.reason}"]
    return "\n".join(lines)
