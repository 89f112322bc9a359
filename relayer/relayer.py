"""Fulfilment transactions for one (chain, account).

Send path, crash-safe: in ONE database transaction the nonce is reserved, the transaction
signed and stored (raw bytes) and its requests moved to ``submitted``; only then is it
broadcast. After a crash the stored transaction is simply broadcast again, so a nonce is never
skipped and a request is never sent twice under two nonces.

Before sending, the relayer reads the on-chain request: already fulfilled (by anyone) or
refunded -> no transaction; an input that differs from ours (reorg) -> orphaned, re-read.
Then it simulates the exact transaction with ``eth_call`` (same from/to/data/gas) before a
nonce is reserved or anything signed, so a fulfilment the chain would reject never costs gas:
a proof or output the chain refuses sends the request back to be proven again (never resent),
already fulfilled/expired/refunded requests are settled as in the pre-check.
Transactions themselves (nonces, signing, broadcast, receipts, fee bumps, reorg re-checks) are
the account's ``TransactionManager`` (relayer/transactions.py); this job reports back what a
mined fulfilment means for its requests (``TxOutcome``: fulfilled, skipped, to retry).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy.orm import Session
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError
from web3.logs import DISCARD

from oracle.chain.client import ContractError
from oracle.chain.structs import RequestStatus, read_model, read_request
from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import RelayerTx, Request, State
from relayer.commit_reveal import CommitGate, ModelPayeeCache
from relayer.fees import current_fees
from relayer.transactions import TransactionManager

log = logging.getLogger(__name__)

# Per-request gas outside verification and the callback (storage, events, calldata).
FULFIL_OVERHEAD_GAS = 90_000
BATCH_BASE_GAS = 60_000
PROOF_BYTE_GAS = 24  # calldata (16/byte) plus its copies into memory, the hash and the adapter call

# Block the simulation runs against. 'latest', like the pre-check: a request is settled as
# fulfilled/expired only on mined state, never on a competitor's transaction that is still in
# the mempool (and may never be mined).
SIMULATE_AT: Final = "latest"


class Rejection(enum.Enum):
    """What to do with a request whose simulated fulfilment the chain rejects."""

    FULFILLED = "fulfilled"   # someone fulfilled it: nothing to send, ever
    EXPIRED = "expired"       # past its deadline or refunded
    ORPHANED = "orphaned"     # unknown on-chain (its block left the chain)
    UNFULFILLABLE = "failed"  # no proof can ever fulfil it (its verifier was retired): refundable
    REPROVE = "reprove"       # the proof or output is refused: prove it again, never resend it
    RETRY = "retry"           # not the proof's fault (gas, model state): same proof later


# Oracle errors about the proof or claimed output; every error the oracle does NOT declare
# comes from the model's verifier/adapter (PackedOutputOutOfRange, MalformedProof, a bare
# revert of an EZKL verifier, ...) and is a refused proof too.
PROOF_ERRORS = frozenset({"InvalidProof", "OutputOutOfRange", "OutputSizeMismatch"})
# Errors that say nothing about the proof: re-proving would not help (a verifier reverts these
# on our gas budget or its own deployment, not on the proof).
NOT_PROOF_ERRORS = frozenset({
    "OutOfGas", "InsufficientGasForCallback", "InsufficientVerificationGas", "NoVerifierCode",
})


def classify(err: ContractError, oracle_errors: frozenset[str]) -> Rejection:
    """Maps a decoded revert of ``fulfill`` to what the relayer does with the request."""
    if err.name == "AlreadyFulfilled":
        return Rejection.FULFILLED
    if err.name in ("RequestExpired", "AlreadyRefunded"):
        return Rejection.EXPIRED
    if err.name == "UnknownRequest":
        return Rejection.ORPHANED
    if err.name == "RequestVerifierRetired":
        return Rejection.UNFULFILLABLE
    if err.name in PROOF_ERRORS:
        return Rejection.REPROVE
    if err.name in NOT_PROOF_ERRORS or err.name in oracle_errors:
        return Rejection.RETRY
    return Rejection.REPROVE


def _gas_error(exc: Web3RPCError) -> bool:
    """A node refusing an eth_call for its gas (anvil: 'EVM error OutOfGas', 'intrinsic gas too
    high'; geth: 'out of gas', 'intrinsic gas too low'): our budget, not a node outage."""
    msg = str(exc).lower().replace(" ", "")
    return "outofgas" in msg or "intrinsicgas" in msg or "gasrequiredexceeds" in msg


@dataclass
class RelayerConfig:
    chain_id: int
    oracle: str
    confirmations: int = 1
    max_batch: int = 16
    stuck_after: float = 30.0          # seconds without a receipt before a fee bump
    owner: str = "relayer"
    max_attempts: int = 3
    payee: str | None = None           # fee recipient named in proofs; None = this account


VerifyGas = Callable[[str], int]     # model_id -> verification gas budget


class Relayer:
    """The fulfilment stage for one chain: turns ``verified`` requests into fulfilments.

    Claims this chain's ``verified`` requests, reads each on-chain request first (fulfilled by
    anyone, refunded, past its deadline or changed by a reorg: no transaction), passes requests
    of models whose verifier binds no payee through the commit-reveal ``CommitGate``, groups
    them by the payee their proofs name, simulates the exact ``fulfill``/``fulfillBatch`` with
    ``eth_call`` before a nonce is reserved, and has the account's ``TransactionManager`` sign
    and store the transaction together with ``submitted`` before broadcasting it. As that
    manager's ``TxOutcome`` it decides what a mined fulfilment means for its requests
    (fulfilled, skipped in a batch, reverted: retry).

    Never signs, tracks or bumps transactions itself (the ``TransactionManager`` does, for
    every job that sends from the account).
    Never proves, and never verifies a proof itself: the proof comes from the store and the
    chain's verdict (the simulation, the receipt) decides. A proof or output the chain refuses
    goes back to the dispatcher to be proven again (``repo.send_back_to_prove``); it is never
    resent. Never reads the oracle's logs for new requests (the listener does).
    """

    def __init__(
        self,
        db: Database,
        txs: TransactionManager,
        abi: list[dict[str, Any]],
        verify_gas: VerifyGas,
        cfg: RelayerConfig,
    ) -> None:
        self.db = db
        self.txs = txs
        self.w3 = txs.w3
        self.account = txs.account
        self.errors = txs.errors
        self.verify_gas = verify_gas
        self.cfg = cfg
        # This job decides what the account's mined fulfilments mean for their requests.
        txs.outcome = self
        self.oracle = self.w3.eth.contract(address=to_checksum_address(cfg.oracle), abi=abi)
        self.oracle_errors = frozenset(str(i["name"]) for i in abi if i.get("type") == "error")
        # Proofs name this payee and the oracle credits it, whoever sends the transaction.
        self.payee = to_checksum_address(cfg.payee or self.account.address)
        # Models whose verifier cannot bind the payee need a commitment mined before the fulfilment.
        self.commits = CommitGate(self, ModelPayeeCache(
            lambda model_id: read_model(self.oracle, bytes.fromhex(model_id[2:])).binds_payee))

    # ------------------------------------------------------------------ sending

    def submit_ready(self) -> int:
        """Sends verified requests (one tx, batched when several); returns requests sent."""
        with self.db.session() as s:
            # Only this chain's: leasing another chain's verified requests (and dropping them
            # below) blocked that chain's relayer for the whole lease.
            reqs = repo.claim(s, [State.VERIFIED], self.cfg.owner, limit=self.cfg.max_batch, lease_seconds=60,
                              chain_id=self.cfg.chain_id)
            reqs = [r for r in reqs if r.chain_id == self.cfg.chain_id and r.oracle == self.oracle.address]
            ids = [r.id for r in reqs]
        if not ids:
            return 0
        try:
            ready = self._precheck(ids)
            ready = self.commits.ready(ready) if ready else ready
            ready = self._one_payee(ready)
            return self._send(ready) if ready else 0
        except Exception:
            # RPC down mid-way: hand the requests back at once instead of holding them for the
            # whole lease, so relaying resumes as soon as the node answers again.
            self._release(ids)
            raise

    def _release(self, pks: list[int]) -> None:
        with self.db.session() as s:
            for pk in pks:
                req = repo.get_request(s, pk)
                if req is not None and req.state == State.VERIFIED.value and req.lease_owner == self.cfg.owner:
                    repo.release(req)

    def _precheck(self, pks: list[int]) -> list[int]:
        """Drops requests that need no transaction, reading the chain (no wasted gas)."""
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        ready: list[int] = []
        with self.db.session() as s:
            for pk in pks:
                req = repo.get_request(s, pk)
                assert req is not None
                try:
                    on = read_request(self.oracle, req.request_id)
                except (ContractCustomError, ContractLogicError):
                    # UnknownRequest: the block that carried it left the chain (reorg). The
                    # listener re-reads it if the new chain includes it again.
                    repo.transition(s, req, State.ORPHANED, "request no longer exists on-chain (reorg)")
                    continue
                status, deadline, onchain_input = on.status, on.deadline, on.input
                if status == RequestStatus.FULFILLED:
                    repo.record_fulfilment(s, req, "already fulfilled on-chain (another relayer)")
                elif status == RequestStatus.REFUNDED:
                    repo.transition(s, req, State.EXPIRED, "refunded on-chain")
                elif deadline < now + 2:
                    repo.transition(s, req, State.EXPIRED, "deadline passed before submission")
                elif onchain_input != req.input_ints or on.model_id != req.model_id:
                    # Same id, other content: our copy came from a block that was reorged away.
                    repo.transition(s, req, State.ORPHANED, "on-chain request differs from the one proven (reorg)")
                else:
                    ready.append(pk)
        return ready

    def payee_of(self, req: Request) -> str:
        """The payee a request is fulfilled for: the one its proof names (another instance
        sharing the database may have proven it for its own payee; any other payee would not
        verify), else, for a proof that names none (commit-reveal), this relayer's."""
        if req.proof is not None and req.proof.payee:
            return to_checksum_address(req.proof.payee)
        return self.payee

    def _one_payee(self, pks: list[int]) -> list[int]:
        """The requests of the most common payee (``fulfillBatch`` names one); the others are
        handed back for the next round."""
        if len(pks) < 2:
            return pks
        with self.db.session() as s:
            by: dict[str, list[int]] = {}
            for pk in pks:
                req = repo.get_request(s, pk)
                assert req is not None
                by.setdefault(self.payee_of(req), []).append(pk)
        if len(by) == 1:
            return pks
        keep = max(by.values(), key=len)
        self._release([pk for pk in pks if pk not in keep])
        return keep

    def _gas_for(self, req: Request) -> int:
        cb = req.callback_gas_limit * 64 // 63 + 10_000 if req.callback_gas_limit else 0
        # The adapter demands its verification budget *after* the 63/64 rule, and a proof's
        # bytes cost calldata gas plus copies (an EZKL proof is ~3.6 kB: ~90 k gas).
        proof_bytes = (len(req.proof.calldata) - 2) // 2 if req.proof is not None else 0
        verify = self.verify_gas(req.model_id) * 64 // 63 + 5_000
        return verify + cb + FULFIL_OVERHEAD_GAS + PROOF_BYTE_GAS * proof_bytes

    def _fulfil_call(self, s: Session, pks: list[int]) -> tuple[list[int], str, int, str]:
        """(request ids, calldata, gas limit, kind) of the fulfilment of ``pks``: ``fulfill``
        for one request, ``fulfillBatch`` for several. The one place the call is built, so the
        simulation runs exactly the transaction that is then signed."""
        reqs: list[Request] = []
        for pk in pks:
            req = repo.get_request(s, pk)
            assert req is not None and req.proof is not None
            reqs.append(req)
        ids = [r.request_id for r in reqs]
        outputs = [r.proof.output_ints for r in reqs if r.proof is not None]
        proofs = [HexBytes(r.proof.calldata) for r in reqs if r.proof is not None]
        gas = sum(self._gas_for(r) for r in reqs)
        payees = {self.payee_of(r) for r in reqs}
        assert len(payees) == 1, "a fulfilment names one payee (submit_ready groups by payee)"
        payee = payees.pop()
        if len(reqs) == 1:
            data = self.oracle.encode_abi("fulfill", args=[ids[0], outputs[0], payee, proofs[0]])
            kind = "fulfill"
        else:
            data = self.oracle.encode_abi("fulfillBatch", args=[ids, outputs, payee, proofs])
            kind = "fulfillBatch"
            gas += BATCH_BASE_GAS
        return ids, data, gas, kind

    def _send(self, pks: list[int]) -> int:
        # Simulated first: what the chain would reject is settled here, before a nonce is
        # reserved or a transaction signed (a rejected fulfilment must never cost gas).
        pks = self._simulate(pks)
        if not pks:
            return 0
        fees = current_fees(self.w3)
        chain_nonce = self.txs.pending_nonce()
        with self.db.session() as s:
            reqs = [repo.get_request(s, pk) for pk in pks]
            ids, data, gas, kind = self._fulfil_call(s, pks)
            row = self.txs.sign_call(s, self.oracle.address, data, gas, kind, fees, chain_nonce, request_pks=pks)
            nonce = row.nonce
            for r in reqs:
                assert r is not None
                repo.transition(s, r, State.SUBMITTED, f"{kind} tx {row.tx_hash} nonce {nonce}")
                r.fulfil_tx = row.tx_hash
                repo.release(r)
            raw, tx_hash = row.raw_tx, row.tx_hash
        # Committed: nonce, signed tx and `submitted` state are durable before broadcast.
        self.txs.broadcast(raw, tx_hash)
        log.info("chain %d: sent %s for %d request(s) %s (nonce %d, gas %d)",
                 self.cfg.chain_id, kind, len(pks), ids, nonce, gas)
        return len(pks)

    # ------------------------------------------------------------------ simulation

    def _simulate(self, pks: list[int]) -> list[int]:
        """Runs the fulfilment of ``pks`` as an ``eth_call`` (same from/to/data/gas as the
        transaction) and returns the requests to send: all of ``pks``, a subset, or none. Every
        request left out has been moved on (``_reject``) or handed back for the next round.

        A batch costs one eth_call when it would fulfil every entry (``fulfillBatch`` returns
        its ``fulfilled`` count; its FulfillmentSkipped events cannot be read from a call).
        Only when it would revert or skip some entry is each entry simulated on its own as a
        ``fulfill`` (one more eth_call per entry, free and only on this unhappy path): that
        names each bad entry's revert reason, which a skipped entry's event would only give as
        a selector, and which a batch reverting as a whole does not give per entry."""
        while pks:
            with self.db.session() as s:
                _, data, gas, _ = self._fulfil_call(s, pks)
            ret, err = self._eth_call(data, gas)
            if len(pks) == 1:
                if err is None:
                    return pks
                self._reject({pks[0]: err})
                return []
            if err is None and len(ret) >= 32 and int.from_bytes(ret[:32], "big") == len(pks):
                return pks
            bad: dict[int, ContractError] = {}
            for pk in pks:
                with self.db.session() as s:
                    _, one, one_gas, _ = self._fulfil_call(s, [pk])
                _, one_err = self._eth_call(one, one_gas)
                if one_err is not None:
                    bad[pk] = one_err
            if not bad:
                # Each entry passes alone but the batch does not (e.g. its gas budget): no
                # entry is at fault, so send the first alone and hand the rest back at once;
                # they go out in the next rounds, and never with a doomed batch.
                log.warning("chain %d: batch of %d would not fulfil every entry (%s) though each "
                            "passes alone; sending one", self.cfg.chain_id, len(pks),
                            err if err is not None else "fulfilled fewer")
                self._release(pks[1:])
                return pks[:1]
            self._reject(bad)
            pks = [pk for pk in pks if pk not in bad]
        return []

    def _eth_call(self, data: str, gas: int) -> tuple[bytes, ContractError | None]:
        """(return data, None) or (b"", the decoded revert). An RPC failure other than a gas
        refusal raises: the node, not the request, is at fault (``submit_ready`` releases)."""
        call: Any = {"from": self.account.address, "to": self.oracle.address, "data": HexBytes(data), "gas": gas}
        try:
            return bytes(self.w3.eth.call(call, SIMULATE_AT)), None
        except ContractLogicError as e:           # ContractCustomError / ContractPanicError too
            return b"", self.errors.decode_exception(e)
        except Web3RPCError as e:
            if _gas_error(e):
                return b"", ContractError("OutOfGas", {"gas": gas, "node": str(e)[:200]})
            raise

    def _reject(self, errs: dict[int, ContractError]) -> None:
        """Moves on requests whose fulfilment the simulation showed the chain rejects."""
        with self.db.session() as s:
            for pk, err in errs.items():
                req = repo.get_request(s, pk)
                if req is None or req.state != State.VERIFIED.value:
                    continue
                what = classify(err, self.oracle_errors)
                reason = f"simulated fulfilment reverts: {err}"
                log.warning("chain %d: request %d not sent (%s): %s",
                            self.cfg.chain_id, req.request_id, what.value, err)
                if what == Rejection.FULFILLED:
                    repo.record_fulfilment(s, req, "already fulfilled on-chain (another relayer)")
                elif what == Rejection.EXPIRED:
                    repo.transition(s, req, State.EXPIRED, reason)
                elif what == Rejection.ORPHANED:
                    repo.transition(s, req, State.ORPHANED, "request no longer exists on-chain (reorg)")
                elif what == Rejection.UNFULFILLABLE:
                    repo.transition(s, req, State.FAILED, reason)
                elif what == Rejection.REPROVE:
                    self._reprove(s, req, reason)
                else:
                    self._retry(s, req, reason)

    def _reprove(self, s: Session, req: Request, reason: str) -> None:
        """The chain refuses the proof: prove again (the same proof would only fail again)."""
        if req.attempts + 1 >= self.cfg.max_attempts:
            repo.transition(s, req, State.FAILED, f"{reason} (after {req.attempts + 1} attempts)")
            return
        repo.send_back_to_prove(s, req, reason)

    # ------------------------------------------------------------------ outcomes (TxOutcome)

    def replaced(self, s: Session, old: RelayerTx, new: RelayerTx) -> None:
        for rp in old.request_pks:
            req = repo.get_request(s, rp, for_update=True)
            if req is not None and req.state == State.SUBMITTED.value:
                req.fulfil_tx = new.tx_hash

    def reverted(self, s: Session, row: RelayerTx) -> None:
        for rp in row.request_pks:
            req = repo.get_request(s, rp, for_update=True)
            if req is not None and req.state == State.SUBMITTED.value:
                self._retry(s, req, f"tx reverted: {row.revert_reason}")

    def confirmed(self, s: Session, row: RelayerTx, receipt: Any) -> None:
        fulfilled: dict[int, bool] = {}
        skipped: dict[int, str] = {}
        for ev in self.oracle.events.InferenceFulfilled().process_receipt(receipt, errors=DISCARD):
            fulfilled[int(ev["args"]["requestId"])] = bool(ev["args"]["callbackSucceeded"])
        for ev in self.oracle.events.FulfillmentSkipped().process_receipt(receipt, errors=DISCARD):
            skipped[int(ev["args"]["requestId"])] = self.errors.name_of(bytes(ev["args"]["reason"]))
        for rp in row.request_pks:
            req = repo.get_request(s, rp, for_update=True)
            if req is None or req.state != State.SUBMITTED.value:
                continue
            if req.request_id in fulfilled:
                repo.record_fulfilment(s, req, f"tx {row.tx_hash} gas {row.gas_used}", tx_hash=row.tx_hash,
                                       block_number=row.block_number, callback_succeeded=fulfilled[req.request_id])
            else:
                reason = skipped.get(req.request_id, "not in the receipt")
                if reason == "AlreadyFulfilled":
                    repo.record_fulfilment(s, req, "fulfilled by another relayer first")
                elif reason in ("RequestExpired", "AlreadyRefunded"):
                    repo.transition(s, req, State.EXPIRED, reason)
                else:
                    self._retry(s, req, f"skipped in batch: {reason}")

    def _retry(self, s: Session, req: Request, reason: str) -> None:
        if req.attempts + 1 >= self.cfg.max_attempts:
            repo.transition(s, req, State.FAILED, f"{reason} (after {req.attempts + 1} attempts)")
            return
        repo.transition(s, req, State.VERIFIED, reason)
        repo.retry_later(req, reason, 2.0 * (2 ** req.attempts))
