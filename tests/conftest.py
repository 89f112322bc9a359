"""Shared fixtures: a real anvil chain, the compiled contracts, a fresh deployment per test.

Expensive artifacts (compiled circuits, powers of tau) are cached under .cache/ and shared
across tests and runs; see the backend fixtures below.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from oracle.chain.anvil import DEV_KEYS, Anvil
from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment, deploy_all


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    with Anvil() as node:
        yield node


@pytest.fixture(scope="session")
def owner() -> LocalAccount:
    acct: LocalAccount = Account.from_key(DEV_KEYS[0])
    return acct


@pytest.fixture(scope="session")
def chain(anvil: Anvil, owner: LocalAccount) -> Chain:
    return Chain.connect(anvil.url, owner)


@pytest.fixture
def deployment(chain: Chain) -> Deployment:
    """A fresh registry/oracle/token/vault for each test: tests never share contract state."""
    return deploy_all(chain)


def account_chain(chain: Chain, index: int) -> Chain:
    """The same node and artifacts, signing as anvil dev account ``index``."""
    return Chain(w3=chain.w3, account=Account.from_key(DEV_KEYS[index]), artifacts=chain.artifacts)
