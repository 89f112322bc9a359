// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceCheck} from "../utils/InferenceCheck.sol";

/// @title ProvenResults
/// @notice A public record of verified inferences on this chain: anyone may submit a proof of
///         output = model(input); once this chain's verifier for the model accepted it, any
///         contract reads the output with `provenOutput(modelId, input)` without asking (and
///         paying) for the inference again. The same proof that fulfilled a request on any
///         chain can be submitted here.
/// @dev A result stays proven while the verifier that checked it is still the model's
///      verifier: after a verifier upgrade (the registry's answer to a broken circuit) old
///      results read as unproven until someone re-submits them under the new verifier. A
///      frozen model keeps its results but accepts no new ones. No owner.
contract ProvenResults is InferenceCheck {
    struct Result {
        address verifier; // the model's verifier that accepted the proof
        uint64 provenAt;
        int256[] output;
    }

    mapping(bytes32 key => Result) private _results;

    /// @notice The result is already proven under the model's current verifier.
    error AlreadyProven(bytes32 key);

    /// @notice `output = model(input)` was verified; `key` = resultKey(modelId, input).
    event ResultProven(
        bytes32 indexed key, bytes32 indexed modelId, address indexed submitter, int256[] input, int256[] output
    );

    /// @param registry_ This chain's model registry.
    constructor(ModelRegistry registry_) InferenceCheck(registry_) {}

    /// @notice Verifies and records output = model(input). Permissionless.
    /// @param modelId A registered, unfrozen model.
    /// @param input Fixed-point input at the model's input scale.
    /// @param output Fixed-point output at the model's output scale.
    /// @param payee The payee the proof was made for (no fee is paid here).
    /// @param proof The proof in the model's adapter encoding.
    /// @return key The result's key.
    function submit(
        bytes32 modelId,
        int256[] calldata input,
        int256[] calldata output,
        address payee,
        bytes calldata proof
    ) external returns (bytes32 key) {
        key = resultKey(modelId, input);
        if (_isCurrent(modelId, _results[key].verifier)) revert AlreadyProven(key);
        address verifier = _verifyInference(modelId, input, output, payee, proof);
        Result storage r = _results[key];
        r.verifier = verifier;
        r.provenAt = uint64(block.timestamp);
        r.output = output;
        emit ResultProven(key, modelId, msg.sender, input, output);
    }

    /// @notice The proven output of `modelId` on `input`, if any.
    /// @param modelId The model.
    /// @param input The input.
    /// @return output The output (empty when not proven).
    /// @return proven True when a proof was verified by the model's current verifier.
    function provenOutput(bytes32 modelId, int256[] calldata input)
        external
        view
        returns (int256[] memory output, bool proven)
    {
        Result storage r = _results[resultKey(modelId, input)];
        if (!_isCurrent(modelId, r.verifier)) return (output, false);
        return (r.output, true);
    }

    /// @notice When and through which verifier a result was proven (zero when never).
    /// @param key A `resultKey`.
    /// @return verifier The verifier that accepted the proof.
    /// @return provenAt The block timestamp of the submission.
    function resultInfo(bytes32 key) external view returns (address verifier, uint64 provenAt) {
        Result storage r = _results[key];
        return (r.verifier, r.provenAt);
    }

    /// @notice keccak256(abi.encode(modelId, input)).
    /// @param modelId The model.
    /// @param input The input.
    /// @return The key.
    function resultKey(bytes32 modelId, int256[] calldata input) public pure returns (bytes32) {
        return keccak256(abi.encode(modelId, input));
    }

    function _isCurrent(bytes32 modelId, address verifier) private view returns (bool) {
        if (verifier == address(0) || !registry.isRegistered(modelId)) return false;
        return registry.getModel(modelId).verifier == verifier;
    }
}
