"""Misbehaving miners for the subnet tests: the production miner (``oracle.subnet.miner``)
with a ``ProofHook`` that lies, stalls or signs with the wrong key. None of this is in the
production path; the tests start these as real processes:

    python tests/malicious_miner.py <oracle miner options> --behaviour mixed --delay 0.4

or through ``start_miners`` below (``oracle.subnet.local.start_local_miners`` with this file
as the launcher).

Behaviours: honest; wrong_output (a claimed output the proof does not prove, with consistent
public signals); invalid_proof (a forged curve point); other_input (a valid proof of a
neighbouring input, relabelled); other_payee (a valid proof made out to another payee);
bad_signature (answer signed by a throw-away key); hang (holds the connection for an hour
without taking a proving slot); mixed (one of the lies per request). ``--delay`` adds seconds
inside the proving slot (a slow miner).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import sys
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Any

from oracle.circuits.catalog import Circuit
from oracle.circuits.packing import PackingError
from oracle.proving.base import Proof
from oracle.subnet import protocol as P
from oracle.subnet.local import MinerProcess, start_local_miners
from oracle.subnet.miner.app import prove_honestly
from oracle.subnet.miner.cli import add_miner_arguments, run_miner

log = logging.getLogger("malicious_miner")

LIES = ("wrong_output", "invalid_proof", "other_input", "other_payee", "bad_signature", "hang")
BEHAVIOURS = ("honest", *LIES, "mixed")
OTHER_PAYEE = "0x" + "ee" * 20
LAUNCHER = (str(Path(__file__).resolve()),)


class MaliciousHook:
    def __init__(self, behaviour: str = "honest", delay: float = 0.0) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.behaviour = behaviour
        self.delay = delay

    def behaviour_for(self, req: P.ProveRequest) -> str:
        if self.behaviour != "mixed":
            return self.behaviour
        # Derived from the request (not a counter): every step of one request agrees on it.
        return LIES[int(hashlib.sha256(req.request_id.encode()).hexdigest(), 16) % len(LIES)]

    async def admitted(self, req: P.ProveRequest) -> None:
        if self.behaviour_for(req) == "hang":
            await asyncio.sleep(3600)      # holds the connection, no slot: the validator must time out

    async def prove(self, circuit: Circuit, req: P.ProveRequest, pool: Executor) -> Proof:
        if self.delay:
            await asyncio.sleep(self.delay)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, lie, circuit, list(req.input_fixed), req.payee,
                                          self.behaviour_for(req))

    def answer_signer(self, wallet: Any, req: P.ProveRequest) -> Any:
        if self.behaviour_for(req) != "bad_signature":
            return wallet
        from bittensor.keyfiles import Keypair

        return Keypair.create_from_mnemonic(Keypair.generate_mnemonic(12))


def lie(circuit: Circuit, input_fixed: list[int], payee: str | None, behaviour: str) -> Proof:
    if behaviour == "other_input":
        other = list(input_fixed)
        other[0] = other[0] - 1 if other[0] > 0 else other[0] + 1
        return replace(prove_honestly(circuit, other, payee), input_fixed=list(input_fixed))
    if behaviour == "other_payee":
        return prove_honestly(circuit, input_fixed, OTHER_PAYEE)
    p = prove_honestly(circuit, input_fixed, payee)
    if behaviour == "wrong_output":
        out = [p.output_fixed[0] + 1, *p.output_fixed[1:]]
        # Signals consistent with the wrong claim, so only the proof check can catch it.
        try:
            signals = circuit.manifest.public_signals(list(p.input_fixed), out, p.payee)
        except PackingError:   # out of the packed range: no consistent signals exist
            signals = list(p.public_signals)
        return replace(p, output_fixed=out, public_signals=signals)
    if behaviour == "invalid_proof":
        from oracle.proving.groth16.calldata import encode_proof

        forged = dict(p.proof)
        forged["pi_a"] = [forged["pi_c"][0], forged["pi_c"][1], "1"]   # a curve point, the wrong one
        return replace(p, proof=forged, calldata=encode_proof(forged))
    return p


def start_miners(n: int, models_dir: Path, validator_hotkey: str, *, behaviours: Sequence[str] | None = None,
                 delays: Sequence[float] | None = None, **kw: Any) -> list[MinerProcess]:
    """``start_local_miners`` with these processes: miner i behaves as ``behaviours[i]``."""
    per_miner = [["--behaviour", behaviours[i] if behaviours else "honest",
                  "--delay", str(delays[i] if delays else 0.0)] for i in range(n)]
    return start_local_miners(n, models_dir, validator_hotkey, launcher=LAUNCHER, per_miner_args=per_miner, **kw)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="a misbehaving subnet miner (tests only)")
    add_miner_arguments(p)
    p.add_argument("--behaviour", choices=BEHAVIOURS, default="honest")
    p.add_argument("--delay", type=float, default=0.0, help="extra seconds inside each proving slot")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.warning("TEST MINER: behaviour=%s delay=%.2fs", a.behaviour, a.delay)
    return run_miner(a, MaliciousHook(a.behaviour, a.delay))


if __name__ == "__main__":
    sys.exit(main())
