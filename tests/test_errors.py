"""One error root (``oracle.errors``): every error the oracle raises on purpose is an
``OracleError`` of a known kind, and library exceptions stop at the chain client."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

import oracle
from oracle.chain.anvil import Anvil
from oracle.chain.client import Chain, ChainUnavailable, ContractError, NodeError, probe_chain_id
from oracle.errors import OracleError, TransientError, UserError

# Exceptions under oracle/ that are deliberately not OracleErrors, and why (by class name:
# modules move).
NOT_ORACLE_ERRORS = {
    # A forbidden state transition is a bug (or a race the caller must prevent), not bad input.
    "InvalidTransition",
}
# Callers catch these as ValueError too (the dispatcher refuses a proof on any ValueError from a
# backend's checks; pydantic validators turn ValueErrors into config errors).
STILL_VALUE_ERRORS = {
    "FixedPointError", "PackingError", "PayeeError", "DevKeysRefused", "ConfigError", "AuditError",
    "MetagraphError", "HttpLimitsError",
}
DEAD_PORT = "http://127.0.0.1:9"     # discard port: nothing listens, the connection is refused


def public_exceptions() -> dict[str, type[BaseException]]:
    """Every public exception class defined under oracle/, by name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(oracle.__path__, "oracle."):
        if ".migrations" in info.name:      # Alembic scripts run on import
            continue
        mod = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == info.name and not name.startswith("_"):
                assert name not in found, f"two exception classes named {name}"
                found[name] = cls
    return found


def test_every_public_error_has_the_one_root() -> None:
    found = public_exceptions()
    assert len(found) > 15, sorted(found)          # the walk did see the subsystems
    rootless = {n for n, c in found.items() if not issubclass(c, OracleError)}
    assert rootless == NOT_ORACLE_ERRORS
    for name in STILL_VALUE_ERRORS:
        assert issubclass(found[name], UserError) and issubclass(found[name], ValueError), name
    assert not any(issubclass(c, UserError) and issubclass(c, TransientError) for c in found.values())


def test_backend_errors_are_user_errors_wherever_imported() -> None:
    from oracle.proving.base import BackendError, UnsupportedOperator
    from oracle.subnet.validator import SubnetError

    assert issubclass(UnsupportedOperator, BackendError) and issubclass(BackendError, UserError)
    assert issubclass(ContractError, UserError) and issubclass(SubnetError, TransientError)


def test_an_unreachable_node_is_transient() -> None:
    with pytest.raises(ChainUnavailable, match=f"cannot reach RPC endpoint {DEAD_PORT}") as e:
        probe_chain_id(DEAD_PORT, timeout=2)
    assert isinstance(e.value, TransientError)
    chain = Chain(w3=Web3(Web3.HTTPProvider(DEAD_PORT)), account=None, artifacts={})
    with pytest.raises(ChainUnavailable, match="chain id"):
        chain.chain_id  # noqa: B018 - the property's round trip is the point


def test_a_url_that_is_not_an_endpoint_is_a_user_error() -> None:
    with pytest.raises(NodeError, match="cannot reach RPC endpoint localhost:8545"):
        probe_chain_id("localhost:8545")       # no scheme


def test_a_refused_transaction_is_a_user_error(chain: Chain, anvil: Anvil) -> None:
    """A transaction the node refuses (no funds for gas) comes out as NodeError, not web3's
    Web3RPCError (which the CLI would have shown as a traceback)."""
    poor = Chain(w3=chain.w3, account=Account.create(), artifacts=chain.artifacts)
    with pytest.raises(NodeError, match="deploying ModelRegistry"):
        poor.deploy("ModelRegistry", poor.account.address)  # type: ignore[union-attr]


def test_oracle_run_with_a_dead_rpc_is_one_clear_line(tmp_path: Path) -> None:
    """The service's first contact with a configured chain goes through the same probe: a dead
    endpoint is a one-line error, not requests' traceback."""
    r = subprocess.run([sys.executable, "-m", "oracle.cli", "run", "--rpc", DEAD_PORT, "--oracle", "0x" + "ab" * 20,
                        "--models", str(tmp_path), "--db", f"sqlite:///{tmp_path / 'o.db'}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1].startswith(f"error: cannot reach RPC endpoint {DEAD_PORT}: ")
