"""``POST /api/v1/verify``: is this proof valid for this model, input and output? Checked by
the proof backend off-chain and, on every configured chain where the model is registered, by
the chain's own adapter (``eth_call`` of ``verify``): the same code a fulfilment goes through.

A request that cannot describe a proof at all (unknown model, wrong sizes, values out of
range, a proof that is not a proof object, a missing payee for a circuit that binds one) is
a 400/404; a well-formed proof that does not verify is ``{"valid": false}`` with the failing
check named."""

from __future__ import annotations

import logging
from typing import Any

from web3.exceptions import ContractLogicError

from oracle.circuits.catalog import Circuit
from oracle.circuits.fixedpoint import FixedPointError
from oracle.circuits.packing import PackingError
from oracle.circuits.payee import PayeeError
from oracle.gateway import schemas as S
from oracle.gateway.context import GatewayContext
from oracle.gateway.errors import ApiError
from oracle.gateway.inferences import fixed_input, resolve
from oracle.proving.base import BackendError, Proof
from oracle.proving.groth16.calldata import decode_proof, encode_proof
from oracle.proving.registry import get_backend

log = logging.getLogger(__name__)

ZERO = "0x" + "00" * 20
UNAVAILABLE = ":unavailable"


def verify(ctx: GatewayContext, body: S.VerifyRequest) -> S.VerifyResult:
    circuit = resolve(ctx, body.model_id)
    m = circuit.manifest
    input_fixed = fixed_input(circuit, body.input, body.input_fixed)
    if len(body.output_fixed) != m.output_size:
        raise ApiError(400, f"output_fixed has {len(body.output_fixed)} values, model {m.name} gives {m.output_size}")
    lo, hi = -(1 << (m.output_bits - 1)), (1 << (m.output_bits - 1)) - 1
    for i, v in enumerate(body.output_fixed):
        if not lo <= v <= hi:
            raise ApiError(400, f"output_fixed[{i}] = {v} is outside the model's {m.output_bits}-bit range "
                                f"[{lo}, {hi}]")
    if m.binds_payee and body.payee is None:
        raise ApiError(400, f"model {m.name}'s proofs name a payee (the fee recipient): give \"payee\", the address "
                            "the proof was made for (off-chain inferences: their proof.payee)")
    native, calldata = _proof(circuit, body.proof)
    payee = body.payee.lower() if body.payee else None
    checks: list[S.Check] = [S.Check(name="model", ok=True, detail=f"{m.name}, circuit {m.circuit_id}")]
    try:
        signals = m.public_signals(input_fixed, list(body.output_fixed), payee if m.binds_payee else None)
    except (PackingError, PayeeError, FixedPointError) as e:
        raise ApiError(400, str(e)) from e
    checks.append(S.Check(name="public_signals", ok=True,
                          detail=f"{len(signals)} signal(s) rebuilt from input, output" +
                                 (" and payee" if m.binds_payee else "") + f" ({m.signal_layout})"))
    proof = Proof(backend=m.backend, circuit_id=m.circuit_id, input_fixed=input_fixed,
                  output_fixed=list(body.output_fixed), public_signals=signals, proof=native, calldata=calldata,
                  payee=payee if m.binds_payee else None)
    try:
        ok = get_backend(m.backend).verify(circuit.dir, proof)
        detail = "valid" if ok else "the proof does not verify for these public signals"
    except BackendError as e:
        ok, detail = False, str(e)
    checks.append(S.Check(name="offchain", ok=ok, detail=f"{m.backend} verifier: {detail}"))
    checks += _onchain(ctx, body.model_id, input_fixed, list(body.output_fixed), payee or ZERO, calldata)
    # A chain that could not be asked is reported, but neither confirms nor refutes the proof.
    return S.VerifyResult(valid=all(c.ok for c in checks if not c.name.endswith(UNAVAILABLE)), checks=checks)


def _proof(circuit: Circuit, raw: Any) -> tuple[Any, str]:
    """(native proof, calldata) from a snarkjs proof object or its 0x-hex calldata encoding."""
    if circuit.manifest.backend != "groth16":
        raise ApiError(400, f"POST /api/v1/verify checks groth16 proofs; this model is {circuit.manifest.backend} "
                            "(verify it with `oracle verify CIRCUIT_DIR PROOF.json`)")
    try:
        if isinstance(raw, str):
            return decode_proof(raw), raw.lower()
        if isinstance(raw, dict):
            return raw, encode_proof(raw)
    except (BackendError, ValueError) as e:
        raise ApiError(400, f"malformed proof: {e}") from e
    raise ApiError(400, "malformed proof: expected a snarkjs Groth16 proof object {pi_a, pi_b, pi_c} or its "
                        "0x-hex encoding (256 bytes)")


def _onchain(ctx: GatewayContext, model_id: str, input_fixed: list[int], output_fixed: list[int], payee: str,
             calldata: str) -> list[S.Check]:
    out: list[S.Check] = []
    for view in ctx.chains:
        name = f"onchain:{view.name}"
        try:
            entry = view.model(model_id)
            if entry is None:
                continue        # not registered there: nothing the chain would verify
            ok = view.verify(entry.verifier, input_fixed, output_fixed, payee, bytes.fromhex(calldata[2:]),
                             ctx.settings.eth_call_gas)
            out.append(S.Check(name=f"{name}:{view.chain_id}", ok=ok,
                               detail=f"adapter {entry.verifier}.verify by eth_call: {'valid' if ok else 'false'}"))
        except ContractLogicError as e:   # a revert (e.g. proof points off the curve): refused there
            out.append(S.Check(name=name, ok=False, detail=f"the adapter reverted: {e}"[:300]))
        except Exception as e:   # the chain did not answer: says nothing about the proof
            out.append(S.Check(name=name + UNAVAILABLE, ok=False,
                               detail=f"not checked, the chain did not answer: {type(e).__name__}: {e}"[:300]))
    return out
