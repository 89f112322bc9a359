// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ModelRegistry} from "./ModelRegistry.sol";
import {ICrossChainConsumer} from "./ICrossChainConsumer.sol";
import {InferenceCheck} from "./utils/InferenceCheck.sol";
import {ReentrancyGuard} from "./utils/ReentrancyGuard.sol";
import {ExactGasCall} from "./utils/CallLib.sol";

/// @title CrossChainInbox
/// @notice The destination end of a cross-chain request: anyone may deliver the output and
///         proof of a request made on another chain; this chain verifies the SAME proof with
///         its own registry and verifier, then calls the consumer with exactly the requested
///         gas. No bridge and no trusted messenger: this chain learns that output = model(input)
///         and nothing else about the source request (docs/cross-chain.md, trust model).
/// @dev Replay protection is per message: the key is the hash of (srcChainId, srcOracle,
///      requestId, modelId, input, consumer, gasLimit), so the same request is delivered at most
///      once, and a griefer who delivers some OTHER valid proof under a request id (to the same
///      consumer, or with another gas limit) cannot burn that id for the honest delivery.
///      There is no owner and nothing to configure besides the registry.
contract CrossChainInbox is InferenceCheck, ReentrancyGuard {
    /// @notice A delivered message (one storage slot).
    struct Delivery {
        address relayer;
        uint64 deliveredAt;
    }

    /// @dev A delivery's fields besides input, output and proof.
    struct Message {
        uint64 srcChainId;
        address srcOracle;
        uint256 requestId;
        bytes32 modelId;
        address consumer;
        uint32 gasLimit;
    }

    uint32 public constant MAX_CALLBACK_GAS = 2_500_000;

    /// @notice Delivered messages by `deliveryKey`.
    mapping(bytes32 key => Delivery) public deliveries;

    error AlreadyDelivered(uint64 srcChainId, address srcOracle, uint256 requestId);
    error InvalidSourceChain(uint64 srcChainId);
    error MissingConsumer();
    error ConsumerNotContract(address consumer);
    error MissingCallbackGas(address consumer);
    error CallbackGasTooHigh(uint32 requested, uint32 max);
    error InsufficientGasForCallback(uint256 requestId, uint32 callbackGasLimit);

    /// @notice A result was verified here and handed to its consumer.
    event CrossChainDelivered(
        bytes32 indexed key,
        uint64 indexed srcChainId,
        uint256 indexed requestId,
        address srcOracle,
        bytes32 modelId,
        address consumer,
        int256[] output,
        address relayer,
        bool callbackSucceeded
    );

    /// @param registry_ This chain's model registry (the model must be registered under the
    ///        same id, with the same circuit, as on the source chain).
    constructor(ModelRegistry registry_) InferenceCheck(registry_) {}

    /// @notice Delivers a source-chain request's result. Permissionless: the proof is checked
    ///         here against `input` and `output` with this chain's verifier for `modelId`, so a
    ///         wrong output can never reach the consumer. The consumer gets exactly `gasLimit`
    ///         gas; its failure is recorded in the event and does not revert the delivery.
    /// @param srcChainId Chain the request was made on (not this one).
    /// @param srcOracle The InferenceOracle the request was made on.
    /// @param requestId The request id on `srcOracle`.
    /// @param modelId The model (registered on this chain under the same id).
    /// @param input The request's input, fixed-point at the model's input scale.
    /// @param output The model output, fixed-point at the model's output scale.
    /// @param proof The proof in the model's adapter encoding (the one fulfilled on the source).
    /// @param consumer Contract that receives `onCrossChainResult`.
    /// @param gasLimit Exact gas for the consumer callback (the request's dstCallbackGasLimit).
    function deliver(
        uint64 srcChainId,
        address srcOracle,
        uint256 requestId,
        bytes32 modelId,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof,
        address consumer,
        uint32 gasLimit
    ) external {
        // Copied into memory field by field: nine parameters (three of them calldata arrays)
        // leave no stack room without via-IR.
        Message memory m;
        m.srcChainId = srcChainId;
        m.srcOracle = srcOracle;
        m.requestId = requestId;
        m.modelId = modelId;
        m.consumer = consumer;
        m.gasLimit = gasLimit;
        _deliver(m, input, output, proof);
    }

    /// @notice The replay key of a delivery message (everything but output and proof).
    /// @param srcChainId Source chain.
    /// @param srcOracle Source oracle.
    /// @param requestId Source request id.
    /// @param modelId The model.
    /// @param input The input.
    /// @param consumer The consumer.
    /// @param gasLimit The callback gas.
    /// @return The key under which `deliveries` records the message.
    function deliveryKey(
        uint64 srcChainId,
        address srcOracle,
        uint256 requestId,
        bytes32 modelId,
        int256[] calldata input,
        address consumer,
        uint32 gasLimit
    ) public pure returns (bytes32) {
        return keccak256(
            abi.encode(srcChainId, srcOracle, requestId, modelId, keccak256(abi.encode(input)), consumer, gasLimit)
        );
    }

    /// @notice Whether a message was delivered.
    /// @param key A `deliveryKey`.
    /// @return True once delivered (whatever the callback did).
    function isDelivered(bytes32 key) external view returns (bool) {
        return deliveries[key].relayer != address(0);
    }

    /// @dev Checks, replay record, then the consumer callback (checks-effects-interactions).
    function _deliver(Message memory m, int256[] calldata input, int256[] calldata output, bytes calldata proof)
        private
        nonReentrant
    {
        bytes32 key = _checkMessage(m, input);
        _verifyInference(m.modelId, input, output, proof);
        deliveries[key] = Delivery(msg.sender, uint64(block.timestamp));
        bytes memory data = _callbackData(m, input, output);
        bool ok = _callWithExactGas(m.requestId, m.gasLimit, m.consumer, data);
        _emitDelivered(key, m, output, ok);
    }

    function _callbackData(Message memory m, int256[] calldata input, int256[] calldata output)
        private
        pure
        returns (bytes memory)
    {
        return abi.encodeCall(ICrossChainConsumer.onCrossChainResult, (m.srcChainId, m.requestId, m.modelId, input, output));
    }

    function _emitDelivered(bytes32 key, Message memory m, int256[] calldata output, bool ok) private {
        emit CrossChainDelivered(key, m.srcChainId, m.requestId, m.srcOracle, m.modelId, m.consumer, output, msg.sender, ok);
    }

    /// @dev Cheap checks first, then the replay key; returns the key.
    function _checkMessage(Message memory m, int256[] calldata input) private view returns (bytes32 key) {
        if (m.srcChainId == 0 || m.srcChainId == block.chainid) revert InvalidSourceChain(m.srcChainId);
        if (m.consumer == address(0)) revert MissingConsumer();
        if (m.gasLimit == 0) revert MissingCallbackGas(m.consumer);
        if (m.gasLimit > MAX_CALLBACK_GAS) revert CallbackGasTooHigh(m.gasLimit, MAX_CALLBACK_GAS);
        // Reverting (rather than recording a failed callback) keeps the message deliverable
        // once the consumer is deployed: the source chain could not check this.
        if (m.consumer.code.length == 0) revert ConsumerNotContract(m.consumer);
        key = deliveryKey(m.srcChainId, m.srcOracle, m.requestId, m.modelId, input, m.consumer, m.gasLimit);
        if (deliveries[key].relayer != address(0)) revert AlreadyDelivered(m.srcChainId, m.srcOracle, m.requestId);
    }

    /// @dev Exactly `gasAmount` for the consumer, or the delivery reverts (ExactGasCall).
    function _callWithExactGas(uint256 requestId, uint32 gasAmount, address target, bytes memory data)
        private
        returns (bool success)
    {
        bool enough;
        (enough, success) = ExactGasCall.call(target, gasAmount, data);
        if (!enough) revert InsufficientGasForCallback(requestId, gasAmount);
    }
}
