"""API keys and the per-key rate limit.

A key is ``poi_`` + 43 url-safe base64 characters (32 random bytes); the store keeps only its
sha256 (a leaked database does not leak keys) and the key is printed once, at creation. A
submission carries ``Authorization: Bearer KEY``: missing or malformed is 401, unknown or
revoked 403. The key row is found by its hash and the hash then compared in constant time.

Rate limit: a token bucket per key, kept ON THE KEY'S ROW and drawn from under a row lock in
the submission's own transaction. Several gateways in front of one PostgreSQL therefore share
one bucket per key (a per-process limiter would multiply the limit by the number of
gateways), and a refused submission stores nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from oracle.errors import UserError
from oracle.gateway.errors import ApiError
from oracle.store import repo
from oracle.store.db import Database
from oracle.store.models import ApiKey, utcnow

PREFIX = "poi_"
KEY_RE = re.compile(r"^poi_[A-Za-z0-9_-]{43}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class KeyCommandError(UserError):
    """A key command that cannot be done (bad or duplicate name, unknown key)."""


def new_key() -> str:
    return PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Bucket:
    rate: float      # tokens per second
    burst: float     # bucket size


def create_key(db: Database, name: str, bucket: Bucket) -> str:
    """Stores a new key named ``name`` (full bucket) and returns the key: the only time it exists."""
    if not NAME_RE.match(name):
        raise KeyCommandError(f"key name {name!r}: 1-64 characters, letters, digits and _ . @ - (starting with a "
                        "letter or digit)")
    key = new_key()
    with db.session() as s:
        if repo.api_key_by_name(s, name) is not None:
            raise KeyCommandError(f"a key named {name!r} exists already (revoke it, or pick another name)")
        repo.add_api_key(s, name, key_hash(key), tokens=bucket.burst, now=time.time())
    return key


def revoke_key(db: Database, name: str) -> ApiKey:
    with db.session() as s:
        row = repo.revoke_api_key(s, name)
        if row is None:
            raise KeyCommandError(f"no key named {name!r}")
        return row


def list_keys(db: Database) -> list[ApiKey]:
    with db.session() as s:
        return repo.api_keys(s)


def bearer(header: str | None) -> str:
    """The key of an ``Authorization: Bearer KEY`` header; 401 when missing or malformed."""
    if not header:
        raise ApiError(401, "this endpoint needs an API key: send 'Authorization: Bearer <key>' "
                            "(keys: oracle gateway key create NAME --db URL)",
                       headers={"WWW-Authenticate": "Bearer"})
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise ApiError(401, "malformed Authorization header: expected 'Bearer <key>'",
                       headers={"WWW-Authenticate": "Bearer"})
    if not KEY_RE.match(value):
        raise ApiError(401, "malformed API key: expected poi_ followed by 43 url-safe base64 characters",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return value


def check_known(s: Session, key: str) -> ApiKey:
    """403 for a key that is unknown or revoked (no token taken)."""
    h = key_hash(key)
    row = repo.api_key_by_hash(s, h)
    if row is None or not hmac.compare_digest(row.key_hash, h):
        raise ApiError(403, "unknown API key")
    if row.revoked_at is not None:
        raise ApiError(403, f"API key {row.name!r} was revoked at {row.revoked_at.isoformat()}")
    return row


def admit(s: Session, key: str, bucket: Bucket, now: float | None = None) -> ApiKey:
    """Authenticates ``key`` and takes one token from its bucket, in the caller's transaction
    (so the token is spent only if the submission commits). 403 unknown/revoked, 429 empty
    bucket with the seconds until the next token in Retry-After."""
    row = repo.api_key_by_hash(s, key_hash(key), for_update=True)
    if row is None or row.revoked_at is not None:     # revoked (or removed) since check_known
        check_known(s, key)
    assert row is not None
    now = time.time() if now is None else now
    tokens = min(bucket.burst, row.tokens + max(0.0, now - row.refilled_at) * bucket.rate)
    if tokens < 1.0:
        wait = max(1, math.ceil((1.0 - tokens) / bucket.rate))
        raise ApiError(429, f"rate limit of key {row.name!r}: {bucket.rate:g} submissions/s, bursts of "
                            f"{bucket.burst:g}; retry in {wait} s", headers={"Retry-After": str(wait)})
    row.tokens = tokens - 1.0
    row.refilled_at = now
    row.last_used_at = utcnow()
    return row
