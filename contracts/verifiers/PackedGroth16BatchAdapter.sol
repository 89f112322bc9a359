// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PackedGroth16Adapter} from "./PackedGroth16Adapter.sol";
import {Groth16BatchVerifier} from "./Groth16BatchVerifier.sol";

/// @title PackedGroth16BatchAdapter
/// @notice The packed adapter plus batch verification of several proofs of the same circuit with
///         one pairing check (`Groth16BatchVerifier`); each entry's public signals are its packed
///         words, so the batch's multi-scalar multiplication has 2 terms instead of 11 for the
///         8-input / 3-output risk model.
contract PackedGroth16BatchAdapter is PackedGroth16Adapter, Groth16BatchVerifier {
    /// @param verifier_ The snarkjs-generated verifier of the packed circuit (single proofs).
    /// @param numInputs_ Model input size (values).
    /// @param numOutputs_ Model output size (values).
    /// @param inputBits_ Signed bit width of each input.
    /// @param outputBits_ Signed bit width of each output.
    /// @param vk Verification key words (see `Groth16BatchVerifier`), n = input words + output words
    ///        (+ 1 when the payee has a word of its own).
    constructor(
        address verifier_,
        uint256 numInputs_,
        uint256 numOutputs_,
        uint256 inputBits_,
        uint256 outputBits_,
        uint256[] memory vk
    )
        PackedGroth16Adapter(verifier_, numInputs_, numOutputs_, inputBits_, outputBits_)
        Groth16BatchVerifier(_signals(numInputs_, numOutputs_, inputBits_, outputBits_), vk)
    {}

    /// @dev The packed words, with the same checks as a single verification.
    function _entrySignals(int256[] calldata input, int256[] calldata output, address payee, bytes calldata proof)
        internal
        view
        override
        returns (uint256[] memory)
    {
        return _checkedSignals(input, output, payee, proof);
    }
}
