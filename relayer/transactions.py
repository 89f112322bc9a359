"""The transactions of one account on one chain: nonces, signing, broadcast, receipts.

Crash-safe by construction: a transaction is signed and stored together with its reserved nonce
(and whatever state change the caller commits with it) before it is broadcast, so after a crash
it is broadcast again, never re-signed under another nonce. ``track`` follows every open
transaction to its confirmation depth, rebroadcasts what the node does not know, and replaces a
stuck one with bumped fees under the same nonce; ``recheck_confirmed`` puts a confirmed
transaction whose block left the chain back to pending. What a mined transaction MEANS (requests
fulfilled, skipped, to retry) is not its business: it reports outcomes to a ``TxOutcome``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import TransactionNotFound

from oracle.chain.client import ErrorDecoder
from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import RelayerTx
from relayer.fees import Fees, current_fees

log = logging.getLogger(__name__)

REORG_WINDOW = 64  # blocks during which a confirmed transaction is re-checked


class TxOutcome(Protocol):
    """What the owner of a transaction's requests does when it settles (inside the DB session)."""

    def replaced(self, s: Session, old: RelayerTx, new: RelayerTx) -> None: ...

    def confirmed(self, s: Session, row: RelayerTx, receipt: Any) -> None: ...

    def reverted(self, s: Session, row: RelayerTx) -> None: ...


class NoOutcome:
    """For calls that carry no requests (deliveries and commits are followed through their rows)."""

    def replaced(self, s: Session, old: RelayerTx, new: RelayerTx) -> None:
        return None

    def confirmed(self, s: Session, row: RelayerTx, receipt: Any) -> None:
        return None

    def reverted(self, s: Session, row: RelayerTx) -> None:
        return None


class TransactionManager:
    """Owns one account's nonces and transactions on one chain (shared by the fulfilment job,
    the commit-reveal gate and the cross-chain delivery job). Never decides what to send."""

    def __init__(
        self,
        db: Database,
        w3: Web3,
        account: LocalAccount,
        errors: ErrorDecoder,
        *,
        chain_id: int,
        confirmations: int = 1,
        stuck_after: float = 30.0,
    ) -> None:
        self.db = db
        self.w3 = w3
        self.account = account
        self.errors = errors
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.stuck_after = stuck_after
        self.outcome: TxOutcome = NoOutcome()

    def sign_call(
        self, s: Session, to: str, data: str, gas: int, kind: str, fees: Fees, chain_nonce: int,
        request_pks: list[int] | None = None,
    ) -> RelayerTx:
        """Signs and stores, inside the caller's database transaction, a call from this account
        under its next nonce (reserved in the same transaction, so a crash neither skips nor
        reuses one). It is then tracked (receipts, rebroadcast, fee bumps, reorgs); the caller
        broadcasts it with ``broadcast`` after committing. ``fees`` and ``chain_nonce`` are read
        by the caller before opening the transaction (no RPC under a database lock)."""
        nonce = repo.reserve_nonce(s, self.chain_id, self.account.address, chain_nonce)
        return self._sign_and_store(s, nonce, data, gas, fees, list(request_pks or []), kind, to=to)

    def pending_nonce(self) -> int:
        """The node's count of this account's transactions, pending included (read before a
        ``sign_call``)."""
        return int(self.w3.eth.get_transaction_count(self.account.address, "pending"))

    def broadcast(self, raw: str, tx_hash: str) -> None:
        """Sends a stored signed transaction; a failure is logged, ``track`` retries."""
        try:
            self.w3.eth.send_raw_transaction(HexBytes(raw))
        except Exception as e:
            log.warning("chain %d: broadcast of %s failed (%s); will retry", self.chain_id, tx_hash, e)

    def _sign_and_store(
        self, s: Session, nonce: int, data: str, gas: int, fees: Fees, pks: list[int], kind: str, to: str,
    ) -> RelayerTx:
        to = to_checksum_address(to)
        tx = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
            "data": data,
            # Explicit gas: estimateGas on a snarkjs verifier under-reports, and at that limit
            # the pairing check returns false instead of reverting (docs/toolchain.md).
            "gas": gas,
            "maxFeePerGas": fees.max_fee,
            "maxPriorityFeePerGas": fees.priority_fee,
        }
        signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
        row = RelayerTx(
            chain_id=self.chain_id, account=self.account.address, nonce=nonce, kind=kind,
            request_pks=pks, tx_hash="0x" + bytes(signed.hash).hex(), raw_tx="0x" + bytes(signed.raw_transaction).hex(),
            to=to, data=data, gas_limit=gas, max_fee=str(fees.max_fee),
            priority_fee=str(fees.priority_fee), status="pending", sent_at=time.time(),
        )
        return repo.add_tx(s, row)

    def track(self) -> int:
        """Follows every open transaction: receipts, confirmation depth, stuck -> fee bump,
        unknown to the node (restart, crash before broadcast) -> rebroadcast."""
        with self.db.session() as s:
            rows = repo.open_txs(s, self.chain_id, self.account.address)
            open_txs = [(r.id, r.nonce, r.tx_hash) for r in rows]
        if not open_txs:
            return 0
        head = int(self.w3.eth.block_number)
        done = 0
        by_nonce: dict[int, list[int]] = {}
        for pk, nonce, _ in open_txs:
            by_nonce.setdefault(nonce, []).append(pk)
        for nonce, pks in by_nonce.items():
            done += self._track_nonce(nonce, pks, head)
        return done

    def _track_nonce(self, nonce: int, pks: list[int], head: int) -> int:
        """All transactions sharing a nonce (original + replacements): at most one mines."""
        for pk in pks:
            with self.db.session() as s:
                row = repo.get_tx(s, pk)
                assert row is not None
                tx_hash = row.tx_hash
            try:
                receipt = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                receipt = None
            if receipt is not None:
                return self._on_receipt(pk, pks, receipt, head)
        # None of them mined.
        with self.db.session() as s:
            latest = repo.get_tx(s, pks[-1])
            assert latest is not None
            mined_before = [repo.get_tx(s, p) for p in pks]
            for r in mined_before:
                if r is not None and r.status == "mined":
                    r.status = "pending"  # its block was reorged away
                    log.warning("chain %d: tx %s left the chain (reorg); pending again", self.chain_id, r.tx_hash)
            raw, tx_hash, sent_at = latest.raw_tx, latest.tx_hash, latest.sent_at
        chain_nonce = int(self.w3.eth.get_transaction_count(self.account.address, "latest"))
        if chain_nonce > nonce:
            return 0  # another tx with this nonce mined (a replacement we will see next round)
        if not self._node_knows(tx_hash):
            self.broadcast(raw, tx_hash)
        elif time.time() - sent_at > self.stuck_after:
            self._bump(pks[-1])
        return 0

    def recheck_confirmed(self) -> int:
        """Reorg repair: a confirmed transaction whose receipt vanished (its block left the
        chain) goes back to ``pending`` and is rebroadcast under its own nonce, so the
        account's nonce sequence has no hole. Checks the last ``REORG_WINDOW`` blocks."""
        head = int(self.w3.eth.block_number)
        latest_nonce = int(self.w3.eth.get_transaction_count(self.account.address, "latest"))
        with self.db.session() as s:
            rows = repo.settled_since(s, self.chain_id, self.account.address, head - REORG_WINDOW)
            suspects = [(r.id, r.tx_hash, r.nonce) for r in rows if r.nonce >= latest_nonce]
        revived = 0
        for pk, tx_hash, nonce in suspects:
            try:
                self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
                continue
            except TransactionNotFound:
                pass
            with self.db.session() as s:
                row = repo.get_tx(s, pk)
                assert row is not None
                row.status = "pending"
                row.block_number = None
                row.sent_at = time.time()
                raw = row.raw_tx
            log.warning("chain %d: tx %s (nonce %d) left the chain in a reorg; rebroadcasting",
                        self.chain_id, tx_hash, nonce)
            self.broadcast(raw, tx_hash)
            revived += 1
        return revived

    def _node_knows(self, tx_hash: str) -> bool:
        try:
            self.w3.eth.get_transaction(HexBytes(tx_hash))
            return True
        except TransactionNotFound:
            return False

    def _bump(self, pk: int) -> None:
        fees = current_fees(self.w3)
        with self.db.session() as s:
            old = repo.get_tx(s, pk)
            assert old is not None
            new_fees = Fees(int(old.max_fee), int(old.priority_fee)).bumped(floor=fees)
            new = self._sign_and_store(s, old.nonce, old.data, old.gas_limit, new_fees, list(old.request_pks), old.kind,
                                       to=old.to)
            old.status = "replaced"
            old.replaced_by = new.id
            self.outcome.replaced(s, old, new)
            raw, tx_hash = new.raw_tx, new.tx_hash
        log.warning("chain %d: tx %s stuck; replaced by %s with fees +%d%%",
                    self.chain_id, old.tx_hash, tx_hash, 25)
        self.broadcast(raw, tx_hash)

    def _on_receipt(self, pk: int, siblings: list[int], receipt: Any, head: int) -> int:
        # The head was read before the receipt: a block mined in between must not look unmined.
        depth = max(head, int(receipt["blockNumber"])) - int(receipt["blockNumber"]) + 1
        with self.db.session() as s:
            row = repo.get_tx(s, pk)
            assert row is not None
            for other in siblings:
                if other != pk:
                    o = repo.get_tx(s, other)
                    if o is not None and o.status in ("pending", "mined"):
                        o.status = "replaced"
            row.status = "mined"
            row.block_number = int(receipt["blockNumber"])
            row.gas_used = int(receipt["gasUsed"])
            if depth < self.confirmations:
                return 0
            row.status = "confirmed" if receipt["status"] == 1 else "failed"
            if receipt["status"] != 1:
                row.revert_reason = self._revert_reason(row, int(receipt["blockNumber"]))
                log.error("chain %d: tx %s reverted: %s", self.chain_id, row.tx_hash, row.revert_reason)
                self.outcome.reverted(s, row)
                return 1
            self.outcome.confirmed(s, row, receipt)
        return 1

    def _revert_reason(self, row: RelayerTx, block: int) -> str:
        try:
            self.w3.eth.call(
                {"from": row.account, "to": row.to, "data": HexBytes(row.data), "gas": row.gas_limit}, block - 1
            )
        except Exception as e:
            data = getattr(e, "data", None)
            if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
                return str(self.errors.decode(bytes.fromhex(data[2:])))
            return str(e)[:300]
        return f"reverted (out of gas? gas limit {row.gas_limit})"
