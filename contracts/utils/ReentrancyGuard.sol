// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ReentrancyGuard
/// @notice A reentrancy lock in transient storage (EIP-1153): ~200 gas instead of ~5 k, and it
///         can never be left locked by a reverted transaction.
abstract contract ReentrancyGuard {
    // keccak256("poi.reentrancy.guard") - 1
    bytes32 private constant _SLOT = 0x6f3c5d8f0a1b8e2a5c6a45a2e9d5b8c9f7c8e4a3b2d1c0f9e8d7c6b5a4938271;

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
