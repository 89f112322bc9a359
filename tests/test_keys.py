"""Signing keys come from the environment or an encrypted keystore, never from code or logs.
A keystore file is private from its first byte and never written over an existing file;
anvil's public dev key is used only against an anvil node on this machine (real anvil on
loopback: yes; real anvil reached through this machine's network address, or a loopback node
that is not anvil but answers chain id 31337: no)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from oracle.chain.anvil import DEV_KEYS, Anvil, is_loopback_url
from oracle.chain.keys import KeySourceError, load_account, write_keystore

ROOT = Path(__file__).resolve().parent.parent

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


def test_dev_key_needs_a_node_to_judge() -> None:
    """A chain id alone (the old rule: 31337 -> dev key) is not enough."""
    with pytest.raises(KeySourceError, match="chain id 31337 is not one: no RPC URL"):
        load_account(chain_id=31337, env={})
    with pytest.raises(KeySourceError, match="chain id 1 is not one"):
        load_account(chain_id=1, env={})


def test_dev_key_on_anvil_on_loopback(anvil: Anvil) -> None:
    dev = Account.from_key(DEV_KEYS[0]).address
    assert load_account(chain_id=31337, rpc_url=anvil.url, env={}).address == dev
    assert load_account(chain_id=31337, rpc_url=f"http://localhost:{anvil.port}", env={}).address == dev
    # anvil on loopback, but not a dev chain id
    with Anvil(chain_id=4242) as other, pytest.raises(KeySourceError, match="runs chain id 4242, not a dev chain"):
        load_account(chain_id=4242, rpc_url=other.url, env={})
    # An explicit key still wins over the default.
    assert load_account(rpc_url=anvil.url, env={"ORACLE_PRIVATE_KEY": KEY}).address == Account.from_key(KEY).address


def _own_network_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))
        except OSError:
            return None
        host = str(s.getsockname()[0])
    return None if is_loopback_url(f"http://{host}/") or host == "0.0.0.0" else host


def test_dev_key_refused_for_anvil_reached_over_the_network() -> None:
    host = _own_network_address()
    if host is None:
        pytest.skip("this machine has no non-loopback address to reach anvil through")
    with Anvil(host="0.0.0.0") as node:
        url = f"http://{host}:{node.port}"
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 5}))
        assert w3.eth.chain_id == 31337 and w3.client_version.startswith("anvil/")   # really anvil, really 31337
        with pytest.raises(KeySourceError, match="is not a loopback address"):
            load_account(chain_id=31337, rpc_url=url, env={})


def test_dev_key_refused_for_a_loopback_node_that_is_not_anvil(not_anvil: tuple[str, list[str]]) -> None:
    url, _ = not_anvil
    assert Web3(Web3.HTTPProvider(url)).eth.chain_id == 31337
    with pytest.raises(KeySourceError, match=re.escape("is 'Geth/v1.14.11-stable/linux-amd64/go1.22.1', not anvil")):
        load_account(chain_id=31337, rpc_url=url, env={})


def test_cli_refuses_the_dev_key_for_a_node_that_is_not_anvil(not_anvil: tuple[str, list[str]]) -> None:
    """``oracle deploy`` without a key against a chain with id 31337 that is not a local anvil:
    one clear error, and nothing is signed or sent."""
    url, calls = not_anvil
    env = {k: v for k, v in os.environ.items()
           if k not in ("ORACLE_PRIVATE_KEY", "ORACLE_KEYSTORE", "ORACLE_KEYSTORE_PASSWORD")}
    run = subprocess.run([sys.executable, "-m", "oracle.cli", "deploy", "--rpc", url], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "anvil's public dev key is only used against an anvil node on this machine" in run.stderr
    assert "not anvil" in run.stderr
    assert not any(m.startswith(("eth_send", "eth_estimateGas")) for m in calls), calls


# Run in a child process: the audit hook cannot be removed again, and the umask is process-wide.
_WATCH_CREATION = r"""
import json, os, stat, sys
from pathlib import Path
from oracle.chain.keys import write_keystore

target = sys.argv[1]
modes = []
busy = False

def hook(event, args):
    # Before every audited operation (the chmod after a write, any later open ...), note the
    # mode the keystore file has at that moment, if it exists yet.
    global busy
    if busy:
        return
    busy = True
    try:
        modes.append(stat.S_IMODE(os.stat(target).st_mode))
    except FileNotFoundError:
        pass
    finally:
        busy = False

os.umask(0)        # the worst umask: whatever mode the code asks for is what the file gets
sys.addaudithook(hook)
write_keystore("0x" + "11" * 32, "pw", Path(target))
print(json.dumps({"seen": modes, "final": stat.S_IMODE(os.stat(target).st_mode)}))
"""


def test_keystore_is_private_from_its_first_byte(tmp_path: Path) -> None:
    target = tmp_path / "k.json"
    run = subprocess.run([sys.executable, "-c", _WATCH_CREATION, str(target)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["final"] == 0o600
    assert all(m & 0o077 == 0 for m in out["seen"]), [oct(m) for m in out["seen"]]


def test_keystore_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    existing = tmp_path / "k.json"
    existing.write_text("the operator's only copy")
    with pytest.raises(KeySourceError, match="already exists"):
        write_keystore(KEY, "pw", existing)
    assert existing.read_text() == "the operator's only copy"
    # A symlink planted at the path is not followed (its target is not written).
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (tmp_path / "link.json").symlink_to(victim)
    with pytest.raises(KeySourceError, match="already exists"):
        write_keystore(KEY, "pw", tmp_path / "link.json")
    assert victim.read_text() == "untouched"
