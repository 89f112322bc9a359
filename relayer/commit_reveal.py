"""The commit step of a fulfilment whose proof cannot name its payee (EZKL/Halo2 models).

``InferenceOracle.fulfill`` accepts such a fulfilment only when
``commitFulfillment(keccak256(abi.encode(id, output, payee, proof)))`` was mined in an earlier
block: a bot that copies the proof from the revealed transaction is then too late to commit to
its own payee. Groth16 proofs bind the payee in the circuit and skip this step.

``CommitGate.ready`` sits between the relayer's pre-check and its send: requests whose
commitment is on-chain go on to be fulfilled; for the others a commit transaction is signed,
stored and broadcast (tracked like any relayer transaction, so a crash neither loses nor
duplicates it) and the request waits, without counting an attempt, until it is mined. What the
gate never does: send a fulfilment, or commit twice for the same (proof, payee).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from oracle.store import repo
from relayer.fees import current_fees

if TYPE_CHECKING:
    from relayer.relayer import Relayer

log = logging.getLogger(__name__)

COMMIT_GAS = 60_000          # measured 45,686 (tests/test_commit_reveal.py prints it): one new slot, an event, calldata
WAIT_SECONDS = 1.0           # a request waits about a block for its commitment to be mined
BindsPayee = Callable[[str], bool]   # model_id -> whether its verifier binds the payee


def commitment(request_id: int, output: list[int], payee: str, proof: bytes) -> bytes:
    """``InferenceOracle.fulfillmentCommitment``, computed locally."""
    return keccak(abi_encode(["uint256", "int256[]", "address", "bytes"], [request_id, output, payee, proof]))


class CommitGate:
    def __init__(self, relayer: Relayer, binds_payee: BindsPayee) -> None:
        self.relayer = relayer
        self.binds_payee = binds_payee

    def ready(self, pks: list[int]) -> list[int]:
        """The requests of ``pks`` that may be fulfilled now; the rest wait for their commitment."""
        r = self.relayer
        plan: list[tuple[int, bytes, bool]] = []      # (pk, commitment, needs one)
        with r.db.session() as s:
            for pk in pks:
                req = repo.get_request(s, pk)
                assert req is not None and req.proof is not None
                if self.binds_payee(req.model_id):
                    plan.append((pk, b"", False))
                    continue
                c = commitment(req.request_id, req.proof.output_ints, r.payee_of(req),
                               bytes(HexBytes(req.proof.calldata)))
                plan.append((pk, c, True))
        go: list[int] = []
        wait: list[tuple[int, bytes, bool]] = []
        head = int(r.w3.eth.block_number) if any(needs for _, _, needs in plan) else 0
        for pk, c, needs in plan:
            at = int(r.oracle.functions.commitments(c).call(block_identifier=head)) if needs else 0
            # Older than the head: the simulation (run on the head) and the fulfilment (in a
            # later block) both see it as made in an earlier block.
            if not needs or 0 < at < head:
                go.append(pk)
            else:
                wait.append((pk, c, at == 0))
        for pk, c, send in wait:
            self._wait(pk, c, send)
        return go

    def _wait(self, pk: int, c: bytes, send: bool) -> None:
        """Defers the request; signs and sends its commit first unless one is on-chain or stored."""
        r = self.relayer
        data = r.oracle.encode_abi("commitFulfillment", args=[c])
        fees = current_fees(r.w3) if send else None
        chain_nonce = r.txs.pending_nonce() if send else 0
        sent: tuple[str, str] | None = None
        with r.db.session() as s:
            req = repo.get_request(s, pk)
            assert req is not None
            if fees is not None and not repo.has_open_call(s, r.cfg.chain_id, r.account.address, data):
                row = r.txs.sign_call(s, r.oracle.address, data, COMMIT_GAS, "commit", fees, chain_nonce)
                sent = (row.raw_tx, row.tx_hash)
            repo.defer(req, "waiting for the fulfilment commitment to be mined (commit-reveal)", WAIT_SECONDS)
        if sent is not None:
            # Committed: the signed commit is durable before it is broadcast.
            r.txs.broadcast(*sent)
            log.info("chain %d: committed fulfilment of request pk %d (tx %s)", r.cfg.chain_id, pk, sent[1])


class ModelPayeeCache:
    """``bindsPayee`` per model, read through the oracle (``getModel``) and kept a minute."""

    def __init__(self, read: Callable[[str], bool], ttl: float = 60.0) -> None:
        self._read = read
        self._ttl = ttl
        self._cache: dict[str, tuple[float, bool]] = {}

    def __call__(self, model_id: str) -> bool:
        hit = self._cache.get(model_id)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        v = self._read(model_id)
        self._cache[model_id] = (time.monotonic(), v)
        return v
