// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "./Test.sol";
import {TestHashVerifier} from "./TestHashVerifier.sol";
import {InferenceOracle} from "../../InferenceOracle.sol";
import {LRTToken} from "../../lrt/LRTToken.sol";
import {LRTVault} from "../../LRTVault.sol";
import {RestakingStrategy} from "../../lrt/RestakingStrategy.sol";

/// @notice Drives the vault for the invariant test: deposits and withdrawals by several
///         actors, slashing, rebalance requests fulfilled with random risk scores, refunds,
///         donations and time. Anything that must never happen is counted, and the invariant
///         test asserts the counters stay at zero.
contract VaultHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    bytes32 internal constant FULFILLED_TOPIC = keccak256("InferenceFulfilled(uint256,bytes32,int256[],address,bool)");

    LRTVault public immutable vault;
    LRTToken public immutable token;
    InferenceOracle public immutable oracle;
    TestHashVerifier public immutable verifier;
    address public immutable strategyOwner;
    address internal constant RELAYER = address(0xFEED);
    address internal constant DONOR = address(0xD0);

    address[] public actors;

    // Things that must stay zero.
    uint256 public failedWithdrawals;
    uint256 public overpaidWithdrawals;
    uint256 public failedOwnCallbacks;
    uint256 public failedDeposits;
    uint256 public failedRequests;
    uint256 public pauseBypassed;
    uint256 public cooldownBypassed;
    uint256 public withdrawalOrderViolations;

    // Coverage counters (informative).
    uint256 public deposits;
    uint256 public withdrawals;
    uint256 public slashes;
    uint256 public requests;
    uint256 public fulfilments;
    uint256 public refunds;
    uint256 public pausedSkips;
    uint256 public cooldownSkips;

    /// @notice Each strategy's lifetime loss as last set by a slash (the only thing allowed to
    ///         change it): the invariant test checks the strategies still report exactly this.
    uint256[3] public lifetimeLossGhost;

    constructor(
        LRTVault vault_,
        LRTToken token_,
        InferenceOracle oracle_,
        TestHashVerifier verifier_,
        address strategyOwner_,
        address[] memory actors_
    ) {
        vault = vault_;
        token = token_;
        oracle = oracle_;
        verifier = verifier_;
        strategyOwner = strategyOwner_;
        actors = actors_;
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    // ------------------------------------------------------------------ actions

    function deposit(uint256 actorSeed, uint256 amount) external {
        address a = actors[actorSeed % actors.length];
        amount = _bound(amount, 1, 1e24);
        if (vault.depositsPaused()) {
            // Must revert with DepositsArePaused.
            vm.prank(a);
            try vault.deposit(amount) {
                ++pauseBypassed;
            } catch (bytes memory reason) {
                if (bytes4(reason) != LRTVault.DepositsArePaused.selector) ++pauseBypassed;
            }
            ++pausedSkips;
            return;
        }
        uint256 expected = (amount * (vault.totalShares() + 1e3)) / (vault.totalAssets() + 1);
        if (expected == 0) return; // would revert ZeroAmount, by design
        vm.prank(a);
        try vault.deposit(amount) returns (uint256 shares) {
            if (shares != expected) ++failedDeposits;
            ++deposits;
        } catch {
            ++failedDeposits;
        }
    }

    function withdraw(uint256 actorSeed, uint256 shares) external {
        address a = actors[actorSeed % actors.length];
        uint256 have = vault.sharesOf(a);
        if (have == 0) return;
        shares = _bound(shares, 1, have);
        uint256 worth = vault.assetsOf(a);
        uint256 expected = (shares * (vault.totalAssets() + 1)) / (vault.totalShares() + 1e3);
        uint256 before = token.balanceOf(a);
        uint256[3] memory balBefore = vault.allocations();
        vm.prank(a);
        try vault.withdraw(shares) returns (uint256 got) {
            uint256 received = token.balanceOf(a) - before;
            if (got > worth || got != expected || received != got) ++overpaidWithdrawals;
            _checkWithdrawalOrder(balBefore);
            ++withdrawals;
        } catch {
            ++failedWithdrawals;
        }
    }

    function withdrawAll(uint256 actorSeed) external {
        address a = actors[actorSeed % actors.length];
        uint256 have = vault.sharesOf(a);
        if (have == 0) return;
        uint256 worth = vault.assetsOf(a);
        vm.prank(a);
        try vault.withdraw(have) returns (uint256 got) {
            if (got != worth) ++overpaidWithdrawals;
            ++withdrawals;
        } catch {
            ++failedWithdrawals;
        }
    }

    function slash(uint256 index, uint256 bps) external {
        RestakingStrategy s = vault.strategies(index % 3);
        if (s.balance() == 0) return;
        bps = _bound(bps, 1, 10_000);
        vm.prank(strategyOwner);
        s.slash(bps);
        lifetimeLossGhost[index % 3] = s.lifetimeLossWad();
        ++slashes;
    }

    function requestRebalance() external {
        uint256 pending = vault.pendingRequestId();
        if (pending != 0 && block.timestamp <= vault.pendingDeadline()) return;
        vm.deal(address(vault), 1 ether);
        uint256 last = vault.lastRequestAt();
        uint256 nextAllowedAt = last + vault.minRebalanceInterval();
        if (last != 0 && block.timestamp < nextAllowedAt) {
            // Must revert with exactly RebalanceTooSoon(nextAllowedAt).
            try vault.requestRebalance() {
                ++cooldownBypassed;
            } catch (bytes memory reason) {
                if (
                    keccak256(reason)
                        != keccak256(abi.encodeWithSelector(LRTVault.RebalanceTooSoon.selector, nextAllowedAt))
                ) {
                    ++cooldownBypassed;
                }
            }
            ++cooldownSkips;
            return;
        }
        try vault.requestRebalance() {
            ++requests;
        } catch {
            ++failedRequests;
        }
    }

    /// @dev Fulfils the vault's pending request with risks at scale 7: calm, moderate (some
    ///      exits) or wild in [-0.5, 1.5] (clamps, exits, pause).
    function fulfil(uint256 r0, uint256 r1, uint256 r2) external {
        uint256 id = vault.pendingRequestId();
        if (id == 0 || block.timestamp > vault.pendingDeadline()) {
            // Nothing live to answer: ask first, letting the cooldown pass if it still runs, so
            // most calls end in a rebalance (the requestRebalance action alone exercises the
            // cooldown's refusal).
            uint256 last = vault.lastRequestAt();
            uint256 nextAllowedAt = last + vault.minRebalanceInterval();
            if (last != 0 && block.timestamp < nextAllowedAt) vm.warp(nextAllowedAt);
            this.requestRebalance();
            id = vault.pendingRequestId();
            if (id == 0 || block.timestamp > vault.pendingDeadline()) return;
        }
        if (oracle.requestStatus(id) != InferenceOracle.Status.Pending) return;
        int256[] memory out = new int256[](3);
        // Modes: calm (all below exit), moderate (exits, no pause), wild (clamps, pause).
        uint256 mode = r0 % 4;
        (uint256 hi, int256 shift) = mode < 2 ? (76, int256(0)) : mode == 2 ? (102, int256(0)) : (256, int256(64));
        out[0] = int256(_bound(r0 >> 2, 0, hi)) - shift;
        out[1] = int256(_bound(r1, 0, hi)) - shift;
        out[2] = int256(_bound(r2, 0, hi)) - shift;
        bytes memory proof = verifier.proofFor(oracle.getRequest(id).input, out, RELAYER);
        vm.recordLogs();
        vm.prank(RELAYER);
        oracle.fulfill(id, out, RELAYER, proof);
        if (!_callbackSucceeded(id)) ++failedOwnCallbacks;
        ++fulfilments;
    }

    function refundExpired() external {
        uint256 id = vault.pendingRequestId();
        if (id == 0 || oracle.requestStatus(id) != InferenceOracle.Status.Pending) return;
        if (block.timestamp <= oracle.getRequest(id).deadline) return;
        oracle.refund(id);
        ++refunds;
    }

    function donate(uint256 amount, uint256 target) external {
        amount = _bound(amount, 1, 1e22);
        address to = target % 4 == 3 ? address(vault) : address(vault.strategies(target % 4));
        vm.prank(DONOR);
        token.transfer(to, amount);
    }

    function warp(uint256 dt) external {
        vm.warp(block.timestamp + _bound(dt, 1, 2 hours));
    }

    // ------------------------------------------------------------------ helpers

    /// @dev A strategy may have lost funds in a withdrawal only if every strategy ahead of it
    ///      in the risk order (riskier, or as risky with a lower index) is now empty.
    function _checkWithdrawalOrder(uint256[3] memory balBefore) internal {
        uint256[3] memory balAfter = vault.allocations();
        uint256[3] memory risk;
        for (uint256 i; i < 3; ++i) {
            risk[i] = vault.lastRisk(i);
        }
        for (uint256 i; i < 3; ++i) {
            if (balAfter[i] >= balBefore[i]) continue;
            for (uint256 j; j < 3; ++j) {
                bool ahead = risk[j] > risk[i] || (risk[j] == risk[i] && j < i);
                if (ahead && balAfter[j] != 0) ++withdrawalOrderViolations;
            }
        }
    }

    function _callbackSucceeded(uint256 id) internal returns (bool) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics.length > 1 && logs[i].topics[0] == FULFILLED_TOPIC && uint256(logs[i].topics[1]) == id) {
                (, bool ok) = abi.decode(logs[i].data, (int256[], bool));
                return ok;
            }
        }
        return false;
    }

    function _bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        if (x >= lo && x <= hi) return x;
        return lo + (x % (hi - lo + 1));
    }
}
