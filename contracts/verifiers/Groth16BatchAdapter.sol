// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Groth16VerifierAdapter} from "./Groth16VerifierAdapter.sol";
import {FieldEncoding} from "./FieldEncoding.sol";
import {Groth16BatchVerifier} from "./Groth16BatchVerifier.sol";

/// @title Groth16BatchAdapter
/// @notice A Groth16 adapter that also verifies a batch of proofs of the same circuit with one
///         pairing check (see `Groth16BatchVerifier`). Public signals: one field element per
///         value, outputs first, then inputs (circom's order).
/// @dev Single proofs still go through the snarkjs-generated verifier (the parent adapter).
contract Groth16BatchAdapter is Groth16VerifierAdapter, Groth16BatchVerifier {
    /// @param verifier_ The snarkjs-generated verifier (used for single proofs).
    /// @param numInputs_ Model input size.
    /// @param numOutputs_ Model output size.
    /// @param vk Verification key words (see `Groth16BatchVerifier`), n = inputs + outputs + 1 (payee).
    constructor(address verifier_, uint256 numInputs_, uint256 numOutputs_, uint256[] memory vk)
        Groth16VerifierAdapter(verifier_, numInputs_, numOutputs_)
        Groth16BatchVerifier(numInputs_ + numOutputs_ + 1, vk)
    {}

    /// @dev Public signals as field elements, circom order (outputs, payee, then inputs).
    function _entrySignals(int256[] calldata input, int256[] calldata output, address payee, bytes calldata proof)
        internal
        view
        override
        returns (uint256[] memory s)
    {
        _checkSizes(input, output);
        if (proof.length != PROOF_LENGTH) revert MalformedProof(proof.length);
        s = new uint256[](input.length + output.length + 1);
        for (uint256 j; j < output.length; ++j) {
            s[j] = FieldEncoding.toField(output[j]);
        }
        s[output.length] = uint256(uint160(payee));
        for (uint256 j; j < input.length; ++j) {
            s[output.length + 1 + j] = FieldEncoding.toField(input[j]);
        }
    }
}
