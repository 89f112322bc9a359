// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OracleFixture} from "./utils/OracleFixture.sol";
import {UnboundHashVerifier} from "./utils/TestHashVerifier.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {IBatchInferenceVerifier} from "../Verifier.sol";

/// @notice Commit-reveal for a model whose verifier cannot bind the payee (bindsPayee() ==
///         false, like EZKL/Halo2): a proof is valid for ANY payee, so a copier who sees the
///         reveal could name itself. The oracle accepts a fulfilment only when
///         fulfillmentCommitment(id, output, payee, proof) was committed in an EARLIER block.
contract CommitRevealTest is OracleFixture {
    bytes32 internal constant UNBOUND = keccak256("unbound-model");
    address internal constant COPIER = address(0xC0B1E5);
    UnboundHashVerifier internal unbound;

    function setUp() public override {
        super.setUp();
        unbound = new UnboundHashVerifier();
        _register(UNBOUND, modelConfig(address(unbound), 3, 2, 16, 32, true));
        vm.label(COPIER, "copier");
    }

    function _requestUnbound(int256[] memory input) internal returns (uint256 id) {
        uint256 fee = oracle.quoteFee(UNBOUND, 0);
        vm.prank(alice);
        id = oracle.requestInference{value: fee}(UNBOUND, input, address(0), 0, soon());
    }

    function _proof(int256[] memory input) internal view returns (bytes memory) {
        return unbound.proofFor(input, defaultOutput());
    }

    function _commitment(uint256 id, address payee, bytes memory proof) internal view returns (bytes32) {
        return oracle.fulfillmentCommitment(id, defaultOutput(), payee, proof);
    }

    function _commitAs(address who, uint256 id, address payee, bytes memory proof) internal {
        bytes32 c = _commitment(id, payee, proof); // before the prank: it is an external call
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.FulfillmentCommitted(c, who);
        vm.prank(who);
        oracle.commitFulfillment(c);
    }

    function test_setup_modelDoesNotBindPayees() public view {
        assertFalse(oracle.getModel(UNBOUND).bindsPayee, "registry read bindsPayee() == false");
        assertTrue(oracle.getModel(MODEL).bindsPayee, "the hash model binds");
        // Which is the whole point: the proof verifies for any payee.
        assertTrue(unbound.verify(defaultInput(), defaultOutput(), COPIER, _proof(defaultInput())), "any payee");
    }

    function test_fulfillmentCommitment_isHashOfTheFulfilment() public view {
        bytes memory proof = _proof(defaultInput());
        assertEq(
            _commitment(7, relayer, proof),
            keccak256(abi.encode(uint256(7), defaultOutput(), relayer, proof)),
            "keccak256(abi.encode(requestId, output, payee, proof))"
        );
    }

    function test_commit_recordsFirstBlockAndEmits() public {
        bytes32 c = keccak256("c");
        vm.roll(100);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.FulfillmentCommitted(c, relayer);
        vm.prank(relayer);
        oracle.commitFulfillment(c);
        assertEq(oracle.commitments(c), 100, "block recorded");
        // Re-committing (by anyone) keeps the first block: nobody can push it later.
        vm.roll(105);
        vm.prank(COPIER);
        oracle.commitFulfillment(c);
        assertEq(oracle.commitments(c), 100, "first block kept");
    }

    // ------------------------------------------------------------------ (c) the rules

    function test_fulfilWithoutCommitment_reverts() public {
        uint256 id = _requestUnbound(defaultInput());
        bytes memory proof = _proof(defaultInput());
        vm.roll(block.number + 10);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.FulfillmentNotCommitted.selector, id));
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, proof);
        assertStatus(id, InferenceOracle.Status.Pending, "pending");
    }

    function test_commitAndFulfilInTheSameBlock_reverts() public {
        uint256 id = _requestUnbound(defaultInput());
        bytes memory proof = _proof(defaultInput());
        _commitAs(relayer, id, relayer, proof);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.FulfillmentNotCommitted.selector, id));
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, proof);
        assertStatus(id, InferenceOracle.Status.Pending, "pending");
    }

    function test_commitRollFulfil_creditsCommittedPayee() public {
        uint256 id = _requestUnbound(defaultInput());
        uint256 fee = oracle.getRequest(id).fee;
        bytes memory proof = _proof(defaultInput());
        _commitAs(relayer, id, relayer, proof);
        vm.roll(block.number + 1);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(id, UNBOUND, defaultOutput(), relayer, true);
        vm.prank(bob); // whoever sends the reveal, the committed payee is paid
        oracle.fulfill(id, defaultOutput(), relayer, proof);
        assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled");
        assertEq(oracle.balances(relayer), fee, "committed payee credited");
        assertEq(oracle.balances(bob), 0, "sender not credited");
    }

    /// The commitment covers exactly (request, output, payee, proof): a reveal under another
    /// payee (which the verifier itself would accept), another request or a wrong output is not
    /// committed.
    function test_commitmentCoversExactlyTheFulfilment() public {
        uint256 id = _requestUnbound(defaultInput());
        uint256 id2 = _requestUnbound(defaultInput());
        bytes memory proof = _proof(defaultInput());
        _commitAs(relayer, id, relayer, proof);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.FulfillmentNotCommitted.selector, id));
        oracle.fulfill(id, defaultOutput(), COPIER, proof); // another payee
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.FulfillmentNotCommitted.selector, id2));
        oracle.fulfill(id2, defaultOutput(), relayer, proof); // another request
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.FulfillmentNotCommitted.selector, id));
        oracle.fulfill(id, ints(7, 9), relayer, proof); // another output
        assertEq(oracle.balances(COPIER), 0, "copier unpaid");
        // A committed but invalid fulfilment is still checked by the verifier.
        bytes memory bad = unbound.proofFor(defaultInput(), ints(7, 9));
        _commitAs(relayer, id, relayer, bad);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, defaultOutput(), relayer, bad);
        oracle.fulfill(id, defaultOutput(), relayer, proof);
        assertEq(oracle.balances(relayer), oracle.getRequest(id).fee, "the committed payee");
    }

    /// The attack commit-reveal stops: the honest relayer committed in block N and reveals in
    /// N+1. A copier sees the reveal in the mempool, commits to its own payee and tries to
    /// fulfil in the same block N+1: too late (its commitment is not from an earlier block).
    /// The honest reveal lands; in N+2 the copier's fulfilment is AlreadyFulfilled.
    function test_copierSeesReveal_cannotFulfilBeforeHonestReveal() public {
        uint256 id = _requestUnbound(defaultInput());
        uint256 fee = oracle.getRequest(id).fee;
        bytes memory proof = _proof(defaultInput());
        _commitAs(relayer, id, relayer, proof); // block N
        vm.roll(block.number + 1); // block N+1: the honest reveal is pending
        // The copier reads (output, proof) from the pending reveal and front-runs it.
        _commitAs(COPIER, id, COPIER, proof);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.FulfillmentNotCommitted.selector, id));
        vm.prank(COPIER);
        oracle.fulfill(id, defaultOutput(), COPIER, proof);
        // The honest reveal lands in N+1.
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, proof);
        // N+2: the copier's commitment is now old enough, but the request is fulfilled.
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.AlreadyFulfilled.selector, id));
        vm.prank(COPIER);
        oracle.fulfill(id, defaultOutput(), COPIER, proof);
        assertEq(oracle.balances(relayer), fee, "honest payee paid");
        assertEq(oracle.balances(COPIER), 0, "copier never paid");
    }

    /// Whoever the copier is, and however many blocks it waits after seeing the reveal, it is
    /// never credited once the honest reveal (in the block after the commitment) landed.
    function testFuzz_copierNeverCredited(address copier, uint8 wait) public {
        vm.assume(copier != relayer && copier != address(0));
        uint256 id = _requestUnbound(defaultInput());
        bytes memory proof = _proof(defaultInput());
        _commitAs(relayer, id, relayer, proof);
        vm.roll(block.number + 1);
        _commitAs(copier, id, copier, proof);
        vm.prank(copier);
        (bool early,) =
            address(oracle).call(abi.encodeCall(InferenceOracle.fulfill, (id, defaultOutput(), copier, proof)));
        assertFalse(early, "copier cannot fulfil in the reveal's block");
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, proof);
        vm.roll(block.number + 1 + uint256(wait));
        vm.prank(copier);
        (bool late,) =
            address(oracle).call(abi.encodeCall(InferenceOracle.fulfill, (id, defaultOutput(), copier, proof)));
        assertFalse(late, "nor later");
        assertEq(oracle.balances(copier), 0, "copier never credited");
        assertEq(oracle.balances(relayer), oracle.getRequest(id).fee, "honest payee credited");
    }

    // ------------------------------------------------------------------ batches

    /// fulfillBatch skips uncommitted entries with FulfillmentSkipped(FulfillmentNotCommitted),
    /// and never uses batch verification for a model that does not bind payees (it would skip
    /// the commitment check).
    function test_fulfillBatch_skipsUncommittedEntries() public {
        uint256 n = 4;
        uint256[] memory ids = new uint256[](n);
        int256[][] memory outs = new int256[][](n);
        bytes[] memory proofs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            int256[] memory input = ints(int256(i), 1, 2);
            ids[i] = _requestUnbound(input);
            outs[i] = defaultOutput();
            proofs[i] = _proof(input);
        }
        assertTrue(oracle.getModel(UNBOUND).batchVerify, "declared batchable");
        // Commit entries 0 and 2 only.
        _commitAs(relayer, ids[0], relayer, proofs[0]);
        _commitAs(relayer, ids[2], relayer, proofs[2]);
        // Same block: nothing is committed early enough yet.
        vm.prank(relayer);
        assertEq(oracle.fulfillBatch(ids, outs, relayer, proofs), 0, "same block: none");
        vm.roll(block.number + 1);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.FulfillmentSkipped(ids[1], InferenceOracle.FulfillmentNotCommitted.selector);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.FulfillmentSkipped(ids[3], InferenceOracle.FulfillmentNotCommitted.selector);
        vm.expectCall(address(unbound), abi.encodePacked(IBatchInferenceVerifier.verifyBatch.selector), 0);
        vm.prank(bob);
        assertEq(oracle.fulfillBatch(ids, outs, relayer, proofs), 2, "the two committed entries");
        assertStatus(ids[0], InferenceOracle.Status.Fulfilled, "0");
        assertStatus(ids[1], InferenceOracle.Status.Pending, "1 uncommitted");
        assertStatus(ids[2], InferenceOracle.Status.Fulfilled, "2");
        assertStatus(ids[3], InferenceOracle.Status.Pending, "3 uncommitted");
        assertEq(oracle.balances(relayer), 2 * oracle.getRequest(ids[0]).fee, "committed payee");
        assertEq(oracle.balances(bob), 0, "sender");
        // A copier replaying the batch with its own payee gets nothing.
        vm.prank(COPIER);
        assertEq(oracle.fulfillBatch(ids, outs, COPIER, proofs), 0, "copier: none");
        assertEq(oracle.balances(COPIER), 0, "copier unpaid");
    }

    /// A model that binds payees needs no commitment (the proof itself names the payee).
    function test_bindingModel_needsNoCommitment() public {
        uint256 id = request();
        fulfillAs(relayer, id); // same block, no commitment
        assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled without commit-reveal");
    }
}
