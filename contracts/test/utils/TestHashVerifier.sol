// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceVerifier, IBatchInferenceVerifier} from "../../Verifier.sol";

/// @title TestHashVerifier
/// @notice TEST DOUBLE, not a proof system: a "proof" is keccak256(abi.encode(input, output, payee)).
///         It binds the payee like the real Groth16 adapters (a proof made for one payee never
///         verifies for another) and keeps the oracle's own logic testable in isolation; the
///         real snarkjs verifier and real Groth16 proofs are exercised in Groth16Fixture.t.sol
///         and PackedGroth16Fixture.t.sol.
contract TestHashVerifier is IInferenceVerifier, IBatchInferenceVerifier {
    /// @notice The only proof this double accepts for (input, output, payee).
    /// @param input The model input.
    /// @param output The claimed output.
    /// @param payee The fee recipient the proof names.
    /// @return abi.encode(keccak256(abi.encode(input, output, payee))).
    function proofFor(int256[] memory input, int256[] memory output, address payee) public pure returns (bytes memory) {
        return abi.encode(keccak256(abi.encode(input, output, payee)));
    }

    /// @inheritdoc IInferenceVerifier
    function bindsPayee() external pure returns (bool) {
        return true;
    }

    /// @inheritdoc IInferenceVerifier
    function verify(int256[] calldata input, int256[] calldata output, address payee, bytes calldata proof)
        external
        pure
        returns (bool)
    {
        return keccak256(proof) == keccak256(proofFor(input, output, payee));
    }

    /// @inheritdoc IBatchInferenceVerifier
    function verifyBatch(
        int256[][] calldata inputs,
        int256[][] calldata outputs,
        address payee,
        bytes[] calldata proofs
    ) external pure returns (bool) {
        for (uint256 i; i < proofs.length; ++i) {
            if (keccak256(proofs[i]) != keccak256(proofFor(inputs[i], outputs[i], payee))) {
                return false;
            }
        }
        return true;
    }
}

/// @title UnboundHashVerifier
/// @notice TEST DOUBLE for a proof system that cannot bind a payee (like EZKL/Halo2): a "proof"
///         is keccak256(abi.encode(input, output)), the payee is ignored and `bindsPayee()` is
///         false, so the oracle protects the fee with commit-reveal instead.
contract UnboundHashVerifier is IInferenceVerifier, IBatchInferenceVerifier {
    /// @notice The only proof this double accepts for (input, output), whoever the payee.
    /// @param input The model input.
    /// @param output The claimed output.
    /// @return abi.encode(keccak256(abi.encode(input, output))).
    function proofFor(int256[] memory input, int256[] memory output) public pure returns (bytes memory) {
        return abi.encode(keccak256(abi.encode(input, output)));
    }

    /// @inheritdoc IInferenceVerifier
    function bindsPayee() external pure returns (bool) {
        return false;
    }

    /// @inheritdoc IInferenceVerifier
    function verify(int256[] calldata input, int256[] calldata output, address, bytes calldata proof)
        external
        pure
        returns (bool)
    {
        return keccak256(proof) == keccak256(proofFor(input, output));
    }

    /// @inheritdoc IBatchInferenceVerifier
    function verifyBatch(int256[][] calldata inputs, int256[][] calldata outputs, address, bytes[] calldata proofs)
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
