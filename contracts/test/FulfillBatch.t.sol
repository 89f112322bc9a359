// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceErrors} from "../utils/InferenceErrors.sol";
import {OracleFixture} from "./utils/OracleFixture.sol";
import {Vm} from "./utils/Test.sol";
import {PathSpyVerifier, RevertingVerifier, RevertingConsumer, RecordingConsumer} from "./utils/Mocks.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {IInferenceVerifier, IBatchInferenceVerifier} from "../Verifier.sol";

contract FulfillBatchTest is OracleFixture {
    PathSpyVerifier internal spy;
    bytes32 internal constant SPY = keccak256("spy-model");

    function setUp() public override {
        super.setUp();
        spy = new PathSpyVerifier();
        _register(SPY, modelConfig(address(spy), 3, 2, 16, 32, true));
    }

    // ------------------------------------------------------------------ helpers

    function _input(uint256 i) internal pure returns (int256[] memory) {
        return ints(int256(i), -int256(i), 100);
    }

    function _output(uint256 i) internal pure returns (int256[] memory) {
        return ints(int256(i) * 3, -1);
    }

    function _requestOn(bytes32 model, uint256 i, uint64 deadline) internal returns (uint256 id) {
        uint256 fee = oracle.quoteFee(model, 0);
        vm.prank(alice);
        id = oracle.requestInference{value: fee}(model, _input(i), address(0), 0, deadline);
    }

    /// @dev n requests on `model` with distinct inputs, plus their valid batch arguments.
    function _batch(bytes32 model, uint256 n)
        internal
        returns (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs)
    {
        ids = new uint256[](n);
        outs = new int256[][](n);
        proofs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            ids[i] = _requestOn(model, i, soon());
            outs[i] = _output(i);
            proofs[i] = proofOf(_input(i), outs[i], relayer);
        }
    }

    function _fulfilBatch(uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs)
        internal
        returns (uint256 n)
    {
        vm.prank(relayer);
        n = oracle.fulfillBatch(ids, outs, relayer, proofs);
    }

    function _expectSkip(uint256 id, bytes4 reason) internal {
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.FulfillmentSkipped(id, reason);
    }

    // ------------------------------------------------------------------ batch path

    function test_batch_allGood_allFulfilled() public {
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(MODEL, 4);
        uint256 fee = oracle.quoteFee(MODEL, 0);
        for (uint256 i; i < 4; ++i) {
            vm.expectEmit(true, true, true, true, address(oracle));
            emit InferenceOracle.InferenceFulfilled(ids[i], MODEL, outs[i], relayer, true);
        }
        assertEq(_fulfilBatch(ids, outs, proofs), 4, "all fulfilled");
        for (uint256 i; i < 4; ++i) {
            assertStatus(ids[i], InferenceOracle.Status.Fulfilled, "status");
        }
        assertEq(oracle.balances(relayer), 4 * fee, "relayer credited every fee");
        assertEq(oracle.totalEscrowed(), 0, "escrow released");
    }

    /// @dev With acceptSingle=false, only verifyBatch can accept a proof: everything fulfilled
    ///      proves the batch path was taken, and expectCall counts the calls.
    function test_batch_sameBatchableModel_usesVerifyBatch() public {
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(SPY, 5);
        spy.configure(false, true, false);
        vm.expectCall(address(spy), abi.encodePacked(IBatchInferenceVerifier.verifyBatch.selector), 1);
        vm.expectCall(address(spy), abi.encodePacked(IInferenceVerifier.verify.selector), 0);
        assertEq(_fulfilBatch(ids, outs, proofs), 5, "batch path fulfilled all");
    }

    function test_batch_oneBadProof_skippedOthersFulfilled() public {
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(SPY, 4);
        proofs[2] = proofOf(_input(1), outs[2], relayer); // a proof for another input
        // Batch fails as a whole, then each entry is verified alone (4 calls), plus the single
        // fulfil at the end of this test (expectCall counts over the whole test).
        vm.expectCall(address(spy), abi.encodePacked(IBatchInferenceVerifier.verifyBatch.selector), 1);
        vm.expectCall(address(spy), abi.encodePacked(IInferenceVerifier.verify.selector), 5);
        _expectSkip(ids[2], InferenceOracle.InvalidProof.selector);
        assertEq(_fulfilBatch(ids, outs, proofs), 3, "three fulfilled");
        assertStatus(ids[0], InferenceOracle.Status.Fulfilled, "0");
        assertStatus(ids[1], InferenceOracle.Status.Fulfilled, "1");
        assertStatus(ids[2], InferenceOracle.Status.Pending, "bad one pending");
        assertStatus(ids[3], InferenceOracle.Status.Fulfilled, "3");
        assertEq(oracle.totalEscrowed(), oracle.quoteFee(SPY, 0), "bad one still escrowed");
        // The skipped one can still be fulfilled later with its right proof.
        vm.prank(relayer);
        oracle.fulfill(ids[2], outs[2], relayer, proofOf(_input(2), outs[2], relayer));
    }

    function test_batch_batchVerifierReverts_fallsBackToSingle() public {
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(SPY, 3);
        spy.configure(true, true, true);
        assertEq(_fulfilBatch(ids, outs, proofs), 3, "fallback fulfilled all");
    }

    function test_batch_duplicateIds_onlyOnceFulfilled() public {
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(MODEL, 2);
        uint256[] memory dupIds = new uint256[](3);
        int256[][] memory dupOuts = new int256[][](3);
        bytes[] memory dupProofs = new bytes[](3);
        for (uint256 i; i < 3; ++i) {
            uint256 k = i == 2 ? 1 : 0; // ids[0], ids[0], ids[1]
            dupIds[i] = ids[k];
            dupOuts[i] = outs[k];
            dupProofs[i] = proofs[k];
        }
        uint256 fee = oracle.quoteFee(MODEL, 0);
        _expectSkip(ids[0], InferenceOracle.AlreadyFulfilled.selector);
        vm.recordLogs();
        assertEq(_fulfilBatch(dupIds, dupOuts, dupProofs), 2, "two distinct fulfilled");
        assertEq(_countFulfilled(ids[0]), 1, "one InferenceFulfilled for the duplicate");
        assertEq(oracle.balances(relayer), 2 * fee, "paid once per request");
        assertEq(oracle.totalCredits() + oracle.totalEscrowed(), address(oracle).balance, "conservation");
    }

    function test_batch_duplicateIds_individualPath() public {
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(MODEL, 1);
        uint256[] memory d = new uint256[](2);
        int256[][] memory o = new int256[][](2);
        bytes[] memory p = new bytes[](2);
        d[0] = ids[0];
        d[1] = ids[0];
        o[0] = outs[0];
        o[1] = outs[0];
        p[0] = proofs[0];
        p[1] = proofs[0];
        assertEq(_fulfilBatch(d, o, p), 1, "once");
        assertEq(oracle.balances(relayer), oracle.quoteFee(MODEL, 0), "paid once");
    }

    function test_batch_mixedModels_individualPath() public {
        PathSpyVerifier spy2 = new PathSpyVerifier();
        bytes32 spy2Model = keccak256("spy-2");
        _register(spy2Model, modelConfig(address(spy2), 3, 2, 16, 32, true));
        spy.configure(true, true, true); // a batch call would revert
        spy2.configure(true, true, true);
        uint256[] memory ids = new uint256[](4);
        int256[][] memory outs = new int256[][](4);
        bytes[] memory proofs = new bytes[](4);
        for (uint256 i; i < 4; ++i) {
            ids[i] = _requestOn(i % 2 == 0 ? SPY : spy2Model, i, soon());
            outs[i] = _output(i);
            proofs[i] = proofOf(_input(i), outs[i], relayer);
        }
        vm.expectCall(address(spy), abi.encodePacked(IBatchInferenceVerifier.verifyBatch.selector), 0);
        vm.expectCall(address(spy2), abi.encodePacked(IBatchInferenceVerifier.verifyBatch.selector), 0);
        vm.expectCall(address(spy), abi.encodePacked(IInferenceVerifier.verify.selector), 2);
        vm.expectCall(address(spy2), abi.encodePacked(IInferenceVerifier.verify.selector), 2);
        assertEq(_fulfilBatch(ids, outs, proofs), 4, "all fulfilled one by one");
    }

    function test_batch_nonBatchableModel_individualPath() public {
        PathSpyVerifier plain = new PathSpyVerifier();
        bytes32 m = keccak256("plain");
        _register(m, modelConfig(address(plain), 3, 2, 16, 32, false));
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(m, 3);
        vm.expectCall(address(plain), abi.encodePacked(IBatchInferenceVerifier.verifyBatch.selector), 0);
        vm.expectCall(address(plain), abi.encodePacked(IInferenceVerifier.verify.selector), 3);
        assertEq(_fulfilBatch(ids, outs, proofs), 3, "fulfilled");
    }

    function test_batch_singleValidEntry_individualPath() public {
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(SPY, 2);
        outs[1] = ints(1, 2, 3); // size mismatch: only one valid entry left
        vm.expectCall(address(spy), abi.encodePacked(IBatchInferenceVerifier.verifyBatch.selector), 0);
        _expectSkip(ids[1], InferenceErrors.OutputSizeMismatch.selector);
        assertEq(_fulfilBatch(ids, outs, proofs), 1, "one");
    }

    function test_batch_unfulfillableEntries_skippedWithReason() public {
        uint64 early = uint64(block.timestamp + oracle.MIN_DEADLINE_DELAY());
        uint256 done = _requestOn(MODEL, 1, soon());
        uint256 expired = _requestOn(MODEL, 2, early);
        uint256 refunded = _requestOn(MODEL, 3, early);
        uint256 badSize = _requestOn(MODEL, 4, soon());
        uint256 badRange = _requestOn(MODEL, 5, soon());
        uint256 good = _requestOn(MODEL, 6, soon());
        vm.prank(relayer);
        oracle.fulfill(done, _output(1), relayer, proofOf(_input(1), _output(1), relayer));
        vm.warp(uint256(early) + 1);
        oracle.refund(refunded);

        uint256[] memory ids = new uint256[](7);
        int256[][] memory outs = new int256[][](7);
        bytes[] memory proofs = new bytes[](7);
        ids[0] = done;
        ids[1] = expired;
        ids[2] = refunded;
        ids[3] = 999; // unknown
        ids[4] = badSize;
        ids[5] = badRange;
        ids[6] = good;
        for (uint256 i; i < 7; ++i) {
            outs[i] = _output(i + 1);
            proofs[i] = proofOf(_input(i + 1), outs[i], relayer);
        }
        outs[4] = new int256[](1);
        outs[5] = ints(0, int256(type(int32).max) + 1);
        outs[6] = _output(6);
        proofs[6] = proofOf(_input(6), outs[6], relayer);

        _expectSkip(done, InferenceOracle.AlreadyFulfilled.selector);
        _expectSkip(expired, InferenceOracle.RequestExpired.selector);
        _expectSkip(refunded, InferenceOracle.AlreadyRefunded.selector);
        _expectSkip(999, InferenceOracle.UnknownRequest.selector);
        _expectSkip(badSize, InferenceErrors.OutputSizeMismatch.selector);
        _expectSkip(badRange, InferenceErrors.OutputOutOfRange.selector);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(good, MODEL, outs[6], relayer, true);
        assertEq(_fulfilBatch(ids, outs, proofs), 1, "only the good one");
        assertStatus(expired, InferenceOracle.Status.Pending, "expired still pending (refundable)");
        oracle.refund(expired);
    }

    function test_batch_verifierRevert_skippedWithItsSelector() public {
        RevertingVerifier rv = new RevertingVerifier();
        bytes32 m = keccak256("boom");
        _register(m, modelConfig(address(rv), 3, 2, 16, 32, false));
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(m, 2);
        _expectSkip(ids[0], RevertingVerifier.VerifierExploded.selector);
        _expectSkip(ids[1], RevertingVerifier.VerifierExploded.selector);
        assertEq(_fulfilBatch(ids, outs, proofs), 0, "none");
    }

    /// Batch path: the fees go to the payee every proof names, not to the sender; a proof made
    /// for another payee is skipped (InvalidProof) and the others still go through.
    function test_batch_creditsPayeeNotSender_otherPayeeSkipped() public {
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(SPY, 4);
        spy.configure(true, true, false);
        proofs[1] = proofOf(_input(1), outs[1], bob); // made for bob
        uint256 fee = oracle.quoteFee(SPY, 0);
        _expectSkip(ids[1], InferenceOracle.InvalidProof.selector);
        vm.prank(bob);
        assertEq(oracle.fulfillBatch(ids, outs, relayer, proofs), 3, "three for relayer");
        assertEq(oracle.balances(relayer), 3 * fee, "payee credited");
        assertEq(oracle.balances(bob), 0, "sender not credited");
        assertStatus(ids[1], InferenceOracle.Status.Pending, "bob's proof does not pay relayer");
        // The batch verifier alone also refuses a batch for another payee.
        (uint256[] memory ids2, int256[][] memory outs2, bytes[] memory proofs2) = _batch(SPY, 2);
        spy.configure(false, true, false); // only the batch path can accept
        vm.prank(bob);
        assertEq(oracle.fulfillBatch(ids2, outs2, bob, proofs2), 0, "relayer's proofs under bob: none");
        assertEq(oracle.balances(bob), 0, "bob still unpaid");
    }

    function test_batch_zeroPayee_reverts() public {
        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(MODEL, 2);
        vm.expectRevert(InferenceOracle.ZeroPayee.selector);
        oracle.fulfillBatch(ids, outs, address(0), proofs);
        assertStatus(ids[0], InferenceOracle.Status.Pending, "untouched");
    }

    function test_batch_lengthMismatch_reverts() public {
        uint256[] memory ids = new uint256[](2);
        int256[][] memory outs = new int256[][](1);
        bytes[] memory proofs = new bytes[](2);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.BatchLengthMismatch.selector, 2, 1, 2));
        oracle.fulfillBatch(ids, outs, relayer, proofs);
        outs = new int256[][](2);
        proofs = new bytes[](3);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.BatchLengthMismatch.selector, 2, 2, 3));
        oracle.fulfillBatch(ids, outs, relayer, proofs);
    }

    function test_batch_empty_returnsZero() public {
        assertEq(oracle.fulfillBatch(new uint256[](0), new int256[][](0), relayer, new bytes[](0)), 0, "nothing");
    }

    function test_batch_callbacks_runPerEntry() public {
        RecordingConsumer ok = new RecordingConsumer();
        RevertingConsumer bad = new RevertingConsumer();
        uint256[] memory ids = new uint256[](2);
        int256[][] memory outs = new int256[][](2);
        bytes[] memory proofs = new bytes[](2);
        uint256 fee = oracle.quoteFee(MODEL, 300_000);
        vm.startPrank(alice);
        ids[0] = oracle.requestInference{value: fee}(MODEL, _input(0), address(ok), 300_000, soon());
        ids[1] = oracle.requestInference{value: fee}(MODEL, _input(1), address(bad), 300_000, soon());
        vm.stopPrank();
        for (uint256 i; i < 2; ++i) {
            outs[i] = _output(i);
            proofs[i] = proofOf(_input(i), outs[i], relayer);
        }
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(ids[0], MODEL, outs[0], relayer, true);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(ids[1], MODEL, outs[1], relayer, false);
        assertEq(_fulfilBatch(ids, outs, proofs), 2, "both fulfilled");
        assertEq(ok.lastRequestId(), ids[0], "callback got its result");
        assertEq(oracle.balances(relayer), 2 * fee, "both fees");
    }

    // ------------------------------------------------------------------ gas

    function _coolAll() internal {
        vm.cool(address(oracle));
        vm.cool(address(registry));
        vm.cool(address(hashVerifier));
    }

    /// @dev Execution gas (no 21 k intrinsic, no calldata) with every account and slot cold,
    ///      as at the start of a transaction. Hash verifier: verification itself is ~free, so
    ///      this measures the oracle's own overhead.
    function test_gas_requestFulfillAndBatchOf10() public {
        uint256 n = 10;
        uint256 fee = oracle.quoteFee(MODEL, 0);
        // requestInference
        _coolAll();
        int256[] memory in0 = _input(100);
        vm.prank(alice);
        uint256 g = gasleft();
        oracle.requestInference{value: fee}(MODEL, in0, address(0), 0, soon());
        uint256 requestGas = g - gasleft();

        (uint256[] memory ids, int256[][] memory outs, bytes[] memory proofs) = _batch(MODEL, 2 * n);
        // n single fulfils, each cold as its own transaction
        uint256 single;
        for (uint256 i; i < n; ++i) {
            _coolAll();
            vm.prank(relayer);
            g = gasleft();
            oracle.fulfill(ids[i], outs[i], relayer, proofs[i]);
            single += g - gasleft();
        }
        single /= n;
        // one batch of n
        uint256[] memory bIds = new uint256[](n);
        int256[][] memory bOuts = new int256[][](n);
        bytes[] memory bProofs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            bIds[i] = ids[n + i];
            bOuts[i] = outs[n + i];
            bProofs[i] = proofs[n + i];
        }
        _coolAll();
        vm.prank(relayer);
        g = gasleft();
        uint256 done = oracle.fulfillBatch(bIds, bOuts, relayer, bProofs);
        uint256 batchPer = (g - gasleft()) / n;
        assertEq(done, n, "batch fulfilled all");

        emit log_named_uint("requestInference (exec gas)", requestGas);
        emit log_named_uint("fulfill, per request (exec gas)", single);
        emit log_named_uint("fulfillBatch(10), per request (exec gas)", batchPer);
        emit log_named_uint("fulfill per request incl. 21k tx base", single + 21_000);
        emit log_named_uint("fulfillBatch(10) per request incl. 21k/10", batchPer + 2_100);
        assertLt(batchPer, single, "batch is cheaper per request even before the 21k base");
        assertLt(single, 150_000, "fulfil overhead stays within FULFILL_OVERHEAD_GAS-ish bounds");
        assertLt(requestGas, 250_000, "request gas sane");
    }

    // ------------------------------------------------------------------ utils

    function _countFulfilled(uint256 id) internal returns (uint256 n) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 t0 = InferenceOracle.InferenceFulfilled.selector;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics.length > 1 && logs[i].topics[0] == t0 && uint256(logs[i].topics[1]) == id) ++n;
        }
    }
}
