// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title FieldEncoding
/// @notice Signed fixed-point integers to BN254 scalar-field elements: v >= 0 maps to v,
///         v < 0 maps to r - |v| (how circuits represent negative numbers).
library FieldEncoding {
    /// @dev The BN254 scalar field order (Groth16 public signals and Halo2-KZG instances).
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice |value| is not below r/2, so its field encoding would collide with another value's.
    error ValueOutsideField(int256 value);

    /// @notice The field element of `v`: v itself, or r - |v| when negative.
    /// @param v A signed value with |v| below r/2 (reverts with ValueOutsideField otherwise).
    /// @return The field element.
    function toField(int256 v) internal pure returns (uint256) {
        // |v| must be below r/2, else the encoding of v and of some other value would collide.
        if (v >= 0) {
            if (uint256(v) > R / 2) revert ValueOutsideField(v);
            return uint256(v);
        }
        if (v == type(int256).min || uint256(-v) > R / 2) revert ValueOutsideField(v);
        return R - uint256(-v);
    }
}
