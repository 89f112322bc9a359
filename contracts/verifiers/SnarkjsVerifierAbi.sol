// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Decimal} from "../utils/Decimal.sol";

/// @title SnarkjsVerifierAbi
/// @notice The ABI of a snarkjs-generated Groth16 verifier, whose public signals are a
///         fixed-size array: `verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[n])`.
library SnarkjsVerifierAbi {
    /// @notice The `verifyProof` selector of a verifier with `nSignals` public signals.
    /// @param nSignals The number of public signals.
    /// @return The 4-byte selector.
    function verifyProofSelector(uint256 nSignals) internal pure returns (bytes4) {
        return bytes4(
            keccak256(
                abi.encodePacked(
                    "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[", Decimal.toString(nSignals), "])"
                )
            )
        );
    }
}
