"""The Solidity verifier EZKL generates for a circuit, compiled with the project's solc.

Facts this relies on (measured with EZKL 23.0.5):

* The generated ``Halo2Verifier`` exposes ``verifyProof(bytes proof, uint256[] instances)
  returns (bool)`` (non-view, but it only touches memory, so a ``staticcall`` works). It
  requires ``instances.length`` to equal the circuit's count and every instance to be ``< r``,
  and reads the proof's evaluations at *absolute* calldata offsets: the call must be
  standard-ABI-encoded with ``proof`` first, so its bytes start at calldata offset 0x64
  (Solidity's ``abi.encodeWithSignature``/``abi.encodeCall`` do this). It reverts on a bad
  proof rather than returning false. ``encode_evm_calldata`` produces the same standard
  encoding plus 32 trailing zero bytes.
* ``create_evm_verifier`` looks for solc 0.8.20 at ``$HOME/.svm/0.8.20/solc-0.8.20`` and
  otherwise downloads it. We run it in a child process whose ``HOME`` is the project-local
  ``.cache/ezkl-home``, where that path is a symlink to the project's ``scripts/solc``: nothing
  is downloaded and nothing is written outside the project. The Solidity is then compiled with
  ``scripts/solc`` (optimizer on, viaIR off: "stack too deep" otherwise).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from oracle.errors import BackendError
from oracle.paths import CACHE_DIR, ROOT, SOLC
from oracle.proving.ezkl.runtime import run_async, solc_version

log = logging.getLogger(__name__)

SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": False,
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}
EIP170_MAX_RUNTIME = 24_576


@dataclass(frozen=True)
class Verifier:
    contract: str         # the generated contract's name
    runtime_bytes: int    # deployed code size (EIP-170 caps it on mainnet-like chains)


def build_verifier(paths: dict[str, Path], out_dir: Path) -> Verifier:
    """verifier.sol from EZKL (child process, see module docstring), then verifier.json from
    our own solc; warns when the runtime code is too large for mainnet-like chains."""
    create_evm_verifier(paths["vk"], paths["settings"], paths["srs"], paths["verifier_sol"])
    contract = contract_name(paths["verifier_sol"])
    compiled = compile_verifier(paths["verifier_sol"], contract)
    paths["verifier_json"].write_text(json.dumps(compiled, indent=1) + "\n")
    runtime_bytes = (len(compiled["deployedBytecode"]) - 2) // 2
    if runtime_bytes > EIP170_MAX_RUNTIME:
        log.warning("%s: verifier runtime is %d bytes, above the EIP-170 limit of %d: it "
                    "cannot be deployed on mainnet-like chains", out_dir, runtime_bytes,
                    EIP170_MAX_RUNTIME)
    return Verifier(contract, runtime_bytes)


def svm_home() -> Path:
    """A project-local HOME whose ``.svm/0.8.20/solc-0.8.20`` is the project's solc."""
    home = CACHE_DIR / "ezkl-home"
    link = home / ".svm" / "0.8.20" / "solc-0.8.20"
    target = SOLC.resolve()
    if not (link.is_symlink() and Path(os.readlink(link)) == target):
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".solc.{os.getpid()}.{threading.get_ident()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)
    return home


def create_evm_verifier(vk: Path, settings: Path, srs: Path, sol: Path) -> None:
    env = dict(os.environ, HOME=str(svm_home()))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    abi = sol.with_name("verifier.abi")
    cmd = [sys.executable, "-c",
           f"import sys; from {__name__} import evm_verifier_main; evm_verifier_main(sys.argv[1:])",
           str(vk), str(settings), str(sol), str(abi), str(srs)]
    res = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=600, check=False)
    wrote_abi = abi.is_file()
    abi.unlink(missing_ok=True)    # we keep the abi of our own compilation (verifier.json)
    if res.returncode != 0 and not wrote_abi:
        why = f"exit code {res.returncode}: {(res.stderr + res.stdout).strip()[-2000:]}"
        if sol.is_file() and sol.stat().st_size > 0:
            # EZKL writes the .sol before it compiles it: usable, our solc compiles it next.
            log.warning("create_evm_verifier failed after writing %s (continuing; %s)", sol, why)
            return
        raise BackendError(f"EZKL create_evm_verifier failed ({why})")


def evm_verifier_main(argv: list[str]) -> NoReturn:
    """Child-process entry point: EZKL's async ``create_evm_verifier`` on a private loop."""
    import ezkl

    vk, settings, sol, abi, srs = argv
    run_async(lambda: ezkl.create_evm_verifier(vk, settings, sol, abi, srs_path=srs,
                                               reusable=False))
    # EZKL 23's async runtime crashes the interpreter at exit about half the time (SIGSEGV or
    # SIGABRT after the files are written): skip the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def compile_verifier(sol_file: Path, contract: str) -> dict[str, Any]:
    """Compile the generated verifier with the project's solc; abi + bytecode as JSON."""
    import solcx
    from solcx.exceptions import SolcError

    std = {"language": "Solidity",
           "sources": {sol_file.name: {"content": sol_file.read_text()}},
           "settings": SOLC_SETTINGS}
    try:
        out: dict[str, Any] = solcx.compile_standard(std, solc_binary=str(SOLC.resolve()))
    except SolcError as e:
        raise BackendError(f"{sol_file}: solc failed: {e}") from e
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BackendError(f"{sol_file}: " + "\n".join(
            e.get("formattedMessage", e["message"]) for e in errors))
    c = out["contracts"][sol_file.name][contract]
    return {
        "contractName": contract,
        "abi": c["abi"],
        "bytecode": "0x" + c["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
        "compiler": {"solc": solc_version(), "settings": solc_settings_recorded()},
    }


def solc_settings_recorded() -> dict[str, Any]:
    """The solc settings that shape the bytecode (what manifests record)."""
    return {k: v for k, v in SOLC_SETTINGS.items() if k != "outputSelection"}


def contract_name(sol: Path) -> str:
    m = re.search(r"^\s*contract\s+(\w+)", sol.read_text(), re.MULTILINE)
    if not m:
        raise BackendError(f"{sol}: no contract found in the generated verifier")
    return m.group(1)


def sol_proof_length(sol: Path) -> int | None:
    """The proof length the generated verifier checks for, if it states one."""
    m = re.search(r"eq\((0x[0-9a-fA-F]+),\s*proof\.length\)", sol.read_text())
    return int(m.group(1), 16) if m else None
