// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICrossChainConsumer} from "../../crosschain/ICrossChainConsumer.sol";
import {CrossChainInbox} from "../../crosschain/CrossChainInbox.sol";

/// @notice Records the gas it had at entry and the last result.
contract RecordingCrossChainConsumer is ICrossChainConsumer {
    uint256 public gasAtEntry;
    uint64 public lastSrcChainId;
    uint256 public lastRequestId;
    bytes32 public lastModelId;
    int256[] internal _lastInput;
    int256[] internal _lastOutput;
    uint256 public calls;

    function onCrossChainResult(
        uint64 srcChainId,
        uint256 requestId,
        bytes32 modelId,
        int256[] calldata input,
        int256[] calldata output
    ) external {
        uint256 g = gasleft();
        gasAtEntry = g;
        lastSrcChainId = srcChainId;
        lastRequestId = requestId;
        lastModelId = modelId;
        _lastInput = input;
        _lastOutput = output;
        ++calls;
    }

    function lastInput() external view returns (int256[] memory) {
        return _lastInput;
    }

    function lastOutput() external view returns (int256[] memory) {
        return _lastOutput;
    }
}

/// @notice Always reverts.
contract RevertingCrossChainConsumer is ICrossChainConsumer {
    error NoThanks();

    function onCrossChainResult(uint64, uint256, bytes32, int256[] calldata, int256[] calldata) external pure {
        revert NoThanks();
    }
}

/// @notice From its callback, tries to deliver another message through the inbox (must fail
///         with ReentrantCall); records the error.
contract ReentrantCrossChainConsumer is ICrossChainConsumer {
    CrossChainInbox public immutable inbox;
    bytes4 public reentryErr;
    bool public called;
    bytes internal _call;

    constructor(CrossChainInbox inbox_) {
        inbox = inbox_;
    }

    function arm(bytes calldata deliverCall) external {
        _call = deliverCall;
    }

    function onCrossChainResult(uint64, uint256, bytes32, int256[] calldata, int256[] calldata) external {
        called = true;
        (bool ok, bytes memory ret) = address(inbox).call(_call);
        if (!ok) reentryErr = bytes4(ret);
    }
}

/// @notice A NAIVE consumer: it trusts every result the inbox hands it and counts them per
///         (source chain, request id), as one that paid out per result would. The inbox must
///         never hand it the same request's result twice.
contract NaiveCountingConsumer is ICrossChainConsumer {
    mapping(uint64 srcChainId => mapping(uint256 requestId => uint256)) public seen;

    /// @inheritdoc ICrossChainConsumer
    function onCrossChainResult(uint64 srcChainId, uint256 requestId, bytes32, int256[] calldata, int256[] calldata)
        external
    {
        ++seen[srcChainId][requestId];
    }
}
