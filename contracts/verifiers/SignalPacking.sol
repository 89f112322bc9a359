// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SignalPacking
/// @notice Word arithmetic of packed public signals (oracle/circuits/packing.py and payee.py): a
///         value v of b signed bits becomes u = v + 2^(b-1) in [0, 2^b); a word holds up to
///         floor(253 / b) of them, little-endian by index. The 160-bit payee sits above the values
///         of the last output word when they leave room, else in a word of its own after it.
library SignalPacking {
    /// @dev Bits per word: below log2 of the BN254 scalar field order (~253.6), so every word is
    ///      a canonical field element.
    uint256 internal constant WORD_BITS = 253;
    /// @dev Bits of a payee address.
    uint256 internal constant PAYEE_BITS = 160;

    /// @notice A bit width of 0 or more than 253 cannot be packed.
    error InvalidPackingBits(uint256 bits);

    /// @dev Words needed for n values of `bits` bits; reverts on an unpackable width.
    function words(uint256 n, uint256 bits) internal pure returns (uint256) {
        if (bits == 0 || bits > WORD_BITS) revert InvalidPackingBits(bits);
        uint256 k = WORD_BITS / bits;
        return (n + k - 1) / k;
    }

    /// @dev Bits used by the values of the last of the words holding n values of `bits` bits.
    function lastWordBits(uint256 n, uint256 bits) internal pure returns (uint256) {
        uint256 k = WORD_BITS / bits;
        return (n - (words(n, bits) - 1) * k) * bits;
    }

    /// @dev True when the payee needs a word of its own after n output values of `bits` bits.
    function payeeOwnWord(uint256 n, uint256 bits) internal pure returns (bool) {
        return lastWordBits(n, bits) + PAYEE_BITS > WORD_BITS;
    }

    /// @dev ORs the packing of `values` (`bits` wide each) into dst[start..]. Returns values.length
    ///      when every value is in range, else the index of the first that is not (packing is
    ///      injective only on in-range values: an out-of-range one would carry into its neighbour).
    function packInto(uint256[] memory dst, uint256 start, int256[] calldata values, uint256 bits)
        internal
        pure
        returns (uint256)
    {
        uint256 k = WORD_BITS / bits;
        int256 half = int256(1 << (bits - 1));
        uint256 n = values.length;
        // No overflow: bits <= 253, i < n, and v + half is computed only for |v| <= half.
        unchecked {
            for (uint256 i; i < n; ++i) {
                int256 v = values[i];
                if (v < -half || v >= half) return i;
                // v + half is in [0, 2^bits): no carry into the next value's bits.
                dst[start + i / k] |= uint256(v + half) << (bits * (i % k));
            }
        }
        return n;
    }
}
