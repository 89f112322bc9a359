"""The model catalog (``GET /api/v1/models[/{id}]``): what each circuit computes, its shapes,
scales and bit widths, proof system, setup provenance, where it is registered, its fee, its
measured proving time and gas, and Solidity to call it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from oracle.circuits.catalog import Circuit
from oracle.circuits.manifest import Manifest
from oracle.gateway import schemas as S
from oracle.gateway.context import GatewayContext
from oracle.store import repo

log = logging.getLogger(__name__)

PROOF_SYSTEMS = {"groth16": "Groth16 (BN254, snarkjs)", "ezkl": "Halo2-KZG (EZKL)"}


def model_ids(ctx: GatewayContext) -> dict[str, Circuit]:
    """model id -> circuit: every model registered on a configured chain whose circuit this
    gateway has, then every other local circuit under its circuit id (the default model id)."""
    out: dict[str, Circuit] = {}
    for view in ctx.chains:
        try:
            for mid in view.model_ids():
                entry = view.model(mid)
                circuit = ctx.catalog.get(entry.circuit_id) if entry is not None else None
                if circuit is not None:
                    out.setdefault(mid.lower(), circuit)
        except Exception as e:      # a chain down: its registrations are missing from the list
            log.warning("catalog: chain %s unreadable: %s", view.name, e)
    served = {c.circuit_id.lower() for c in out.values()}
    for cid in ctx.catalog.ids():
        if cid not in served:
            c = ctx.catalog.get(cid)
            assert c is not None
            out[cid] = c
    return out


def describe(m: Manifest) -> str:
    """What the model computes, from its manifest: a ``description`` setting when the compile
    recorded one, else its layers (sizes and activations) and value ranges."""
    given = m.settings.get("description")
    if isinstance(given, str) and given.strip():
        return given.strip()
    layers = m.settings.get("layers")
    shape = f"{m.input_size} inputs -> {m.output_size} outputs"
    if isinstance(layers, list) and layers:
        parts = [f"{layer.get('size')} {layer.get('act') or 'linear'}" for layer in layers if isinstance(layer, dict)]
        shape = f"{m.input_size} -> " + " -> ".join(parts)
    return (f"{m.name}: {shape} ({m.backend}); inputs {list(m.input_shape)} at scale 2**{m.input_scale}, "
            f"outputs {list(m.output_shape)} at scale 2**{m.output_scale}")


def summary(ctx: GatewayContext, model_id: str, c: Circuit, base: str) -> S.ModelSummary:
    m = c.manifest
    return S.ModelSummary(
        model_id=model_id, name=m.name, description=describe(m), backend=m.backend,
        proof_system=PROOF_SYSTEMS.get(m.backend, m.backend), circuit_id=m.circuit_id,
        input_shape=list(m.input_shape), output_shape=list(m.output_shape), dev_keys=bool(m.dev_keys),
        url=f"{base}/api/v1/models/{model_id}",
    )


def detail(ctx: GatewayContext, model_id: str, c: Circuit, callback_gas: int, base: str) -> S.ModelDetail:
    m = c.manifest
    lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1
    with ctx.db.session() as s:
        prove = repo.prove_seconds_spread(s, m.circuit_id)
        gas = repo.fulfil_gas_spread(s, model_id)
    measured = S.MeasuredStats(
        proofs=prove.count, prove_seconds_p50=_round(prove.p50), prove_seconds_p95=_round(prove.p95),
        fulfilments=gas.count, fulfil_gas_p50=_int(gas.p50), fulfil_gas_max=_int(gas.max),
    )
    return S.ModelDetail(
        **summary(ctx, model_id, c, base).model_dump(),
        input_size=m.input_size, output_size=m.output_size, input_scale=m.input_scale, output_scale=m.output_scale,
        input_bits=m.input_bits, output_bits=m.output_bits, input_range=(lo, hi), binds_payee=m.binds_payee,
        public_signals=m.n_public_signals, setup=_setup(m), deployments=deployments(ctx, model_id, callback_gas),
        measured=measured, compile_stats=dict(m.stats), solidity=solidity(model_id, m, callback_gas),
        verification_key_url=f"{base}/api/v1/models/{model_id}/vk",
    )


def _setup(m: Manifest) -> S.Setup:
    info: Any = m.settings.get("ptau") or m.settings.get("srs") or {}
    info = info if isinstance(info, dict) else {}
    source = info.get("file") or (Path(str(info["path"])).name if info.get("path") else None)
    if info.get("local_dev_ceremony"):
        source = f"{source} (local development ceremony)" if source else "local development ceremony"
    return S.Setup(dev_keys=bool(m.dev_keys), setup_hash=info.get("sha256"), source=source,
                   generator=str(m.settings.get("generator")) if m.settings.get("generator") else None,
                   toolchain=dict(m.toolchain))


def deployments(ctx: GatewayContext, model_id: str, callback_gas: int) -> list[S.Deployment]:
    out: list[S.Deployment] = []
    for view in ctx.chains:
        try:
            entry = view.model(model_id)
            if entry is None:
                out.append(S.Deployment(chain_id=view.chain_id, name=view.name, oracle=view.cfg.oracle,
                                        registry=view.registry.address, registered=False, callback_gas=callback_gas))
                continue
            out.append(S.Deployment(
                chain_id=view.chain_id, name=view.name, oracle=view.cfg.oracle, registry=view.registry.address,
                registered=True, adapter=entry.verifier, verifier=view.adapter_verifier(entry.verifier),
                verifier_version=entry.verifier_version, frozen=entry.frozen, binds_payee=entry.binds_payee,
                verify_gas=entry.verify_gas, fee_wei=str(view.quote(model_id, callback_gas)),
                callback_gas=callback_gas,
            ))
        except Exception as e:
            out.append(S.Deployment(chain_id=view._chain_id or 0, name=view.name, oracle=view.cfg.oracle,
                                    registered=False, callback_gas=callback_gas,
                                    error=f"{type(e).__name__}: {e}"[:300]))
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


def _int(v: float | None) -> int | None:
    return None if v is None else int(v)


def solidity(model_id: str, m: Manifest, callback_gas: int) -> str:
    """A consumer contract: requests an inference with the quoted fee and takes the callback."""
    n_in, n_out = m.input_size, m.output_size
    lo, hi = -(1 << (m.input_bits - 1)), (1 << (m.input_bits - 1)) - 1
    return f"""// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IInferenceOracle {{
    function quoteFee(bytes32 modelId, uint32 callbackGasLimit) external view returns (uint256);
    function requestInference(bytes32 modelId, int256[] calldata input, address callback,
        uint32 callbackGasLimit, uint64 deadline) external payable returns (uint256 requestId);
}}

/// Asks the oracle for a proven `{m.name}` inference and receives its output.
/// Inputs are fixed-point: round(x * 2**{m.input_scale}), each in [{lo}, {hi}].
/// Outputs arrive at scale 2**{m.output_scale}.
contract {m.name.capitalize().replace('-', '_')}Consumer {{
    IInferenceOracle public immutable oracle;
    bytes32 public constant MODEL_ID = {model_id};
    uint32 public constant CALLBACK_GAS = {callback_gas};
    mapping(uint256 => int256[]) public results;

    error OnlyOracle();  // a callback not from the oracle, or for another model

    event Requested(uint256 indexed requestId);
    event Answered(uint256 indexed requestId, int256[] output);

    constructor(IInferenceOracle oracle_) {{
        oracle = oracle_;
    }}

    /// @param input {n_in} fixed-point values.
    function ask(int256[] calldata input) external payable returns (uint256 requestId) {{
        uint256 fee = oracle.quoteFee(MODEL_ID, CALLBACK_GAS);
        requestId = oracle.requestInference{{value: fee}}(
            MODEL_ID, input, address(this), CALLBACK_GAS, uint64(block.timestamp + 1 hours));
        emit Requested(requestId);
    }}

    /// Called by the oracle after the proof of `output` ({n_out} values) verified on-chain.
    function onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata output) external {{
        if (msg.sender != address(oracle) || modelId != MODEL_ID) revert OnlyOracle();
        results[requestId] = output;
        emit Answered(requestId, output);
    }}
}}
"""
