// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ExactGasCall
/// @notice A call that gets exactly the gas asked for, or does not happen (as Chainlink's
///         callWithExactGas). Used for consumer callbacks (InferenceOracle, CrossChainInbox),
///         so a relayer cannot starve one through the 63/64 rule to make it fail while the
///         fulfilment stands.
library ExactGasCall {
    /// @dev Gas kept aside for the CALL itself (cold account access, memory).
    uint256 internal constant CALL_RESERVE = 5_000;

    /// @notice The transaction cannot give the callback its gas after the 63/64 rule (nothing
    ///         was called, and the whole fulfilment or delivery reverts).
    /// @param requestId The request whose callback could not get its gas.
    /// @param callbackGasLimit The gas the callback was to get.
    error InsufficientGasForCallback(uint256 requestId, uint32 callbackGasLimit);

    /// @notice Calls `target` with exactly `gasAmount` gas, or reverts with
    ///         InsufficientGasForCallback(requestId, gasAmount) when the transaction cannot
    ///         provide it.
    /// @param requestId The request the callback is for (only used in the revert).
    /// @param target The consumer.
    /// @param gasAmount Exact gas for the call.
    /// @param data The calldata.
    /// @return success Whether the call succeeded; false for a target without code. Return
    ///         data is never copied, so a target cannot grief with it.
    function call(uint256 requestId, address target, uint32 gasAmount, bytes memory data)
        internal
        returns (bool success)
    {
        bool enough;
        assembly {
            let g := gas()
            if gt(g, CALL_RESERVE) {
                g := sub(g, CALL_RESERVE)
                enough := gt(sub(g, div(g, 64)), gasAmount)
            }
        }
        if (!enough) revert InsufficientGasForCallback(requestId, gasAmount);
        // Code can be gone by call time (deployed-and-destroyed in one transaction).
        if (target.code.length == 0) return false;
        assembly {
            success := call(gasAmount, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
    }
}
