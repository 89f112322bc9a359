// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IInferenceConsumer
/// @notice Implemented by contracts that receive proven inference results from the oracle.
interface IInferenceConsumer {
    /// @notice Called by the oracle, with exactly the gas the request asked for, once a proof
    ///         of the output was verified on-chain. A revert here is recorded by the oracle and
    ///         never undoes the fulfilment.
    /// @param requestId The oracle request id.
    /// @param modelId The model that produced the output.
    /// @param output The proven output, fixed-point at the model's output scale.
    function onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata output) external;
}
