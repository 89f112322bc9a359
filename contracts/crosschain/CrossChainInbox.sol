// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ModelRegistry} from "../ModelRegistry.sol";
import {ICrossChainConsumer} from "./ICrossChainConsumer.sol";
import {InferenceCheck} from "../utils/InferenceCheck.sol";
import {ReentrancyGuardTransient} from "../utils/ReentrancyGuardTransient.sol";
import {ExactGasCall} from "../utils/ExactGasCall.sol";

/// @title CrossChainInbox
/// @notice The destination end of a cross-chain request: anyone may deliver the output and
///         proof of a request made on another chain; this chain verifies the SAME proof with
///         its own registry and verifier, then calls the consumer with exactly the requested
///         gas. No bridge and no trusted messenger: this chain learns that output = model(input)
///         and nothing else about the source request (docs/cross-chain.md, trust model).
/// @dev Replay protection covers exactly what the consumer sees: the key is the hash of
///      (srcChainId, requestId, modelId, input, consumer), so a consumer is handed one result at
///      most once per (source chain, request id, model, input) whatever source oracle or gas
///      limit a deliverer names (the circuit is deterministic: one input, one output). A griefer
///      who delivers some OTHER valid proof under a request id (another input) cannot burn that
///      id for the honest delivery, and a delivery whose callback fails (e.g. a griefer's tiny
///      gas limit) is not recorded, so the honest one still goes through.
///      There is no owner and nothing to configure besides the registry.
contract CrossChainInbox is InferenceCheck, ReentrancyGuardTransient {
    /// @notice A delivered message (one storage slot).
    struct Delivery {
        address relayer;
        uint64 deliveredAt;
    }

    /// @notice A delivery's fields besides input, output and proof.
    struct Message {
        uint64 srcChainId; // chain the request was made on (not this one)
        address srcOracle; // the InferenceOracle it was made on (informational: not in the key)
        uint256 requestId; // the request id on srcOracle
        bytes32 modelId; // registered on this chain under the same id
        address consumer; // receives onCrossChainResult
        uint32 gasLimit; // exact callback gas (the request's dstCallbackGasLimit)
        address payee; // the payee the proof was made for on the source chain (no fee here)
    }

    /// @notice Largest callback gas limit a delivery may name (the source oracle's limit).
    uint32 public constant MAX_CALLBACK_GAS = 2_500_000;

    /// @notice Delivered messages by `deliveryKey`.
    mapping(bytes32 key => Delivery) public deliveries;

    /// @notice This result was already handed to this consumer for this source request.
    error AlreadyDelivered(uint64 srcChainId, uint256 requestId, address consumer);
    /// @notice The source chain id is 0 or this chain.
    error InvalidSourceChain(uint64 srcChainId);
    /// @notice A delivery needs a consumer.
    error MissingConsumer();
    /// @notice The consumer has no code (yet): the message stays deliverable.
    error ConsumerNotContract(address consumer);
    /// @notice A delivery needs a non-zero callback gas limit.
    error MissingCallbackGas(address consumer);
    /// @notice The callback gas asked for is above MAX_CALLBACK_GAS.
    error CallbackGasTooHigh(uint32 requested, uint32 max);

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
    /// @param message Source chain, source oracle, request id, model, consumer, callback gas and
    ///        the payee the proof names.
    /// @param input The request's input, fixed-point at the model's input scale.
    /// @param output The model output, fixed-point at the model's output scale.
    /// @param proof The proof in the model's adapter encoding (the one fulfilled on the source).
    function deliver(Message calldata message, int256[] calldata input, int256[] calldata output, bytes calldata proof)
        external
    {
        _deliver(message, input, output, proof);
    }

    /// @notice The replay key of a delivery: what the consumer's callback sees, and the consumer.
    /// @param srcChainId Source chain.
    /// @param requestId Source request id.
    /// @param modelId The model.
    /// @param input The input.
    /// @param consumer The consumer.
    /// @return The key under which `deliveries` records the message.
    function deliveryKey(
        uint64 srcChainId,
        uint256 requestId,
        bytes32 modelId,
        int256[] calldata input,
        address consumer
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(srcChainId, requestId, modelId, keccak256(abi.encode(input)), consumer));
    }

    /// @notice Whether a message was delivered.
    /// @param key A `deliveryKey`.
    /// @return True once delivered with a successful callback.
    function isDelivered(bytes32 key) external view returns (bool) {
        return deliveries[key].relayer != address(0);
    }

    /// @dev Checks, replay record, then the consumer callback (checks-effects-interactions);
    ///      a failed callback changed nothing in the consumer, so its record is dropped again
    ///      (the nonReentrant guard keeps the consumer from re-entering meanwhile).
    function _deliver(Message calldata m, int256[] calldata input, int256[] calldata output, bytes calldata proof)
        private
        nonReentrant
    {
        bytes32 key = _checkMessage(m, input);
        _verifyInference(m.modelId, input, output, m.payee, proof);
        deliveries[key] = Delivery(msg.sender, uint64(block.timestamp));
        bytes memory data = _callbackData(m, input, output);
        // Exactly `m.gasLimit` for the consumer, or the delivery reverts
        // (ExactGasCall.InsufficientGasForCallback).
        bool ok = ExactGasCall.call(m.requestId, m.consumer, m.gasLimit, data);
        if (!ok) delete deliveries[key];
        _emitDelivered(key, m, output, ok);
    }

    function _callbackData(Message calldata m, int256[] calldata input, int256[] calldata output)
        private
        pure
        returns (bytes memory)
    {
        return abi.encodeCall(
            ICrossChainConsumer.onCrossChainResult, (m.srcChainId, m.requestId, m.modelId, input, output)
        );
    }

    function _emitDelivered(bytes32 key, Message calldata m, int256[] calldata output, bool ok) private {
        emit CrossChainDelivered(
            key, m.srcChainId, m.requestId, m.srcOracle, m.modelId, m.consumer, output, msg.sender, ok
        );
    }

    /// @dev Cheap checks first, then the replay key; returns the key.
    function _checkMessage(Message calldata m, int256[] calldata input) private view returns (bytes32 key) {
        if (m.srcChainId == 0 || m.srcChainId == block.chainid) revert InvalidSourceChain(m.srcChainId);
        if (m.consumer == address(0)) revert MissingConsumer();
        if (m.gasLimit == 0) revert MissingCallbackGas(m.consumer);
        if (m.gasLimit > MAX_CALLBACK_GAS) revert CallbackGasTooHigh(m.gasLimit, MAX_CALLBACK_GAS);
        // Reverting (rather than recording a failed callback) keeps the message deliverable
        // once the consumer is deployed: the source chain could not check this.
        if (m.consumer.code.length == 0) revert ConsumerNotContract(m.consumer);
        key = deliveryKey(m.srcChainId, m.requestId, m.modelId, input, m.consumer);
        if (deliveries[key].relayer != address(0)) revert AlreadyDelivered(m.srcChainId, m.requestId, m.consumer);
    }
}
