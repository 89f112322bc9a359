"""Signing keys come from the environment or an encrypted keystore, never from code or logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from oracle.chain.anvil import DEV_KEYS
from oracle.chain.keys import KeySourceError, load_account, write_keystore

KEY = "0x" + "11" * 32


def test_env_key_wins() -> None:
    acct = load_account(chain_id=1, env={"ORACLE_PRIVATE_KEY": KEY})
    assert acct.address == Account.from_key(KEY).address


def test_invalid_env_key_is_rejected_without_echoing_it() -> None:
    with pytest.raises(KeySourceError) as e:
        load_account(chain_id=1, env={"ORACLE_PRIVATE_KEY": "0xdeadbeefsecret"})
    assert "deadbeefsecret" not in str(e.value)
    assert "ORACLE_PRIVATE_KEY" in str(e.value)


def test_keystore_round_trip(tmp_path: Path) -> None:
    ks = write_keystore(KEY, "pw", tmp_path / "k.json")
    assert ks.stat().st_mode & 0o777 == 0o600
    assert KEY[2:] not in ks.read_text()  # encrypted, not plain
    acct = load_account(chain_id=1, env={"ORACLE_KEYSTORE": str(ks), "ORACLE_KEYSTORE_PASSWORD": "pw"})
    assert acct.address == Account.from_key(KEY).address


def test_keystore_wrong_password(tmp_path: Path) -> None:
    ks = write_keystore(KEY, "pw", tmp_path / "k.json")
    with pytest.raises(KeySourceError, match="wrong password"):
        load_account(chain_id=1, keystore=ks, env={"ORACLE_KEYSTORE_PASSWORD": "nope"})


def test_keystore_without_password(tmp_path: Path) -> None:
    ks = write_keystore(KEY, "pw", tmp_path / "k.json")
    with pytest.raises(KeySourceError, match="ORACLE_KEYSTORE_PASSWORD"):
        load_account(chain_id=1, keystore=ks, env={})


def test_dev_key_only_on_local_chain() -> None:
    assert load_account(chain_id=31337, env={}).address == Account.from_key(DEV_KEYS[0]).address
    with pytest.raises(KeySourceError, match="chain id is 1"):
        load_account(chain_id=1, env={})
