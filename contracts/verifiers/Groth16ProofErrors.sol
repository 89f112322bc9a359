// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Groth16ProofErrors
/// @notice `MalformedProof(uint256)` for code that cannot inherit it from an adapter. Same
///         signature, hence same selector, as `Groth16VerifierAdapter.MalformedProof`, so callers
///         (and the oracle's FulfillmentSkipped reasons) see one error whatever the adapter.
library Groth16ProofErrors {
    /// @notice The proof bytes (or a point in them) are not a valid Groth16 proof encoding.
    error MalformedProof(uint256 length);
}
