// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title InferenceErrors
/// @notice The refusals every contract that checks an inference against the registry shares
///         (InferenceOracle on the source chain; CrossChainInbox and ProvenResults through
///         InferenceCheck elsewhere), declared once so a client decodes them the same way
///         whichever contract reverted.
abstract contract InferenceErrors {
    /// @notice No model under this id in this chain's registry.
    error UnknownModel(bytes32 modelId);
    /// @notice The model is frozen: its verifier is retired (no new requests, no new results).
    error ModelFrozen(bytes32 modelId);
    /// @notice The input length is not the model's.
    error InputSizeMismatch(uint256 expected, uint256 got);
    /// @notice The output length is not the model's.
    error OutputSizeMismatch(uint256 expected, uint256 got);
    /// @notice input[index] is outside the model's signed input range.
    error InputOutOfRange(uint256 index, int256 value);
    /// @notice output[index] is outside the model's signed output range.
    error OutputOutOfRange(uint256 index, int256 value);
}
