// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Decimal
/// @notice uint256 -> decimal string (for ABI signatures built at deploy time).
library Decimal {
    /// @notice `v` in decimal digits, without leading zeros ("0" for 0).
    /// @param v The number.
    /// @return The digits.
    function toString(uint256 v) internal pure returns (string memory) {
        if (v == 0) return "0";
        uint256 len;
        for (uint256 t = v; t != 0; t /= 10) {
            ++len;
        }
        bytes memory s = new bytes(len);
        for (; v != 0; v /= 10) {
            s[--len] = bytes1(uint8(48 + v % 10));
        }
        return string(s);
    }
}
