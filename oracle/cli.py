"""The ``oracle`` command line. The oracle's own errors (``oracle.errors``: user errors, and
transient ones, which a one-shot command does not retry) print one clear line and exit 2, with a
traceback only under ``--debug``. Anything else is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from oracle.errors import TransientError, UserError

log = logging.getLogger("oracle")


def _connect(rpc: str, *, signer: bool = True, keystore: Path | None = None):  # type: ignore[no-untyped-def]
    from oracle.chain.client import Chain, probe_chain_id
    from oracle.chain.keys import load_account

    chain_id = probe_chain_id(rpc)     # a dead or wrong --rpc fails here, fast
    account = load_account(chain_id=chain_id, keystore=keystore, rpc_url=rpc) if signer else None
    return Chain.connect(rpc, account)


def _address(value: str) -> str:
    """argparse type: a 0x-prefixed 20-byte hex address (refused at parse time, like any flag)."""
    from eth_utils.address import is_hex_address

    if not is_hex_address(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 0x-prefixed 20-byte hex address")
    return value


def _bytes32(value: str) -> str:
    """argparse type: a 32-byte hex value (0x prefix optional)."""
    h = value.removeprefix("0x")
    if len(h) != 64 or any(c not in "0123456789abcdefABCDEF" for c in h):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 32-byte hex value")
    return value


def cmd_deploy(a: argparse.Namespace) -> int:
    from oracle.chain.deploy import deploy_all

    chain = _connect(a.rpc, keystore=a.keystore)
    d = deploy_all(chain, gas_price_wei=a.fee_gas_price)
    out = d.to_json()
    if a.cross_chain:
        from oracle.chain.deploy import deploy_cross_chain

        out.update(deploy_cross_chain(chain, d.registry).to_json())
    print(json.dumps(out))
    return 0


def cmd_destination(a: argparse.Namespace) -> int:
    chain = _connect(a.rpc, keystore=a.keystore)
    oracle = chain.contract("InferenceOracle", a.oracle)
    allowed = not a.disable
    chain.transact(oracle.functions.setDestination(a.chain_id, allowed))
    print(json.dumps({"oracle": a.oracle, "destination": a.chain_id, "allowed": allowed}))
    return 0


def cmd_models_compile(a: argparse.Namespace) -> int:
    from oracle.commands import compile_model

    setup = a.ptau or a.srs
    if a.ptau and a.backend != "groth16":
        raise UserError("--ptau is for the groth16 backend; use --srs with ezkl")
    if a.srs and a.backend != "ezkl":
        raise UserError("--srs is for the ezkl backend; use --ptau with groth16")
    if a.backend != "groth16" and (a.generator or a.ptau_power is not None or a.max_ceremony_seconds is not None):
        raise UserError("--generator, --ptau-power and --max-ceremony-seconds are for the groth16 backend")
    if a.slices is not None or a.slice_constraints is not None:
        from oracle.commands import compile_sliced_model

        if a.backend != "groth16" or a.generator == "circom" or a.unpacked_signals:
            raise UserError("--slices / --slice-constraints need --backend groth16 with the direct generator "
                            "and packed signals")
        m = compile_sliced_model(a.model, a.out, a.calibration, a.ptau, a.slices, a.slice_constraints, a.ptau_power)
    else:
        m = compile_model(a.model, a.backend, a.out, a.calibration, setup, packed_signals=not a.unpacked_signals,
                          generator=a.generator, ptau_power=a.ptau_power,
                          max_ceremony_seconds=a.max_ceremony_seconds)
    if m.dev_keys:
        log.warning("DEVELOPMENT KEYS: %s was set up without a ceremony file; do not use in production", a.out)
    print(json.dumps({"circuit_id": m.circuit_id, "backend": m.backend, "out": str(a.out),
                      "dev_keys": m.dev_keys}))
    return 0


def cmd_models_plan(a: argparse.Namespace) -> int:
    from oracle.commands import plan_model

    plan, refused = plan_model(a.model, a.calibration, a.generator, a.ptau, not a.unpacked_signals,
                               a.ptau_power, a.max_ceremony_seconds)
    print(json.dumps({**plan, "refused": refused}))
    if refused:
        raise UserError(f"compile would be refused: {refused}")
    return 0


def cmd_models_register(a: argparse.Namespace) -> int:
    from oracle.chain.registration import register_circuit

    if len(a.rpc) != len(a.registry):
        raise UserError("give one --registry per --rpc")
    for rpc, registry in zip(a.rpc, a.registry, strict=True):
        chain = _connect(rpc, keystore=a.keystore)
        r = register_circuit(chain, registry, a.circuit_dir, model_id=a.model_id, fee_wei=a.fee,
                             batch=not a.no_batch, rpc_url=rpc,
                             allow_dev_keys_on_public_chain=a.i_understand_dev_keys_are_forgeable)
        print(r.model_id)
    return 0


def cmd_prove(a: argparse.Namespace) -> int:
    from oracle.commands import prove_file

    prove_file(a.circuit_dir, a.input, a.out, a.payee)
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
    from oracle.commands import verify_file

    ok, reason = verify_file(a.circuit_dir, a.proof)
    if ok:
        print("valid")
        return 0
    print(f"INVALID: {reason}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oracle", description="Proof-of-Inference oracle")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("deploy", help="deploy registry, oracle, token and vault; print addresses as JSON")
    d.add_argument("--rpc", required=True)
    d.add_argument("--keystore", type=Path, help="encrypted keystore (password in ORACLE_KEYSTORE_PASSWORD)")
    d.add_argument("--fee-gas-price", type=int, default=1_000_000_000, help="wei per gas in fee quotes")
    d.add_argument("--cross-chain", action="store_true",
                   help="also deploy CrossChainInbox and ProvenResults (docs/cross-chain.md)")
    d.set_defaults(func=cmd_deploy)

    ds = sub.add_parser("destination", help="allow (or disable) a destination chain for requestInferenceTo")
    ds.add_argument("--rpc", required=True, help="the source chain")
    ds.add_argument("--oracle", type=_address, required=True, help="the source chain's InferenceOracle")
    ds.add_argument("--chain-id", type=int, required=True, help="the destination chain id")
    ds.add_argument("--disable", action="store_true")
    ds.add_argument("--keystore", type=Path)
    ds.set_defaults(func=cmd_destination)

    m = sub.add_parser("models", help="compile and register models").add_subparsers(dest="models_cmd", required=True)
    c = m.add_parser("compile", help="ONNX model -> circuit folder (keys, verifier, manifest)")
    c.add_argument("model", type=Path)
    c.add_argument("--backend", choices=["groth16", "ezkl"], required=True)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--calibration", type=Path)
    c.add_argument("--ptau", type=Path, help="powers-of-tau ceremony file (groth16)")
    c.add_argument("--srs", type=Path, help="KZG SRS ceremony file (ezkl)")
    c.add_argument("--unpacked-signals", action="store_true",
                   help="groth16: one public signal per value instead of packed words (more verification gas)")
    _groth16_compile_flags(c)
    c.add_argument("--slices", type=_slices, metavar="N|auto",
                   help="groth16: a sliced model (docs/sliced-models.md): N circuits cut at layer boundaries "
                        "with balanced constraints, or 'auto' (the fewest that each fit 2^16), all on one ceremony")
    c.add_argument("--slice-constraints", type=int, metavar="N",
                   help="groth16: a sliced model whose every slice has at most N constraints (the fewest slices)")
    c.set_defaults(func=cmd_models_compile)
    pl = m.add_parser("plan", help="groth16: what a compile would need (constraints, ceremony, memory, time) "
                                   "and whether it would be refused; prints JSON, builds nothing")
    pl.add_argument("model", type=Path)
    pl.add_argument("--calibration", type=Path)
    pl.add_argument("--ptau", type=Path, help="powers-of-tau ceremony file the compile would use")
    pl.add_argument("--unpacked-signals", action="store_true")
    _groth16_compile_flags(pl)
    pl.set_defaults(func=cmd_models_plan)
    r = m.add_parser("register", help="deploy the circuit's verifier + adapter and register the model")
    r.add_argument("circuit_dir", type=Path)
    r.add_argument("--rpc", action="append", required=True, help="repeatable, paired with --registry")
    r.add_argument("--registry", type=_address, action="append", required=True)
    r.add_argument("--model-id", type=_bytes32, help="0x bytes32 (default: the circuit id)")
    r.add_argument("--fee", type=int, default=0, help="base fee in wei")
    r.add_argument("--keystore", type=Path)
    r.add_argument("--no-batch", action="store_true", help="groth16: plain adapter without batch verification")
    r.add_argument("--i-understand-dev-keys-are-forgeable", action="store_true",
                   help="register a circuit with development keys on a chain that is not a local dev node "
                        "(anyone with the local ceremony's secrets can forge its proofs)")
    r.set_defaults(func=cmd_models_register)

    pr = sub.add_parser("prove", help="prove one inference")
    pr.add_argument("circuit_dir", type=Path)
    pr.add_argument("--input", type=Path, required=True)
    pr.add_argument("--out", type=Path, required=True)
    pr.add_argument("--payee", help="0x address the oracle credits for this proof (required when the "
                                    "circuit binds a payee: fulfil with the same payee)")
    pr.set_defaults(func=cmd_prove)

    v = sub.add_parser("verify", help="verify a PROOF.json (exit 0 valid, 1 invalid)")
    v.add_argument("circuit_dir", type=Path)
    v.add_argument("proof", type=Path)
    v.set_defaults(func=cmd_verify)

    for register in _extra_commands():
        register(sub)
    return p


def _power(value: str) -> int:
    """argparse type: a powers-of-tau power (2^10 .. 2^24)."""
    from oracle.proving.groth16.ptau import MAX_POWER, MIN_POWER

    try:
        p = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer power") from None
    if not MIN_POWER <= p <= MAX_POWER:
        raise argparse.ArgumentTypeError(f"power {p} outside [{MIN_POWER}, {MAX_POWER}]")
    return p


def _slices(v: str) -> int | str:
    if v == "auto":
        return v
    try:
        n = int(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--slices takes a number of slices (>= 2) or 'auto', not {v!r}") from e
    if n < 2:
        raise argparse.ArgumentTypeError(f"--slices {n}: a sliced model has at least 2 slices")
    return n


def _groth16_compile_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("--generator", choices=["direct", "circom"],
                   help="groth16 circuit generator (default: direct, Python-emitted R1CS; circom is "
                        "limited to ~400-term neurons and ~170 k multiply-adds)")
    c.add_argument("--ptau-power", type=_power, metavar="N",
                   help="groth16 local ceremony: use (build once) the 2^N ptau for this circuit instead "
                        "of the smallest cached one that fits; circuits that must share one ceremony "
                        "pass the same N")
    c.add_argument("--max-ceremony-seconds", type=float, metavar="S",
                   help="groth16: refuse up front when the local ceremony needed is not cached and "
                        "is estimated to take longer than S seconds (default: no limit)")


# Later subsystems (service, audit, miner) add their subcommands here.
def _extra_commands() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    from oracle.audit.cli import add_audit_command
    from oracle.gateway.cli import add_gateway_command
    from oracle.service.cli import add_run_command
    from oracle.subnet.miner import add_miner_command

    return [add_run_command, add_audit_command, add_miner_command, add_gateway_command]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if a.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        rc: int = a.func(a)
        return rc
    except (UserError, TransientError) as exc:
        # Only the oracle's own errors: a ValueError or KeyError from a bug is not bad input and
        # must show where it happened. A transient error is reported the same way because this
        # command runs once; the service's jobs retry them instead.
        if a.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
