// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ModelRegistry} from "./ModelRegistry.sol";
import {IInferenceVerifier, IBatchInferenceVerifier} from "./Verifier.sol";
import {IInferenceConsumer} from "./IInferenceConsumer.sol";
import {Owned} from "./utils/Owned.sol";
import {ReentrancyGuardTransient} from "./utils/ReentrancyGuardTransient.sol";
import {ExactGasCall} from "./utils/ExactGasCall.sol";
import {SignedRange} from "./utils/SignedRange.sol";
import {InferenceErrors} from "./utils/InferenceErrors.sol";

/// @title InferenceOracle
/// @notice Requests for AI inferences, paid in advance and fulfilled by anyone who brings a
///         zero-knowledge proof that the chain verifies. The proof is checked against the
///         request's own input and the claimed output, so no oracle operator, miner or relayer
///         has to be trusted for correctness.
/// @dev Fees: the exact quote is escrowed; any overpayment is credited to the payer's
///      withdrawable balance (pull payment). The fee of a fulfilled request is credited to the
///      payee its proof names (not msg.sender: a copied pending fulfilment pays the original
///      payee, and a changed payee needs a new proof); for a model whose verifier cannot bind a
///      payee, the fulfilment must have been committed in an earlier block (commit-reveal).
///      An expired request's fee goes back to the requester, and so does the fee of a request
///      whose verifier was retired (upgrade or freeze): a request is only ever fulfilled by the
///      verifier registered when it was made.
///      Invariant: address(this).balance == totalEscrowed + totalCredits.
///      Cross-chain: `requestInferenceTo` asks for a result to be delivered to a consumer on
///      another chain (docs/cross-chain.md). The request is fulfilled here exactly like a plain
///      one (no callback); the destination chain verifies the same proof on its own.
contract InferenceOracle is Owned, ReentrancyGuardTransient, InferenceErrors {
    enum Status {
        None,
        Pending,
        Fulfilled,
        Refunded
    }

    /// @dev Three storage slots; the input is packed separately at the model's bit width.
    struct Request {
        address requester;
        uint40 deadline; // at most MAX_DEADLINE_DELAY ahead: 40 bits last until year 36812
        uint24 verifierVersion; // the model's verifier version when the request was made
        uint32 callbackGasLimit;
        address callback;
        uint88 fee;
        Status status;
        bytes32 modelId;
    }

    /// @notice What `getRequest` returns.
    struct RequestView {
        uint256 requestId;
        bytes32 modelId;
        address requester;
        address callback;
        uint32 callbackGasLimit;
        uint64 deadline;
        uint256 fee;
        Status status;
        int256[] input;
    }

    /// @notice Where a cross-chain request's result goes (one storage slot).
    struct CrossChainTarget {
        uint64 dstChainId;
        address dstConsumer;
        uint32 dstCallbackGasLimit;
    }

    /// @dev Working state of one fulfillBatch call.
    struct Batch {
        bool[] ok;
        int256[][] inputs;
        uint256 valid;
        address verifier;
        bool sameModel;
        bool bindsPayee;
    }

    /// @notice Largest callback gas limit a request may ask for (local or destination callback).
    uint32 public constant MAX_CALLBACK_GAS = 2_500_000;
    /// @notice Least time, in seconds, from a request to its deadline.
    uint64 public constant MIN_DEADLINE_DELAY = 30;
    /// @notice Most time, in seconds, from a request to its deadline.
    uint64 public constant MAX_DEADLINE_DELAY = 30 days;
    /// @notice Fulfilment gas outside verification and callback, priced into the fee quote.
    ///         Measured: ~60 k execution + 21 k transaction base + calldata.
    uint256 public constant FULFILL_OVERHEAD_GAS = 90_000;
    /// @notice Destination-chain delivery gas outside verification and callback, priced into the
    ///         fee of a cross-chain request (CrossChainInbox.deliver: calldata, replay record,
    ///         event, transaction base). Measured 84 k for the 8-input risk model
    ///         (bench/bench_crosschain.py); the margin covers larger inputs and outputs.
    uint256 public constant DELIVERY_OVERHEAD_GAS = 110_000;

    /// @notice The registry whose models (and their verifiers) this oracle serves.
    ModelRegistry public immutable registry;

    /// @notice Wei per unit of gas a relayer is paid for verification and callback gas.
    uint256 public gasPrice;
    /// @notice The id the next request gets (ids start at 1).
    uint256 public nextRequestId = 1;
    /// @notice Sum of the fees of pending requests.
    uint256 public totalEscrowed;
    /// @notice Sum of all withdrawable balances.
    uint256 public totalCredits;
    /// @notice Withdrawable balance per account (relayer fees, overpayments, failed refunds).
    mapping(address account => uint256) public balances;

    mapping(uint256 requestId => Request) private _requests;
    mapping(uint256 requestId => uint256[]) private _inputs;
    /// @notice Chains that `requestInferenceTo` may name (owner-managed).
    mapping(uint64 chainId => bool) public isDestination;
    mapping(uint256 requestId => CrossChainTarget) private _crossChain;
    /// @notice Block in which a fulfilment commitment was first made (commit-reveal for models
    ///         whose verifier does not bind the payee); see `fulfillmentCommitment`.
    mapping(bytes32 commitment => uint256 blockNumber) public commitments;

    /// @notice The callback gas asked for is above MAX_CALLBACK_GAS.
    error CallbackGasTooHigh(uint32 requested, uint32 max);
    /// @notice A callback needs a non-zero gas limit.
    error MissingCallbackGas(address callback);
    /// @notice The callback address has no code (a typo would "succeed" silently).
    error CallbackNotContract(address callback);
    /// @notice The deadline is less than MIN_DEADLINE_DELAY ahead.
    error DeadlineTooSoon(uint64 deadline, uint64 earliest);
    /// @notice The deadline is more than MAX_DEADLINE_DELAY ahead.
    error DeadlineTooFar(uint64 deadline, uint64 latest);
    /// @notice Less was paid than the fee quote.
    error InsufficientFee(uint256 required, uint256 paid);
    /// @notice The fee does not fit the request's 88-bit fee field.
    error FeeTooLarge(uint256 fee);
    /// @notice No request under this id.
    error UnknownRequest(uint256 requestId);
    /// @notice The request was fulfilled already.
    error AlreadyFulfilled(uint256 requestId);
    /// @notice The request was refunded already.
    error AlreadyRefunded(uint256 requestId);
    /// @notice The request's deadline has passed.
    error RequestExpired(uint256 requestId, uint64 deadline);
    /// @notice Refund asked before the deadline of a request whose verifier is still current.
    error DeadlineNotReached(uint256 requestId, uint64 deadline);
    /// @notice The proof does not verify for the request's input, this output and this payee.
    error InvalidProof(uint256 requestId);
    /// @notice fulfillBatch arrays differ in length.
    error BatchLengthMismatch(uint256 ids, uint256 outputs, uint256 proofs);
    /// @notice The caller has no balance to withdraw.
    error NothingToWithdraw(address account);
    /// @notice The ETH transfer of a withdrawal failed.
    error TransferFailed(address to, uint256 amount);
    /// @notice The destination chain is not enabled.
    error UnknownDestination(uint64 chainId);
    /// @notice 0 or this chain cannot be a destination.
    error InvalidDestination(uint64 chainId);
    /// @notice A cross-chain request needs a destination consumer.
    error MissingDestinationConsumer();
    /// @notice The verifier the request was made under was retired (upgrade or freeze): it can
    ///         no longer be fulfilled, only refunded.
    error RequestVerifierRetired(uint256 requestId);
    /// @notice Fees cannot be paid to address(0).
    error ZeroPayee();
    /// @notice The model's verifier does not bind the payee, and this fulfilment was not
    ///         committed (`commitFulfillment`) in an earlier block.
    error FulfillmentNotCommitted(uint256 requestId);

    /// @notice A request was made; its fee is escrowed until fulfilment or refund.
    event InferenceRequested(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed requester,
        int256[] input,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline,
        uint256 fee
    );
    /// @notice A request was fulfilled; its fee was credited to `payee` (the payee the proof names).
    event InferenceFulfilled(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        int256[] output,
        address indexed payee,
        bool callbackSucceeded
    );
    /// @notice A fulfilment commitment was recorded (commit-reveal).
    event FulfillmentCommitted(bytes32 indexed commitment, address indexed committer);
    /// @notice A batch entry that was not fulfilled; `reason` is the selector of the error
    ///         `fulfill` would have reverted with (e.g. InvalidProof.selector).
    event FulfillmentSkipped(uint256 indexed requestId, bytes4 reason);
    /// @notice A request's fee went back to its requester (sent, or credited when the transfer failed).
    event InferenceRefunded(uint256 indexed requestId, address indexed requester, uint256 amount);
    /// @notice `amount` was added to `account`'s withdrawable balance.
    event Credited(address indexed account, uint256 amount);
    /// @notice `account` withdrew its whole balance, `amount`.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice The wei per gas used in fee quotes changed.
    event GasPriceChanged(uint256 gasPrice);
    /// @notice Emitted right after `InferenceRequested` (whose callback is address(0)) for a
    ///         request whose result is to be delivered on `dstChainId`.
    event CrossChainRequested(
        uint256 indexed requestId, uint64 indexed dstChainId, address indexed dstConsumer, uint32 dstCallbackGasLimit
    );
    /// @notice A destination chain was enabled or disabled for `requestInferenceTo`.
    event DestinationChanged(uint64 indexed chainId, bool allowed);

    /// @param registry_ The model registry.
    /// @param initialOwner Owner allowed to set the fee gas price.
    /// @param gasPrice_ Initial wei per gas used in fee quotes.
    constructor(ModelRegistry registry_, address initialOwner, uint256 gasPrice_) Owned(initialOwner) {
        registry = registry_;
        gasPrice = gasPrice_;
        emit GasPriceChanged(gasPrice_);
    }

    // ------------------------------------------------------------------ requests

    /// @notice Asks for an inference of `modelId` on `input`. The fee (see `quoteFee`) is
    ///         escrowed until fulfilment or refund; any excess is credited to the sender.
    /// @param modelId A registered, unfrozen model.
    /// @param input Fixed-point integers at the model's input scale, within its input range.
    /// @param callback Contract to receive `onInferenceResult`, or address(0) for none.
    /// @param callbackGasLimit Exact gas the callback will get (0 when there is no callback).
    /// @param deadline Unix time after which the request can no longer be fulfilled.
    /// @return requestId The new request's id.
    function requestInference(
        bytes32 modelId,
        int256[] calldata input,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline
    ) external payable returns (uint256 requestId) {
        uint256 fee;
        (requestId, fee) = _request(modelId, input, callback, callbackGasLimit, deadline, 0);
        if (msg.value > fee) _credit(msg.sender, msg.value - fee);
    }

    /// @notice Asks for an inference whose result is delivered to `dstConsumer` on another
    ///         chain. It is fulfilled here like a plain request without callback (and emits the
    ///         standard `InferenceRequested` with callback address(0)), then a relayer delivers
    ///         the same output and proof to the destination chain's CrossChainInbox, which
    ///         verifies the proof itself. The fee (see `quoteFeeTo`) also pays for the delivery;
    ///         the fulfilling relayer is paid when it fulfils here, which this chain cannot
    ///         tie to the delivery actually happening (docs/cross-chain.md, trust model).
    /// @param dstChainId A destination chain the owner enabled (`setDestination`).
    /// @param dstConsumer Contract on the destination chain to receive `onCrossChainResult`.
    /// @param modelId A registered, unfrozen model (registered under the same id on the destination).
    /// @param input Fixed-point integers at the model's input scale, within its input range.
    /// @param dstCallbackGasLimit Exact gas the destination callback will get (non-zero).
    /// @param deadline Unix time after which the request can no longer be fulfilled here.
    /// @return requestId The new request's id.
    function requestInferenceTo(
        uint64 dstChainId,
        address dstConsumer,
        bytes32 modelId,
        int256[] calldata input,
        uint32 dstCallbackGasLimit,
        uint64 deadline
    ) external payable returns (uint256 requestId) {
        if (!isDestination[dstChainId]) revert UnknownDestination(dstChainId);
        if (dstConsumer == address(0)) revert MissingDestinationConsumer();
        if (dstCallbackGasLimit == 0) revert MissingCallbackGas(dstConsumer);
        if (dstCallbackGasLimit > MAX_CALLBACK_GAS) revert CallbackGasTooHigh(dstCallbackGasLimit, MAX_CALLBACK_GAS);
        uint256 fee;
        (requestId, fee) = _request(modelId, input, address(0), 0, deadline, dstCallbackGasLimit);
        _crossChain[requestId] = CrossChainTarget(dstChainId, dstConsumer, dstCallbackGasLimit);
        emit CrossChainRequested(requestId, dstChainId, dstConsumer, dstCallbackGasLimit);
        if (msg.value > fee) _credit(msg.sender, msg.value - fee);
    }

    /// @notice Fulfils a pending request with its output and a proof. Permissionless: the first
    ///         valid proof wins the fee, credited to `payee`, the fee recipient the proof was made
    ///         for (whoever sends the transaction). The consumer callback gets exactly the
    ///         requested gas; its failure is recorded in the event and does not revert the
    ///         fulfilment.
    /// @param requestId The request.
    /// @param output The model output, fixed-point at the model's output scale.
    /// @param payee The fee recipient the proof names (committed beforehand when the model's
    ///        verifier does not bind it, see `commitFulfillment`).
    /// @param proof The proof in the model's adapter encoding.
    function fulfill(uint256 requestId, int256[] calldata output, address payee, bytes calldata proof)
        external
        nonReentrant
    {
        if (payee == address(0)) revert ZeroPayee();
        Request storage r = _requests[requestId];
        ModelRegistry.Model memory m;
        {
            bytes4 err;
            (err, m) = _precheck(requestId, r, output);
            if (err != bytes4(0)) _revertWith(err, requestId, r, m, output);
        }
        if (!m.bindsPayee && !_committed(requestId, output, payee, proof)) revert FulfillmentNotCommitted(requestId);
        int256[] memory input = _unpack(_inputs[requestId], m.inputBits, m.inputSize);
        if (!IInferenceVerifier(m.verifier).verify(input, output, payee, proof)) revert InvalidProof(requestId);
        _settle(requestId, r, output, payee);
    }

    /// @notice Records a commitment to a future fulfilment (`fulfillmentCommitment`), for models
    ///         whose verifier cannot bind the payee: their `fulfill` is accepted only when its
    ///         commitment was made in an earlier block, so a bot that copies the revealed proof
    ///         from the mempool is too late to commit to its own payee. Re-committing keeps the
    ///         first block.
    /// @param commitment keccak256(abi.encode(requestId, output, payee, proof)).
    function commitFulfillment(bytes32 commitment) external {
        if (commitments[commitment] == 0) commitments[commitment] = block.number;
        emit FulfillmentCommitted(commitment, msg.sender);
    }

    /// @notice The commitment `commitFulfillment` expects for a fulfilment.
    /// @param requestId The request.
    /// @param output The output to be revealed.
    /// @param payee The fee recipient.
    /// @param proof The proof to be revealed.
    /// @return keccak256(abi.encode(requestId, output, payee, proof)).
    function fulfillmentCommitment(uint256 requestId, int256[] calldata output, address payee, bytes calldata proof)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(requestId, output, payee, proof));
    }

    /// @notice Fulfils several requests in one transaction. An entry that cannot be fulfilled
    ///         (bad proof, already fulfilled, expired, ...) is skipped with a
    ///         `FulfillmentSkipped` event; the others still go through. When every entry is
    ///         for one model whose verifier supports batches, the proofs are verified together.
    /// @param requestIds The requests.
    /// @param outputs The outputs, one per request.
    /// @param payee The fee recipient every proof names.
    /// @param proofs The proofs, one per request.
    /// @return fulfilled How many entries were fulfilled.
    function fulfillBatch(
        uint256[] calldata requestIds,
        int256[][] calldata outputs,
        address payee,
        bytes[] calldata proofs
    ) external nonReentrant returns (uint256 fulfilled) {
        uint256 n = requestIds.length;
        if (outputs.length != n || proofs.length != n) {
            revert BatchLengthMismatch(n, outputs.length, proofs.length);
        }
        if (payee == address(0)) revert ZeroPayee();
        Batch memory b = _prepareBatch(requestIds, outputs);
        bool batchVerified = b.sameModel && b.bindsPayee && _tryBatchVerify(b, outputs, payee, proofs);
        for (uint256 i; i < n; ++i) {
            if (!b.ok[i]) continue;
            uint256 id = requestIds[i];
            if (!batchVerified && !_tryVerify(id, b.inputs[i], outputs[i], payee, proofs[i])) continue;
            _settle(id, _requests[id], outputs[i], payee);
            ++fulfilled;
        }
    }

    /// @notice Returns an unfulfilled request's fee to its requester (anyone may call) once its
    ///         deadline has passed, or at once when the verifier it was made under was retired
    ///         (upgrade or freeze). If the transfer fails, the amount is credited instead.
    /// @param requestId The request.
    function refund(uint256 requestId) external nonReentrant {
        Request storage r = _requests[requestId];
        if (r.status == Status.None) revert UnknownRequest(requestId);
        if (r.status == Status.Fulfilled) revert AlreadyFulfilled(requestId);
        if (r.status == Status.Refunded) revert AlreadyRefunded(requestId);
        if (block.timestamp <= r.deadline && !_verifierRetired(r)) revert DeadlineNotReached(requestId, r.deadline);
        uint256 amount = r.fee;
        address requester = r.requester;
        r.status = Status.Refunded;
        totalEscrowed -= amount;
        emit InferenceRefunded(requestId, requester, amount);
        if (!_sendValue(requester, amount)) _credit(requester, amount);
    }

    /// @notice Withdraws the caller's whole balance (relayer fees, overpayments).
    function withdraw() external nonReentrant {
        uint256 amount = balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        balances[msg.sender] = 0;
        totalCredits -= amount;
        emit Withdrawn(msg.sender, amount);
        if (!_sendValue(msg.sender, amount)) revert TransferFailed(msg.sender, amount);
    }

    /// @notice Sets the wei-per-gas used to price verification and callback gas in fee quotes.
    /// @param gasPrice_ The new price.
    function setGasPrice(uint256 gasPrice_) external onlyOwner {
        gasPrice = gasPrice_;
        emit GasPriceChanged(gasPrice_);
    }

    /// @notice Enables or disables a destination chain for `requestInferenceTo`. Disabling
    ///         one does not affect requests already made.
    /// @param chainId The destination chain id (not 0, not this chain).
    /// @param allowed Whether new requests may name it.
    function setDestination(uint64 chainId, bool allowed) external onlyOwner {
        if (chainId == 0 || chainId == block.chainid) revert InvalidDestination(chainId);
        isDestination[chainId] = allowed;
        emit DestinationChanged(chainId, allowed);
    }

    // ------------------------------------------------------------------ views

    /// @notice The fee `requestInference` escrows for `modelId` with `callbackGasLimit`.
    /// @param modelId The model.
    /// @param callbackGasLimit The callback gas the request will ask for.
    /// @return The fee in wei.
    function quoteFee(bytes32 modelId, uint32 callbackGasLimit) external view returns (uint256) {
        return _quote(_model(modelId), callbackGasLimit);
    }

    /// @notice The fee `requestInferenceTo` escrows: the plain fee without callback plus the
    ///         destination delivery (verification + callback + overhead gas at `gasPrice`).
    /// @param modelId The model.
    /// @param dstCallbackGasLimit The destination callback gas the request will ask for.
    /// @return The fee in wei.
    function quoteFeeTo(bytes32 modelId, uint32 dstCallbackGasLimit) external view returns (uint256) {
        ModelRegistry.Model memory m = _model(modelId);
        return _quote(m, 0) + _deliveryCost(m, dstCallbackGasLimit);
    }

    /// @notice The destination of a cross-chain request (all zero for a plain request).
    /// @param requestId The request.
    /// @return The destination chain, consumer and callback gas; reverts with UnknownRequest when absent.
    function getCrossChainTarget(uint256 requestId) external view returns (CrossChainTarget memory) {
        if (_requests[requestId].status == Status.None) revert UnknownRequest(requestId);
        return _crossChain[requestId];
    }

    /// @notice A request, its state and its input.
    /// @param requestId The request.
    /// @return v The request; reverts with UnknownRequest when absent.
    function getRequest(uint256 requestId) external view returns (RequestView memory v) {
        Request storage r = _requests[requestId];
        if (r.status == Status.None) revert UnknownRequest(requestId);
        ModelRegistry.Model memory m = registry.getModel(r.modelId);
        v = RequestView({
            requestId: requestId,
            modelId: r.modelId,
            requester: r.requester,
            callback: r.callback,
            callbackGasLimit: r.callbackGasLimit,
            deadline: r.deadline,
            fee: r.fee,
            status: r.status,
            input: _unpack(_inputs[requestId], m.inputBits, m.inputSize)
        });
    }

    /// @notice Whether the verifier a pending request was made under was retired (upgrade or
    ///         freeze): it can then never be fulfilled and is refundable at once.
    /// @param requestId The request.
    /// @return True when retired; reverts with UnknownRequest when absent.
    function isVerifierRetired(uint256 requestId) external view returns (bool) {
        Request storage r = _requests[requestId];
        if (r.status == Status.None) revert UnknownRequest(requestId);
        return _verifierRetired(r);
    }

    /// @notice The state of a request (None for an unknown id).
    /// @param requestId The request.
    /// @return The status.
    function requestStatus(uint256 requestId) external view returns (Status) {
        return _requests[requestId].status;
    }

    /// @notice The registered model (a pass-through to the registry).
    /// @param modelId The model.
    /// @return The model.
    function getModel(bytes32 modelId) external view returns (ModelRegistry.Model memory) {
        return registry.getModel(modelId);
    }

    // ------------------------------------------------------------------ internals

    /// @dev Validates, escrows and records a request; `dstCallbackGasLimit` != 0 adds the
    ///      destination delivery to the fee. The caller credits any overpayment.
    function _request(
        bytes32 modelId,
        int256[] calldata input,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline,
        uint32 dstCallbackGasLimit
    ) private returns (uint256 requestId, uint256 fee) {
        ModelRegistry.Model memory m = _model(modelId);
        if (m.frozen) revert ModelFrozen(modelId);
        if (input.length != m.inputSize) revert InputSizeMismatch(m.inputSize, input.length);
        if (callbackGasLimit > MAX_CALLBACK_GAS) revert CallbackGasTooHigh(callbackGasLimit, MAX_CALLBACK_GAS);
        if (callback != address(0)) {
            if (callbackGasLimit == 0) revert MissingCallbackGas(callback);
            // A typo'd callback (an EOA) would "succeed" silently on every fulfilment.
            if (callback.code.length == 0) revert CallbackNotContract(callback);
        }
        {
            uint64 earliest = uint64(block.timestamp) + MIN_DEADLINE_DELAY;
            uint64 latest = uint64(block.timestamp) + MAX_DEADLINE_DELAY;
            if (deadline < earliest) revert DeadlineTooSoon(deadline, earliest);
            if (deadline > latest) revert DeadlineTooFar(deadline, latest);
        }
        fee = _quote(m, callbackGasLimit);
        if (dstCallbackGasLimit != 0) fee += _deliveryCost(m, dstCallbackGasLimit);
        if (msg.value < fee) revert InsufficientFee(fee, msg.value);
        if (fee > type(uint88).max) revert FeeTooLarge(fee);

        requestId = nextRequestId++;
        _inputs[requestId] = _pack(input, m.inputBits);
        _requests[requestId] = Request({
            requester: msg.sender,
            deadline: uint40(deadline),
            verifierVersion: m.verifierVersion,
            callbackGasLimit: callbackGasLimit,
            callback: callback,
            fee: uint88(fee),
            status: Status.Pending,
            modelId: modelId
        });
        totalEscrowed += fee;
        emit InferenceRequested(requestId, modelId, msg.sender, input, callback, callbackGasLimit, deadline, fee);
    }

    function _model(bytes32 modelId) private view returns (ModelRegistry.Model memory) {
        if (!registry.isRegistered(modelId)) revert UnknownModel(modelId);
        return registry.getModel(modelId);
    }

    function _quote(ModelRegistry.Model memory m, uint32 callbackGasLimit) private view returns (uint256) {
        return m.fee + (uint256(m.verifyGas) + callbackGasLimit + FULFILL_OVERHEAD_GAS) * gasPrice;
    }

    function _deliveryCost(ModelRegistry.Model memory m, uint32 dstCallbackGasLimit) private view returns (uint256) {
        return (uint256(m.verifyGas) + dstCallbackGasLimit + DELIVERY_OVERHEAD_GAS) * gasPrice;
    }

    /// @dev Returns the selector of the error that makes the entry unfulfillable, or 0.
    function _precheck(uint256 requestId, Request storage r, int256[] calldata output)
        private
        view
        returns (bytes4 err, ModelRegistry.Model memory m)
    {
        Status s = r.status;
        if (s == Status.None) return (UnknownRequest.selector, m);
        if (s == Status.Fulfilled) return (AlreadyFulfilled.selector, m);
        if (s == Status.Refunded) return (AlreadyRefunded.selector, m);
        if (block.timestamp > r.deadline) return (RequestExpired.selector, m);
        m = registry.getModel(r.modelId);
        if (m.frozen || m.verifierVersion != r.verifierVersion) return (RequestVerifierRetired.selector, m);
        if (output.length != m.outputSize) return (OutputSizeMismatch.selector, m);
        if (SignedRange.firstOutOfRange(output, m.outputBits) != type(uint256).max) {
            return (OutputOutOfRange.selector, m);
        }
        requestId; // id only matters for the full error, built in _revertWith
        return (bytes4(0), m);
    }

    function _revertWith(
        bytes4 err,
        uint256 requestId,
        Request storage r,
        ModelRegistry.Model memory m,
        int256[] calldata output
    ) private view {
        if (err == UnknownRequest.selector) revert UnknownRequest(requestId);
        if (err == AlreadyFulfilled.selector) revert AlreadyFulfilled(requestId);
        if (err == AlreadyRefunded.selector) revert AlreadyRefunded(requestId);
        if (err == RequestExpired.selector) revert RequestExpired(requestId, r.deadline);
        if (err == RequestVerifierRetired.selector) revert RequestVerifierRetired(requestId);
        if (err == OutputSizeMismatch.selector) revert OutputSizeMismatch(m.outputSize, output.length);
        uint256 i = SignedRange.firstOutOfRange(output, m.outputBits);
        revert OutputOutOfRange(i, output[i]);
    }

    function _prepareBatch(uint256[] calldata requestIds, int256[][] calldata outputs)
        private
        returns (Batch memory b)
    {
        uint256 n = requestIds.length;
        b.ok = new bool[](n);
        b.inputs = new int256[][](n);
        bytes32 firstModel;
        bool batchable;
        bool same = true;
        for (uint256 i; i < n; ++i) {
            uint256 id = requestIds[i];
            Request storage r = _requests[id];
            (bytes4 err, ModelRegistry.Model memory m) = _precheck(id, r, outputs[i]);
            // A duplicate id inside the batch: only its first valid entry may be fulfilled.
            if (err == bytes4(0) && _seenEarlier(requestIds, b.ok, i)) err = AlreadyFulfilled.selector;
            if (err != bytes4(0)) {
                emit FulfillmentSkipped(id, err);
                continue;
            }
            b.ok[i] = true;
            b.inputs[i] = _unpack(_inputs[id], m.inputBits, m.inputSize);
            if (b.valid == 0) {
                firstModel = r.modelId;
                b.verifier = m.verifier;
                batchable = m.batchVerify;
                b.bindsPayee = m.bindsPayee;
            } else if (r.modelId != firstModel) {
                same = false;
            }
            ++b.valid;
        }
        b.sameModel = same && batchable && b.valid > 1;
    }

    function _seenEarlier(uint256[] calldata ids, bool[] memory ok, uint256 i) private pure returns (bool) {
        for (uint256 j; j < i; ++j) {
            if (ok[j] && ids[j] == ids[i]) return true;
        }
        return false;
    }

    /// @dev Verifies all valid entries together; on failure the caller falls back to one by one
    ///      to find (and skip) the bad ones.
    function _tryBatchVerify(Batch memory b, int256[][] calldata outputs, address payee, bytes[] calldata proofs)
        private
        view
        returns (bool)
    {
        int256[][] memory ins = new int256[][](b.valid);
        int256[][] memory outs = new int256[][](b.valid);
        bytes[] memory prs = new bytes[](b.valid);
        uint256 k;
        for (uint256 i; i < b.ok.length; ++i) {
            if (!b.ok[i]) continue;
            ins[k] = b.inputs[i];
            outs[k] = outputs[i];
            prs[k] = proofs[i];
            ++k;
        }
        try IBatchInferenceVerifier(b.verifier).verifyBatch(ins, outs, payee, prs) returns (bool valid) {
            return valid;
        } catch {
            return false;
        }
    }

    function _tryVerify(
        uint256 requestId,
        int256[] memory input,
        int256[] calldata output,
        address payee,
        bytes calldata proof
    ) private returns (bool) {
        ModelRegistry.Model memory m = registry.getModel(_requests[requestId].modelId);
        if (!m.bindsPayee && !_committed(requestId, output, payee, proof)) {
            emit FulfillmentSkipped(requestId, FulfillmentNotCommitted.selector);
            return false;
        }
        try IInferenceVerifier(m.verifier).verify(input, output, payee, proof) returns (bool valid) {
            if (valid) return true;
            emit FulfillmentSkipped(requestId, InvalidProof.selector);
        } catch (bytes memory reason) {
            bytes4 sel = reason.length >= 4 ? bytes4(reason) : InvalidProof.selector;
            emit FulfillmentSkipped(requestId, sel);
        }
        return false;
    }

    /// @dev Effects first (status, escrow, payee credit), then the consumer callback.
    function _settle(uint256 requestId, Request storage r, int256[] calldata output, address payee) private {
        uint256 fee = r.fee;
        address callback = r.callback;
        uint32 gasLimit = r.callbackGasLimit;
        bytes32 modelId = r.modelId;
        r.status = Status.Fulfilled;
        totalEscrowed -= fee;
        _credit(payee, fee);

        bool callbackSucceeded = true;
        if (callback != address(0)) {
            // Exactly `gasLimit` for the callback, or the fulfilment reverts
            // (ExactGasCall.InsufficientGasForCallback).
            callbackSucceeded = ExactGasCall.call(
                requestId,
                callback,
                gasLimit,
                abi.encodeCall(IInferenceConsumer.onInferenceResult, (requestId, modelId, output))
            );
        }
        emit InferenceFulfilled(requestId, modelId, output, payee, callbackSucceeded);
    }

    /// @dev A commitment to exactly this fulfilment exists from an earlier block.
    function _committed(uint256 requestId, int256[] calldata output, address payee, bytes calldata proof)
        private
        view
        returns (bool)
    {
        uint256 committedAt = commitments[fulfillmentCommitment(requestId, output, payee, proof)];
        return committedAt != 0 && committedAt < block.number;
    }

    function _verifierRetired(Request storage r) private view returns (bool) {
        ModelRegistry.Model memory m = registry.getModel(r.modelId);
        return m.frozen || m.verifierVersion != r.verifierVersion;
    }

    /// @dev Sends ETH without copying return data: `(bool ok,) = to.call{value: v}("")` copies it,
    ///      so a recipient answering with a payload sized to its own gas made the caller run out
    ///      of gas at any gas limit, and a requester could make its refund (and the credit
    ///      fallback) impossible.
    function _sendValue(address to, uint256 amount) private returns (bool sent) {
        assembly {
            sent := call(gas(), to, amount, 0, 0, 0, 0)
        }
    }

    function _credit(address account, uint256 amount) private {
        balances[account] += amount;
        totalCredits += amount;
        emit Credited(account, amount);
    }

    /// @dev Packs values of `bits` bits (two's complement) into words: an 8-feature 16-bit
    ///      input takes one storage slot instead of eight. Also range-checks each value.
    function _pack(int256[] calldata values, uint16 bits) private pure returns (uint256[] memory words) {
        uint256 perWord = 256 / bits;
        words = new uint256[]((values.length + perWord - 1) / perWord);
        (int256 lo, int256 hi) = SignedRange.bounds(bits);
        uint256 mask = bits == 256 ? type(uint256).max : (uint256(1) << bits) - 1;
        for (uint256 i; i < values.length; ++i) {
            int256 v = values[i];
            if (v < lo || v > hi) revert InputOutOfRange(i, v);
            words[i / perWord] |= (uint256(v) & mask) << ((i % perWord) * bits);
        }
    }

    function _unpack(uint256[] storage words, uint16 bits, uint256 count)
        private
        view
        returns (int256[] memory values)
    {
        uint256 perWord = 256 / bits;
        uint256 shiftBack = 256 - bits;
        values = new int256[](count);
        uint256 word;
        for (uint256 i; i < count; ++i) {
            if (i % perWord == 0) word = words[i / perWord];
            uint256 raw = word >> ((i % perWord) * bits);
            // Sign-extend from `bits` bits.
            values[i] = int256(raw << shiftBack) >> shiftBack;
        }
    }
}
