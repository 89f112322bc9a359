// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ICrossChainConsumer
/// @notice Implemented by contracts that receive, through a CrossChainInbox, results of
///         inferences requested on another chain. Read docs/cross-chain.md before relying on
///         one: the inbox proves output = model(input) and nothing about the source request.
interface ICrossChainConsumer {
    /// @notice Called by the inbox, with exactly the delivered gas limit, once the proof of
    ///         `output = model(input)` was verified on this chain. A revert here is recorded by
    ///         the inbox and never undoes the delivery.
    /// @dev The source chain id and request id are claims of whoever delivered: check that
    ///      `input` is one you asked about (derived from your own state or committed before)
    ///      and that `modelId` is the model you trust; do not key security on `requestId`.
    /// @param srcChainId The chain the request was made on (as claimed by the deliverer).
    /// @param requestId The request id on the source oracle (as claimed by the deliverer).
    /// @param modelId The model whose proof this chain verified.
    /// @param input The proven input, fixed-point at the model's input scale.
    /// @param output The proven output, fixed-point at the model's output scale.
    function onCrossChainResult(
        uint64 srcChainId,
        uint256 requestId,
        bytes32 modelId,
        int256[] calldata input,
        int256[] calldata output
    ) external;
}
