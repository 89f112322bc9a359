"""Misbehaving SLICE miners for the sliced-subnet tests: the production miner with a hook whose
``prove_slice`` lies (tests only; started as real processes like tests/malicious_miner.py).

Behaviours: honest; other_activation (a VALID proof of the asked slice, made on a neighbouring
input activation: the commitments differ); invalid_proof (the slice's proof with a forged curve
point); slow (honest after ``--delay`` seconds: the validator re-sends the slice elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Any

from oracle.circuits.catalog import Circuit
from oracle.proving.base import Proof
from oracle.proving.groth16 import slice_jobs
from oracle.proving.groth16.slice_jobs import groth16_pool
from oracle.subnet import protocol as P
from oracle.subnet.local import MinerProcess, start_local_miners
from oracle.subnet.miner.app import HonestHook
from oracle.subnet.miner.cli import add_miner_arguments, run_miner

log = logging.getLogger("slice_miner")

BEHAVIOURS = ("honest", "other_activation", "invalid_proof", "slow")
LAUNCHER = (str(Path(__file__).resolve()),)


def lie(circuit: Circuit, req: P.SliceRequest, behaviour: str) -> slice_jobs.SliceProof:
    values = list(req.input_fixed)
    if behaviour == "other_activation":
        values[0] = values[0] - 1 if values[0] > 0 else values[0] + 1
    sp = slice_jobs.prove_slice(circuit.dir, req.slice_index, values, req.payee, groth16_pool())
    if behaviour == "invalid_proof":
        forged = dict(sp.proof)
        forged["pi_a"] = [forged["pi_c"][0], forged["pi_c"][1], "1"]
        return replace(sp, proof=forged)
    return sp


class SliceHook:
    """Whole requests honestly; slices as told."""

    def __init__(self, behaviour: str, delay: float) -> None:
        self.honest = HonestHook()
        self.slice_behaviour = behaviour
        self.slice_delay = delay

    async def admitted(self, req: P.ProveRequest) -> None:
        return None

    async def prove(self, circuit: Circuit, req: P.ProveRequest, pool: Executor) -> Proof:
        return await self.honest.prove(circuit, req, pool)

    def answer_signer(self, wallet: Any, req: P.ProveRequest) -> Any:
        return wallet

    async def prove_slice(self, circuit: Circuit, req: P.SliceRequest, pool: Executor) -> slice_jobs.SliceProof:
        if self.slice_behaviour == "slow":
            await asyncio.sleep(self.slice_delay)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, lie, circuit, req, self.slice_behaviour)


def start_slice_miners(n: int, models_dir: Path, validator_hotkey: str, *, behaviours: Sequence[str],
                       delay: float = 0.0, **kw: Any) -> list[MinerProcess]:
    per_miner = [["--slice-behaviour", behaviours[i], "--slice-delay", str(delay)] for i in range(n)]
    return start_local_miners(n, models_dir, validator_hotkey, launcher=LAUNCHER, per_miner_args=per_miner, **kw)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="a misbehaving slice miner (tests only)")
    add_miner_arguments(p)
    p.add_argument("--slice-behaviour", choices=BEHAVIOURS, default="honest")
    p.add_argument("--slice-delay", type=float, default=0.0)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.warning("TEST SLICE MINER: behaviour=%s", a.slice_behaviour)
    return run_miner(a, SliceHook(a.slice_behaviour, a.slice_delay))


if __name__ == "__main__":
    sys.exit(main())
