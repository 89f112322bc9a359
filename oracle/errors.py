"""The root of every error the oracle raises on purpose, and its two kinds.

Callers decide what to do by kind, not by class (as with httpx's ``HTTPError`` and web3's
``Web3Exception``)::

    OracleError
    ├── UserError          the caller can fix it: bad input, bad model, missing or corrupt
    │   │                  artifact, refused configuration, a reverted transaction, a peer's
    │   │                  bad request. The CLI prints it as one line and exits 2; a job
    │   │                  does not retry it.
    │   └── BackendError   a model, input or artifact a proof backend (or the model layer
    │       │              under it) cannot use
    │       └── UnsupportedOperator
    ├── TransientError     may succeed later unchanged: an RPC node down or slow, no miner
    │                      answered. Jobs retry it; the CLI (one shot, no retry) prints it as
    │                      one line too.
    └── (direct children)  a local development process did not start (anvil, a local miner)

Anything that is not an ``OracleError`` (``KeyError``, ``TypeError``, a library exception
that escaped translation) is a bug and keeps its traceback. Library exceptions (web3,
requests, httpx, EZKL) are translated where the library is called: the chain client, the
HTTP clients, the backends.

The classes of each subsystem live next to the code that raises them and derive from the kinds
here; a class that callers also catch as ``ValueError`` keeps that base too. This module imports
nothing from the project: every layer may use it (``tests/test_layers.py``).
"""

from __future__ import annotations


class OracleError(Exception):
    """Root of the errors the oracle raises on purpose."""


class UserError(OracleError):
    """The caller (a user, a config file, a model, a peer) must change something; retrying the
    same thing fails the same way."""


class TransientError(OracleError):
    """A failure of something outside the request (node, network, miners): the same call may
    succeed later."""


class BackendError(UserError):
    """A user-facing error from a proof backend or the model layer under it (bad model, bad
    input, missing artifact). Defined here, not in ``oracle.proving``, because the ONNX and
    quantization layer (``oracle.circuits``) raises it too and must not import the backends."""


class UnsupportedOperator(BackendError):
    def __init__(self, op_type: str, node_name: str, backend: str, hint: str = "") -> None:
        # ``hint``: what to do instead (another backend, a replacement operator, slicing).
        super().__init__(
            f"operator {op_type!r} (node {node_name!r}) is not supported by the {backend} backend"
            + (f": {hint}" if hint else "")
        )
        self.op_type = op_type
        self.node_name = node_name
