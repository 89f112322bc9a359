// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ReentrancyGuard
/// @notice A reentrancy lock in transient storage (EIP-1153): ~200 gas instead of ~5 k, and it
///         can never be left locked by a reverted transaction.
abstract contract ReentrancyGuard {
    // keccak256("poi.reentrancy.guard") - 1
    bytes32 private constant _SLOT = 0x341c84d64332b937d50f8560b25e9e5fa7e244b73fd5a36e17e6433dfcbc6fd0;

    error ReentrantCall();

    modifier nonReentrant() {
        bytes32 slot = _SLOT;
        uint256 locked;
        assembly {
            locked := tload(slot)
        }
        if (locked != 0) revert ReentrantCall();
        assembly {
            tstore(slot, 1)
        }
        _;
        assembly {
            tstore(slot, 0)
        }
    }
}
