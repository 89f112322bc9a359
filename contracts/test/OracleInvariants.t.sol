// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, FuzzSelector} from "./utils/Test.sol";
import {TestHashVerifier} from "./utils/TestHashVerifier.sol";
import {OracleHandler} from "./utils/OracleHandler.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";

/// @notice Accounting and life-cycle invariants under random sequences of requests,
///         fulfilments (valid and invalid, single and batched), refunds and withdrawals.
contract OracleInvariantTest is Test {
    ModelRegistry internal registry;
    InferenceOracle internal oracle;
    TestHashVerifier internal verifier;
    OracleHandler internal handler;

    function setUp() public {
        registry = new ModelRegistry(address(this));
        oracle = new InferenceOracle(registry, address(this), 1 gwei);
        verifier = new TestHashVerifier();
        bytes32[] memory models = new bytes32[](2);
        models[0] = keccak256("batchable");
        models[1] = keccak256("plain");
        registry.register(models[0], _cfg(address(verifier), true));
        registry.register(models[1], _cfg(address(verifier), false));
        handler = new OracleHandler(oracle, verifier, models);

        bytes4[] memory sel = new bytes4[](7);
        sel[0] = OracleHandler.request.selector;
        sel[1] = OracleHandler.request.selector; // weight requests up
        sel[2] = OracleHandler.fulfil.selector;
        sel[3] = OracleHandler.fulfilBatch.selector;
        sel[4] = OracleHandler.refund.selector;
        sel[5] = OracleHandler.withdraw.selector;
        sel[6] = OracleHandler.warp.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: sel}));
    }

    function _cfg(address v, bool batch) internal pure returns (ModelRegistry.Model memory) {
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
            circuitId: keccak256(abi.encode(batch)),
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

    /// Ids are dense: every id the handler saw is below nextRequestId and known.
    function invariant_idsKnown() public view {
        uint256[] memory ids = handler.ids();
        assertEq(oracle.nextRequestId(), ids.length + 1, "one id per request");
    }

    /// The handler's paths really do things (guards against vacuous invariants).
    function test_handler_pathsWork() public {
        for (uint256 i; i < 6; ++i) {
            handler.request(i, i, 3, 7200, i, i);
        }
        handler.fulfil(0, 0, 1); // newest, valid
        handler.fulfilBatch(1, 1, 1, 3, type(uint256).max); // four recent, all valid
        handler.refund(2, 0, true); // oldest, warps past its deadline
        handler.withdraw(0);
        assertEq(handler.calls("fulfil.ok"), 1, "fulfil");
        assertGt(handler.calls("fulfilBatch.fulfilled"), 0, "batch");
        assertEq(handler.calls("refund.ok"), 1, "refund");
        assertEq(handler.calls("withdraw.ok"), 1, "withdraw");
        invariant_balanceEqualsEscrowPlusCredits();
        invariant_escrowEqualsPendingFees();
        invariant_fulfilledAtMostOnce();
        invariant_balancesSumToTotalCredits();
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
    }
}
