"""Gateway API keys (``api_keys``): only hashes are stored. The rate-limit bucket of a key is
on its row, taken with a row lock, so several gateways sharing a database share the limit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from oracle.store.models import ApiKey, utcnow


def add_api_key(s: Session, name: str, key_hash: str, *, tokens: float, now: float) -> ApiKey:
    row = ApiKey(name=name, key_hash=key_hash, tokens=tokens, refilled_at=now)
    s.add(row)
    s.flush()
    return row


def api_key_by_name(s: Session, name: str) -> ApiKey | None:
    return s.execute(select(ApiKey).where(ApiKey.name == name)).scalar_one_or_none()


def api_key_by_hash(s: Session, key_hash: str, *, for_update: bool = False) -> ApiKey | None:
    """The key whose sha256 is ``key_hash``, locked for the caller's transaction with
    ``for_update`` (its bucket is about to be drawn from)."""
    q = select(ApiKey).where(ApiKey.key_hash == key_hash)
    if for_update:
        q = q.with_for_update()
    return s.execute(q).scalar_one_or_none()


def api_keys(s: Session) -> list[ApiKey]:
    return list(s.execute(select(ApiKey).order_by(ApiKey.id)).scalars().all())


def revoke_api_key(s: Session, name: str, when: datetime | None = None) -> ApiKey | None:
    """Marks the key revoked (kept, so its name and history remain); None when unknown."""
    row = api_key_by_name(s, name)
    if row is not None and row.revoked_at is None:
        row.revoked_at = when or utcnow()
    return row
