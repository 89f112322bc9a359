// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ExactGasCall
/// @notice A call that gets exactly the gas asked for, or does not happen (as Chainlink's
///         callWithExactGas). Used for consumer callbacks, so a relayer cannot starve one
///         through the 63/64 rule to make it fail while the fulfilment stands.
library ExactGasCall {
    /// @dev Gas kept aside for the CALL itself (cold account access, memory).
    uint256 internal constant CALL_RESERVE = 5_000;

    /// @return enough False when the transaction cannot provide `gasAmount` (nothing called:
    ///         the caller reverts with its own error).
    /// @return success Whether the call succeeded; false for a target without code. Return
    ///         data is never copied, so a target cannot grief with it.
    function call(address target, uint32 gasAmount, bytes memory data) internal returns (bool enough, bool success) {
        assembly {
            let g := gas()
            if gt(g, CALL_RESERVE) {
                g := sub(g, CALL_RESERVE)
                enough := gt(sub(g, div(g, 64)), gasAmount)
            }
        }
        if (!enough) return (false, false);
        // Code can be gone by call time (deployed-and-destroyed in one transaction).
        if (target.code.length == 0) return (true, false);
        assembly {
            success := call(gasAmount, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
    }
}

/// @title SignedRange
/// @notice The signed fixed-point range of the registry: -(2**(bits-1)) <= v <= 2**(bits-1) - 1.
library SignedRange {
    /// @return The index of the first value outside the range, or type(uint256).max.
    function firstOutOfRange(int256[] calldata values, uint16 bits) internal pure returns (uint256) {
        int256 hi = int256((uint256(1) << (bits - 1)) - 1);
        int256 lo = -hi - 1;
        for (uint256 i; i < values.length; ++i) {
            if (values[i] < lo || values[i] > hi) return i;
        }
        return type(uint256).max;
    }
}
