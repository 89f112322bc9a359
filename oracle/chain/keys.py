"""Where signing keys come from: the environment or an encrypted keystore, never code or logs.

anvil's first dev key is accepted as a default only against an anvil dev chain on this machine
(loopback RPC URL, ``web3_clientVersion`` says anvil, dev chain id), never because a chain's id
is 31337.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from oracle.chain.anvil import DEV_KEYS, local_anvil_problem
from oracle.errors import UserError

KEY_ENV = "ORACLE_PRIVATE_KEY"
KEYSTORE_ENV = "ORACLE_KEYSTORE"
PASSWORD_ENV = "ORACLE_KEYSTORE_PASSWORD"


class KeySourceError(UserError):
    """No usable key; the message says where one was looked for (never the key itself)."""


def load_account(
    *,
    chain_id: int | None = None,
    keystore: Path | None = None,
    env: dict[str, str] | None = None,
    rpc_url: str | None = None,
) -> LocalAccount:
    """The operator's account.

    Order: ``ORACLE_PRIVATE_KEY``; else an encrypted keystore (``keystore`` or
    ``ORACLE_KEYSTORE``) unlocked with ``ORACLE_KEYSTORE_PASSWORD``; else, only when ``rpc_url``
    is an anvil node on this machine, anvil's first dev account. ``chain_id`` only names the
    chain in the error: an id says nothing about who runs the chain.
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
    why_not = local_anvil_problem(rpc_url)
    if why_not is None:
        acct = Account.from_key(DEV_KEYS[0])
        return acct
    where = f"chain id {chain_id}" if chain_id is not None else "this chain"
    raise KeySourceError(
        f"no signing key: set {KEY_ENV}, or {KEYSTORE_ENV} + {PASSWORD_ENV}. anvil's public dev key "
        f"is only used against an anvil node on this machine, and {where} is not one: {why_not}"
    )


def write_keystore(private_key: str, password: str, path: Path) -> Path:
    """Encrypts a key into a standard (scrypt) keystore file that is private from its first
    byte: created with mode 0600 in the same call that creates it (chmod after writing would
    leave a moment where, under a usual umask, the file is readable by others), and never over
    an existing file (O_EXCL; also refuses to follow a symlink planted at ``path``)."""
    blob = Account.encrypt(bytes.fromhex(private_key.removeprefix("0x")), password)
    data = json.dumps(blob).encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise KeySourceError(f"keystore {path} already exists: not overwriting it") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            # The umask can only have removed bits from 0600; put the owner's back exactly.
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)   # no half-written keystore left behind
        raise
    return path
