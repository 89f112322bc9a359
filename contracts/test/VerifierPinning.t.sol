// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceErrors} from "../utils/InferenceErrors.sol";
import {OracleFixture} from "./utils/OracleFixture.sol";
import {SaltedHashVerifier} from "./utils/Mocks.sol";
import {InferenceOracle} from "../InferenceOracle.sol";

/// @notice A request is pinned to the verifier version of its model when it was made: after an
///         upgrade (a fixed circuit) or a freeze, it can be fulfilled by neither the old nor the
///         new verifier, and its requester is refunded at once, before the deadline.
contract VerifierPinningTest is OracleFixture {
    SaltedHashVerifier internal next; // the upgraded circuit: accepts other proofs than the old one

    function setUp() public override {
        super.setUp();
        next = new SaltedHashVerifier(keccak256("circuit v2"));
    }

    /// @dev A request that outlives the upgrade delay.
    function _longRequest() internal returns (uint256 id) {
        uint256 fee = oracle.quoteFee(MODEL, 0);
        vm.prank(alice);
        id = oracle.requestInference{value: fee}(MODEL, defaultInput(), address(0), 0, uint64(block.timestamp + 3 days));
    }

    function _upgrade() internal {
        registry.proposeVerifierUpgrade(MODEL, address(next), bytes32("c2"), devSetup());
        vm.warp(block.timestamp + registry.UPGRADE_DELAY());
        registry.executeVerifierUpgrade(MODEL);
    }

    function _oldProof() internal view returns (bytes memory) {
        return proofOf(defaultInput(), defaultOutput(), relayer);
    }

    function _newProof() internal view returns (bytes memory) {
        return next.proofFor(defaultInput(), defaultOutput(), relayer);
    }

    // ------------------------------------------------------------------ upgrade

    function test_upgrade_pendingRequest_neitherProofFulfils_refundAtOnce() public {
        uint256 id = _longRequest();
        uint256 fee = oracle.getRequest(id).fee;
        assertFalse(oracle.isVerifierRetired(id), "current");
        _upgrade();
        assertTrue(oracle.isVerifierRetired(id), "retired by the upgrade");
        // The old verifier's proof (valid for the circuit the request was made under).
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.RequestVerifierRetired.selector, id));
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, _oldProof());
        // The new verifier's proof (valid for today's circuit).
        bytes memory newProof = _newProof();
        assertTrue(next.verify(defaultInput(), defaultOutput(), relayer, newProof), "valid under v2");
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.RequestVerifierRetired.selector, id));
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, newProof);
        // Refunded at once, well before its deadline.
        uint64 deadline = oracle.getRequest(id).deadline;
        assertLt(block.timestamp, deadline, "before the deadline");
        uint256 before = alice.balance;
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceRefunded(id, alice, fee);
        vm.prank(bob); // anyone may trigger it
        oracle.refund(id);
        assertEq(alice.balance, before + fee, "fee back to the requester");
        assertStatus(id, InferenceOracle.Status.Refunded, "refunded");
        assertEq(oracle.totalEscrowed(), 0, "escrow released");
        assertEq(oracle.balances(relayer), 0, "nobody paid");
    }

    function test_upgrade_requestsAfterwardsFulfilNormally() public {
        _upgrade();
        uint256 id = request();
        assertFalse(oracle.isVerifierRetired(id), "made under the current verifier");
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, _oldProof()); // the old circuit's proof
        bytes memory newProof = _newProof();
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, newProof);
        assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled through the new verifier");
        assertEq(oracle.balances(relayer), oracle.getRequest(id).fee, "paid");
        // And refunds before the deadline are refused again for current requests.
        uint256 id2 = request();
        vm.expectRevert(
            abi.encodeWithSelector(InferenceOracle.DeadlineNotReached.selector, id2, oracle.getRequest(id2).deadline)
        );
        oracle.refund(id2);
    }

    /// Only an executed upgrade retires: a proposal (even past its delay) or a cancelled one
    /// does not, and the request is neither unfulfillable nor refundable early.
    function test_upgrade_proposedOrCancelled_doesNotRetire() public {
        uint256 id = _longRequest();
        uint64 deadline = oracle.getRequest(id).deadline;
        registry.proposeVerifierUpgrade(MODEL, address(next), bytes32("c2"), devSetup());
        vm.warp(block.timestamp + registry.UPGRADE_DELAY());
        assertFalse(oracle.isVerifierRetired(id), "proposed only");
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.DeadlineNotReached.selector, id, deadline));
        oracle.refund(id);
        registry.cancelVerifierUpgrade(MODEL);
        assertFalse(oracle.isVerifierRetired(id), "cancelled");
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.DeadlineNotReached.selector, id, deadline));
        oracle.refund(id);
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, _oldProof());
        assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled by its own verifier");
    }

    function test_upgrade_fulfillBatch_skipsRetiredEntries() public {
        uint256 a = _longRequest();
        uint256 b = _longRequest();
        _upgrade();
        uint256 c = request();
        uint256[] memory ids = new uint256[](3);
        int256[][] memory outs = new int256[][](3);
        bytes[] memory proofs = new bytes[](3);
        (ids[0], ids[1], ids[2]) = (a, b, c);
        for (uint256 i; i < 3; ++i) {
            outs[i] = defaultOutput();
            proofs[i] = _newProof();
        }
        proofs[0] = _oldProof();
        // Both would verify under the verifier each was made for; only the version decides.
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.FulfillmentSkipped(a, InferenceOracle.RequestVerifierRetired.selector);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.FulfillmentSkipped(b, InferenceOracle.RequestVerifierRetired.selector);
        vm.prank(relayer);
        assertEq(oracle.fulfillBatch(ids, outs, relayer, proofs), 1, "only the request made after the upgrade");
        assertStatus(a, InferenceOracle.Status.Pending, "a retired, refundable");
        assertStatus(c, InferenceOracle.Status.Fulfilled, "c fulfilled");
        oracle.refund(a);
        oracle.refund(b);
        assertEq(oracle.totalEscrowed(), 0, "both refunded at once");
    }

    /// Every upgrade retires the requests made before it, again and again.
    function test_upgrade_twice_eachRetiresEarlierRequests() public {
        _upgrade();
        uint256 id = _longRequest(); // made under version 2
        SaltedHashVerifier third = new SaltedHashVerifier(keccak256("circuit v3"));
        registry.proposeVerifierUpgrade(MODEL, address(third), bytes32("c3"), devSetup());
        vm.warp(block.timestamp + registry.UPGRADE_DELAY());
        registry.executeVerifierUpgrade(MODEL);
        assertEq(uint256(registry.getModel(MODEL).verifierVersion), 3, "version 3");
        bytes memory v2Proof = _newProof();
        bytes memory v3Proof = third.proofFor(defaultInput(), defaultOutput(), relayer);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.RequestVerifierRetired.selector, id));
        oracle.fulfill(id, defaultOutput(), relayer, v2Proof);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.RequestVerifierRetired.selector, id));
        oracle.fulfill(id, defaultOutput(), relayer, v3Proof);
        oracle.refund(id);
        assertStatus(id, InferenceOracle.Status.Refunded, "refunded at once");
    }

    // ------------------------------------------------------------------ freeze

    function test_freeze_pendingRequest_unfulfillable_refundAtOnce() public {
        uint256 id = request();
        uint256 fee = oracle.getRequest(id).fee;
        registry.freeze(MODEL);
        assertTrue(oracle.isVerifierRetired(id), "retired by the freeze");
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.RequestVerifierRetired.selector, id));
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, _oldProof());
        assertLt(block.timestamp, oracle.getRequest(id).deadline, "before the deadline");
        uint256 before = alice.balance;
        oracle.refund(id);
        assertEq(alice.balance, before + fee, "refunded at once");
        // No new request can be made on a frozen model.
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.ModelFrozen.selector, MODEL));
        vm.prank(alice);
        oracle.requestInference{value: fee}(MODEL, defaultInput(), address(0), 0, soon());
    }

    function test_isVerifierRetired_unknownRequest_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.UnknownRequest.selector, 42));
        oracle.isVerifierRetired(42);
    }

    // ------------------------------------------------------------------ cost of pinning

    /// Pinning costs no storage: the version shares the request's first slot with the
    /// requester, deadline and callback gas. requestInference writes exactly the slots it wrote
    /// before (nextRequestId, totalEscrowed, 3 request slots, input length + 1 input word) and
    /// its gas stays within a few hundred of the 172,199 measured before pinning (a new slot
    /// would cost 22,100 more).
    function test_requestInference_writesNoExtraSlot() public {
        int256[] memory input = defaultInput();
        uint256 fee = oracle.quoteFee(MODEL, 0);
        uint64 deadline = soon();
        vm.cool(address(oracle));
        vm.cool(address(registry));
        vm.record();
        vm.prank(alice);
        uint256 g = gasleft();
        oracle.requestInference{value: fee}(MODEL, input, address(0), 0, deadline);
        g -= gasleft();
        (, bytes32[] memory writes) = vm.accesses(address(oracle));
        assertEq(_unique(writes), 7, "slots written");
        emit log_named_uint("requestInference (exec gas, cold)", g);
        assertLt(g, 172_199 + 2_000, "no extra storage write");
    }

    function _unique(bytes32[] memory xs) internal pure returns (uint256 n) {
        for (uint256 i; i < xs.length; ++i) {
            bool seen;
            for (uint256 j; j < i; ++j) {
                if (xs[j] == xs[i]) seen = true;
            }
            if (!seen) ++n;
        }
    }
}
