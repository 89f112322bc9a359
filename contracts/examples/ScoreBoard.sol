// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceConsumer} from "../IInferenceConsumer.sol";

/// @title ScoreBoard
/// @notice The smallest useful consumer: keeps the latest proven output of one model and
///         accepts it only from the oracle. A template for integrators (and the light-callback
///         row of bench/bench_gas.py).
contract ScoreBoard is IInferenceConsumer {
    /// @notice The InferenceOracle allowed to call back.
    address public immutable oracle;
    /// @notice The model whose outputs are accepted.
    bytes32 public immutable modelId;
    int256[] private _latest;
    /// @notice The request of the latest accepted output.
    uint256 public latestRequestId;

    /// @notice Only the oracle may call back.
    error NotOracle(address caller);
    /// @notice The result is not from the accepted model.
    error WrongModel(bytes32 modelId);

    /// @notice A new proven output was stored.
    event ScoresUpdated(uint256 indexed requestId, int256[] output);

    /// @param oracle_ The InferenceOracle allowed to call back.
    /// @param modelId_ The model whose outputs are accepted.
    constructor(address oracle_, bytes32 modelId_) {
        oracle = oracle_;
        modelId = modelId_;
    }

    /// @inheritdoc IInferenceConsumer
    function onInferenceResult(uint256 requestId, bytes32 modelId_, int256[] calldata output) external {
        if (msg.sender != oracle) revert NotOracle(msg.sender);
        if (modelId_ != modelId) revert WrongModel(modelId_);
        _latest = output;
        latestRequestId = requestId;
        emit ScoresUpdated(requestId, output);
    }

    /// @notice The latest proven output.
    /// @return The output, fixed-point at the model's output scale.
    function latest() external view returns (int256[] memory) {
        return _latest;
    }
}
