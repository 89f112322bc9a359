"""The listener's progress per (chain, oracle): the last processed block with recent hashes
(for reorg detection), and the lock that makes several instances' listeners take turns."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

from oracle.store.db import on_postgresql
from oracle.store.models import Checkpoint


def get_checkpoint(s: Session, chain_id: int, oracle: str) -> Checkpoint | None:
    return s.get(Checkpoint, (chain_id, oracle))


def set_checkpoint(
    s: Session, chain_id: int, oracle: str, number: int, block_hash: str, recent: dict[str, str]
) -> None:
    cp = s.get(Checkpoint, (chain_id, oracle))
    if cp is None:
        s.add(
            Checkpoint(
                chain_id=chain_id, oracle=oracle, block_number=number, block_hash=block_hash, recent_hashes=recent
            )
        )
    else:
        cp.block_number = number
        cp.block_hash = block_hash
        cp.recent_hashes = recent


def lock_listener(s: Session, chain_id: int, oracle: str) -> None:
    """Makes the listeners of one (chain, oracle) in several instances take turns: held until
    the caller's transaction ends (PostgreSQL advisory lock; SQLite: already serialized).
    Without it two listeners reading the same logs would insert the same request twice (a
    unique-key error) and confirm from stale reads."""
    if on_postgresql(s):
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key("listener", str(chain_id), oracle.lower())})


def _lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock."""
    return int.from_bytes(hashlib.sha256(":".join(parts).encode()).digest()[:8], "big", signed=True)
