"""Plan a Groth16 compile before doing it, and refuse early what would not finish here.

``plan_compile`` takes the quantized model and says, in seconds and before any long work: the
exact constraint count (the direct lowering ``Plan``'s R1CS; circom ``--O2`` merges linear rows,
so its count is a few % lower), wires, multiply-adds, public signals, the largest neuron fan-in,
the ceremony power needed and which ptau would serve it (cached or to build), the peak memory and
the time of each step (ceremony, lowering or circom, setup, verifier) and of a warm proof.
``check`` turns what cannot work into a ``CompileRefused`` with the reason and the way out:

* the power exceeds ``ptau.MAX_POWER`` or the memory estimate exceeds what this machine has
  available (``/proc/meminfo``);
* with circom: a neuron of more than ``CIRCOM_MAX_FAN_IN`` terms, more than ``CIRCOM_MAX_MACS``
  multiply-adds (V8's function-size limit on the witness calculator) or
  ``CIRCOM_MAX_MACS_MEMORY`` (circom's 4 GB WebAssembly memory);
* a local ceremony that is not cached and would take longer than ``max_ceremony_seconds``.

The time and memory figures are a linear cost model fitted on measured compiles
(``.venv/bin/python bench/bench_plan.py``, which prints them against the model); they are
estimates for this 2-core box, not promises: a loaded box is slower.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from oracle.circuits.quantize import QuantizedModel
from oracle.errors import BackendError
from oracle.proving.groth16 import ptau
from oracle.proving.groth16.direct import GENERATORS
from oracle.proving.groth16.lowering import Plan
from oracle.proving.groth16.r1cs_writer import R1cs

# circom2 (WebAssembly) limits, docs/toolchain.md (measured 2026-12-02).
CIRCOM_MAX_FAN_IN = 400             # one expression of more terms crashes circom2 (~420)
CIRCOM_MAX_MACS = 170_000           # witness calculator beyond V8's 7,654,321-byte function size
CIRCOM_MAX_MACS_MEMORY = 450_000    # circom reaches the 4 GB WebAssembly memory ceiling

MIB = 1 << 20

# -- cost model -------------------------------------------------------------------------------------
# Fitted (non-negative least squares) on idle-box compiles of risk, digits and MLPs up to 35 k
# constraints, both generators (bench/bench_r1cs.py results), and checked by bench/bench_plan.py.
# ab = A+B terms of the R1CS (what setup and prover pay per term), c = C terms.
SETUP_S = (5.1, 3.1e-4, 1.6e-4, 3.1e-5)          # s: base, per constraint, per ab, per c term
SETUP_RSS_MIB = (176.0, 0.0, 2.6e-3, 1.7e-4)     # node peak RSS of groth16 setup
PROVE_MS = (88.0, 4.0e-3, 3.8e-3, 2.4e-3)        # warm snarkjs prove in the daemon
PROVE_RSS_MIB = (176.0, 0.0, 2.6e-3, 1.7e-4)     # the prover daemon holds the same key material
# Lowering + .r1cs write (bench_r1cs.py --scaling, up to 6.3 M multiply-adds): ~1.2 us and
# ~280 bytes per multiply-add, over a Python process of ~45 MiB measured (80 assumed: onnx,
# onnxruntime or the CLI's other imports may be loaded too).
LOWER_S_PER_MAC, LOWER_S_PER_CONSTRAINT = 1.2e-6, 5e-6
LOWER_BYTES_PER_MAC, LOWER_BYTES_PER_CONSTRAINT, PYTHON_BASE_MIB = 280, 2_000, 80.0
# circom2: ~1 ms and 8-10 KB per multiply-add (docs/toolchain.md); --O2 leaves ~3 A+B terms each.
CIRCOM_S_PER_MAC, CIRCOM_BYTES_PER_MAC, CIRCOM_AB_PER_MAC = 1e-3, 10_000, 3.0
VERIFIER_S = 3.0                                  # export + solc of the Solidity verifier


class CompileRefused(BackendError):
    """A compile refused up front: it would exceed this machine's (or a tool's) limits."""


@dataclass(frozen=True)
class Lowered:
    """The direct lowering done while planning, handed on to the compile (not done twice)."""

    plan: Plan
    cs: R1cs
    seconds: float


@dataclass
class CompilePlan:
    generator: str
    packed: bool
    constraints: int                 # exact for the direct generator (its R1CS)
    constraints_exact: bool          # False only when the lowering itself would not fit in memory
    wires: int
    multiply_adds: int
    ab_terms: int
    c_terms: int
    max_fan_in: int
    public_signals: int
    power: int                       # the ceremony power the circuit needs
    ptau_file: str
    ptau_power: int                  # the power of the file that would serve it
    ptau_local: bool
    ptau_cached: bool
    memory_mib: dict[str, float]     # lowering (or circom), setup, prove, peak
    available_mib: float
    seconds: dict[str, float]        # ceremony, lowering (or circom), setup, verifier, total
    prove_seconds: float             # warm proof
    plan_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """A few lines for the log (stderr) or the ``plan`` command's human output."""
        s, m = self.seconds, self.memory_mib
        gen = "circom" if self.generator == "circom" else "lowering"
        ptau_line = (f"ceremony 2^{self.power} needed: {self.ptau_file} (2^{self.ptau_power}, "
                     + ("cached" if self.ptau_cached else f"NOT cached: ~{s['ceremony']:.0f} s to build")
                     + ("" if self.ptau_local else ", ceremony file") + ")")
        return "\n".join([
            f"{self.constraints:,} constraints{'' if self.constraints_exact else ' (estimated)'}, "
            f"{self.wires:,} wires, {self.multiply_adds:,} multiply-adds, {self.public_signals} public "
            f"signals, largest neuron fan-in {self.max_fan_in} ({self.generator} generator)",
            ptau_line,
            f"time: ~{s['total']:.0f} s = ceremony {s['ceremony']:.0f} + {gen} {s[gen]:.1f} + setup "
            f"{s['setup']:.0f} + verifier {s['verifier']:.0f}; warm proof ~{self.prove_seconds:.1f} s",
            f"memory: peak ~{m['peak']:.0f} MiB ({gen} {m[gen]:.0f}, setup {m['setup']:.0f}, prove "
            f"{m['prove']:.0f}) of {self.available_mib:.0f} MiB available",
            *self.notes,
        ])


def _linear(coef: tuple[float, float, float, float], constraints: int, ab: int, c: int) -> float:
    return coef[0] + coef[1] * constraints + coef[2] * ab + coef[3] * c


def available_mib() -> float:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def fan_in(qm: QuantizedModel) -> int:
    """The largest number of nonzero terms one neuron sums (over all the inputs it reads)."""
    best = 0
    for ly in qm.layers:
        per_row = np.zeros(ly.size, dtype=np.int64)
        for w in ly.terms.values():
            # dense numpy, or a scipy sparse array (whose count_nonzero takes an axis too)
            per_row += np.asarray(w.count_nonzero(axis=1) if hasattr(w, "indptr")
                                  else np.count_nonzero(w, axis=1), dtype=np.int64).reshape(-1)
        if len(per_row):
            best = max(best, int(per_row.max()))
    return best


def multiply_adds(qm: QuantizedModel) -> int:
    """Nonzero weights over all steps (what ``Plan.macs`` counts), without building a Plan."""
    return sum(int(w.count_nonzero()) if hasattr(w, "indptr") else int(np.count_nonzero(w))
               for ly in qm.layers for w in ly.terms.values())


def _circom_refusal(max_fan_in: int, macs: int) -> str | None:
    direct = "use --generator direct (no circom limits)"
    if max_fan_in > CIRCOM_MAX_FAN_IN:
        return (f"a neuron sums {max_fan_in} terms: circom2 crashes on expressions of more than "
                f"~{CIRCOM_MAX_FAN_IN} terms; {direct}")
    if macs > CIRCOM_MAX_MACS_MEMORY:
        return (f"{macs:,} multiply-adds: circom2 runs out of its 4 GB WebAssembly memory beyond "
                f"~{CIRCOM_MAX_MACS_MEMORY:,}; {direct}")
    if macs > CIRCOM_MAX_MACS:
        return (f"{macs:,} multiply-adds: circom's witness calculator would exceed V8's function size "
                f"limit beyond ~{CIRCOM_MAX_MACS:,} (every proof would fail); {direct}")
    return None


def check_circom(qm: QuantizedModel) -> None:
    """circom's limits from the model alone (no lowering): the first thing a circom compile does."""
    why = _circom_refusal(fan_in(qm), multiply_adds(qm))
    if why:
        raise CompileRefused(why)


def plan_compile(qm: QuantizedModel, generator: str = "direct", packed: bool = True, *,
                 cache_dir: Path | None = None, ptau_power: int | None = None,
                 setup_file: Path | None = None) -> tuple[CompilePlan, Lowered | None]:
    """Everything ``check`` and the user need to know before compiling ``qm``; also the direct
    lowering when it was done (the compile writes that R1CS instead of lowering again)."""
    if generator not in GENERATORS:
        raise BackendError(f"unknown groth16 generator {generator!r} (one of {GENERATORS})")
    t0 = time.monotonic()
    plan = Plan(qm, packed)                  # wire layout only: O(neurons + bits)
    macs = plan.macs
    avail = available_mib()
    lower_mib = PYTHON_BASE_MIB + LOWER_BYTES_PER_MAC * macs / MIB
    lowered: Lowered | None = None
    if lower_mib < avail:
        t1 = time.monotonic()
        cs = plan.constraints()
        lowered = Lowered(plan, cs, time.monotonic() - t1)
        n, wires = cs.n_constraints, cs.n_wires
        ab = int(np.count_nonzero(cs.mat < 2))
        c_terms = int(np.count_nonzero(cs.mat == 2))
        public = cs.n_pub_out + cs.n_pub_in
        exact = True
    else:
        # The lowering alone would not fit: a constraint per wire is the lowering's own ratio.
        n, wires, exact = plan.n_wires, plan.n_wires, False
        ab, c_terms = 3 * n, macs + n
        public = plan.n_pub_out + plan.n_pub_in
    power = ptau.power_for(n, public)
    notes: list[str] = []
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores:
        # The model is fitted on an idle box; measured on this 2-core box at load ~18, setup ran
        # 2.5-8x slower (bench/bench_plan.py), so say so rather than pretend.
        notes.append(f"this box is loaded (load average {load:.1f} on {cores} cores): times may be up to "
                     f"~{load / cores:.0f}x the estimates")
    if generator == "circom":
        ab, c_terms = int(CIRCOM_AB_PER_MAC * macs) + 2 * n, n // 10
        notes.append("circom --O2 merges linear rows: its constraint count is a few % below this one")
    lower_s = (LOWER_S_PER_MAC * macs + LOWER_S_PER_CONSTRAINT * n) if lowered is None else lowered.seconds
    lower_mib += LOWER_BYTES_PER_CONSTRAINT * n / MIB
    fits = power <= ptau.MAX_POWER
    choice = ptau.choose(power, cache_dir, power=ptau_power, setup_file=setup_file) if fits else None
    ceremony_s = 0.0 if choice is None or choice.cached else ptau.expected_ceremony_seconds(choice.power)
    if choice is not None and not choice.cached:
        building = ptau.read_status(choice.power, cache_dir)
        if building is not None:
            notes.append(f"the 2^{choice.power} ceremony is being built right now by pid {building.get('pid')} "
                         f"(step {building.get('step_index')}/{building.get('steps')} "
                         f"{building.get('step')!r}): this compile would wait for it")
    setup_s = _linear(SETUP_S, n, ab, c_terms)
    setup_mib = _linear(SETUP_RSS_MIB, n, ab, c_terms)
    prove_mib = _linear(PROVE_RSS_MIB, n, ab, c_terms)
    mem = {"setup": round(setup_mib, 1), "prove": round(prove_mib, 1)}
    secs = {"ceremony": round(ceremony_s, 1), "setup": round(setup_s, 1), "verifier": VERIFIER_S}
    if generator == "circom":
        mem["circom"] = round(PYTHON_BASE_MIB + CIRCOM_BYTES_PER_MAC * macs / MIB, 1)
        secs["circom"] = round(CIRCOM_S_PER_MAC * macs, 1)
    else:
        mem["lowering"] = round(lower_mib, 1)
        secs["lowering"] = round(lower_s, 2)
    # The Python process (model, plan) stays alive while node runs the setup.
    mem["peak"] = round(max(mem.get("lowering", mem.get("circom", 0.0)), PYTHON_BASE_MIB + setup_mib), 1)
    secs["total"] = round(sum(secs.values()), 1)
    return CompilePlan(
        generator=generator, packed=packed, constraints=n, constraints_exact=exact, wires=wires,
        multiply_adds=macs, ab_terms=ab, c_terms=c_terms, max_fan_in=fan_in(qm),
        public_signals=public, power=power,
        ptau_file=str(choice.path) if choice else "-", ptau_power=choice.power if choice else power,
        ptau_local=choice.local if choice else setup_file is None,
        ptau_cached=choice.cached if choice else False,
        memory_mib=mem, available_mib=round(avail, 1), seconds=secs,
        prove_seconds=round(_linear(PROVE_MS, n, ab, c_terms) / 1e3, 2),
        plan_seconds=round(time.monotonic() - t0, 2), notes=notes,
    ), lowered


def check(p: CompilePlan, max_ceremony_seconds: float | None = None) -> None:
    """Raise ``CompileRefused`` (reason + way out) for a compile that cannot finish here."""
    smaller = "use --slices (a sliced model) or a smaller model"
    if p.power > ptau.MAX_POWER:
        raise CompileRefused(
            f"{p.constraints:,} constraints need powers of tau 2^{p.power}, beyond the largest "
            f"supported 2^{ptau.MAX_POWER}: {smaller}")
    why = _circom_refusal(p.max_fan_in, p.multiply_adds) if p.generator == "circom" else None
    if why:
        raise CompileRefused(why)
    if p.memory_mib["peak"] > p.available_mib:
        raise CompileRefused(
            f"this compile needs ~{p.memory_mib['peak']:,.0f} MiB at its peak "
            f"({json.dumps(p.memory_mib)}) but this machine has {p.available_mib:,.0f} MiB available: "
            f"{smaller}, or free memory")
    if (p.ptau_local and not p.ptau_cached and max_ceremony_seconds is not None
            and p.seconds["ceremony"] > max_ceremony_seconds):
        raise CompileRefused(
            f"the local 2^{p.ptau_power} powers-of-tau ceremony this circuit needs is not cached and "
            f"would take ~{p.seconds['ceremony']:,.0f} s here (budget --max-ceremony-seconds "
            f"{max_ceremony_seconds:,.0f}): pass --ptau <file>, or {smaller}")
