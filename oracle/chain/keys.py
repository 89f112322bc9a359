"""Where signing keys come from: the environment or an encrypted keystore, never code or logs.

anvil's first dev key is accepted as a default only when the chain is a local anvil chain.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from oracle.chain.anvil import DEV_KEYS, LOCAL_CHAIN_IDS

KEY_ENV = "ORACLE_PRIVATE_KEY"
KEYSTORE_ENV = "ORACLE_KEYSTORE"
PASSWORD_ENV = "ORACLE_KEYSTORE_PASSWORD"


class KeySourceError(Exception):
    """No usable key; the message says where one was looked for (never the key itself)."""


def load_account(
    *,
    chain_id: int | None = None,
    keystore: Path | None = None,
    env: dict[str, str] | None = None,
) -> LocalAccount:
    """The operator's account.

    Order: ``ORACLE_PRIVATE_KEY``; else an encrypted keystore (``keystore`` or
    ``ORACLE_KEYSTORE``) unlocked with ``ORACLE_KEYSTORE_PASSWORD``; else, on a local anvil
    chain only, anvil's first dev account.
    """
    e = os.environ if env is None else env
    raw = e.get(KEY_ENV, "").strip()
    if raw:
        try:
            acct: LocalAccount = Account.from_key(raw)
        except Exception as exc:  # the key itself must never reach the message
            raise KeySourceError(f"{KEY_ENV} is set but is not a valid private key") from exc
        return acct
    path = keystore or (Path(e[KEYSTORE_ENV]) if e.get(KEYSTORE_ENV) else None)
    if path is not None:
        password = e.get(PASSWORD_ENV)
        if password is None:
            raise KeySourceError(f"keystore {path} needs its password in {PASSWORD_ENV}")
        try:
            blob = json.loads(path.read_text())
            key = Account.decrypt(blob, password)
        except FileNotFoundError as exc:
            raise KeySourceError(f"keystore {path} not found") from exc
        except ValueError as exc:
            raise KeySourceError(f"keystore {path}: wrong password or corrupt file") from exc
        acct = Account.from_key(key)
        return acct
    if chain_id in LOCAL_CHAIN_IDS:
        acct = Account.from_key(DEV_KEYS[0])
        return acct
    raise KeySourceError(
        f"no signing key: set {KEY_ENV}, or {KEYSTORE_ENV} + {PASSWORD_ENV} "
        f"(the anvil dev key is only used on a local chain, and chain id is {chain_id})"
    )


def write_keystore(private_key: str, password: str, path: Path) -> Path:
    """Encrypts a key into a standard (scrypt) keystore file, mode 0600."""
    blob = Account.encrypt(bytes.fromhex(private_key.removeprefix("0x")), password)
    path.write_text(json.dumps(blob))
    path.chmod(0o600)
    return path
