"""Relayer transactions (``relayer_txs``) and the nonce counter of each relayer account.

A transaction row is stored, signed, before it is broadcast; its status then follows the
chain: ``pending -> mined -> confirmed | failed``, ``replaced`` when another transaction with
its nonce (a fee bump) is the one that mined, and back to ``pending`` if a reorg drops it.
Only the relayer of the row's (chain, account) changes it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from oracle.store.db import on_postgresql
from oracle.store.models import Nonce, RelayerTx

OPEN = ("pending", "mined")               # not settled at confirmation depth yet
SETTLED = ("confirmed", "failed")         # at confirmation depth (a reorg may still undo it)


def reserve_nonce(s: Session, chain_id: int, account: str, chain_nonce: int) -> int:
    """Takes the next nonce for (chain, account). The stored counter never goes below the
    chain's own count, so a nonce used outside the oracle is skipped, not reused.

    The counter row is locked (FOR UPDATE) until the caller commits the transaction that
    signs and stores the transaction using it, so relayers of several instances sharing an
    account get consecutive, distinct nonces. On PostgreSQL the row is first created with
    ON CONFLICT DO NOTHING: two instances reserving the account's very first nonce at once
    do not collide on the primary key."""
    if on_postgresql(s):
        s.execute(
            pg_insert(Nonce)
            .values(chain_id=chain_id, account=account, next_nonce=chain_nonce)
            .on_conflict_do_nothing(index_elements=[Nonce.chain_id, Nonce.account])
        )
        row: Nonce | None = s.execute(
            select(Nonce)
            .where(Nonce.chain_id == chain_id, Nonce.account == account)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
    else:
        row = s.get(Nonce, (chain_id, account), with_for_update=True)
        if row is None:
            row = Nonce(chain_id=chain_id, account=account, next_nonce=chain_nonce)
            s.add(row)
    assert row is not None
    nonce = max(row.next_nonce, chain_nonce)
    row.next_nonce = nonce + 1
    return nonce


def add_tx(s: Session, tx: RelayerTx) -> RelayerTx:
    """Stores a signed transaction in the caller's transaction; its id is set on return."""
    s.add(tx)
    s.flush()
    return tx


def get_tx(s: Session, pk: int) -> RelayerTx | None:
    return s.get(RelayerTx, pk)


def open_txs(s: Session, chain_id: int, account: str) -> list[RelayerTx]:
    """The account's transactions not yet settled, by nonce (replacements after originals)."""
    return list(s.execute(
        select(RelayerTx).where(
            RelayerTx.chain_id == chain_id,
            RelayerTx.account == account,
            RelayerTx.status.in_(OPEN),
        ).order_by(RelayerTx.nonce, RelayerTx.id)
    ).scalars().all())


def settled_since(s: Session, chain_id: int, account: str, block_number: int) -> list[RelayerTx]:
    """The account's settled transactions mined at or after ``block_number`` (a reorg may yet
    remove them)."""
    return list(s.execute(
        select(RelayerTx).where(
            RelayerTx.chain_id == chain_id,
            RelayerTx.account == account,
            RelayerTx.status.in_(SETTLED),
            RelayerTx.block_number >= block_number,
        )
    ).scalars().all())


def same_nonce(s: Session, tx: RelayerTx) -> list[RelayerTx]:
    """``tx`` and every transaction sharing its nonce (fee-bump replacements): at most one mines."""
    return list(s.execute(
        select(RelayerTx).where(
            RelayerTx.chain_id == tx.chain_id,
            RelayerTx.account == tx.account,
            RelayerTx.nonce == tx.nonce,
        )
    ).scalars().all())


def has_open_call(s: Session, chain_id: int, account: str, data: str) -> bool:
    """Whether ``account`` already has a stored transaction with this calldata that is not
    replaced or failed (so the same call is not signed twice)."""
    q = select(RelayerTx.id).where(
        RelayerTx.chain_id == chain_id, RelayerTx.account == account, RelayerTx.data == data,
        RelayerTx.status.in_(["pending", "mined", "confirmed"]),
    ).limit(1)
    return s.execute(q).first() is not None
