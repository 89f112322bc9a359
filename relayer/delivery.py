"""Cross-chain deliveries for one destination chain: once a request made on chain A with
``requestInferenceTo`` is fulfilled on A, hand the same output and proof to the inbox of its
destination chain B, which verifies the proof itself (docs/cross-chain.md).

Crash-safe the same way as fulfilments: in ONE database transaction the destination relayer's
nonce is reserved, the ``deliver`` transaction signed and stored (a ``relayer_txs`` row of kind
``deliver`` with no requests attached) and the delivery moved to ``submitted``; only then is it
broadcast. From there the destination chain's ``TransactionManager.track`` owns the transaction (receipts,
rebroadcast after a node restart, fee bumps, reorg re-checks) and this job follows its outcome.

Every RPC to the destination chain happens outside database transactions, so while B is down
this job fails fast (the service backs it off), deliveries simply stay ``waiting``, and chain
A's jobs are not held up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from oracle.chain.fulfilment import CalldataError, entries_in
from oracle.chain.structs import read_model
from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import Delivery, DeliveryState
from relayer.fees import current_fees
from relayer.transactions import TransactionManager

log = logging.getLogger(__name__)

# deliver() gas outside verification and the callback: 21 k base, ~1 k calldata bytes, the
# replay record (22 k), the event, the registry reads. Measured 84 k (bench_crosschain.py);
# this is a gas LIMIT, so it keeps a margin.
DELIVER_OVERHEAD_GAS = 150_000

SourceLookup = Callable[[int], tuple[Web3, Contract] | None]   # chain id -> (w3, oracle contract)


@dataclass
class DeliveryConfig:
    chain_id: int                     # the destination chain
    inbox: str
    owner: str = "delivery"           # lease owner id (stable across restarts of one instance)
    batch: int = 8
    max_attempts: int = 5
    retry_delay: float = 2.0
    lease_seconds: float = 30.0


@dataclass(frozen=True)
class _Message:
    """Everything ``deliver`` needs, read from the store (and the source chain if needed)."""

    pk: int
    src_chain_id: int
    src_oracle: str
    request_id: int
    model_id: bytes
    input: list[int]
    output: list[int]
    proof: bytes
    circuit_id: str | None
    consumer: str
    gas_limit: int
    payee: str = "0x0000000000000000000000000000000000000000"   # the payee the proof names (no fee here)


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def delivery_key(m: _Message) -> bytes:
    """CrossChainInbox.deliveryKey, computed locally (no RPC): what the consumer sees."""
    input_hash = keccak(abi_encode(["int256[]"], [m.input]))
    return keccak(abi_encode(
        ["uint64", "uint256", "bytes32", "bytes32", "address"],
        [m.src_chain_id, m.request_id, m.model_id, input_hash, m.consumer],
    ))


class DeliveryJob:
    """The cross-chain delivery stage for one destination chain B (the chain whose inbox it sends to).

    Owns the ``deliveries`` rows of its chain after the listener stored them ``waiting``:
    ``waiting -> submitted -> delivered``, with ``failed`` (attempts exhausted) and
    ``cancelled`` (the source request will never be fulfilled). Once the source request is
    ``fulfilled``, it takes the output and proof from the store, or, when another relayer
    fulfilled it, from that relayer's fulfilment calldata on the source chain; reads B first
    (already delivered by anyone, model not registered, another circuit, frozen, consumer
    without code); then has B's ``TransactionManager`` sign and store a ``deliver`` transaction in the same
    database transaction as ``submitted``, broadcasts it, and follows its outcome.

    Never proves or verifies a proof (B's inbox verifies it on-chain), and never manages nonces,
    fees or receipts itself: the destination chain's ``TransactionManager`` owns the transaction once it is
    signed (``sign_call``, ``track``). Never touches the source request's state.
    """

    def __init__(
        self,
        db: Database,
        w3: Web3,
        txs: TransactionManager,
        inbox_abi: list[dict[str, Any]],
        registry: Contract,
        source: SourceLookup,
        cfg: DeliveryConfig,
    ) -> None:
        self.db = db
        self.w3 = w3
        self.txs = txs
        self.registry = registry
        self.source = source
        self.cfg = cfg
        self.inbox = w3.eth.contract(address=to_checksum_address(cfg.inbox), abi=inbox_abi)

    # ------------------------------------------------------------------ sending

    def submit_ready(self) -> int:
        """Sends deliveries whose source request is fulfilled; returns how many were sent."""
        self._cancel_dead()
        _ = self.w3.eth.block_number  # fail fast (and back off) while the destination is down, before leasing
        pks = self._claim()
        sent = 0
        try:
            for i, pk in enumerate(pks):
                sent += self._deliver_one(pk)
                pks[i] = -1
        finally:
            # Anything not processed (RPC failure mid-way) is free again at once, not after the lease.
            self._release([pk for pk in pks if pk >= 0])
        return sent

    def _cancel_dead(self) -> None:
        with self.db.session() as s:
            for d in repo.undeliverable(s, self.cfg.chain_id):
                d.state = DeliveryState.CANCELLED.value
                d.reason = f"source request {d.request.state}: never fulfilled"
                log.info("delivery %d:%d -> chain %d cancelled (%s)", d.src_chain_id, d.request_id,
                         d.dst_chain_id, d.reason)

    def _claim(self) -> list[int]:
        with self.db.session() as s:
            rows = repo.claim_deliveries(s, self.cfg.chain_id, self.cfg.owner, limit=self.cfg.batch,
                                         lease_seconds=self.cfg.lease_seconds)
            return [d.id for d in rows]

    def _release(self, pks: list[int]) -> None:
        if not pks:
            return
        with self.db.session() as s:
            for pk in pks:
                d = repo.get_delivery(s, pk)
                if d is not None and d.lease_owner == self.cfg.owner:
                    d.lease_owner = None
                    d.lease_until = 0.0

    def _deliver_one(self, pk: int) -> int:
        msg = self._message(pk)
        if msg is None:
            return 0
        tag = f"{msg.src_chain_id}:{msg.request_id} -> chain {self.cfg.chain_id}"
        why = self._precheck(msg)
        if why == "delivered":
            with self.db.session() as s:
                d = repo.get_delivery(s, pk)
                assert d is not None
                self._finish(d, DeliveryState.DELIVERED, "already delivered on the destination (by anyone)")
            return 0
        if why is not None:
            with self.db.session() as s:
                d = repo.get_delivery(s, pk)
                assert d is not None
                self._retry(d, why)
            return 0
        gas = self._verify_gas(msg.model_id) + msg.gas_limit * 64 // 63 + 10_000 + DELIVER_OVERHEAD_GAS
        data = self.inbox.encode_abi("deliver", args=[
            (msg.src_chain_id, msg.src_oracle, msg.request_id, msg.model_id, msg.consumer, msg.gas_limit, msg.payee),
            msg.input, msg.output, msg.proof,
        ])
        fees = current_fees(self.w3)
        chain_nonce = self.txs.pending_nonce()
        with self.db.session() as s:
            d = repo.get_delivery(s, pk)
            assert d is not None
            if d.state != DeliveryState.WAITING.value or d.lease_owner != self.cfg.owner:
                return 0
            row = self.txs.sign_call(s, self.inbox.address, data, gas, "deliver", fees, chain_nonce)
            d.state = DeliveryState.SUBMITTED.value
            d.inbox = self.inbox.address
            d.tx_pk = row.id
            d.reason = f"deliver tx {row.tx_hash} nonce {row.nonce}"
            d.lease_owner = None
            d.lease_until = 0.0
            raw, tx_hash, nonce = row.raw_tx, row.tx_hash, row.nonce
        # Committed: nonce, signed tx and `submitted` are durable before the broadcast.
        self.txs.broadcast(raw, tx_hash)
        log.info("delivery %s: sent deliver (nonce %d, gas %d)", tag, nonce, gas)
        return 1

    def _message(self, pk: int) -> _Message | None:
        with self.db.session() as s:
            d = repo.get_delivery(s, pk)
            if d is None or d.state != DeliveryState.WAITING.value:
                return None
            req = d.request
            output: list[int] | None = None
            proof: bytes | None = None
            circuit_id: str | None = None
            payee = ZERO_ADDRESS
            if req.proof is not None and req.proof.verified:
                output, circuit_id = req.proof.output_ints, req.proof.circuit_id
                proof = bytes(HexBytes(req.proof.calldata))
                payee = to_checksum_address(req.proof.payee) if req.proof.payee else ZERO_ADDRESS
            base = dict(pk=pk, src_chain_id=d.src_chain_id, src_oracle=d.src_oracle, request_id=d.request_id,
                        model_id=bytes.fromhex(req.model_id[2:]), input=req.input_ints, consumer=d.consumer,
                        gas_limit=int(d.gas_limit))
            src_chain, request_id, from_block = req.chain_id, req.request_id, req.block_number
        if output is None or proof is None:
            # Fulfilled by another relayer before we proved it: take its output and proof
            # from its fulfilment transaction (the proof is valid whoever made it).
            found = self._from_source(src_chain, request_id, from_block)
            if found is None:
                with self.db.session() as s:
                    d = repo.get_delivery(s, pk)
                    assert d is not None
                    self._retry(d, "no proof in the store and none readable from the source fulfilment")
                return None
            output, proof, payee = found
        return _Message(output=output, proof=proof, circuit_id=circuit_id, payee=payee,
                        **base)  # type: ignore[arg-type]

    def _from_source(self, chain_id: int, request_id: int, from_block: int) -> tuple[list[int], bytes, str] | None:
        """(output, proof, payee) of the request's fulfilment on its source chain, read from the
        calldata of the transaction that fulfilled it (traced when it went through a contract)."""
        src = self.source(chain_id)
        if src is None:
            return None
        w3, oracle = src
        logs = oracle.events.InferenceFulfilled().get_logs(
            argument_filters={"requestId": request_id}, from_block=from_block
        )
        for ev in logs:
            try:
                entries = entries_in(w3, oracle, dict(w3.eth.get_transaction(ev["transactionHash"])), request_id)
            except CalldataError as exc:
                log.warning("request %d:%d: fulfilment calldata not readable: %s", chain_id, request_id, exc)
                continue
            # A batch may name the id twice; the entry fulfilled is the one whose output was logged.
            logged = [int(v) for v in ev["args"]["output"]]
            for e in entries:
                if e.output == logged:
                    return e.output, e.proof, e.payee
        return None

    def _precheck(self, m: _Message) -> str | None:
        """Reads the destination chain: None when the delivery can go, "delivered" when
        someone already delivered it, else why not (retried later)."""
        if self.inbox.functions.isDelivered(delivery_key(m)).call():
            return "delivered"
        if not self.registry.functions.isRegistered(m.model_id).call():
            return f"model 0x{m.model_id.hex()} is not registered on chain {self.cfg.chain_id}"
        onchain = read_model(self.registry, m.model_id)
        if m.circuit_id is not None and onchain.circuit_id != m.circuit_id.lower():
            return f"model 0x{m.model_id.hex()} on chain {self.cfg.chain_id} is another circuit"
        if onchain.frozen:
            return f"model 0x{m.model_id.hex()} is frozen on chain {self.cfg.chain_id}"
        if not self.w3.eth.get_code(to_checksum_address(m.consumer)):
            return f"consumer {m.consumer} has no code on chain {self.cfg.chain_id}"
        return None

    def _verify_gas(self, model_id: bytes) -> int:
        return read_model(self.registry, model_id).verify_gas

    # ------------------------------------------------------------------ outcomes

    def track(self) -> int:
        """Follows submitted deliveries through their transaction (tracked by the TransactionManager):
        confirmed -> delivered (callback result from the event), reverted -> retried."""
        with self.db.session() as s:
            todo = [d.id for d in repo.submitted_deliveries(s, self.cfg.chain_id)]
        done = 0
        for pk in todo:
            done += self._track_one(pk)
        return done

    def _track_one(self, pk: int) -> int:
        with self.db.session() as s:
            d = repo.get_delivery(s, pk)
            assert d is not None and d.tx_pk is not None
            first = repo.get_tx(s, d.tx_pk)
            assert first is not None
            # Replacements (fee bumps) share the nonce; at most one of them mines.
            siblings = repo.same_nonce(s, first)
            final = next((t for t in siblings if t.status in ("confirmed", "failed")), None)
            if final is None:
                return 0
            tx_hash, status, reason = final.tx_hash, final.status, final.revert_reason or ""
            block, gas_used = final.block_number, final.gas_used
        receipt = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash)) if status == "confirmed" else None
        with self.db.session() as s:
            d = repo.get_delivery(s, pk)
            assert d is not None
            if d.state != DeliveryState.SUBMITTED.value:
                return 0
            d.tx_hash, d.block_number, d.gas_used = tx_hash, block, gas_used
            if receipt is not None:
                evs = self.inbox.events.CrossChainDelivered().process_receipt(receipt, errors=DISCARD)
                if evs:
                    d.callback_succeeded = bool(evs[0]["args"]["callbackSucceeded"])
                    self._finish(d, DeliveryState.DELIVERED, f"tx {tx_hash} gas {gas_used}")
                    log.info("delivery %d:%d -> chain %d delivered (callback %s, gas %s)", d.src_chain_id,
                             d.request_id, d.dst_chain_id, "ok" if d.callback_succeeded else "FAILED", gas_used)
                    return 1
                self._retry(d, f"tx {tx_hash} mined without CrossChainDelivered")
                return 1
            if "AlreadyDelivered" in reason:
                self._finish(d, DeliveryState.DELIVERED, "delivered by someone else first")
                return 1
            log.error("delivery %d:%d -> chain %d: tx %s reverted: %s", d.src_chain_id, d.request_id,
                      d.dst_chain_id, tx_hash, reason)
            self._retry(d, f"tx reverted: {reason}")
        return 1

    def _finish(self, d: Delivery, state: DeliveryState, reason: str) -> None:
        d.state = state.value
        d.reason = reason
        d.lease_owner = None
        d.lease_until = 0.0

    def _retry(self, d: Delivery, reason: str) -> None:
        d.attempts += 1
        d.lease_owner = None
        d.lease_until = 0.0
        if d.attempts >= self.cfg.max_attempts:
            self._finish(d, DeliveryState.FAILED, f"{reason} (after {d.attempts} attempts)")
            log.error("delivery %d:%d -> chain %d failed: %s", d.src_chain_id, d.request_id, d.dst_chain_id, d.reason)
            return
        d.state = DeliveryState.WAITING.value
        d.reason = reason
        d.next_attempt_at = time.time() + self.cfg.retry_delay * (2 ** (d.attempts - 1))
        log.warning("delivery %d:%d -> chain %d: %s; retrying", d.src_chain_id, d.request_id, d.dst_chain_id, reason)
