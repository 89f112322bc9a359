// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SignedRange
/// @notice The signed fixed-point range of the registry: -(2**(bits-1)) <= v <= 2**(bits-1) - 1.
///         One rule for every contract that checks inputs or outputs against a model's bit
///         widths (InferenceOracle, InferenceCheck).
library SignedRange {
    /// @notice The bounds of a `bits`-bit signed value.
    /// @param bits The model's bit width (1 to 256).
    /// @return lo -(2**(bits-1)).
    /// @return hi 2**(bits-1) - 1.
    function bounds(uint16 bits) internal pure returns (int256 lo, int256 hi) {
        hi = int256((uint256(1) << (bits - 1)) - 1);
        // hi >= 0, so -hi - 1 >= type(int256).min: no overflow to check.
        unchecked {
            lo = -hi - 1;
        }
    }

    /// @notice The first value outside the `bits`-bit signed range.
    /// @param values The values to check.
    /// @param bits The model's bit width (1 to 256).
    /// @return The index of the first value outside the range, or type(uint256).max.
    function firstOutOfRange(int256[] calldata values, uint16 bits) internal pure returns (uint256) {
        (int256 lo, int256 hi) = bounds(bits);
        for (uint256 i; i < values.length; ++i) {
            if (values[i] < lo || values[i] > hi) return i;
        }
        return type(uint256).max;
    }
}
