// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceVerifier, IBatchInferenceVerifier} from "../../Verifier.sol";

/// @title TestHashVerifier
/// @notice TEST DOUBLE, not a proof system: a "proof" is keccak256(abi.encode(input, output)).
///         It keeps the oracle's own logic testable in isolation; the real snarkjs verifier
///         and a real Groth16 proof are exercised in Groth16Fixture.t.sol.
contract TestHashVerifier is IInferenceVerifier, IBatchInferenceVerifier {
    /// @notice Counts verifyBatch calls made through `verifyBatch` (for tests).
    function proofFor(int256[] memory input, int256[] memory output) public pure returns (bytes memory) {
        return abi.encode(keccak256(abi.encode(input, output)));
    }

    /// @inheritdoc IInferenceVerifier
    function verify(int256[] calldata input, int256[] calldata output, bytes calldata proof)
        external
        pure
        returns (bool)
    {
        return keccak256(proof) == keccak256(proofFor(input, output));
    }

    /// @inheritdoc IBatchInferenceVerifier
    function verifyBatch(int256[][] calldata inputs, int256[][] calldata outputs, bytes[] calldata proofs)
        external
        pure
        returns (bool)
    {
        for (uint256 i; i < proofs.length; ++i) {
            if (keccak256(proofs[i]) != keccak256(proofFor(inputs[i], outputs[i]))) return false;
        }
        return true;
    }
}
