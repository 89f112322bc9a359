// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ModelRegistry} from "../ModelRegistry.sol";
import {IInferenceVerifier} from "../Verifier.sol";
import {SignedRange} from "./SignedRange.sol";
import {InferenceErrors} from "./InferenceErrors.sol";

/// @title InferenceCheck
/// @notice What the contracts that verify a proof outside a request share (CrossChainInbox,
///         ProvenResults): the model's registry entry on THIS chain, the same size and range
///         rules as InferenceOracle, and the model's verifier.
abstract contract InferenceCheck is InferenceErrors {
    /// @notice The registry whose verifiers this contract trusts.
    ModelRegistry public immutable registry;

    /// @notice The registry cannot be address(0).
    error ZeroRegistry();
    /// @notice The proof does not verify for this input, this output and this payee.
    error InvalidProof(bytes32 modelId);

    constructor(ModelRegistry registry_) {
        if (address(registry_) == address(0)) revert ZeroRegistry();
        registry = registry_;
    }

    /// @dev Reverts unless `proof` shows output = model(input) for the registered, unfrozen
    ///      model (a frozen model's verifier is retired: no new results through it). A
    ///      verifier revert bubbles up, as in InferenceOracle.fulfill. Returns the verifier used.
    ///      `payee` is the fee recipient the proof was made for (on the source chain); no fee is
    ///      paid here, it only has to match the proof.
    function _verifyInference(
        bytes32 modelId,
        int256[] calldata input,
        int256[] calldata output,
        address payee,
        bytes calldata proof
    ) internal view returns (address verifier) {
        if (!registry.isRegistered(modelId)) revert UnknownModel(modelId);
        ModelRegistry.Model memory m = registry.getModel(modelId);
        if (m.frozen) revert ModelFrozen(modelId);
        if (input.length != m.inputSize) revert InputSizeMismatch(m.inputSize, input.length);
        if (output.length != m.outputSize) revert OutputSizeMismatch(m.outputSize, output.length);
        uint256 i = SignedRange.firstOutOfRange(input, m.inputBits);
        if (i != type(uint256).max) revert InputOutOfRange(i, input[i]);
        i = SignedRange.firstOutOfRange(output, m.outputBits);
        if (i != type(uint256).max) revert OutputOutOfRange(i, output[i]);
        if (!IInferenceVerifier(m.verifier).verify(input, output, payee, proof)) revert InvalidProof(modelId);
        return m.verifier;
    }
}
