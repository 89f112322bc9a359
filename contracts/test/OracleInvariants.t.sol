// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, FuzzSelector} from "./utils/Test.sol";
import {TestHashVerifier, UnboundHashVerifier} from "./utils/TestHashVerifier.sol";
import {TestSetup} from "./utils/TestSetup.sol";
import {OracleHandler} from "./utils/OracleHandler.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";

/// @notice Accounting and life-cycle invariants under random sequences of requests,
///         fulfilments (valid and invalid, single and batched, for payees other than their
///         sender, with and without commit-reveal), verifier upgrades, refunds and withdrawals.
contract OracleInvariantTest is Test {
    ModelRegistry internal registry;
    InferenceOracle internal oracle;
    TestHashVerifier internal verifier;
    OracleHandler internal handler;

    function setUp() public {
        registry = new ModelRegistry(address(this));
        oracle = new InferenceOracle(registry, address(this), 1 gwei);
        verifier = new TestHashVerifier();
        UnboundHashVerifier unbound = new UnboundHashVerifier();
        bytes32[] memory models = new bytes32[](3);
        models[0] = keccak256("batchable");
        models[1] = keccak256("plain");
        models[2] = keccak256("commit-reveal");
        registry.register(models[0], _cfg(address(verifier), true, 0), TestSetup.dev());
        registry.register(models[1], _cfg(address(verifier), false, 1), TestSetup.dev());
        registry.register(models[2], _cfg(address(unbound), true, 2), TestSetup.dev());
        handler = new OracleHandler(oracle, registry, verifier, unbound, models);
        // The handler upgrades verifiers: it owns the registry.
        registry.transferOwnership(address(handler));
        vm.prank(address(handler));
        registry.acceptOwnership();

        bytes4[] memory sel = new bytes4[](8);
        sel[0] = OracleHandler.request.selector;
        sel[1] = OracleHandler.request.selector; // weight requests up
        sel[2] = OracleHandler.fulfil.selector;
        sel[3] = OracleHandler.fulfilBatch.selector;
        sel[4] = OracleHandler.refund.selector;
        sel[5] = OracleHandler.withdraw.selector;
        sel[6] = OracleHandler.warp.selector;
        sel[7] = OracleHandler.upgrade.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: sel}));
    }

    function _cfg(address v, bool batch, uint256 k) internal pure returns (ModelRegistry.Model memory) {
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
            batchVerify: batch,
            bindsPayee: false, // set by the registry
            verifierVersion: 0, // set by the registry
            circuitId: keccak256(abi.encode(k)),
            fee: 1e15,
            verifyGas: 250_000
        });
    }

    /// (1) Every wei the oracle holds is either escrowed or withdrawable, and nothing more.
    function invariant_balanceEqualsEscrowPlusCredits() public view {
        assertEq(address(oracle).balance, oracle.totalEscrowed() + oracle.totalCredits(), "balance");
    }

    /// (2) The escrow is exactly the sum of the fees of pending requests.
    function invariant_escrowEqualsPendingFees() public view {
        uint256[] memory ids = handler.ids();
        uint256 sum;
        for (uint256 i; i < ids.length; ++i) {
            InferenceOracle.RequestView memory r = oracle.getRequest(ids[i]);
            if (r.status == InferenceOracle.Status.Pending) sum += r.fee;
        }
        assertEq(sum, oracle.totalEscrowed(), "escrow");
    }

    /// (3) A request is fulfilled at most once, its status never goes back, and a Fulfilled
    ///     status comes with exactly one InferenceFulfilled event.
    function invariant_fulfilledAtMostOnce() public view {
        assertLe(handler.maxFulfilledEvents(), 1, "at most one InferenceFulfilled per id");
        assertFalse(handler.statusRegressed(), "status went backwards");
        uint256[] memory ids = handler.ids();
        for (uint256 i; i < ids.length; ++i) {
            bool fulfilled = oracle.requestStatus(ids[i]) == InferenceOracle.Status.Fulfilled;
            assertEq(handler.fulfilledEvents(ids[i]), fulfilled ? 1 : 0, "event count matches status");
        }
    }

    /// (4) The withdrawable balances add up to totalCredits.
    function invariant_balancesSumToTotalCredits() public view {
        address[] memory actors = handler.actors();
        uint256 sum;
        for (uint256 i; i < actors.length; ++i) {
            sum += oracle.balances(actors[i]);
        }
        assertEq(sum, oracle.totalCredits(), "credits");
    }

    /// (5) Fees go to the payee a fulfilment names (never to its sender): every account holds
    ///     (or has withdrawn) exactly the fees it earned as payee, its overpayments and the
    ///     refunds that could not be sent to it.
    function invariant_creditsFollowPayees() public view {
        assertFalse(handler.feeToWrongAccount(), "InferenceFulfilled names another payee");
        address[] memory actors = handler.actors();
        for (uint256 i; i < actors.length; ++i) {
            assertEq(
                oracle.balances(actors[i]) + handler.withdrawn(actors[i]),
                handler.expectedCredits(actors[i]),
                "credited = fees as payee + overpayments + unsent refunds"
            );
        }
    }

    /// (6) A request is fulfilled only under the verifier it was made under, and refunded
    ///     before its deadline only when that verifier was retired; a commit-reveal model's
    ///     request is fulfilled only with a commitment from an earlier block.
    function invariant_pinningAndCommitReveal() public view {
        assertFalse(handler.fulfilledUnderRetiredVerifier(), "fulfilled under a retired verifier");
        assertFalse(handler.refundedEarlyWhileCurrent(), "early refund with a current verifier");
        assertFalse(handler.fulfilledUncommitted(), "commit-reveal model fulfilled without commitment");
    }

    /// Ids are dense: every id the handler saw is below nextRequestId and known.
    function invariant_idsKnown() public view {
        uint256[] memory ids = handler.ids();
        assertEq(oracle.nextRequestId(), ids.length + 1, "one id per request");
    }

    /// The handler's paths really do things (guards against vacuous invariants).
    function test_handler_pathsWork() public {
        // Ids 1..9 on models 0, 1, 2, 0, 1, 2, ... (modelSeed = i).
        for (uint256 i; i < 9; ++i) {
            handler.request(i, i, 3, 7200, i, i);
        }
        handler.fulfil(0, 1, 0, 1 | (1 << 8)); // id 9 (commit-reveal, committed), sent by 0xA1 for 0xA2
        handler.fulfil(0, 1, 1, 1); // id 8 (plain), 0xA1 for 0xA2
        handler.fulfil(0, 1, 2, 1); // id 7 (batchable), 0xA1 for 0xA2
        handler.fulfil(2, 2, 3, 0); // id 6: bad proof
        handler.fulfilBatch(2, 0, 3, 1, 2, type(uint128).max | (1 << 200)); // ids 6, 5, 4 (mixed models), valid, committed, for 0xA1
        handler.refund(2, 0, true); // oldest, warps past its deadline
        handler.withdraw(1); // 0xA2 collects its fees
        assertEq(handler.calls("fulfil.ok"), 3, "fulfil");
        assertEq(handler.calls("fulfilBatch.fulfilled"), 3, "batch");
        assertEq(handler.calls("refund.ok"), 1, "refund");
        assertEq(handler.calls("withdraw.ok"), 1, "withdraw");
        assertGt(handler.withdrawn(address(0xA2)), 0, "the payee, not the sender, was paid");
        assertEq(oracle.balances(address(0xA1)), handler.expectedCredits(address(0xA1)), "0xA1 paid as payee only");
        // A batch of one model's requests takes the batch verification path.
        handler.request(1, 0, 3, 7200, 50, 0); // id 10, batchable
        handler.request(1, 0, 3, 7200, 51, 0); // id 11, batchable
        handler.fulfilBatch(3, 2, 0, 0, 1, type(uint128).max); // ids 11, 10 (model 0), for 0xA3
        assertEq(handler.calls("fulfilBatch.fulfilled"), 5, "one-model batch");
        // A commit-reveal fulfilment without commitment is refused.
        handler.request(0, 2, 3, 7200, 99, 0); // id 12, commit-reveal
        handler.fulfil(0, 0, 0, 1); // valid proof, not committed
        assertEq(handler.calls("fulfil.ok"), 3, "uncommitted fulfil refused");
        // An upgrade retires model 1's pending request, which is refunded at once.
        handler.request(0, 1, 3, 3 days - 1, 100, 0); // id 13, plain, outlives the upgrade delay
        handler.upgrade(0);
        assertEq(handler.upgrades(), 1, "upgraded");
        handler.fulfil(0, 0, 0, 1); // id 13: retired
        assertEq(handler.calls("fulfil.ok"), 3, "retired request not fulfilled");
        handler.refund(0, 12, false); // id 13
        assertEq(handler.calls("refund.early"), 1, "early refund of a retired request");
        invariant_balanceEqualsEscrowPlusCredits();
        invariant_escrowEqualsPendingFees();
        invariant_fulfilledAtMostOnce();
        invariant_balancesSumToTotalCredits();
        invariant_creditsFollowPayees();
        invariant_pinningAndCommitReveal();
    }

    /// Prints how often each action ran and succeeded in the last run (visible with -vv).
    function afterInvariant() public {
        emit log_named_uint("request", handler.calls("request"));
        emit log_named_uint("fulfil (tried)", handler.calls("fulfil"));
        emit log_named_uint("fulfilBatch (tried)", handler.calls("fulfilBatch"));
        emit log_named_uint("fulfil (ok)", handler.calls("fulfil.ok"));
        emit log_named_uint("fulfilBatch entries fulfilled", handler.calls("fulfilBatch.fulfilled"));
        emit log_named_uint("refund (ok)", handler.calls("refund.ok"));
        emit log_named_uint("withdraw (ok)", handler.calls("withdraw.ok"));
        emit log_named_uint("refund before the deadline (retired verifier)", handler.calls("refund.early"));
        emit log_named_uint("verifier upgrades", handler.upgrades());
    }
}
