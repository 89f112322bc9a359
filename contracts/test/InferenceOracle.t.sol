// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceErrors} from "../utils/InferenceErrors.sol";
import {OracleFixture} from "./utils/OracleFixture.sol";
import {Vm} from "./utils/Test.sol";
import {
    RecordingConsumer,
    RevertingConsumer,
    GasBurnerConsumer,
    HugeReturnConsumer,
    ReentrantConsumer,
    EthRejecter,
    ReturnBombRequester,
    ReentrantRequester,
    RevertingVerifier
} from "./utils/Mocks.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {IInferenceConsumer} from "../IInferenceConsumer.sol";
import {ReentrancyGuardTransient} from "../utils/ReentrancyGuardTransient.sol";
import {Owned} from "../utils/Owned.sol";
import {ExactGasCall} from "../utils/ExactGasCall.sol";

contract InferenceOracleTest is OracleFixture {
    uint256 internal constant QUOTE0 = BASE_FEE + (uint256(VERIFY_GAS) + 90_000) * GAS_PRICE; // 90k: FULFILL_OVERHEAD_GAS

    // ================================================================== construction & views

    function test_constructor_setsStateAndEmits() public {
        vm.expectEmit(true, true, true, true);
        emit InferenceOracle.GasPriceChanged(7);
        InferenceOracle o = new InferenceOracle(registry, bob, 7);
        assertEq(address(o.registry()), address(registry), "registry");
        assertEq(o.owner(), bob, "owner");
        assertEq(o.gasPrice(), 7, "gasPrice");
        assertEq(o.nextRequestId(), 1, "first id");
        assertEq(o.totalEscrowed(), 0, "escrow");
        assertEq(o.totalCredits(), 0, "credits");
    }

    function test_constructor_zeroOwner_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.ZeroAddress.selector));
        new InferenceOracle(registry, address(0), 1);
    }

    function test_quoteFee_formula() public view {
        assertEq(oracle.quoteFee(MODEL, 0), QUOTE0, "no callback");
        assertEq(oracle.quoteFee(MODEL, 100_000), QUOTE0 + 100_000 * GAS_PRICE, "with callback gas");
    }

    function test_quoteFee_unknownModel_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.UnknownModel.selector, bytes32("nope")));
        oracle.quoteFee(bytes32("nope"), 0);
    }

    function test_getModel_passesThrough() public view {
        ModelRegistry.Model memory m = oracle.getModel(MODEL);
        assertEq(m.verifier, address(hashVerifier), "verifier");
        assertEq(uint256(m.inputSize), 3, "inputSize");
        assertEq(uint256(m.outputBits), 32, "outputBits");
    }

    function test_getModel_unknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, bytes32("nope")));
        oracle.getModel(bytes32("nope"));
    }

    function test_getRequest_unknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.UnknownRequest.selector, 42));
        oracle.getRequest(42);
    }

    function test_requestStatus_unknownIsNone() public view {
        assertStatus(42, InferenceOracle.Status.None, "none");
    }

    // ================================================================== requestInference

    function test_request_storesRequestAndEscrows() public {
        RecordingConsumer c = new RecordingConsumer();
        uint64 deadline = uint64(block.timestamp + 2 hours);
        uint256 fee = oracle.quoteFee(MODEL, 123_456);
        vm.prank(alice);
        uint256 id = oracle.requestInference{value: fee}(MODEL, defaultInput(), address(c), 123_456, deadline);
        assertEq(id, 1, "first id");
        assertEq(oracle.nextRequestId(), 2, "next id");
        InferenceOracle.RequestView memory r = oracle.getRequest(id);
        assertEq(r.requestId, id, "requestId");
        assertEq(r.modelId, MODEL, "modelId");
        assertEq(r.requester, alice, "requester");
        assertEq(r.callback, address(c), "callback");
        assertEq(uint256(r.callbackGasLimit), 123_456, "gas limit");
        assertEq(uint256(r.deadline), deadline, "deadline");
        assertEq(r.fee, fee, "fee");
        assertEq(uint256(r.status), uint256(InferenceOracle.Status.Pending), "status");
        assertEq(r.input, defaultInput(), "input round trip");
        assertEq(oracle.totalEscrowed(), fee, "escrowed");
        assertEq(oracle.totalCredits(), 0, "no credits");
        assertEq(address(oracle).balance, fee, "balance");
        assertEq(requestAs(bob, defaultInput()), 2, "ids increase");
    }

    function test_request_emitsInferenceRequested() public {
        uint64 deadline = soon();
        uint256 fee = oracle.quoteFee(MODEL, 50_000);
        address cb = address(new RecordingConsumer());
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceRequested(1, MODEL, alice, defaultInput(), cb, 50_000, deadline, fee);
        vm.prank(alice);
        oracle.requestInference{value: fee}(MODEL, defaultInput(), cb, 50_000, deadline);
    }

    function test_request_unknownModel_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.UnknownModel.selector, bytes32("nope")));
        vm.prank(alice);
        oracle.requestInference{value: 1 ether}(bytes32("nope"), defaultInput(), address(0), 0, soon());
    }

    function test_request_frozenModel_reverts() public {
        registry.freeze(MODEL);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.ModelFrozen.selector, MODEL));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, defaultInput(), address(0), 0, soon());
    }

    function test_request_inputTooShort_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputSizeMismatch.selector, 3, 2));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, ints(1, 2), address(0), 0, soon());
    }

    function test_request_inputTooLong_reverts() public {
        int256[] memory input = new int256[](4);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputSizeMismatch.selector, 3, 4));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, input, address(0), 0, soon());
    }

    function test_request_inputAboveRange_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputOutOfRange.selector, 1, int256(32768)));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, ints(0, 32768, 0), address(0), 0, soon());
    }

    function test_request_inputBelowRange_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputOutOfRange.selector, 2, int256(-32769)));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, ints(0, 0, -32769), address(0), 0, soon());
    }

    function test_request_inputExtremes_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputOutOfRange.selector, 0, type(int256).min));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, ints(type(int256).min, 0, 0), address(0), 0, soon());
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputOutOfRange.selector, 0, type(int256).max));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, ints(type(int256).max, 0, 0), address(0), 0, soon());
    }

    function test_request_inputBoundariesAccepted() public {
        int256[] memory input = ints(32767, -32768, 0);
        uint256 id = requestAs(alice, input);
        assertEq(oracle.getRequest(id).input, input, "boundaries round trip");
    }

    function test_request_callbackGasTooHigh_reverts() public {
        uint32 max = oracle.MAX_CALLBACK_GAS();
        address cb = address(new RecordingConsumer());
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.CallbackGasTooHigh.selector, max + 1, max));
        vm.prank(alice);
        oracle.requestInference{value: 1 ether}(MODEL, defaultInput(), cb, max + 1, soon());
    }

    function test_request_callbackGasAtMaxAccepted() public {
        uint32 max = oracle.MAX_CALLBACK_GAS();
        address cb = address(new RecordingConsumer());
        uint256 fee = oracle.quoteFee(MODEL, max);
        vm.prank(alice);
        uint256 id = oracle.requestInference{value: fee}(MODEL, defaultInput(), cb, max, soon());
        assertEq(uint256(oracle.getRequest(id).callbackGasLimit), max, "max stored");
    }

    function test_request_missingCallbackGas_reverts() public {
        address cb = address(new RecordingConsumer());
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.MissingCallbackGas.selector, cb));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, defaultInput(), cb, 0, soon());
    }

    function test_request_deadlineTooSoon_reverts() public {
        uint64 earliest = uint64(block.timestamp) + oracle.MIN_DEADLINE_DELAY();
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.DeadlineTooSoon.selector, earliest - 1, earliest));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, defaultInput(), address(0), 0, earliest - 1);
        // A deadline in the past, too.
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.DeadlineTooSoon.selector, 0, earliest));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, defaultInput(), address(0), 0, 0);
    }

    function test_request_deadlineTooFar_reverts() public {
        uint64 latest = uint64(block.timestamp) + oracle.MAX_DEADLINE_DELAY();
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.DeadlineTooFar.selector, latest + 1, latest));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0}(MODEL, defaultInput(), address(0), 0, latest + 1);
    }

    function test_request_deadlineBoundsAccepted() public {
        uint64 earliest = uint64(block.timestamp) + oracle.MIN_DEADLINE_DELAY();
        uint64 latest = uint64(block.timestamp) + oracle.MAX_DEADLINE_DELAY();
        vm.startPrank(alice);
        uint256 a = oracle.requestInference{value: QUOTE0}(MODEL, defaultInput(), address(0), 0, earliest);
        uint256 b = oracle.requestInference{value: QUOTE0}(MODEL, defaultInput(), address(0), 0, latest);
        vm.stopPrank();
        assertEq(uint256(oracle.getRequest(a).deadline), earliest, "earliest");
        assertEq(uint256(oracle.getRequest(b).deadline), latest, "latest");
    }

    function test_request_insufficientFee_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InsufficientFee.selector, QUOTE0, QUOTE0 - 1));
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0 - 1}(MODEL, defaultInput(), address(0), 0, soon());
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InsufficientFee.selector, QUOTE0, 0));
        vm.prank(alice);
        oracle.requestInference(MODEL, defaultInput(), address(0), 0, soon());
    }

    function test_request_overpaymentCredited() public {
        uint256 extra = 0.5 ether;
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceRequested(1, MODEL, alice, defaultInput(), address(0), 0, soon(), QUOTE0);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.Credited(alice, extra);
        vm.prank(alice);
        uint256 id = oracle.requestInference{value: QUOTE0 + extra}(MODEL, defaultInput(), address(0), 0, soon());
        assertEq(oracle.getRequest(id).fee, QUOTE0, "only the quote is escrowed");
        assertEq(oracle.balances(alice), extra, "excess credited");
        assertEq(oracle.totalCredits(), extra, "credits");
        assertEq(oracle.totalEscrowed(), QUOTE0, "escrow");
        assertEq(address(oracle).balance, QUOTE0 + extra, "balance");
    }

    function test_request_exactFee_noCredit() public {
        vm.recordLogs();
        request();
        assertEq(_count(vm.getRecordedLogs(), InferenceOracle.Credited.selector), 0, "no Credited event");
        assertEq(oracle.balances(alice), 0, "nothing credited");
    }

    function test_request_feeTooLarge_reverts() public {
        registry.setFee(MODEL, uint128(1) << 100, VERIFY_GAS);
        uint256 fee = oracle.quoteFee(MODEL, 0);
        vm.deal(alice, fee);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.FeeTooLarge.selector, fee));
        vm.prank(alice);
        oracle.requestInference{value: fee}(MODEL, defaultInput(), address(0), 0, soon());
    }

    function test_request_feeFrozenAtRequestTime() public {
        uint256 id = request();
        oracle.setGasPrice(100 gwei);
        registry.setFee(MODEL, 5 ether, VERIFY_GAS);
        assertEq(oracle.getRequest(id).fee, QUOTE0, "fee of an existing request unchanged");
        fulfillAs(relayer, id);
        assertEq(oracle.balances(relayer), QUOTE0, "relayer gets the escrowed fee");
    }

    // ================================================================== fulfill

    function test_fulfill_creditsRelayerAndEmits() public {
        uint256 id = request();
        int256[] memory out = defaultOutput();
        bytes memory proof = proofOf(defaultInput(), out, relayer);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.Credited(relayer, QUOTE0);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(id, MODEL, out, relayer, true);
        vm.prank(relayer);
        oracle.fulfill(id, out, relayer, proof);
        assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled");
        assertEq(oracle.balances(relayer), QUOTE0, "relayer credited");
        assertEq(oracle.totalEscrowed(), 0, "escrow released");
        assertEq(oracle.totalCredits(), QUOTE0, "credits");
        assertEq(address(oracle).balance, QUOTE0, "eth stays until withdraw");
        assertEq(oracle.getRequest(id).input, defaultInput(), "input still readable");
    }

    /// The fee goes to the payee the proof names, whoever sends the transaction.
    function test_fulfill_creditsPayeeNotSender() public {
        uint256 id = request();
        int256[] memory out = defaultOutput();
        bytes memory proof = proofOf(defaultInput(), out, relayer);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.Credited(relayer, QUOTE0);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(id, MODEL, out, relayer, true);
        vm.prank(bob); // a hot wallet, a bundler, or a copier: not paid
        oracle.fulfill(id, out, relayer, proof);
        assertEq(oracle.balances(relayer), QUOTE0, "payee credited");
        assertEq(oracle.balances(bob), 0, "sender not credited");
    }

    /// A proof made for one payee does not verify for another (the sender, or anyone).
    function test_fulfill_proofForAnotherPayee_reverts() public {
        uint256 id = request();
        bytes memory proof = proofOf(defaultInput(), defaultOutput(), relayer);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        vm.prank(bob);
        oracle.fulfill(id, defaultOutput(), bob, proof);
        assertStatus(id, InferenceOracle.Status.Pending, "still pending");
        assertEq(oracle.balances(bob), 0, "nothing credited");
    }

    function test_fulfill_zeroPayee_reverts() public {
        uint256 id = request();
        bytes memory proof = proofOf(defaultInput(), defaultOutput(), address(0));
        vm.expectRevert(InferenceOracle.ZeroPayee.selector);
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), address(0), proof);
        assertStatus(id, InferenceOracle.Status.Pending, "still pending");
        assertEq(oracle.totalCredits(), 0, "nothing credited to address(0)");
    }

    function test_fulfill_unknownRequest_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.UnknownRequest.selector, 99));
        oracle.fulfill(99, defaultOutput(), relayer, "");
    }

    function test_fulfill_twice_reverts() public {
        uint256 id = request();
        fulfillAs(relayer, id);
        bytes memory proof = proofOf(defaultInput(), defaultOutput(), bob);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.AlreadyFulfilled.selector, id));
        vm.prank(bob);
        oracle.fulfill(id, defaultOutput(), bob, proof);
        assertEq(oracle.balances(bob), 0, "second relayer paid nothing");
    }

    function test_fulfill_atDeadline_works_afterDeadline_reverts() public {
        uint256 a = request();
        uint256 b = request();
        uint64 deadline = oracle.getRequest(a).deadline;
        vm.warp(deadline);
        fulfillAs(relayer, a);
        vm.warp(uint256(deadline) + 1);
        bytes memory proof = proofOf(defaultInput(), defaultOutput(), relayer);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.RequestExpired.selector, b, deadline));
        oracle.fulfill(b, defaultOutput(), relayer, proof);
    }

    function test_fulfill_afterRefund_reverts() public {
        uint256 id = request();
        vm.warp(uint256(oracle.getRequest(id).deadline) + 1);
        oracle.refund(id);
        bytes memory proof = proofOf(defaultInput(), defaultOutput(), relayer);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.AlreadyRefunded.selector, id));
        oracle.fulfill(id, defaultOutput(), relayer, proof);
    }

    function test_fulfill_outputSizeMismatch_reverts() public {
        uint256 id = request();
        int256[] memory out = ints(1, 2, 3);
        bytes memory proof = proofOf(defaultInput(), out, relayer);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.OutputSizeMismatch.selector, 2, 3));
        oracle.fulfill(id, out, relayer, proof);
        out = new int256[](0);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.OutputSizeMismatch.selector, 2, 0));
        oracle.fulfill(id, out, relayer, proof);
    }

    function test_fulfill_outputOutOfRange_reverts() public {
        uint256 id = request();
        int256 hi = int256(type(int32).max);
        int256 lo = int256(type(int32).min);
        int256[] memory out = ints(0, hi + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.OutputOutOfRange.selector, 1, hi + 1));
        oracle.fulfill(id, out, relayer, proofOf(defaultInput(), out, relayer));
        out = ints(lo - 1, 0);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.OutputOutOfRange.selector, 0, lo - 1));
        oracle.fulfill(id, out, relayer, proofOf(defaultInput(), out, relayer));
        // Boundaries are valid outputs.
        out = ints(lo, hi);
        vm.prank(relayer);
        oracle.fulfill(id, out, relayer, proofOf(defaultInput(), out, relayer));
        assertStatus(id, InferenceOracle.Status.Fulfilled, "boundary output accepted");
    }

    function test_fulfill_garbageProof_reverts() public {
        uint256 id = request();
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, defaultOutput(), relayer, hex"deadbeef");
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, defaultOutput(), relayer, "");
    }

    function test_fulfill_proofForAnotherInput_reverts() public {
        uint256 id = request();
        bytes memory other = proofOf(ints(-5, 32767, -32767), defaultOutput(), relayer);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, defaultOutput(), relayer, other);
    }

    function test_fulfill_proofForAnotherOutput_reverts() public {
        uint256 id = request();
        bytes memory proofOf79 = proofOf(defaultInput(), ints(7, 9), relayer);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, ints(7, -9), relayer, proofOf79);
        // and the proof of a second request with a different input cannot fulfil the first
        uint256 id2 = requestAs(bob, ints(1, 2, 3));
        bytes memory proof2 = proofOf(ints(1, 2, 3), defaultOutput(), relayer);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, defaultOutput(), relayer, proof2);
        oracle.fulfill(id2, defaultOutput(), relayer, proof2);
    }

    function test_fulfill_verifierRevert_bubbles() public {
        RevertingVerifier rv = new RevertingVerifier();
        bytes32 m = keccak256("reverting");
        _register(m, modelConfig(address(rv), 3, 2, 16, 32, false));
        uint256 fee = oracle.quoteFee(m, 0);
        vm.prank(alice);
        uint256 id = oracle.requestInference{value: fee}(m, defaultInput(), address(0), 0, soon());
        vm.expectRevert(abi.encodeWithSelector(RevertingVerifier.VerifierExploded.selector, 42));
        oracle.fulfill(id, defaultOutput(), relayer, "");
        assertStatus(id, InferenceOracle.Status.Pending, "still pending");
    }

    function test_fulfill_permissionless_anyRelayer() public {
        uint256 id = request();
        fulfillAs(address(0xCAFE), id);
        assertEq(oracle.balances(address(0xCAFE)), QUOTE0, "any caller earns the fee");
    }

    // ================================================================== callbacks

    function test_callback_receivesResult() public {
        RecordingConsumer c = new RecordingConsumer();
        uint256 id = requestWithCallback(address(c), 200_000);
        fulfillAs(relayer, id);
        assertEq(c.calls(), 1, "called once");
        assertEq(c.lastRequestId(), id, "id");
        assertEq(c.lastModelId(), MODEL, "model");
        assertEq(c.lastOutput(), defaultOutput(), "output");
    }

    /// @dev Gas a RecordingConsumer sees at entry when called directly with exactly `limit`.
    function _calibrate(uint256 id, uint32 limit) internal returns (uint256) {
        RecordingConsumer probe = new RecordingConsumer();
        (bool ok,) = address(probe).call{gas: limit}(
            abi.encodeCall(IInferenceConsumer.onInferenceResult, (id, MODEL, defaultOutput()))
        );
        assertTrue(ok, "probe call");
        return probe.gasAtEntry();
    }

    function _fulfillWithGas(uint256 id, uint256 gas) internal returns (bool ok, bytes memory ret) {
        int256[] memory out = defaultOutput();
        bytes memory data =
            abi.encodeCall(InferenceOracle.fulfill, (id, out, relayer, proofOf(defaultInput(), out, relayer)));
        vm.prank(relayer);
        (ok, ret) = address(oracle).call{gas: gas}(data);
    }

    function test_callback_getsExactlyItsGasLimit() public {
        uint32 limit = 300_000;
        RecordingConsumer c = new RecordingConsumer();
        uint256 id = requestWithCallback(address(c), limit);
        uint256 expected = _calibrate(id, limit);
        (bool ok,) = _fulfillWithGas(id, 5_000_000);
        assertTrue(ok, "fulfil");
        assertEq(c.gasAtEntry(), expected, "callback got exactly the requested gas");
        assertGt(expected, limit - 1_000, "calibration sane");
    }

    function test_callback_insufficientGas_reverts() public {
        uint32 limit = 500_000;
        RecordingConsumer c = new RecordingConsumer();
        uint256 id = requestWithCallback(address(c), limit);
        // Far below the limit, and just above it (the 1/64 rule still starves the callee).
        uint256[3] memory gases = [uint256(300_000), uint256(limit), uint256(limit) + 20_000];
        for (uint256 i; i < gases.length; ++i) {
            (bool ok, bytes memory ret) = _fulfillWithGas(id, gases[i]);
            assertFalse(ok, "must revert");
            assertEq(
                ret,
                abi.encodeWithSelector(ExactGasCall.InsufficientGasForCallback.selector, id, limit),
                "InsufficientGasForCallback"
            );
        }
        assertEq(c.calls(), 0, "callback never ran");
        assertStatus(id, InferenceOracle.Status.Pending, "still pending");
        assertEq(oracle.balances(relayer), 0, "relayer unpaid");
    }

    /// @dev For every gas amount in a sweep across the threshold: either the fulfilment reverts
    ///      or the callback got exactly its limit. Never a success with a starved callback.
    function _sweep(uint32 limit, uint256 from, uint256 to, uint256 step) internal returns (uint256 firstOk) {
        RecordingConsumer c = new RecordingConsumer();
        uint256 id = requestWithCallback(address(c), limit);
        uint256 expected = _calibrate(id, limit);
        for (uint256 g = from; g < to; g += step) {
            uint256 snap = vm.snapshotState();
            (bool ok, bytes memory ret) = _fulfillWithGas(id, g);
            if (ok) {
                if (firstOk == 0) firstOk = g;
                assertEq(c.gasAtEntry(), expected, "success => exact callback gas");
            } else {
                assertTrue(
                    ret.length == 0 || bytes4(ret) == ExactGasCall.InsufficientGasForCallback.selector, "revert reason"
                );
                assertEq(firstOk, 0, "monotonic: no failure above a success");
            }
            vm.revertToState(snap);
        }
        assertGt(firstOk, 0, "some gas amount succeeded");
        // All but 1/64 of the gas is forwarded, so success needs more than limit * 64/63.
        assertGt(firstOk, uint256(limit) + uint256(limit) / 63, "threshold above limit * 64/63");
    }

    function test_callback_gasSweep_neverStarved_small() public {
        uint256 firstOk = _sweep(200_000, 190_000, 330_000, 1_500);
        assertLt(firstOk, 200_000 + 120_000, "threshold reasonable");
    }

    /// @dev At a large limit the 1/64 withheld by the CALL (~39 k) dwarfs any fixed reserve:
    ///      this is where a check without the 63/64 rule would let a relayer starve the callback.
    function test_callback_gasSweep_neverStarved_max() public {
        uint32 limit = oracle.MAX_CALLBACK_GAS();
        uint256 firstOk = _sweep(limit, uint256(limit) + 20_000, uint256(limit) + uint256(limit) / 63 + 120_000, 2_000);
        assertLt(firstOk, uint256(limit) + uint256(limit) / 63 + 120_000, "threshold reasonable");
    }

    function test_callback_reverting_recordedFulfilmentStands() public {
        RevertingConsumer c = new RevertingConsumer();
        uint256 id = requestWithCallback(address(c), 100_000);
        uint256 fee = oracle.getRequest(id).fee;
        int256[] memory out = defaultOutput();
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(id, MODEL, out, relayer, false);
        fulfillAs(relayer, id);
        assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled");
        assertEq(oracle.balances(relayer), fee, "relayer credited");
        assertEq(oracle.totalEscrowed(), 0, "escrow released");
    }

    function test_callback_burnsAllGas_fulfilmentStands() public {
        GasBurnerConsumer c = new GasBurnerConsumer();
        uint32 limit = 1_000_000;
        uint256 id = requestWithCallback(address(c), limit);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(id, MODEL, defaultOutput(), relayer, false);
        (bool ok,) = _fulfillWithGas(id, 1_200_000);
        assertTrue(ok, "fulfil with modest headroom");
        assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled");
        assertEq(oracle.balances(relayer), oracle.getRequest(id).fee, "relayer credited");
    }

    function test_callback_hugeReturndata_notCopied() public {
        uint32 limit = 2_000_000;
        HugeReturnConsumer bomb = new HugeReturnConsumer(600_000); // ~0.8 M gas of callee memory
        RecordingConsumer quiet = new RecordingConsumer();
        uint256 a = requestWithCallback(address(bomb), limit);
        uint256 b = requestWithCallback(address(quiet), limit);
        int256[] memory out = defaultOutput();
        bytes memory proof = proofOf(defaultInput(), out, relayer);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(a, MODEL, out, relayer, true);
        vm.prank(relayer);
        uint256 g0 = gasleft();
        oracle.fulfill(a, out, relayer, proof);
        uint256 used = g0 - gasleft();
        // Copying 600 kB into the oracle's memory would cost more than 800 k gas on top.
        assertLt(used, 1_000_000, "return data not copied");
        assertStatus(a, InferenceOracle.Status.Fulfilled, "fulfilled");
        fulfillAs(relayer, b);
        assertStatus(b, InferenceOracle.Status.Fulfilled, "other fulfilled");
    }

    function test_request_codelessCallback_reverts() public {
        uint256 fee = oracle.quoteFee(MODEL, 50_000);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.CallbackNotContract.selector, address(0xDEAD)));
        oracle.requestInference{value: fee}(
            MODEL, defaultInput(), address(0xDEAD), 50_000, uint64(block.timestamp + 600)
        );
    }

    function test_callback_codeGoneByFulfilment_recordedAsFailed() public {
        RecordingConsumer c = new RecordingConsumer();
        uint256 id = requestWithCallback(address(c), 50_000);
        vm.etch(address(c), "");
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(id, MODEL, defaultOutput(), relayer, false);
        fulfillAs(relayer, id);
        assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilment stands");
    }

    function test_callback_reentrancyBlocked_requestAllowed() public {
        ReentrantConsumer c = new ReentrantConsumer(oracle);
        vm.deal(address(c), 1 ether);
        uint256 target = request(); // a pending request with a valid proof available
        int256[] memory out = defaultOutput();
        c.setup(MODEL, defaultInput(), target, out, proofOf(defaultInput(), out, address(c)));
        uint256 id = requestWithCallback(address(c), 1_000_000);
        // Give the consumer a balance so withdraw would otherwise succeed.
        vm.prank(address(c));
        oracle.requestInference{value: QUOTE0 + 1}(MODEL, defaultInput(), address(0), 0, soon());
        assertEq(oracle.balances(address(c)), 1, "consumer has a balance");

        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(id, MODEL, out, relayer, true);
        fulfillAs(relayer, id);

        assertTrue(c.called(), "callback ran");
        assertEq(c.fulfillErr(), ReentrancyGuardTransient.ReentrantCall.selector, "fulfill blocked");
        assertEq(c.batchErr(), ReentrancyGuardTransient.ReentrantCall.selector, "fulfillBatch blocked");
        assertEq(c.refundErr(), ReentrancyGuardTransient.ReentrantCall.selector, "refund blocked");
        assertEq(c.withdrawErr(), ReentrancyGuardTransient.ReentrantCall.selector, "withdraw blocked");
        assertStatus(target, InferenceOracle.Status.Pending, "target untouched");
        assertEq(oracle.balances(address(c)), 1, "balance untouched");
        uint256 nid = c.newRequestId();
        assertGt(nid, 0, "request from callback worked");
        assertEq(oracle.getRequest(nid).requester, address(c), "new request requester");
        assertStatus(nid, InferenceOracle.Status.Pending, "new request pending");
        // The lock is released after the transaction: the target can be fulfilled normally.
        fulfillAs(relayer, target);
    }

    // ================================================================== refund

    function test_refund_returnsFeeAndEmits() public {
        uint256 id = request();
        uint64 deadline = oracle.getRequest(id).deadline;
        vm.warp(uint256(deadline) + 1);
        uint256 before = alice.balance;
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceRefunded(id, alice, QUOTE0);
        vm.prank(bob); // anyone may trigger it
        oracle.refund(id);
        assertEq(alice.balance, before + QUOTE0, "fee back to requester");
        assertStatus(id, InferenceOracle.Status.Refunded, "refunded");
        assertEq(oracle.totalEscrowed(), 0, "escrow");
        assertEq(address(oracle).balance, 0, "oracle empty");
    }

    function test_refund_beforeDeadline_reverts() public {
        uint256 id = request();
        uint64 deadline = oracle.getRequest(id).deadline;
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.DeadlineNotReached.selector, id, deadline));
        oracle.refund(id);
        vm.warp(deadline); // at the deadline it can still be fulfilled, so no refund yet
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.DeadlineNotReached.selector, id, deadline));
        oracle.refund(id);
    }

    function test_refund_twice_reverts() public {
        uint256 id = request();
        vm.warp(uint256(oracle.getRequest(id).deadline) + 1);
        oracle.refund(id);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.AlreadyRefunded.selector, id));
        oracle.refund(id);
    }

    function test_refund_afterFulfil_reverts() public {
        uint256 id = request();
        fulfillAs(relayer, id);
        vm.warp(uint256(oracle.getRequest(id).deadline) + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.AlreadyFulfilled.selector, id));
        oracle.refund(id);
    }

    function test_refund_unknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.UnknownRequest.selector, 7));
        oracle.refund(7);
    }

    function test_refund_rejectingRequester_isCredited() public {
        EthRejecter r = new EthRejecter(oracle);
        uint256 id = r.request{value: QUOTE0}(MODEL, defaultInput(), soon());
        vm.warp(block.timestamp + 2 hours);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceRefunded(id, address(r), QUOTE0);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.Credited(address(r), QUOTE0);
        oracle.refund(id);
        assertStatus(id, InferenceOracle.Status.Refunded, "refunded");
        assertEq(oracle.balances(address(r)), QUOTE0, "credited instead");
        assertEq(oracle.totalCredits(), QUOTE0, "credits");
        assertEq(oracle.totalEscrowed(), 0, "escrow");
        assertEq(address(oracle).balance, QUOTE0, "eth kept for the credit");
        // It still cannot take it out as ETH.
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.TransferFailed.selector, address(r), QUOTE0));
        r.withdraw();
    }

    function test_refund_reentrantRequester_blocked() public {
        ReentrantRequester r = new ReentrantRequester(oracle);
        uint256 id = r.request{value: QUOTE0}(MODEL, defaultInput(), soon());
        vm.warp(block.timestamp + 2 hours);
        oracle.refund(id);
        assertEq(r.received(), QUOTE0, "refund received");
        assertEq(r.refundErr(), ReentrancyGuardTransient.ReentrantCall.selector, "refund re-entry blocked");
        assertEq(r.withdrawErr(), ReentrancyGuardTransient.ReentrantCall.selector, "withdraw re-entry blocked");
        assertEq(oracle.totalEscrowed(), 0, "escrow");
        assertEq(address(oracle).balance, 0, "no double pay");
    }

    /// @dev A requester cannot make its own refund impossible by answering with a huge return
    ///      payload (the oracle must not copy it): the fee would then be stuck in escrow.
    function test_refund_returnBombRequester_stillRefunds() public {
        ReturnBombRequester r = new ReturnBombRequester(oracle, 0);
        uint256 id = r.request{value: QUOTE0}(MODEL, defaultInput(), soon());
        vm.warp(block.timestamp + 2 hours);
        (bool ok,) = address(oracle).call{gas: 5_000_000}(abi.encodeCall(InferenceOracle.refund, (id)));
        assertTrue(ok, "refund must go through");
        assertStatus(id, InferenceOracle.Status.Refunded, "refunded");
        assertEq(address(r).balance, QUOTE0, "paid");
        assertEq(oracle.totalEscrowed(), 0, "escrow");
    }

    // ================================================================== withdraw

    function test_withdraw_paysAndEmits() public {
        uint256 id = request();
        fulfillAs(relayer, id);
        uint256 before = relayer.balance;
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.Withdrawn(relayer, QUOTE0);
        vm.prank(relayer);
        oracle.withdraw();
        assertEq(relayer.balance, before + QUOTE0, "paid out");
        assertEq(oracle.balances(relayer), 0, "balance cleared");
        assertEq(oracle.totalCredits(), 0, "credits");
        assertEq(address(oracle).balance, 0, "oracle empty");
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.NothingToWithdraw.selector, relayer));
        vm.prank(relayer);
        oracle.withdraw();
    }

    function test_withdraw_nothing_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.NothingToWithdraw.selector, bob));
        vm.prank(bob);
        oracle.withdraw();
    }

    function test_withdraw_rejectingRelayer_transferFailed() public {
        EthRejecter r = new EthRejecter(oracle);
        uint256 id = request();
        r.fulfill(id, defaultOutput(), proofOf(defaultInput(), defaultOutput(), address(r)));
        assertEq(oracle.balances(address(r)), QUOTE0, "credited");
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.TransferFailed.selector, address(r), QUOTE0));
        r.withdraw();
        assertEq(oracle.balances(address(r)), QUOTE0, "balance kept after failed transfer");
        assertEq(oracle.totalCredits(), QUOTE0, "credits kept");
    }

    function test_withdraw_overpaymentAndFees_accumulate() public {
        vm.prank(alice);
        oracle.requestInference{value: QUOTE0 + 3}(MODEL, defaultInput(), address(0), 0, soon());
        uint256 id = request();
        fulfillAs(alice, id); // alice relays her own request
        assertEq(oracle.balances(alice), QUOTE0 + 3, "overpayment + fee");
        uint256 before = alice.balance;
        vm.prank(alice);
        oracle.withdraw();
        assertEq(alice.balance, before + QUOTE0 + 3, "all at once");
    }

    // ================================================================== admin

    function test_setGasPrice_ownerOnly() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, bob));
        vm.prank(bob);
        oracle.setGasPrice(2 gwei);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.GasPriceChanged(2 gwei);
        oracle.setGasPrice(2 gwei);
        assertEq(oracle.gasPrice(), 2 gwei, "set");
        assertEq(
            oracle.quoteFee(MODEL, 0),
            BASE_FEE + (uint256(VERIFY_GAS) + oracle.FULFILL_OVERHEAD_GAS()) * 2 gwei,
            "quote follows"
        );
        oracle.setGasPrice(0);
        assertEq(oracle.quoteFee(MODEL, 1_000_000), BASE_FEE, "zero gas price: base fee only");
    }

    function test_oracleOwnership_twoStep() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, bob));
        vm.prank(bob);
        oracle.transferOwnership(bob);
        oracle.transferOwnership(bob);
        assertEq(oracle.owner(), owner, "unchanged until accepted");
        vm.prank(bob);
        oracle.acceptOwnership();
        assertEq(oracle.owner(), bob, "bob owns");
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, owner));
        oracle.setGasPrice(1);
    }

    // ================================================================== helpers

    function _count(Vm.Log[] memory logs, bytes32 topic0) internal view returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(oracle) && logs[i].topics.length > 0 && logs[i].topics[0] == topic0) ++n;
        }
    }
}

