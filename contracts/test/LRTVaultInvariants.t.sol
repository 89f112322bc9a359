// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FuzzSelector} from "./utils/Test.sol";
import {VaultTestBase, VaultLog} from "./utils/VaultTestBase.sol";
import {VaultHandler} from "./utils/VaultHandler.sol";

/// @notice Stateful fuzzing of the vault through VaultHandler: several depositors, slashing,
///         proven rebalances with random risk scores, refunds, donations and time.
contract LRTVaultInvariantsTest is VaultTestBase {
    VaultHandler internal handler;
    address[] internal actors;

    function setUp() public override {
        super.setUp();
        actors.push(alice);
        actors.push(bob);
        actors.push(carol);
        handler = new VaultHandler(vault, token, oracle, verifier, owner, actors);
        token.mint(address(0xD0), 1e30); // donor
        // Seed some state so early calls have something to act on.
        _deposit(alice, 100e18);

        bytes4[] memory sel = new bytes4[](10);
        sel[0] = VaultHandler.deposit.selector;
        sel[1] = VaultHandler.withdraw.selector;
        sel[2] = VaultHandler.withdrawAll.selector;
        sel[3] = VaultHandler.slash.selector;
        sel[4] = VaultHandler.requestRebalance.selector;
        sel[5] = VaultHandler.fulfil.selector;
        sel[6] = VaultHandler.fulfil.selector; // fulfil twice as often: rebalances matter most
        sel[7] = VaultHandler.refundExpired.selector;
        sel[8] = VaultHandler.donate.selector;
        sel[9] = VaultHandler.warp.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: sel}));
    }

    /// sum of sharesOf == totalShares
    function invariant_sharesSumToTotal() public view {
        uint256 sum;
        for (uint256 i; i < actors.length; ++i) {
            sum += vault.sharesOf(actors[i]);
        }
        assertEq(sum, vault.totalShares(), "sum of shares");
    }

    /// totalAssets == token balances of the vault and its strategies
    function invariant_totalAssetsIsHeldTokens() public view {
        assertEq(vault.totalAssets(), _heldAssets(), "totalAssets");
    }

    /// Withdrawals never revert for holders, never pay more than assetsOf; own callbacks,
    /// deposits and requests never fail.
    function invariant_noFailures() public view {
        assertEq(handler.failedWithdrawals(), 0, "a withdrawal reverted");
        assertEq(handler.overpaidWithdrawals(), 0, "a withdrawal paid more than assetsOf");
        assertEq(handler.failedOwnCallbacks(), 0, "the vault's own callback failed");
        assertEq(handler.failedDeposits(), 0, "a valid deposit failed");
        assertEq(handler.failedRequests(), 0, "a rebalance request failed");
        assertEq(handler.pauseBypassed(), 0, "a deposit went through while paused");
        assertEq(handler.cooldownBypassed(), 0, "a request beat the rebalance cooldown");
        assertEq(handler.withdrawalOrderViolations(), 0, "a withdrawal skipped a riskier strategy");
    }

    /// Loss ratios stay in [0, 1], never below the lifetime loss, and the lifetime loss only
    /// changes on a slash (draining, refilling, donations and churn leave it alone).
    function invariant_lossHistoryPersists() public view {
        for (uint256 i; i < 3; ++i) {
            uint256 ratio = strat[i].lossRatioWad();
            uint256 life = strat[i].lifetimeLossWad();
            assertLe(ratio, WAD, "loss ratio <= 1");
            assertGe(ratio, life, "ratio >= lifetime loss");
            assertEq(life, handler.lifetimeLossGhost(i), "lifetime loss changed outside a slash");
        }
    }

    /// Everyone can leave right now, in any order, and gets exactly assetsOf.
    function invariant_everyoneCanExit() public {
        uint256 snap = vm.snapshotState();
        uint256 start = vault.totalShares(); // pseudo-random exit order
        for (uint256 i; i < actors.length; ++i) {
            address a = actors[(i + start) % actors.length];
            uint256 have = vault.sharesOf(a);
            if (have == 0) continue;
            uint256 worth = vault.assetsOf(a);
            uint256 before = token.balanceOf(a);
            vm.prank(a);
            try vault.withdraw(have) returns (uint256 got) {
                assertEq(got, worth, "exit pays assetsOf");
                assertEq(token.balanceOf(a) - before, got, "tokens received");
            } catch {
                revert AssertionFailed("exit reverted");
            }
        }
        assertEq(vault.totalShares(), 0, "all shares burnt");
        vm.revertToState(snap);
    }

    /// Targets always sum to 10000 bps (or 0 when every strategy exited); the pause flag
    /// matches the last proven risk; features stay within [0, 2^scale].
    function invariant_targetsPauseAndFeatures() public view {
        uint256[3] memory t = _targets();
        uint256 sum = t[0] + t[1] + t[2];
        assertTrue(sum == BPS || sum == 0, "targets sum");
        uint256[3] memory r = _risks();
        uint256 maxR;
        for (uint256 i; i < 3; ++i) {
            assertLe(r[i], WAD, "risk clamped");
            if (r[i] > maxR) maxR = r[i];
        }
        assertEq(vault.depositsPaused(), maxR >= vault.pauseThresholdWad(), "pause matches risk");
        int256[] memory f = vault.currentFeatures();
        for (uint256 i; i < f.length; ++i) {
            assertTrue(f[i] >= 0 && f[i] <= ONE, "feature range");
        }
    }

    function afterInvariant() public view {
        VaultLog.log("deposits", handler.deposits());
        VaultLog.log("withdrawals", handler.withdrawals());
        VaultLog.log("fulfilments", handler.fulfilments());
        VaultLog.log("pausedSkips", handler.pausedSkips());
        VaultLog.log("refunds", handler.refunds());
        VaultLog.log("slashes", handler.slashes());
        VaultLog.log("cooldownSkips", handler.cooldownSkips());
    }

    /// The oracle's books balance: ETH held == escrow + credits.
    function invariant_oracleSolvent() public view {
        assertEq(address(oracle).balance, oracle.totalEscrowed() + oracle.totalCredits(), "oracle books");
    }
}
