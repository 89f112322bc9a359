// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICrossChainConsumer} from "../crosschain/ICrossChainConsumer.sol";
import {Owned} from "../utils/Owned.sol";

/// @title CommittedInputConsumer
/// @notice Reference destination-chain consumer that does what docs/cross-chain.md asks: it
///         accepts a result only from its inbox, only for the model it trusts, and only for an
///         input it committed to beforehand (the inbox proves output = model(input), not that
///         anyone on the source chain asked for it). Each commitment is used once.
contract CommittedInputConsumer is ICrossChainConsumer, Owned {
    /// @notice The CrossChainInbox allowed to call `onCrossChainResult`.
    address public immutable inbox;
    /// @notice The only model whose results are accepted.
    bytes32 public immutable modelId;

    /// @notice keccak256(abi.encode(input)) => awaiting a result.
    mapping(bytes32 inputHash => bool) public expected;
    /// @notice keccak256(abi.encode(input)) => the accepted output.
    mapping(bytes32 inputHash => int256[]) private _outputs;
    /// @notice Number of results accepted.
    uint256 public accepted;

    /// @notice Only the inbox may deliver results.
    error NotInbox(address caller);
    /// @notice The result is not from the trusted model.
    error WrongModel(bytes32 modelId);
    /// @notice No open commitment to this input (never expected, or already used).
    error UnexpectedInput(bytes32 inputHash);

    /// @notice The owner committed to an input.
    event InputExpected(bytes32 indexed inputHash, int256[] input);
    /// @notice A result for a committed input was accepted (its commitment is used up).
    event ResultAccepted(bytes32 indexed inputHash, uint64 srcChainId, uint256 requestId, int256[] output);

    /// @param inbox_ This chain's CrossChainInbox.
    /// @param modelId_ The model to trust.
    /// @param owner_ Who may commit inputs.
    constructor(address inbox_, bytes32 modelId_, address owner_) Owned(owner_) {
        inbox = inbox_;
        modelId = modelId_;
    }

    /// @notice Commits to an input whose result will be requested (on any chain).
    /// @param input The input, fixed-point at the model's input scale.
    function expect(int256[] calldata input) external onlyOwner {
        bytes32 h = keccak256(abi.encode(input));
        expected[h] = true;
        emit InputExpected(h, input);
    }

    /// @inheritdoc ICrossChainConsumer
    function onCrossChainResult(
        uint64 srcChainId,
        uint256 requestId,
        bytes32 modelId_,
        int256[] calldata input,
        int256[] calldata output
    ) external {
        if (msg.sender != inbox) revert NotInbox(msg.sender);
        if (modelId_ != modelId) revert WrongModel(modelId_);
        bytes32 h = keccak256(abi.encode(input));
        if (!expected[h]) revert UnexpectedInput(h);
        expected[h] = false;
        _outputs[h] = output;
        ++accepted;
        emit ResultAccepted(h, srcChainId, requestId, output);
    }

    /// @notice The accepted output for `input` (empty when none).
    /// @param input The input.
    /// @return The output.
    function outputOf(int256[] calldata input) external view returns (int256[] memory) {
        return _outputs[keccak256(abi.encode(input))];
    }
}
