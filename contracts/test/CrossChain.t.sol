// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceErrors} from "../utils/InferenceErrors.sol";
import {OracleFixture} from "./utils/OracleFixture.sol";
import {Test} from "./utils/Test.sol";
import {TestHashVerifier} from "./utils/TestHashVerifier.sol";
import {RevertingVerifier} from "./utils/Mocks.sol";
import {TestSetup} from "./utils/TestSetup.sol";
import {
    RecordingCrossChainConsumer,
    RevertingCrossChainConsumer,
    ReentrantCrossChainConsumer,
    NaiveCountingConsumer
} from "./utils/CrossChainMocks.sol";
import {Groth16Verifier} from "./fixtures/RiskGroth16Verifier.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {CrossChainInbox} from "../crosschain/CrossChainInbox.sol";
import {ProvenResults} from "../crosschain/ProvenResults.sol";
import {ICrossChainConsumer} from "../crosschain/ICrossChainConsumer.sol";
import {CommittedInputConsumer} from "../examples/CommittedInputConsumer.sol";
import {InferenceCheck} from "../utils/InferenceCheck.sol";
import {Groth16VerifierAdapter} from "../verifiers/Groth16VerifierAdapter.sol";
import {ReentrancyGuardTransient} from "../utils/ReentrancyGuardTransient.sol";
import {Owned} from "../utils/Owned.sol";
import {ExactGasCall} from "../utils/ExactGasCall.sol";

/// @notice requestInferenceTo on the source oracle. "Chain B" is simulated by a second
///         registry + inbox in the same EVM: what matters is that B verifies with its OWN
///         registry and verifier.
contract CrossChainRequestTest is OracleFixture {
    uint64 internal constant DST = 8453;
    uint32 internal constant DST_GAS = 200_000;
    address internal dstConsumer = address(0xC0FFEE); // lives on B: no code here, by design

    function setUp() public override {
        super.setUp();
        oracle.setDestination(DST, true);
    }

    function _requestTo(uint32 gasLimit) internal returns (uint256 id) {
        uint256 fee = oracle.quoteFeeTo(MODEL, gasLimit);
        vm.prank(alice);
        id = oracle.requestInferenceTo{value: fee}(DST, dstConsumer, MODEL, defaultInput(), gasLimit, soon());
    }

    function test_setDestination_ownerOnly_emits() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, bob));
        vm.prank(bob);
        oracle.setDestination(10, true);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.DestinationChanged(10, true);
        oracle.setDestination(10, true);
        assertTrue(oracle.isDestination(10), "enabled");
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.DestinationChanged(10, false);
        oracle.setDestination(10, false);
        assertFalse(oracle.isDestination(10), "disabled");
    }

    function test_setDestination_zeroOrSelf_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidDestination.selector, uint64(0)));
        oracle.setDestination(0, true);
        uint64 self = uint64(block.chainid);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidDestination.selector, self));
        oracle.setDestination(self, true);
    }

    function test_quoteFeeTo_formula() public view {
        uint256 expected =
            oracle.quoteFee(MODEL, 0) + (uint256(VERIFY_GAS) + DST_GAS + oracle.DELIVERY_OVERHEAD_GAS()) * GAS_PRICE;
        assertEq(oracle.quoteFeeTo(MODEL, DST_GAS), expected, "source fulfil + destination delivery");
    }

    function test_requestTo_emitsStandardAndCrossChainEvents() public {
        uint64 deadline = soon();
        uint256 fee = oracle.quoteFeeTo(MODEL, DST_GAS);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceRequested(1, MODEL, alice, defaultInput(), address(0), 0, deadline, fee);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.CrossChainRequested(1, DST, dstConsumer, DST_GAS);
        vm.prank(alice);
        uint256 id = oracle.requestInferenceTo{value: fee}(DST, dstConsumer, MODEL, defaultInput(), DST_GAS, deadline);
        assertEq(id, 1, "id");
        assertEq(oracle.totalEscrowed(), fee, "escrowed with the delivery cost");
        InferenceOracle.RequestView memory v = oracle.getRequest(id);
        assertEq(v.callback, address(0), "no local callback");
        assertEq(uint256(v.callbackGasLimit), 0, "no local callback gas");
        assertEq(v.fee, fee, "fee");
        InferenceOracle.CrossChainTarget memory t = oracle.getCrossChainTarget(id);
        assertEq(uint256(t.dstChainId), uint256(DST), "dst chain");
        assertEq(t.dstConsumer, dstConsumer, "dst consumer");
        assertEq(uint256(t.dstCallbackGasLimit), uint256(DST_GAS), "dst gas");
    }

    function test_requestTo_unknownDestination_reverts() public {
        uint256 fee = oracle.quoteFeeTo(MODEL, DST_GAS);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.UnknownDestination.selector, uint64(999)));
        vm.prank(alice);
        oracle.requestInferenceTo{value: fee}(999, dstConsumer, MODEL, defaultInput(), DST_GAS, soon());
    }

    function test_requestTo_disabledDestination_reverts() public {
        oracle.setDestination(DST, false);
        uint256 fee = oracle.quoteFeeTo(MODEL, DST_GAS);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.UnknownDestination.selector, DST));
        vm.prank(alice);
        oracle.requestInferenceTo{value: fee}(DST, dstConsumer, MODEL, defaultInput(), DST_GAS, soon());
    }

    function test_requestTo_zeroConsumer_reverts() public {
        vm.expectRevert(InferenceOracle.MissingDestinationConsumer.selector);
        vm.prank(alice);
        oracle.requestInferenceTo{value: 1 ether}(DST, address(0), MODEL, defaultInput(), DST_GAS, soon());
    }

    function test_requestTo_zeroGas_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.MissingCallbackGas.selector, dstConsumer));
        vm.prank(alice);
        oracle.requestInferenceTo{value: 1 ether}(DST, dstConsumer, MODEL, defaultInput(), 0, soon());
    }

    function test_requestTo_gasTooHigh_reverts() public {
        uint32 max = oracle.MAX_CALLBACK_GAS();
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.CallbackGasTooHigh.selector, max + 1, max));
        vm.prank(alice);
        oracle.requestInferenceTo{value: 1 ether}(DST, dstConsumer, MODEL, defaultInput(), max + 1, soon());
    }

    function test_requestTo_insufficientFee_reverts() public {
        uint256 fee = oracle.quoteFeeTo(MODEL, DST_GAS);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InsufficientFee.selector, fee, fee - 1));
        vm.prank(alice);
        oracle.requestInferenceTo{value: fee - 1}(DST, dstConsumer, MODEL, defaultInput(), DST_GAS, soon());
    }

    function test_requestTo_unknownModel_reverts() public {
        bytes32 nope = keccak256("nope");
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.UnknownModel.selector, nope));
        vm.prank(alice);
        oracle.requestInferenceTo{value: 1 ether}(DST, dstConsumer, nope, defaultInput(), DST_GAS, soon());
    }

    function test_requestTo_plainValidationStillApplies() public {
        uint256 fee = oracle.quoteFeeTo(MODEL, DST_GAS);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputSizeMismatch.selector, 3, 2));
        vm.prank(alice);
        oracle.requestInferenceTo{value: fee}(DST, dstConsumer, MODEL, ints(1, 2), DST_GAS, soon());
        uint64 tooSoon = uint64(block.timestamp + 1);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceOracle.DeadlineTooSoon.selector, tooSoon, uint64(block.timestamp + 30))
        );
        vm.prank(alice);
        oracle.requestInferenceTo{value: fee}(DST, dstConsumer, MODEL, defaultInput(), DST_GAS, tooSoon);
    }

    function test_requestTo_overpaymentCredited() public {
        uint256 fee = oracle.quoteFeeTo(MODEL, DST_GAS);
        vm.prank(alice);
        oracle.requestInferenceTo{value: fee + 5}(DST, dstConsumer, MODEL, defaultInput(), DST_GAS, soon());
        assertEq(oracle.balances(alice), 5, "excess credited");
        assertEq(address(oracle).balance, oracle.totalEscrowed() + oracle.totalCredits(), "invariant");
    }

    function test_requestTo_fulfilledLikePlain_relayerPaidWholeFee() public {
        uint256 id = _requestTo(DST_GAS);
        uint256 fee = oracle.quoteFeeTo(MODEL, DST_GAS);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(id, MODEL, defaultOutput(), relayer, true);
        fulfillAs(relayer, id);
        assertEq(oracle.balances(relayer), fee, "the fulfilling relayer is paid for the delivery too");
        assertEq(oracle.totalEscrowed(), 0, "released");
    }

    function test_requestTo_refundAfterDeadline() public {
        uint256 id = _requestTo(DST_GAS);
        vm.warp(block.timestamp + 2 hours);
        uint256 before = alice.balance;
        oracle.refund(id);
        assertEq(alice.balance - before, oracle.quoteFeeTo(MODEL, DST_GAS), "whole fee back");
    }

    function test_getCrossChainTarget_plainIsZero_unknownReverts() public {
        uint256 id = request();
        InferenceOracle.CrossChainTarget memory t = oracle.getCrossChainTarget(id);
        assertEq(uint256(t.dstChainId), 0, "plain request: no destination");
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.UnknownRequest.selector, 42));
        oracle.getCrossChainTarget(42);
    }
}

/// @notice The destination side: CrossChainInbox.
contract CrossChainInboxTest is Test {
    ModelRegistry internal registryB;
    CrossChainInbox internal inbox;
    TestHashVerifier internal verifierB;
    RecordingCrossChainConsumer internal consumer;

    bytes32 internal constant MODEL = keccak256("model-a");
    uint64 internal constant SRC = 1;
    address internal constant SRC_ORACLE = address(0x5EC0);
    uint32 internal constant GAS = 400_000; // the recording consumer writes ~11 fresh slots
    address internal relayer = address(0x7E1A7E5);

    function setUp() public {
        registryB = new ModelRegistry(address(this));
        inbox = new CrossChainInbox(registryB);
        verifierB = new TestHashVerifier();
        registryB.register(MODEL, _model(address(verifierB)), TestSetup.dev());
        consumer = new RecordingCrossChainConsumer();
    }

    function _model(address v) internal pure returns (ModelRegistry.Model memory) {
        return ModelRegistry.Model({
            verifier: v,
            proofSystem: ModelRegistry.ProofSystem.Groth16,
            inputSize: 3,
            outputSize: 2,
            inputScale: 7,
            outputScale: 7,
            inputBits: 16,
            outputBits: 32,
            frozen: false,
            batchVerify: false,
            bindsPayee: false,
            verifierVersion: 0,
            circuitId: keccak256("circuit"),
            fee: 0,
            verifyGas: 250_000
        });
    }

    function _in() internal pure returns (int256[] memory v) {
        v = new int256[](3);
        v[0] = -5;
        v[1] = 32767;
        v[2] = -32768;
    }

    function _out() internal pure returns (int256[] memory v) {
        v = new int256[](2);
        v[0] = 7;
        v[1] = -9;
    }

    /// @dev The hash verifier's proof, made for `relayer` (the payee of every `_m` message).
    function _proof(int256[] memory input, int256[] memory output) internal view returns (bytes memory) {
        return abi.encode(keccak256(abi.encode(input, output, relayer)));
    }

    /// @dev A message naming `relayer` as the payee the proof was made for.
    function _m(uint64 src, address srcOracle, uint256 id, bytes32 model, address c, uint32 gasLimit)
        internal
        view
        returns (CrossChainInbox.Message memory)
    {
        return CrossChainInbox.Message({
            srcChainId: src,
            srcOracle: srcOracle,
            requestId: id,
            modelId: model,
            consumer: c,
            gasLimit: gasLimit,
            payee: relayer
        });
    }

    function _deliver(uint256 id, address c, uint32 gasLimit) internal {
        vm.prank(relayer);
        inbox.deliver(_m(SRC, SRC_ORACLE, id, MODEL, c, gasLimit), _in(), _out(), _proof(_in(), _out()));
    }

    function _key(uint256 id, address c) internal view returns (bytes32) {
        return inbox.deliveryKey(SRC, id, MODEL, _in(), c);
    }

    // ------------------------------------------------------------------ happy path

    function test_constructor_zeroRegistry_reverts() public {
        vm.expectRevert(InferenceCheck.ZeroRegistry.selector);
        new CrossChainInbox(ModelRegistry(address(0)));
    }

    function test_deliver_verifiesCallsConsumerRecordsEmits() public {
        bytes32 key = _key(7, address(consumer));
        vm.expectEmit(true, true, true, true, address(inbox));
        emit CrossChainInbox.CrossChainDelivered(
            key, SRC, 7, SRC_ORACLE, MODEL, address(consumer), _out(), relayer, true
        );
        _deliver(7, address(consumer), GAS);
        assertEq(consumer.calls(), 1, "called once");
        assertEq(uint256(consumer.lastSrcChainId()), SRC, "src chain");
        assertEq(consumer.lastRequestId(), 7, "request id");
        assertEq(consumer.lastModelId(), MODEL, "model");
        assertEq(consumer.lastInput(), _in(), "input");
        assertEq(consumer.lastOutput(), _out(), "output");
        assertTrue(inbox.isDelivered(key), "recorded");
        (address r, uint64 deliveredAt) = inbox.deliveries(key);
        assertEq(r, relayer, "relayer recorded");
        assertEq(uint256(deliveredAt), block.timestamp, "time recorded");
    }

    /// The key is what the consumer sees (source chain, request id, model, input) and the
    /// consumer: neither the source oracle nor the gas limit a deliverer names.
    function test_deliveryKey_isHashOfWhatTheConsumerSees() public view {
        bytes32 expected =
            keccak256(abi.encode(SRC, uint256(7), MODEL, keccak256(abi.encode(_in())), address(consumer)));
        assertEq(_key(7, address(consumer)), expected, "key");
        assertTrue(_key(7, address(consumer)) != _key(8, address(consumer)), "request id in the key");
        assertTrue(_key(7, address(consumer)) != _key(7, address(0xC0DE)), "consumer in the key");
        assertTrue(
            inbox.deliveryKey(SRC + 1, 7, MODEL, _in(), address(consumer)) != _key(7, address(consumer)),
            "source chain in the key"
        );
    }

    // ------------------------------------------------------------------ replay

    function test_deliver_twice_revertsAlreadyDelivered() public {
        _deliver(7, address(consumer), GAS);
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.AlreadyDelivered.selector, SRC, 7, address(consumer)));
        _deliver(7, address(consumer), GAS);
        assertEq(consumer.calls(), 1, "consumer called once");
    }

    /// A replayer re-delivers the same verified result to the same consumer under a made-up
    /// source oracle: refused, the consumer saw the result once.
    function test_deliver_madeUpSrcOracle_refused() public {
        _deliver(7, address(consumer), GAS);
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.AlreadyDelivered.selector, SRC, 7, address(consumer)));
        vm.prank(address(0xBAD));
        inbox.deliver(_m(SRC, address(0xFA4E), 7, MODEL, address(consumer), GAS), _in(), _out(), _proof(_in(), _out()));
        assertEq(consumer.calls(), 1, "seen once");
    }

    /// Same with another gas limit (and both changed at once).
    function test_deliver_otherGasLimit_refused() public {
        _deliver(7, address(consumer), GAS);
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.AlreadyDelivered.selector, SRC, 7, address(consumer)));
        vm.prank(address(0xBAD));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, MODEL, address(consumer), GAS + 1), _in(), _out(), _proof(_in(), _out()));
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.AlreadyDelivered.selector, SRC, 7, address(consumer)));
        vm.prank(address(0xBAD));
        inbox.deliver(
            _m(SRC, address(0xFA4E), 7, MODEL, address(consumer), 2 * GAS), _in(), _out(), _proof(_in(), _out())
        );
        assertEq(consumer.calls(), 1, "seen once");
    }

    /// A naive consumer (it counts every result it is handed per request id, e.g. to pay out)
    /// never sees one request's result twice, whoever delivers first and whatever source oracle,
    /// gas limit or payee (with its own valid proof) they name.
    function testFuzz_deliver_naiveConsumerSeesOneResultPerRequest(address srcOracle, uint32 gasLimit, address payee)
        public
    {
        vm.assume(payee != address(0));
        gasLimit = uint32(bound(gasLimit, GAS, inbox.MAX_CALLBACK_GAS()));
        NaiveCountingConsumer naive = new NaiveCountingConsumer();
        // The replayer goes first, with made-up fields and a proof for its own payee.
        CrossChainInbox.Message memory forged = _m(SRC, srcOracle, 7, MODEL, address(naive), gasLimit);
        forged.payee = payee;
        bytes memory forgedProof = abi.encode(keccak256(abi.encode(_in(), _out(), payee)));
        vm.prank(address(0xBAD));
        inbox.deliver(forged, _in(), _out(), forgedProof);
        assertEq(naive.seen(SRC, 7), 1, "first delivery seen");
        // The honest relayer's delivery of the same result is refused...
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.AlreadyDelivered.selector, SRC, 7, address(naive)));
        _deliver(7, address(naive), GAS);
        // ...and so is any further replay.
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.AlreadyDelivered.selector, SRC, 7, address(naive)));
        vm.prank(address(0xBAD));
        inbox.deliver(forged, _in(), _out(), forgedProof);
        assertEq(naive.seen(SRC, 7), 1, "never twice");
    }

    /// A griefer delivers the right result with a tiny gas limit so that the callback fails:
    /// that delivery is not recorded, and the honest one still goes through.
    function test_deliver_failedCallbackDoesNotBlockHonestDelivery() public {
        bytes32 key = _key(7, address(consumer));
        vm.expectEmit(true, true, true, true, address(inbox));
        emit CrossChainInbox.CrossChainDelivered(
            key, SRC, 7, address(0xFA4E), MODEL, address(consumer), _out(), address(0xBAD), false
        );
        vm.prank(address(0xBAD));
        inbox.deliver(
            _m(SRC, address(0xFA4E), 7, MODEL, address(consumer), 1_000), _in(), _out(), _proof(_in(), _out())
        );
        assertFalse(inbox.isDelivered(key), "failed callback: not recorded");
        assertEq(consumer.calls(), 0, "consumer saw nothing");
        _deliver(7, address(consumer), GAS);
        assertTrue(inbox.isDelivered(key), "honest delivery recorded");
        (address r,) = inbox.deliveries(key);
        assertEq(r, relayer, "by the honest relayer");
        assertEq(consumer.calls(), 1, "consumer saw it once");
        assertEq(consumer.lastOutput(), _out(), "the result");
    }

    function test_deliver_sameResultOtherRequestId_isAnotherMessage() public {
        // The trust-model caveat in docs/cross-chain.md: the inbox cannot tell request ids apart.
        _deliver(7, address(consumer), GAS);
        _deliver(8, address(consumer), GAS);
        assertEq(consumer.calls(), 2, "same (model, input) under two request ids");
    }

    function test_deliver_griefingWithOtherMessage_doesNotBlockHonestDelivery() public {
        // A griefer replays some other valid proof under request 7, and the right one with a
        // tiny gas limit: neither burns request 7 for the honest (consumer, gasLimit, input).
        int256[] memory other = new int256[](3);
        other[0] = 1;
        vm.prank(address(0xBAD));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, MODEL, address(consumer), GAS), other, _out(), _proof(other, _out()));
        vm.prank(address(0xBAD));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, MODEL, address(consumer), 1), _in(), _out(), _proof(_in(), _out()));
        _deliver(7, address(consumer), GAS);
        assertEq(consumer.lastInput(), _in(), "honest delivery went through");
        assertEq(consumer.calls(), 2, "the griefer's other input, then the honest one");
    }

    // ------------------------------------------------------------------ proof and model checks

    function test_deliver_tamperedOutput_reverts() public {
        int256[] memory bad = _out();
        bad[0] += 1;
        vm.expectRevert(abi.encodeWithSelector(InferenceCheck.InvalidProof.selector, MODEL));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, MODEL, address(consumer), GAS), _in(), bad, _proof(_in(), _out()));
        assertFalse(inbox.isDelivered(_key(7, address(consumer))), "nothing recorded");
    }

    function test_deliver_tamperedProof_reverts() public {
        bytes memory p = _proof(_in(), _out());
        p[3] = bytes1(uint8(p[3]) ^ 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceCheck.InvalidProof.selector, MODEL));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, MODEL, address(consumer), GAS), _in(), _out(), p);
    }

    function test_deliver_proofForAnotherInput_reverts() public {
        int256[] memory other = _in();
        other[0] = 0;
        vm.expectRevert(abi.encodeWithSelector(InferenceCheck.InvalidProof.selector, MODEL));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, MODEL, address(consumer), GAS), other, _out(), _proof(_in(), _out()));
    }

    function test_deliver_unknownModel_reverts() public {
        bytes32 nope = keccak256("nope");
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.UnknownModel.selector, nope));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, nope, address(consumer), GAS), _in(), _out(), _proof(_in(), _out()));
    }

    function test_deliver_frozenModel_reverts() public {
        registryB.freeze(MODEL);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.ModelFrozen.selector, MODEL));
        _deliver(7, address(consumer), GAS);
    }

    function test_deliver_sizeMismatch_reverts() public {
        int256[] memory two = new int256[](2);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputSizeMismatch.selector, 3, 2));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, MODEL, address(consumer), GAS), two, _out(), _proof(two, _out()));
        int256[] memory three = new int256[](3);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.OutputSizeMismatch.selector, 2, 3));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, MODEL, address(consumer), GAS), _in(), three, _proof(_in(), three));
    }

    function test_deliver_outOfRange_reverts() public {
        int256[] memory x = _in();
        x[1] = 32768;
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputOutOfRange.selector, 1, int256(32768)));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, MODEL, address(consumer), GAS), x, _out(), _proof(x, _out()));
        int256[] memory y = _out();
        y[0] = -(int256(1) << 31) - 1;
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.OutputOutOfRange.selector, 0, y[0]));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, MODEL, address(consumer), GAS), _in(), y, _proof(_in(), y));
    }

    function test_deliver_verifierRevert_bubbles() public {
        RevertingVerifier rv = new RevertingVerifier();
        bytes32 m2 = keccak256("reverting");
        registryB.register(m2, _model(address(rv)), TestSetup.dev());
        vm.expectRevert(abi.encodeWithSelector(RevertingVerifier.VerifierExploded.selector, 42));
        inbox.deliver(_m(SRC, SRC_ORACLE, 7, m2, address(consumer), GAS), _in(), _out(), hex"00");
    }

    // ------------------------------------------------------------------ message checks

    function test_deliver_invalidSourceChain_reverts() public {
        bytes memory p = _proof(_in(), _out());
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.InvalidSourceChain.selector, uint64(0)));
        inbox.deliver(_m(0, SRC_ORACLE, 7, MODEL, address(consumer), GAS), _in(), _out(), p);
        uint64 self = uint64(block.chainid);
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.InvalidSourceChain.selector, self));
        inbox.deliver(_m(self, SRC_ORACLE, 7, MODEL, address(consumer), GAS), _in(), _out(), p);
    }

    function test_deliver_missingConsumer_reverts() public {
        vm.expectRevert(CrossChainInbox.MissingConsumer.selector);
        _deliver(7, address(0), GAS);
    }

    function test_deliver_consumerWithoutCode_reverts_staysDeliverable() public {
        address later = address(0xC0DE);
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.ConsumerNotContract.selector, later));
        _deliver(7, later, GAS);
        vm.etch(later, address(consumer).code);
        _deliver(7, later, GAS);
        assertTrue(inbox.isDelivered(_key(7, later)), "delivered once the consumer exists");
    }

    function test_deliver_missingCallbackGas_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.MissingCallbackGas.selector, address(consumer)));
        _deliver(7, address(consumer), 0);
    }

    function test_deliver_callbackGasTooHigh_reverts() public {
        uint32 max = inbox.MAX_CALLBACK_GAS();
        vm.expectRevert(abi.encodeWithSelector(CrossChainInbox.CallbackGasTooHigh.selector, max + 1, max));
        _deliver(7, address(consumer), max + 1);
    }

    // ------------------------------------------------------------------ the callback

    /// @dev Gas a RecordingCrossChainConsumer sees at entry when called directly with `limit`.
    function _calibrate(uint256 id, uint32 limit) internal returns (uint256) {
        RecordingCrossChainConsumer probe = new RecordingCrossChainConsumer();
        (bool ok,) = address(probe).call{gas: limit}(
            abi.encodeCall(ICrossChainConsumer.onCrossChainResult, (SRC, id, MODEL, _in(), _out()))
        );
        assertTrue(ok, "probe call");
        return probe.gasAtEntry();
    }

    function _deliverWithGas(uint256 id, uint32 limit, uint256 gas) internal returns (bool ok, bytes memory ret) {
        bytes memory data = abi.encodeCall(
            CrossChainInbox.deliver,
            (_m(SRC, SRC_ORACLE, id, MODEL, address(consumer), limit), _in(), _out(), _proof(_in(), _out()))
        );
        vm.prank(relayer);
        (ok, ret) = address(inbox).call{gas: gas}(data);
    }

    function test_callback_getsExactlyItsGasLimit() public {
        uint32 limit = 300_000;
        uint256 expected = _calibrate(7, limit);
        (bool ok,) = _deliverWithGas(7, limit, 5_000_000);
        assertTrue(ok, "deliver");
        assertEq(consumer.gasAtEntry(), expected, "callback got exactly the requested gas");
        assertGt(expected, limit - 1_000, "calibration sane");
    }

    function test_callback_insufficientGas_reverts() public {
        uint32 limit = 500_000;
        uint256[3] memory gases = [uint256(300_000), uint256(limit), uint256(limit) + 20_000];
        for (uint256 i; i < gases.length; ++i) {
            (bool ok, bytes memory ret) = _deliverWithGas(7, limit, gases[i]);
            assertFalse(ok, "must revert");
            assertEq(
                ret,
                abi.encodeWithSelector(ExactGasCall.InsufficientGasForCallback.selector, 7, limit),
                "InsufficientGasForCallback"
            );
        }
        assertEq(consumer.calls(), 0, "callback never ran");
        assertFalse(inbox.isDelivered(_key(7, address(consumer))), "not recorded: still deliverable");
    }

    /// @dev Across the threshold: either the delivery reverts or the consumer got exactly its
    ///      limit. Never a recorded delivery with a starved callback.
    function test_callback_gasSweep_neverStarved() public {
        uint32 limit = 400_000;
        uint256 expected = _calibrate(7, limit);
        uint256 firstOk;
        for (uint256 g = 390_000; g < 800_000; g += 2_500) {
            uint256 snap = vm.snapshotState();
            (bool ok, bytes memory ret) = _deliverWithGas(7, limit, g);
            if (ok) {
                if (firstOk == 0) firstOk = g;
                assertEq(consumer.gasAtEntry(), expected, "success => exact callback gas");
            } else {
                assertTrue(
                    ret.length == 0 || bytes4(ret) == ExactGasCall.InsufficientGasForCallback.selector, "revert reason"
                );
                assertEq(firstOk, 0, "monotonic: no failure above a success");
            }
            vm.revertToState(snap);
        }
        assertGt(firstOk, uint256(limit) + uint256(limit) / 63, "threshold above limit * 64/63");
    }

    /// Was "recorded delivery stands": a failed callback changed nothing in the consumer, so the
    /// delivery is not recorded (only reported in the event) and can be delivered again.
    function test_callback_reverting_notRecorded_deliverableAgain() public {
        RevertingCrossChainConsumer bad = new RevertingCrossChainConsumer();
        bytes32 key = _key(7, address(bad));
        vm.expectEmit(true, true, true, true, address(inbox));
        emit CrossChainInbox.CrossChainDelivered(key, SRC, 7, SRC_ORACLE, MODEL, address(bad), _out(), relayer, false);
        _deliver(7, address(bad), GAS);
        assertFalse(inbox.isDelivered(key), "failure reported in the event, not recorded");
        (address r, uint64 deliveredAt) = inbox.deliveries(key);
        assertEq(r, address(0), "no relayer recorded");
        assertEq(uint256(deliveredAt), 0, "no time recorded");
        vm.expectEmit(true, true, true, true, address(inbox));
        emit CrossChainInbox.CrossChainDelivered(key, SRC, 7, SRC_ORACLE, MODEL, address(bad), _out(), relayer, false);
        _deliver(7, address(bad), GAS); // no AlreadyDelivered
    }

    function test_callback_reentrancyBlocked() public {
        ReentrantCrossChainConsumer r = new ReentrantCrossChainConsumer(inbox);
        r.arm(
            abi.encodeCall(
                CrossChainInbox.deliver,
                (_m(SRC, SRC_ORACLE, 8, MODEL, address(consumer), GAS), _in(), _out(), _proof(_in(), _out()))
            )
        );
        _deliver(7, address(r), 1_000_000);
        assertTrue(r.called(), "called");
        assertEq(bytes32(r.reentryErr()), bytes32(ReentrancyGuardTransient.ReentrantCall.selector), "reentry blocked");
        assertEq(consumer.calls(), 0, "nested delivery did not happen");
    }

    // ------------------------------------------------------------------ reference consumer

    function test_committedInputConsumer_acceptsOnlyCommittedInputs() public {
        CommittedInputConsumer c = new CommittedInputConsumer(address(inbox), MODEL, address(this));
        // Not committed: the callback rejects it (reported as failed, not recorded), nothing stored.
        _deliver(7, address(c), GAS);
        assertEq(c.accepted(), 0, "uncommitted input refused");
        assertFalse(inbox.isDelivered(_key(7, address(c))), "refused delivery not recorded");
        c.expect(_in());
        _deliver(8, address(c), GAS);
        assertEq(c.accepted(), 1, "committed input accepted");
        assertEq(c.outputOf(_in()), _out(), "output stored");
        // The commitment is used up: the same (model, input) under another request id is refused.
        _deliver(9, address(c), GAS);
        assertEq(c.accepted(), 1, "used once");
        vm.expectRevert(abi.encodeWithSelector(CommittedInputConsumer.NotInbox.selector, address(this)));
        c.onCrossChainResult(SRC, 1, MODEL, _in(), _out());
    }
}

/// @notice The verified-results registry.
contract ProvenResultsTest is Test {
    ModelRegistry internal registry;
    ProvenResults internal results;
    TestHashVerifier internal verifier;
    bytes32 internal constant MODEL = keccak256("model-a");
    address internal constant PAYEE = address(0x7E1A7E5); // the payee the proofs were made for

    function setUp() public {
        registry = new ModelRegistry(address(this));
        results = new ProvenResults(registry);
        verifier = new TestHashVerifier();
        registry.register(MODEL, _model(address(verifier)), TestSetup.dev());
    }

    function _model(address v) internal pure returns (ModelRegistry.Model memory) {
        return ModelRegistry.Model({
            verifier: v,
            proofSystem: ModelRegistry.ProofSystem.Groth16,
            inputSize: 3,
            outputSize: 2,
            inputScale: 7,
            outputScale: 7,
            inputBits: 16,
            outputBits: 32,
            frozen: false,
            batchVerify: false,
            bindsPayee: false,
            verifierVersion: 0,
            circuitId: keccak256("circuit"),
            fee: 0,
            verifyGas: 250_000
        });
    }

    function _in() internal pure returns (int256[] memory v) {
        v = new int256[](3);
        v[0] = 3;
        v[1] = -4;
        v[2] = 5;
    }

    function _out() internal pure returns (int256[] memory v) {
        v = new int256[](2);
        v[0] = 11;
        v[1] = -12;
    }

    /// @dev The hash verifier's proof, made for PAYEE.
    function _proof(int256[] memory input, int256[] memory output) internal pure returns (bytes memory) {
        return abi.encode(keccak256(abi.encode(input, output, PAYEE)));
    }

    function test_constructor_zeroRegistry_reverts() public {
        vm.expectRevert(InferenceCheck.ZeroRegistry.selector);
        new ProvenResults(ModelRegistry(address(0)));
    }

    function test_submit_thenAnyoneReads() public {
        bytes32 key = keccak256(abi.encode(MODEL, _in()));
        assertEq(results.resultKey(MODEL, _in()), key, "key = keccak(modelId, abi.encode(input))");
        (int256[] memory o, bool proven) = results.provenOutput(MODEL, _in());
        assertFalse(proven, "not yet");
        assertEq(o.length, 0, "empty");
        vm.expectEmit(true, true, true, true, address(results));
        emit ProvenResults.ResultProven(key, MODEL, address(0xA11CE), _in(), _out());
        vm.prank(address(0xA11CE));
        assertEq(results.submit(MODEL, _in(), _out(), PAYEE, _proof(_in(), _out())), key, "returns key");
        (o, proven) = results.provenOutput(MODEL, _in());
        assertTrue(proven, "proven");
        assertEq(o, _out(), "output");
        (address v, uint64 provenAt) = results.resultInfo(key);
        assertEq(v, address(verifier), "verifier recorded");
        assertEq(uint256(provenAt), block.timestamp, "time recorded");
    }

    function test_submit_twice_revertsAlreadyProven() public {
        results.submit(MODEL, _in(), _out(), PAYEE, _proof(_in(), _out()));
        bytes32 key = results.resultKey(MODEL, _in());
        vm.expectRevert(abi.encodeWithSelector(ProvenResults.AlreadyProven.selector, key));
        results.submit(MODEL, _in(), _out(), PAYEE, _proof(_in(), _out()));
    }

    function test_submit_invalidProof_reverts() public {
        int256[] memory bad = _out();
        bad[1] -= 1;
        vm.expectRevert(abi.encodeWithSelector(InferenceCheck.InvalidProof.selector, MODEL));
        results.submit(MODEL, _in(), bad, PAYEE, _proof(_in(), _out()));
        (, bool proven) = results.provenOutput(MODEL, _in());
        assertFalse(proven, "nothing recorded");
    }

    function test_submit_unknownModel_reverts() public {
        bytes32 nope = keccak256("nope");
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.UnknownModel.selector, nope));
        results.submit(nope, _in(), _out(), PAYEE, _proof(_in(), _out()));
        (, bool proven) = results.provenOutput(nope, _in());
        assertFalse(proven, "unknown model: never proven");
    }

    function test_submit_sizeAndRange_revert() public {
        int256[] memory two = new int256[](2);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputSizeMismatch.selector, 3, 2));
        results.submit(MODEL, two, _out(), PAYEE, _proof(two, _out()));
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.OutputSizeMismatch.selector, 2, 3));
        results.submit(MODEL, _in(), _in(), PAYEE, _proof(_in(), _in()));
        int256[] memory x = _in();
        x[2] = -32769;
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputOutOfRange.selector, 2, int256(-32769)));
        results.submit(MODEL, x, _out(), PAYEE, _proof(x, _out()));
        int256[] memory y = _out();
        y[1] = int256(1) << 31;
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.OutputOutOfRange.selector, 1, y[1]));
        results.submit(MODEL, _in(), y, PAYEE, _proof(_in(), y));
    }

    function test_frozenModel_keepsResults_refusesNewOnes() public {
        results.submit(MODEL, _in(), _out(), PAYEE, _proof(_in(), _out()));
        registry.freeze(MODEL);
        (, bool proven) = results.provenOutput(MODEL, _in());
        assertTrue(proven, "results before the freeze stay proven");
        int256[] memory x = _in();
        x[0] = 0;
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.ModelFrozen.selector, MODEL));
        results.submit(MODEL, x, _out(), PAYEE, _proof(x, _out()));
    }

    function test_verifierUpgrade_invalidatesOldResults_resubmitWorks() public {
        results.submit(MODEL, _in(), _out(), PAYEE, _proof(_in(), _out()));
        TestHashVerifier v2 = new TestHashVerifier();
        registry.proposeVerifierUpgrade(MODEL, address(v2), keccak256("circuit-2"), TestSetup.dev());
        vm.warp(block.timestamp + registry.UPGRADE_DELAY());
        registry.executeVerifierUpgrade(MODEL);
        (int256[] memory o, bool proven) = results.provenOutput(MODEL, _in());
        assertFalse(proven, "proven by a replaced verifier: no longer trusted");
        assertEq(o.length, 0, "empty");
        results.submit(MODEL, _in(), _out(), PAYEE, _proof(_in(), _out()));
        (o, proven) = results.provenOutput(MODEL, _in());
        assertTrue(proven, "re-proven under the new verifier");
        (address v,) = results.resultInfo(results.resultKey(MODEL, _in()));
        assertEq(v, address(v2), "new verifier recorded");
    }
}

/// @notice One REAL Groth16 proof (contracts/test/fixtures) fulfils a cross-chain request on
///         "chain A" and is verified again on "chain B" by B's own snarkjs verifier, registry,
///         inbox and results registry.
contract CrossChainGroth16Test is Test {
    bytes32 constant MODEL = keccak256("risk-groth16");
    uint64 constant DST = 8453;
    InferenceOracle oracleA;
    ModelRegistry registryB;
    CrossChainInbox inboxB;
    ProvenResults resultsB;
    RecordingCrossChainConsumer consumerB;
    int256[] input;
    int256[] output;
    bytes proof;
    address payee; // the payee the fixture proof was made for

    function setUp() public {
        string memory json = vm.readFile(string.concat(vm.projectRoot(), "/contracts/test/fixtures/risk_groth16.json"));
        input = vm.parseJsonIntArray(json, ".input");
        output = vm.parseJsonIntArray(json, ".output");
        proof = vm.parseJsonBytes(json, ".proof");
        payee = vm.parseJsonAddress(json, ".payee");
        ModelRegistry registryA = new ModelRegistry(address(this));
        oracleA = new InferenceOracle(registryA, address(this), 1 gwei);
        registryA.register(
            MODEL, _model(address(new Groth16VerifierAdapter(address(new Groth16Verifier()), 8, 3))), TestSetup.dev()
        );
        oracleA.setDestination(DST, true);
        // Chain B: its own verifier deployment and registry, same model id and circuit.
        registryB = new ModelRegistry(address(this));
        registryB.register(
            MODEL, _model(address(new Groth16VerifierAdapter(address(new Groth16Verifier()), 8, 3))), TestSetup.dev()
        );
        inboxB = new CrossChainInbox(registryB);
        resultsB = new ProvenResults(registryB);
        consumerB = new RecordingCrossChainConsumer();
    }

    function _model(address v) internal pure returns (ModelRegistry.Model memory) {
        return TestSetup.riskModel(v, false, bytes32(uint256(1)), 0, 320_000);
    }

    function _msg(uint64 src, address srcOracle, uint256 id, address c, uint32 gasLimit, address payee_)
        internal
        pure
        returns (CrossChainInbox.Message memory)
    {
        return CrossChainInbox.Message({
            srcChainId: src,
            srcOracle: srcOracle,
            requestId: id,
            modelId: MODEL,
            consumer: c,
            gasLimit: gasLimit,
            payee: payee_
        });
    }

    function test_sameProofOnBothChains() public {
        uint256 fee = oracleA.quoteFeeTo(MODEL, 400_000);
        uint256 id = oracleA.requestInferenceTo{value: fee}(
            DST, address(consumerB), MODEL, input, 400_000, uint64(block.timestamp + 600)
        );
        oracleA.fulfill(id, output, payee, proof);
        assertTrue(oracleA.requestStatus(id) == InferenceOracle.Status.Fulfilled, "fulfilled on A");
        assertEq(oracleA.balances(payee), fee, "fee to the payee the proof names");
        CrossChainInbox.Message memory m = _msg(1, address(oracleA), id, address(consumerB), 400_000, payee);
        uint256 g = gasleft();
        inboxB.deliver(m, input, output, proof);
        g -= gasleft();
        emit log_named_uint("deliver gas (real Groth16, recording consumer)", g);
        assertEq(consumerB.lastOutput(), output, "consumer on B got the proven output");
        resultsB.submit(MODEL, input, output, payee, proof);
        (int256[] memory o, bool proven) = resultsB.provenOutput(MODEL, input);
        assertTrue(proven, "and anyone can reuse it from ProvenResults");
        assertEq(o, output, "same output");
    }

    function test_tamperedProofRejectedOnB() public {
        bytes memory bad = proof;
        bad[100] = bytes1(uint8(bad[100]) ^ 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceCheck.InvalidProof.selector, MODEL));
        inboxB.deliver(_msg(1, address(0xA), 1, address(consumerB), 100_000, payee), input, output, bad);
        // The proof names its payee: under another one it is invalid on B too.
        vm.expectRevert(abi.encodeWithSelector(InferenceCheck.InvalidProof.selector, MODEL));
        inboxB.deliver(_msg(1, address(0xA), 1, address(consumerB), 100_000, address(0xC0C0)), input, output, proof);
        vm.expectRevert(abi.encodeWithSelector(InferenceCheck.InvalidProof.selector, MODEL));
        resultsB.submit(MODEL, input, output, address(0xC0C0), proof);
        int256[] memory badOut = output;
        badOut[0] += 1;
        vm.expectRevert(abi.encodeWithSelector(InferenceCheck.InvalidProof.selector, MODEL));
        inboxB.deliver(_msg(1, address(0xA), 1, address(consumerB), 100_000, payee), input, badOut, proof);
        vm.expectRevert(abi.encodeWithSelector(InferenceCheck.InvalidProof.selector, MODEL));
        resultsB.submit(MODEL, input, badOut, payee, proof);
        assertEq(consumerB.calls(), 0, "nothing delivered");
    }
}
