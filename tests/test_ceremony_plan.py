"""Ceremonies paid once, a waiting compile that says what it waits for, and the compile plan
with its early refusals (oracle/proving/groth16/ptau.py, progress.py, estimate.py).

Real parts only: the ptau files are this machine's prepared local ceremonies (2^10 and 2^11,
which the other Groth16 tests build and cache anyway), the lock holder is another process, the
take-over builds a real 2^10 ceremony (~22 s idle), proofs are snarkjs proofs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oracle.circuits.manifest import Manifest, sha256_file
from oracle.errors import BackendError
from oracle.proving.base import CompileOptions
from oracle.proving.groth16 import Groth16Backend, progress, ptau, tools
from oracle.proving.groth16.estimate import CompileRefused, check
from oracle.proving.groth16.r1cs import r1cs_info
from tests.onnx_models import dense_mlp

ROOT = Path(__file__).resolve().parent.parent
RISK = ROOT / "models" / "risk" / "model.onnx"
RISK_CAL = ROOT / "models" / "risk" / "calibration.json"
DIGITS = ROOT / "models" / "digits" / "model.onnx"
DIGITS_CAL = ROOT / "models" / "digits" / "calibration.json"
PAYEE = "0x00000000000000000000000000000000000a11ce"
REFUSE_WITHIN = 5.0           # seconds: a refusal comes before any long work


def _cache_with(tmp: Path, *powers: int) -> Path:
    """A ptau cache holding only these (real, prepared) local ptau files, linked from the shared
    cache (built there once if missing)."""
    d = tmp / "ptau"
    d.mkdir(parents=True, exist_ok=True)
    for p in powers:
        (d / f"pot{p}_dev_final.ptau").symlink_to(ptau.local_ptau(p, exact=True))
    return tmp


@pytest.fixture(scope="module")
def backend() -> Iterator[Groth16Backend]:
    b = Groth16Backend(pool_size=1, generator="direct")
    yield b
    b.close()


@pytest.fixture(scope="module")
def risk_on_pot11(backend: Groth16Backend, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """risk (a 2^10 circuit) compiled where the only cached ptau is 2^11."""
    tmp = tmp_path_factory.mktemp("reuse")
    cache = _cache_with(tmp / "cache", 11)
    out = tmp / "risk"
    backend.compile(RISK, out, CompileOptions(calibration=RISK_CAL, cache_dir=cache))
    return out, cache


# -- 1. one ceremony serves every smaller circuit ------------------------------------------------
def test_a_larger_cached_ptau_serves_a_smaller_circuit(risk_on_pot11: tuple[Path, Path],
                                                       backend: Groth16Backend) -> None:
    out, cache = risk_on_pot11
    m = Manifest.load(out)
    pot11 = ptau.local_ptau(11, exact=True).resolve()
    rec = m.settings["ptau"]
    assert (rec["power"], rec["needed_power"], m.stats["ptau_power"]) == (11, 10, 10)
    used = ptau.ptau_used(out)
    assert used.path == pot11 and used.power == 11 and used.local and m.dev_keys
    assert rec["sha256"] == sha256_file(pot11)
    # No 2^10 ceremony was built for it: the cache still holds only the 2^11 file.
    assert sorted(p.name for p in (cache / "ptau").iterdir()) == ["pot11_dev_final.ptau"]
    # Keys set up from the larger ptau prove and verify.
    p = backend.prove(out, [3] * m.input_size, PAYEE)
    assert backend.verify(out, p)


def test_the_reuse_rule_and_a_forced_power(tmp_path: Path, backend: Groth16Backend) -> None:
    cache = _cache_with(tmp_path, 10, 11)
    opts = CompileOptions(calibration=RISK_CAL, cache_dir=cache)
    assert backend.plan(RISK, opts).ptau_power == 10                   # the smallest that fits
    forced = backend.plan(RISK, dataclasses.replace(opts, ptau_power=11))
    assert (forced.power, forced.ptau_power, forced.ptau_cached) == (10, 11, True)
    assert Groth16Backend(ptau_power=11).plan(RISK, opts).ptau_power == 11     # backend-wide
    # A forced power that is not cached is a ceremony to build (estimated from the table).
    big = backend.plan(RISK, dataclasses.replace(opts, ptau_power=14))
    assert not big.ptau_cached and big.seconds["ceremony"] == ptau.expected_ceremony_seconds(14) > 900
    with pytest.raises(BackendError, match=r"--ptau-power 10 is too small: this circuit needs 2\^11"):
        backend.plan(DIGITS, CompileOptions(calibration=DIGITS_CAL, cache_dir=cache, ptau_power=10))
    with pytest.raises(BackendError, match="pass one or the other"):
        backend.plan(RISK, dataclasses.replace(opts, ptau_power=11, setup_file=cache / "ptau" / "pot10_dev_final.ptau"))
    # Only a larger one cached: it serves (no 2^10 ceremony to build).
    only11 = backend.plan(RISK, CompileOptions(calibration=RISK_CAL, cache_dir=_cache_with(tmp_path / "c11", 11)))
    assert (only11.power, only11.ptau_power, only11.ptau_cached, only11.seconds["ceremony"]) == (10, 11, True, 0.0)
    # Nothing cached at all: the need itself is built.
    empty = backend.plan(RISK, CompileOptions(calibration=RISK_CAL, cache_dir=tmp_path / "empty"))
    assert (empty.ptau_power, empty.ptau_cached) == (10, False)


# -- 2. a waiting compile says what it waits for; long steps show progress -------------------------
def test_a_long_step_logs_progress_with_an_estimate(caplog: pytest.LogCaptureFixture) -> None:
    script = "for (let i = 1; i <= 6; i++) setTimeout(() => console.log(`[DEBUG] chunk ${i}/6`), i * 300)"
    with caplog.at_level(logging.INFO, logger="oracle.proving.groth16.progress"):
        out = progress.run([tools.node_binary(), "-e", script], what="demo step", expected=10, interval=0.5)
    assert "chunk 6/6" in out
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("demo step:")]
    assert any("of ~10 s expected" in m and "left" in m and "chunk" in m for m in lines), lines
    with pytest.raises(BackendError, match=r"demo fail failed \(exit 3\): boom"):
        progress.run([tools.node_binary(), "-e", "console.error('boom'); process.exit(3)"], what="demo fail")


HOLDER = """
import fcntl, sys, time
from pathlib import Path
from oracle.proving.groth16 import ptau
d = Path(sys.argv[1])
lock = (d / "pot10.lock").open("w")
fcntl.flock(lock, fcntl.LOCK_EX)
st = ptau._Status(10, d / "pot10.status.json")
st.step(5, "ptau prepare phase2")
print("locked", flush=True)
time.sleep(600)
"""


def test_a_waiting_build_reports_the_holder_then_takes_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = tmp_path / "ptau"
    d.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(d)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        # The plan of a compile that needs this ceremony says it is being built, and by whom.
        plan = Groth16Backend().plan(RISK, CompileOptions(calibration=RISK_CAL, cache_dir=tmp_path))
        assert not plan.ptau_cached and any(f"being built right now by pid {holder.pid} (step 5/5" in n
                                            for n in plan.notes), plan.notes
        threading.Timer(3.0, holder.kill).start()        # the holder dies mid-ceremony
        seen: list[dict[str, object]] = []
        stop = threading.Event()

        def watch() -> None:                             # the status the new builder keeps
            while not stop.wait(0.2):
                doc = ptau.read_status(10, tmp_path)
                if doc and (not seen or seen[-1]["step"] != doc["step"]):
                    seen.append(doc)

        threading.Thread(target=watch, daemon=True).start()
        with caplog.at_level(logging.INFO, logger="oracle.proving.groth16"):
            final = ptau.build(10, tmp_path, poll=1.0)
        stop.set()
    finally:
        holder.kill()
        holder.wait()
    msgs = [r.getMessage() for r in caplog.records]
    waits = [m for m in msgs if m.startswith("waiting")]
    assert waits, msgs
    assert f"built by pid {holder.pid}" in waits[0]
    assert "step 5/5 'ptau prepare phase2'" in waits[0] and "ETA" in waits[0]
    assert any("taking the build over" in m and str(holder.pid) in m for m in msgs)
    assert ptau.ptau_power(final) == 10 and final == d / "pot10_dev_final.ptau"
    assert not ptau.status_file(10, tmp_path).exists()
    steps = [s["step"] for s in seen if s["pid"] == os.getpid()]
    assert "ptau prepare phase2" in steps and "ptau contribute 1" in steps, seen
    # A lock held by a build that keeps no status (an older version) is still explained.
    assert "no status file" in ptau.waiting_message(17, None, 5.0)


# -- 3. plan before work, refuse early -------------------------------------------------------------
def test_the_plan_counts_what_the_compile_builds(risk_on_pot11: tuple[Path, Path], backend: Groth16Backend) -> None:
    out, cache = risk_on_pot11
    m = Manifest.load(out)
    plan = backend.plan(RISK, CompileOptions(calibration=RISK_CAL, cache_dir=cache))
    info = r1cs_info(out / "model.r1cs")
    assert plan.constraints_exact
    assert (plan.constraints, plan.wires, plan.public_signals) == \
        (info.n_constraints, info.n_wires, info.n_outputs + info.n_public_inputs)
    assert plan.multiply_adds == m.stats["multiply_adds"] and plan.power == m.stats["ptau_power"]
    assert plan.ptau_file == str(cache / "ptau" / "pot11_dev_final.ptau") and plan.ptau_cached
    assert plan.memory_mib["peak"] > 0 and plan.seconds["total"] > plan.seconds["setup"] > 0


@pytest.mark.parametrize(("sizes", "message"), [
    ([600, 8, 2], r"a neuron sums \d+ terms: circom2 crashes .* use --generator direct"),
    ([400, 400, 400, 10], r"[\d,]+ multiply-adds: .* V8's function size limit .* use --generator direct"),
    ([400, 400, 400, 400, 10], r"[\d,]+ multiply-adds: circom2 runs out of its 4 GB .* use --generator direct"),
])
def test_circom_limits_are_refused_up_front(tmp_path: Path, sizes: list[int], message: str) -> None:
    onnx_path = dense_mlp(tmp_path / "m.onnx", sizes)
    out = tmp_path / "out"
    t0 = time.monotonic()
    with pytest.raises(CompileRefused, match=message):
        Groth16Backend(generator="circom").compile(onnx_path, out, CompileOptions())
    assert time.monotonic() - t0 < REFUSE_WITHIN
    assert not out.exists()                              # nothing written, circom never ran
    # The plan (which lowers) finds the same reason; the direct generator takes the model.
    with pytest.raises(CompileRefused, match=message):
        check(Groth16Backend(generator="circom").plan(onnx_path, CompileOptions()))
    check(Groth16Backend(generator="direct").plan(onnx_path, CompileOptions()))


def test_a_ceremony_over_budget_is_refused_up_front(tmp_path: Path, backend: Groth16Backend) -> None:
    out = tmp_path / "out"
    t0 = time.monotonic()
    with pytest.raises(CompileRefused, match=r"2\^10 powers-of-tau ceremony .* not cached and would take ~22 s "
                                             r".* pass --ptau <file>, or use --slices"):
        backend.compile(RISK, out, CompileOptions(calibration=RISK_CAL, cache_dir=tmp_path / "empty",
                                                  max_ceremony_seconds=5))
    assert time.monotonic() - t0 < REFUSE_WITHIN and not out.exists()
    assert not (tmp_path / "empty" / "ptau" / "pot10.lock").exists()     # no ceremony started


def test_power_and_memory_beyond_this_machine_are_refused(tmp_path: Path, backend: Groth16Backend) -> None:
    """The real plan of a real model, with the machine (or the model) made too small for it:
    a 2^25 circuit cannot be built in a test, nor can this box's RAM be shrunk."""
    plan = backend.plan(RISK, CompileOptions(calibration=RISK_CAL))
    check(plan)
    with pytest.raises(CompileRefused, match=r"need powers of tau 2\^25, beyond the largest supported 2\^24: "
                                             r"use --slices"):
        check(dataclasses.replace(plan, power=25))
    with pytest.raises(CompileRefused, match=r"needs ~\d+ MiB at its peak .* this machine has 100 MiB available"):
        check(dataclasses.replace(plan, available_mib=100.0))


# -- the CLI -----------------------------------------------------------------------------------------
def _oracle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oracle.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_plan_prints_json_and_compile_refuses_in_one_line(tmp_path: Path) -> None:
    r = _oracle("models", "plan", str(RISK))
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["refused"] is None and plan["generator"] == "direct" and plan["constraints"] > 0
    assert "constraints" in r.stderr and "warm proof" in r.stderr        # the human summary: stderr
    wide = dense_mlp(tmp_path / "wide.onnx", [600, 8, 2])
    r = _oracle("models", "plan", str(wide), "--generator", "circom")
    assert r.returncode == 2 and json.loads(r.stdout)["refused"].startswith("a neuron sums")
    t0 = time.monotonic()
    r = _oracle("models", "compile", str(wide), "--backend", "groth16", "--generator", "circom",
                "--out", str(tmp_path / "c"))
    assert time.monotonic() - t0 < 3 * REFUSE_WITHIN
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: a neuron sums")
    assert "use --generator direct" in r.stderr and not (tmp_path / "c").exists()
    r = _oracle("models", "compile", str(RISK), "--backend", "groth16", "--ptau-power", "23",
                "--max-ceremony-seconds", "600", "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "pass --ptau <file>" in r.stderr.splitlines()[-1]
    r = _oracle("models", "compile", str(RISK), "--backend", "ezkl", "--generator", "direct",
                "--out", str(tmp_path / "e"))
    assert r.returncode == 2 and "for the groth16 backend" in r.stderr
