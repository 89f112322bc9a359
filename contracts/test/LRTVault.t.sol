// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {VaultTestBase, VaultLog} from "./utils/VaultTestBase.sol";
import {TestSetup} from "./utils/TestSetup.sol";
import {TestHashVerifier} from "./utils/TestHashVerifier.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {LRTToken} from "../lrt/LRTToken.sol";
import {LRTVault} from "../LRTVault.sol";
import {RestakingStrategy} from "../lrt/RestakingStrategy.sol";
import {Owned} from "../utils/Owned.sol";

/// @notice Unit tests of LRTVault: shares, withdrawals, the oracle round trip, parameters.
contract LRTVaultTest is VaultTestBase {
    // Initial targets are [3334, 3333, 3333] bps, idle buffer 10%: a 1000-token deposit
    // leaves 100 idle and invests 300.06 / 299.97 / 299.97.
    uint256 internal constant D = 1000e18;

    // ================================================================== deposit

    function test_deposit_firstDepositorMintsWithVirtualOffset() public {
        // shares = assets * (0 + 1e3) / (0 + 1)
        vm2.expectEmit(true, false, false, true, address(vault));
        emit LRTVault.Deposit(alice, D, D * 1e3);
        uint256 shares = _deposit(alice, D);
        assertEq(shares, D * 1e3, "first shares");
        assertEq(vault.sharesOf(alice), shares, "sharesOf");
        assertEq(vault.totalShares(), shares, "totalShares");
        assertEq(token.balanceOf(alice), USER_TOKENS - D, "tokens pulled");
        assertEq(vault.totalAssets(), D, "totalAssets");
        // 10% idle, the rest along the initial targets.
        assertEq(_idle(), 100e18, "idle buffer");
        uint256[3] memory b = _balances();
        assertEq(b[0], 300.06e18, "s0");
        assertEq(b[1], 299.97e18, "s1");
        assertEq(b[2], 299.97e18, "s2");
        assertEq(strat[0].principal(), 300.06e18, "principal recorded");
        // Holder's value is its deposit minus at most 1 wei of rounding.
        _approxEq(vault.assetsOf(alice), D, 1, "assetsOf");
    }

    function test_deposit_laterDepositorMintsProRataWithOffset() public {
        _deposit(alice, D);
        strat[1].slash(2_000); // 20% of 299.97 -> total 940.006
        assertEq(vault.totalAssets(), 940.006e18, "after slash");
        uint256 ts = vault.totalShares();
        uint256 expected = (500e18 * (ts + 1e3)) / (940.006e18 + 1);
        assertEq(expected, 531911498437244017591343, "hand-computed");
        uint256 shares = _deposit(bob, 500e18);
        assertEq(shares, expected, "bob shares");
        assertEq(vault.totalShares(), ts + shares, "totalShares");
        // Bob's shares are worth what he paid (rounded down), Alice keeps her reduced value.
        assertLe(vault.assetsOf(bob), 500e18, "bob <= paid");
        _approxEq(vault.assetsOf(bob), 500e18, 1e6, "bob ~ paid");
        _approxEq(vault.assetsOf(alice), 940.006e18, 1e6, "alice unchanged");
    }

    function test_deposit_revertsZeroAmount() public {
        vm.expectRevert(abi.encodeWithSelector(LRTVault.ZeroAmount.selector));
        _deposit(alice, 0);
    }

    function test_deposit_revertsWhenSharesRoundToZero() public {
        _deposit(stranger, 1); // 1000 shares for 1 wei
        vm.prank(stranger);
        token.transfer(address(vault), 100_000e18); // 1 share is now worth ~1e20
        vm.expectRevert(abi.encodeWithSelector(LRTVault.ZeroAmount.selector));
        _deposit(alice, 1e12);
    }

    function test_deposit_revertsWhenPaused() public {
        _deposit(alice, D);
        assertTrue(_rebalance(0, 0, 115), "callback"); // 0.898 >= 0.8
        assertTrue(vault.depositsPaused(), "paused");
        vm.expectRevert(abi.encodeWithSelector(LRTVault.DepositsArePaused.selector));
        _deposit(bob, 1e18);
    }

    // ================================================================== withdraw

    function test_withdraw_returnsAssetsProRata() public {
        _deposit(alice, D);
        uint256 bobShares = _deposit(bob, 3 * D);
        uint256 aliceShares = vault.sharesOf(alice);
        assertEq(bobShares, 3 * aliceShares, "3x shares");

        uint256 half = aliceShares / 2;
        uint256 expected = (half * (vault.totalAssets() + 1)) / (vault.totalShares() + 1e3);
        uint256 before = token.balanceOf(alice);
        vm2.expectEmit(true, false, false, true, address(vault));
        emit LRTVault.Withdraw(alice, expected, half);
        uint256 got = _withdraw(alice, half);
        assertEq(got, expected, "formula");
        _approxEq(got, 500e18, 1, "half of 1000");
        assertEq(token.balanceOf(alice) - before, got, "tokens received");
        assertEq(vault.sharesOf(alice), aliceShares - half, "shares burnt");
        assertEq(vault.totalShares(), aliceShares - half + bobShares, "totalShares");
        assertEq(vault.withdrawnSinceRebalance(), got, "pressure tracked");

        got = _withdraw(bob, bobShares);
        _approxEq(got, 3 * D, 2, "bob full exit");
        assertLe(got, 3 * D, "never more than deposited");
    }

    function test_withdraw_revertsInsufficientShares() public {
        uint256 shares = _deposit(alice, D);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InsufficientShares.selector, shares, shares + 1));
        _withdraw(alice, shares + 1);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InsufficientShares.selector, 0, 1));
        _withdraw(bob, 1);
    }

    function test_withdraw_revertsZeroAmount() public {
        _deposit(alice, D);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.ZeroAmount.selector));
        _withdraw(alice, 0);
    }

    function test_withdraw_worksWhilePaused() public {
        uint256 shares = _deposit(alice, D);
        assertTrue(_rebalance(128, 128, 128), "callback"); // everything at max risk
        assertTrue(vault.depositsPaused(), "paused");
        // All strategies exited: everything is idle.
        assertEq(_idle(), D, "all idle");
        uint256 got = _withdraw(alice, shares);
        _approxEq(got, D, 1, "full exit while paused");
    }

    function test_withdraw_afterSlashGetsShareOfReducedAssets() public {
        uint256 a = _deposit(alice, D);
        uint256 b = _deposit(bob, D);
        // s0 holds 600.12; slash half of it.
        strat[0].slash(5_000);
        uint256 total = 2 * D - 300.06e18;
        assertEq(vault.totalAssets(), total, "total after slash");
        uint256 gotA = _withdraw(alice, a);
        _approxEq(gotA, total / 2, 2, "alice gets half of reduced");
        uint256 gotB = _withdraw(bob, b);
        _approxEq(gotB, total / 2, 2, "bob gets half of reduced");
        assertLe(gotA + gotB, total, "no more than held");
        assertLe(vault.totalAssets(), 2, "only virtual-share dust left");
    }

    function test_withdraw_afterFullSlashOfAStrategy() public {
        uint256 a = _deposit(alice, D);
        strat[2].slash(10_000);
        assertEq(strat[2].balance(), 0, "wiped");
        assertEq(strat[2].lossRatioWad(), WAD, "loss 100%");
        uint256 got = _withdraw(alice, a);
        _approxEq(got, D - 299.97e18, 1, "loses the slashed strategy");
    }

    function test_withdraw_pullsFromIdleThenStrategiesInOrder() public {
        uint256 shares = _deposit(alice, D);
        // Half the shares == exactly 500 tokens: 100 idle + 300.06 from s0 + 99.94 from s1.
        uint256 got = _withdraw(alice, shares / 2);
        assertEq(got, 500e18, "amount");
        assertEq(_idle(), 0, "idle used first");
        uint256[3] memory bal = _balances();
        assertEq(bal[0], 0, "s0 emptied next");
        assertEq(bal[1], 299.97e18 - 99.94e18, "s1 partially");
        assertEq(bal[2], 299.97e18, "s2 untouched");
        assertEq(strat[0].principal(), 0, "s0 principal cleared");
    }

    function test_withdraw_smallAmountServedFromIdleOnly() public {
        uint256 shares = _deposit(alice, D);
        uint256[3] memory before = _balances();
        _withdraw(alice, shares / 20); // 50 tokens < 100 idle
        uint256[3] memory afterB = _balances();
        for (uint256 i; i < 3; ++i) {
            assertEq(afterB[i], before[i], "strategies untouched");
        }
        assertEq(_idle(), 50e18, "idle reduced");
    }

    /// First depositor mints 1000 shares for 1 wei, then donates as much as the victim
    /// deposits; the virtual offset makes the attack cost the attacker ~half its donation and
    /// the victim only rounding (< 0.1%).
    function test_inflationAttack_donationDoesNotStealVictimFunds() public {
        address attacker = stranger;
        uint256 atkShares = _deposit(attacker, 1);
        assertEq(atkShares, 1e3, "1 wei -> 1000 shares");
        vm.prank(attacker);
        token.transfer(address(vault), D); // donation straight to the vault

        uint256 victimShares = _deposit(alice, D);
        // D * (1000 + 1000) / (D + 1 + 1) rounds down to 1999.
        assertEq(victimShares, 1999, "victim shares");
        uint256 victimValue = vault.assetsOf(alice);
        assertEq(victimValue, 999749937484371092774, "hand-computed");
        uint256 loss = D - victimValue;
        assertLt(loss, D / 1000, "victim loses < 0.1%");

        // Actual withdrawals pay exactly the quoted value.
        assertEq(_withdraw(alice, victimShares), victimValue, "victim withdraws value");
        uint256 atkValue = vault.assetsOf(attacker);
        assertEq(_withdraw(attacker, atkShares), atkValue, "attacker withdraws value");
        assertLt(atkValue, D / 2 + D / 1000, "attacker lost ~half its donation");
        assertGt(D + 1 - atkValue, loss, "attacker loses more than victim");
    }

    // ================================================================== requestRebalance

    function test_currentFeatures_afterFirstDeposit() public {
        _deposit(alice, D);
        int256[] memory f = vault.currentFeatures();
        // shares 0.30006 / 0.29997 / 0.29997 of 128 -> 38.4 / 38.39 / 38.39 -> 38; idle 0.1 -> 12.
        int256[] memory want = new int256[](8);
        (want[0], want[1], want[2], want[6]) = (38, 38, 38, 12);
        assertEq(f, want, "features");
    }

    /// Deposit 1000, slash s1 by 20%, withdraw 20% of shares (188.0012 tokens: idle 100 then
    /// 88.0012 from s0). Total 752.0048. By hand (x128, floored):
    ///   f0 = 212.0588/752.0048 = 0.28199 -> 36   f1 = 239.976/752.0048 = 0.31912 -> 40
    ///   f2 = 299.97/752.0048 = 0.39889 -> 51     f3 = 0 (partial withdraw keeps 0 loss)
    ///   f4 = loss 0.2 -> 25.6 -> 25              f5 = 0    f6 = idle 0 -> 0
    ///   f7 = 188.0012/752.0048 = 0.25 -> 32
    function test_requestRebalance_featuresForKnownState() public {
        uint256 shares = _deposit(alice, D);
        strat[1].slash(2_000);
        uint256 got = _withdraw(alice, shares / 5);
        assertEq(got, 188.0012e18, "withdrawn");
        assertEq(vault.totalAssets(), 752.0048e18, "total");
        assertEq(strat[1].lossRatioWad(), 0.2e18, "loss ratio");

        int256[] memory want = new int256[](8);
        (want[0], want[1], want[2], want[3]) = (36, 40, 51, 0);
        (want[4], want[5], want[6], want[7]) = (25, 0, 0, 32);

        uint256 id = _request();
        assertEq(oracle.getRequest(id).input, want, "features sent to the oracle");
        assertEq(vault.currentFeatures(), want, "currentFeatures");
    }

    function test_currentFeatures_emptyVaultIsZero() public view {
        int256[] memory f = vault.currentFeatures();
        assertEq(f.length, 8, "length");
        for (uint256 i; i < 8; ++i) {
            assertEq(f[i], int256(0), "zero");
        }
    }

    function test_currentFeatures_pressureCappedAtOne() public {
        uint256 a = _deposit(alice, D);
        _deposit(bob, 10e18);
        _withdraw(alice, a); // withdrawn ~1000 > remaining 10
        int256[] memory f = vault.currentFeatures();
        assertEq(f[7], ONE, "pressure capped at 1.0");
    }

    function test_requestRebalance_paysFeeFromVaultBalance() public {
        _deposit(alice, D);
        uint256 fee = oracle.quoteFee(RISK_MODEL, 600_000);
        assertEq(fee, MODEL_FEE + (VERIFY_GAS + 600_000 + oracle.FULFILL_OVERHEAD_GAS()) * GAS_PRICE, "quote");
        uint256 ethBefore = address(vault).balance;
        uint256 id = _request();
        assertEq(address(vault).balance, ethBefore - fee, "fee from vault balance");
        assertEq(oracle.totalEscrowed(), fee, "escrowed");
        assertEq(oracle.balances(address(vault)), 0, "no overpayment credit");

        InferenceOracle.RequestView memory r = oracle.getRequest(id);
        assertEq(r.requester, address(vault), "requester");
        assertEq(r.callback, address(vault), "callback");
        assertEq(uint256(r.callbackGasLimit), 600_000, "gas limit");
        assertEq(uint256(r.deadline), block.timestamp + 1 hours, "deadline");
        assertEq(r.modelId, RISK_MODEL, "model");
        assertEq(r.fee, fee, "fee");
        assertEq(vault.pendingRequestId(), id, "pending id");
        assertEq(uint256(vault.pendingDeadline()), block.timestamp + 1 hours, "pending deadline");
    }

    function test_requestRebalance_feeCanComeWithTheCall() public {
        vm.deal(address(vault), 0);
        uint256 fee = oracle.quoteFee(RISK_MODEL, 600_000);
        vm.deal(stranger, fee);
        vm.prank(stranger);
        vault.requestRebalance{value: fee}();
        assertEq(address(vault).balance, 0, "all spent");
        assertEq(oracle.totalEscrowed(), fee, "escrowed");
    }

    function test_requestRebalance_emitsEvent() public {
        _deposit(alice, D);
        int256[] memory f = vault.currentFeatures();
        uint256 fee = oracle.quoteFee(RISK_MODEL, 600_000);
        uint256 nextId = oracle.nextRequestId();
        vm2.expectEmit(true, false, false, true, address(vault));
        emit LRTVault.RebalanceRequested(nextId, f, fee);
        assertEq(_request(), nextId, "id");
    }

    function test_requestRebalance_revertsWhilePending() public {
        uint256 id = _request();
        uint64 deadline = vault.pendingDeadline();
        vm.expectRevert(abi.encodeWithSelector(LRTVault.RebalancePending.selector, id, deadline));
        _request();
        vm.warp(deadline); // still pending at the deadline itself (the oracle still accepts it)
        vm.expectRevert(abi.encodeWithSelector(LRTVault.RebalancePending.selector, id, deadline));
        _request();
    }

    function test_requestRebalance_allowedAgainAfterExpiry() public {
        uint256 id = _request();
        vm.warp(uint256(vault.pendingDeadline()) + 1);
        uint256 id2 = _request();
        assertEq(id2, id + 1, "new request");
        assertEq(vault.pendingRequestId(), id2, "pending replaced");
        // The stale request cannot deliver any more.
        int256[] memory out = _out(0, 0, 0);
        int256[] memory input = oracle.getRequest(id).input;
        bytes memory proof = verifier.proofFor(input, out, relayer);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceOracle.RequestExpired.selector, id, oracle.getRequest(id).deadline)
        );
        oracle.fulfill(id, out, relayer, proof);
        // The new one can.
        assertTrue(_fulfil(id2, out), "new request fulfilled");
    }

    /// Was "allowed right after fulfilment": a fulfilled request now still starts the cooldown
    /// (minRebalanceInterval, default 10 minutes, from the request time).
    function test_requestRebalance_afterFulfilmentWaitsForCooldown() public {
        assertTrue(_rebalance(10, 10, 10), "first");
        assertEq(vault.pendingRequestId(), 0, "cleared");
        uint256 next = block.timestamp + 10 minutes;
        vm.expectRevert(abi.encodeWithSelector(LRTVault.RebalanceTooSoon.selector, next));
        _request();
        vm.warp(next - 1);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.RebalanceTooSoon.selector, next));
        _request();
        vm.warp(next); // the bound is inclusive
        assertTrue(_fulfil(_request(), _out(20, 20, 20)), "second, after the interval");
    }

    function test_requestRebalance_revertsInsufficientFeeBalance() public {
        uint256 fee = oracle.quoteFee(RISK_MODEL, 600_000);
        vm.deal(address(vault), fee - 1);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InsufficientFeeBalance.selector, fee, fee - 1));
        _request();
    }

    // ================================================================== oracle callback

    function test_fulfil_lowRisk_reweightsInverseToRisk() public {
        _deposit(alice, D);
        // risks 0.125 / 0.25 / 0.5 -> weights 0.875 / 0.75 / 0.5 (sum 2.125)
        // bps 4117 / 3529 / 2352 (+2 dust to the safest, s0) -> 4119 / 3529 / 2352
        uint256 id = _request();
        bytes memory proof = _proof(id, _out(16, 32, 64));
        vm2.expectEmit(true, false, false, true, address(vault));
        emit LRTVault.AllocationsUpdated([uint256(4119), 3529, 2352]);
        assertTrue(_submit(id, _out(16, 32, 64), proof), "callback succeeded");

        uint256[3] memory t = _targets();
        assertEq(t[0], 4119, "t0");
        assertEq(t[1], 3529, "t1");
        assertEq(t[2], 2352, "t2");
        // Invested = 90% of 1000 = 900.
        uint256[3] memory b = _balances();
        assertEq(b[0], 370.71e18, "b0");
        assertEq(b[1], 317.61e18, "b1");
        assertEq(b[2], 211.68e18, "b2");
        assertEq(_idle(), 100e18, "buffer kept");
        assertEq(vault.totalAssets(), D, "no value moved out");
        assertFalse(vault.depositsPaused(), "not paused");
        // Later deposits follow the new targets.
        _deposit(bob, D);
        b = _balances();
        assertEq(b[0], 370.71e18 * 2, "b0 after deposit");
        assertEq(b[2], 211.68e18 * 2, "b2 after deposit");
    }

    function test_fulfil_storesRiskAndResetsPressure() public {
        uint256 shares = _deposit(alice, D);
        _withdraw(alice, shares / 10);
        assertGt(vault.withdrawnSinceRebalance(), 0, "pressure");
        uint256 id = _request();
        vm.warp(block.timestamp + 100);
        bytes memory proof = _proof(id, _out(16, 32, 64));
        vm2.expectEmit(true, false, false, true, address(vault));
        emit LRTVault.RiskAssessed(id, [uint256(0.125e18), 0.25e18, 0.5e18]);
        assertTrue(_submit(id, _out(16, 32, 64), proof), "callback");
        uint256[3] memory r = _risks();
        assertEq(r[0], 0.125e18, "r0");
        assertEq(r[1], 0.25e18, "r1");
        assertEq(r[2], 0.5e18, "r2");
        assertEq(vault.withdrawnSinceRebalance(), 0, "pressure reset");
        assertEq(vault.lastRebalanceAt(), block.timestamp, "timestamp");
        assertEq(vault.pendingRequestId(), 0, "pending cleared");
        assertEq(uint256(vault.pendingDeadline()), 0, "deadline cleared");
        assertEq(vault.currentFeatures()[7], int256(0), "pressure feature 0");
    }

    function test_fulfil_highRiskStrategyIsDrained() public {
        _deposit(alice, D);
        // s1 at 0.75 >= exit 0.6: weight 0; s0, s2 at 0.125 share equally.
        assertTrue(_rebalance(16, 96, 16), "callback");
        uint256[3] memory t = _targets();
        assertEq(t[0], 5000, "t0");
        assertEq(t[1], 0, "t1 exited");
        assertEq(t[2], 5000, "t2");
        uint256[3] memory b = _balances();
        assertEq(b[1], 0, "s1 drained");
        assertEq(b[0], 450e18, "s0 took half");
        assertEq(b[2], 450e18, "s2 took half");
        assertEq(_idle(), 100e18, "idle");
        assertEq(strat[1].principal(), 0, "s1 principal 0");
        assertFalse(vault.depositsPaused(), "0.75 < pause 0.8");
    }

    function test_fulfil_exitThresholdIsInclusive() public {
        _deposit(alice, D);
        // 77/128 = 0.6016 >= 0.6 exits; 76/128 = 0.594 stays.
        assertTrue(_rebalance(76, 77, 0), "callback");
        uint256[3] memory t = _targets();
        assertGt(t[0], 0, "76 stays");
        assertEq(t[1], 0, "77 exits");
        assertEq(t[0] + t[2], BPS, "sum");
    }

    function test_fulfil_pauseThenLaterLowRiskUnpauses() public {
        _deposit(alice, D);
        // 102/128 = 0.797 < 0.8: no pause.
        assertTrue(_rebalance(0, 0, 102), "callback");
        assertFalse(vault.depositsPaused(), "just below");
        // 103/128 = 0.805 >= 0.8: pause.
        _waitCooldown();
        uint256 id = _request();
        bytes memory proof = _proof(id, _out(0, 0, 103));
        vm2.expectEmit(false, false, false, true, address(vault));
        emit LRTVault.DepositsPausedSet(true);
        assertTrue(_submit(id, _out(0, 0, 103), proof), "callback");
        assertTrue(vault.depositsPaused(), "paused");
        assertEq(_balances()[2], 0, "risky strategy drained too");
        vm.expectRevert(abi.encodeWithSelector(LRTVault.DepositsArePaused.selector));
        _deposit(bob, 1e18);

        // Still risky: still paused.
        assertTrue(_rebalance(0, 110, 0), "callback");
        assertTrue(vault.depositsPaused(), "still paused");

        _waitCooldown();
        id = _request();
        proof = _proof(id, _out(10, 10, 10));
        vm2.expectEmit(false, false, false, true, address(vault));
        emit LRTVault.DepositsPausedSet(false);
        assertTrue(_submit(id, _out(10, 10, 10), proof), "callback");
        assertFalse(vault.depositsPaused(), "unpaused");
        _deposit(bob, 1e18);
    }

    function test_fulfil_clampsNegativeAndAboveOne() public {
        _deposit(alice, D);
        assertTrue(_rebalance(-500, 1000, 64), "callback");
        uint256[3] memory r = _risks();
        assertEq(r[0], 0, "negative -> 0");
        assertEq(r[1], WAD, "> 1 -> 1");
        assertEq(r[2], 0.5e18, "in range");
        uint256[3] memory t = _targets();
        // weights 1 / 0 / 0.5 -> 6666 / 0 / 3333 (+1 dust to s0)
        assertEq(t[0], 6667, "t0");
        assertEq(t[1], 0, "t1");
        assertEq(t[2], 3333, "t2");
        assertTrue(vault.depositsPaused(), "clamped 1.0 pauses");
    }

    function test_fulfil_extremeOutputsAtBitLimits() public {
        _deposit(alice, D);
        assertTrue(_rebalance(type(int32).min, type(int32).max, 0), "callback");
        uint256[3] memory r = _risks();
        assertEq(r[0], 0, "min clamps to 0");
        assertEq(r[1], WAD, "max clamps to 1");
    }

    /// The registry accepts outputs up to 253 bits; a huge (proven) score must clamp to 1.0,
    /// not overflow in the fixed-point conversion and make the callback fail.
    function test_fulfil_wideOutputModelClampsHugeScores() public {
        _deposit(alice, D);
        bytes32 wide = keccak256("lrt-risk-wide");
        ModelRegistry.Model memory m = _model(address(verifier), 8, 3);
        m.outputBits = 253;
        m.circuitId = keccak256("wide");
        registry.register(wide, m, TestSetup.dev());
        vault.setRiskModel(wide);
        int256 huge = int256(1) << 251;
        assertTrue(_rebalance(huge, -huge, 1), "callback must not overflow");
        uint256[3] memory r = _risks();
        assertEq(r[0], WAD, "huge -> 1.0");
        assertEq(r[1], 0, "-huge -> 0");
        assertEq(r[2], WAD / 128, "1/128");
        assertEq(_balances()[0], 0, "exited");
        assertTrue(vault.depositsPaused(), "paused");
    }

    function test_fulfil_allStrategiesExitedKeepsEverythingIdle() public {
        _deposit(alice, D);
        assertTrue(_rebalance(77, 80, 90), "callback"); // all >= exit, max < pause
        uint256[3] memory t = _targets();
        assertEq(t[0] + t[1] + t[2], 0, "no targets");
        assertEq(_idle(), D, "all idle");
        assertFalse(vault.depositsPaused(), "below pause");
        // Deposits stay idle.
        _deposit(bob, D);
        assertEq(_idle(), 2 * D, "deposit stays idle");
    }

    function test_fulfil_movesFundsBackAfterRecovery() public {
        _deposit(alice, D);
        assertTrue(_rebalance(0, 128, 0), "exit s1");
        assertEq(_balances()[1], 0, "drained");
        assertTrue(_rebalance(0, 0, 0), "recover");
        uint256[3] memory b = _balances();
        assertEq(b[0], 300.06e18, "s0");
        assertEq(b[1], 299.97e18, "s1 refilled");
        assertEq(b[2], 299.97e18, "s2");
    }

    function test_onInferenceResult_revertsNotOracle() public {
        uint256 id = _request();
        bytes32 h = _vaultStateHash();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.NotOracle.selector, stranger));
        vault.onInferenceResult(id, RISK_MODEL, _out(0, 0, 0));
        assertEq(_vaultStateHash(), h, "unchanged");
    }

    function test_onInferenceResult_revertsUnexpectedRequest() public {
        uint256 id = _request();
        vm.prank(address(oracle));
        vm.expectRevert(abi.encodeWithSelector(LRTVault.UnexpectedRequest.selector, id + 7, id));
        vault.onInferenceResult(id + 7, RISK_MODEL, _out(0, 0, 0));
        // Nothing pending: even id 0 is refused.
        vm.prank(address(oracle));
        vm.expectRevert(abi.encodeWithSelector(LRTVault.UnexpectedRequest.selector, 0, id));
        vault.onInferenceResult(0, RISK_MODEL, _out(0, 0, 0));
    }

    function test_onInferenceResult_revertsUnexpectedModelAndBadLength() public {
        uint256 id = _request();
        bytes32 other = keccak256("other");
        vm.prank(address(oracle));
        vm.expectRevert(abi.encodeWithSelector(LRTVault.UnexpectedModel.selector, other));
        vault.onInferenceResult(id, other, _out(0, 0, 0));
        vm.prank(address(oracle));
        vm.expectRevert(abi.encodeWithSelector(LRTVault.BadOutputLength.selector, 2));
        vault.onInferenceResult(id, RISK_MODEL, new int256[](2));
    }

    /// Someone else's request naming the vault as callback: fulfilled (relayer paid), the
    /// callback reverts with UnexpectedRequest inside the oracle, the vault is unchanged.
    function test_foreignRequest_callbackFailsAndVaultUnchanged() public {
        _deposit(alice, D);
        uint256 ours = _request();
        int256[] memory features = vault.currentFeatures();
        uint256 fee = oracle.quoteFee(RISK_MODEL, 600_000);
        vm.prank(stranger);
        uint256 foreign = oracle.requestInference{value: fee}(
            RISK_MODEL, features, address(vault), 600_000, uint64(block.timestamp + 1 hours)
        );
        bytes32 h = _vaultStateHash();
        assertFalse(_fulfil(foreign, _out(0, 128, 128)), "callback must fail");
        assertTrue(oracle.requestStatus(foreign) == InferenceOracle.Status.Fulfilled, "still fulfilled");
        assertEq(oracle.balances(relayer), fee, "relayer paid");
        assertEq(_vaultStateHash(), h, "vault unchanged");
        assertEq(vault.pendingRequestId(), ours, "ours still pending");
        // Ours still goes through.
        assertTrue(_fulfil(ours, _out(0, 0, 0)), "own request ok");
    }

    function test_foreignRequest_withNothingPending() public {
        _deposit(alice, D);
        uint256 fee = oracle.quoteFee(RISK_MODEL, 600_000);
        int256[] memory features = vault.currentFeatures();
        vm.prank(stranger);
        uint256 foreign = oracle.requestInference{value: fee}(
            RISK_MODEL, features, address(vault), 600_000, uint64(block.timestamp + 1 hours)
        );
        bytes32 h = _vaultStateHash();
        assertFalse(_fulfil(foreign, _out(128, 128, 128)), "callback fails");
        assertEq(_vaultStateHash(), h, "vault unchanged");
        assertFalse(vault.depositsPaused(), "not paused by a foreign result");
    }

    function test_lateFulfil_rejectedByOracleChangesNothing() public {
        _deposit(alice, D);
        uint256 id = _request();
        uint64 deadline = vault.pendingDeadline();
        vm.warp(uint256(deadline) + 1);
        bytes32 h = _vaultStateHash();
        int256[] memory out = _out(0, 128, 0);
        bytes memory proof = verifier.proofFor(oracle.getRequest(id).input, out, relayer);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.RequestExpired.selector, id, deadline));
        oracle.fulfill(id, out, relayer, proof);
        assertEq(_vaultStateHash(), h, "unchanged");
    }

    function test_fulfilAtDeadlineStillAccepted() public {
        _deposit(alice, D);
        uint256 id = _request();
        vm.warp(vault.pendingDeadline());
        assertTrue(_fulfil(id, _out(0, 0, 0)), "accepted at deadline");
    }

    function test_refundedRequest_changesNothingAndRefundsVault() public {
        _deposit(alice, D);
        uint256 id = _request();
        uint256 fee = oracle.getRequest(id).fee;
        uint256 ethBefore = address(vault).balance;
        vm.warp(uint256(vault.pendingDeadline()) + 1);
        bytes32 h = _vaultStateHash();
        vm.prank(stranger); // anyone may trigger the refund
        oracle.refund(id);
        assertEq(address(vault).balance, ethBefore + fee, "fee back in the vault");
        assertEq(oracle.balances(address(vault)), 0, "paid, not credited");
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Refunded, "refunded");
        assertEq(_vaultStateHash(), h, "vault state unchanged");
        // A new request can be made and is funded from the refund.
        assertTrue(_rebalance(0, 0, 0), "next round");
    }

    /// The lowest accepted limit (MIN_CALLBACK_GAS = 100k; was 40k before the bound existed)
    /// is still below what a full re-weighting needs: the callback fails cleanly.
    function test_failedCallback_lowGasLimitChangesNothing() public {
        _deposit(alice, D);
        vault.setParameters(1_000, 0.6e18, 0.8e18, 100_000, 1 hours);
        uint256 id = _request();
        assertEq(uint256(oracle.getRequest(id).callbackGasLimit), 100_000, "gas config used");
        bytes32 h = _vaultStateHash();
        assertFalse(_fulfil(id, _out(0, 128, 0)), "callback ran out of gas");
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Fulfilled, "fulfilment recorded");
        assertEq(_vaultStateHash(), h, "vault unchanged");
        assertEq(vault.pendingRequestId(), id, "still pending until its deadline");
        // Recovery: raise the gas, wait out the stale request, ask again.
        vault.setParameters(1_000, 0.6e18, 0.8e18, 600_000, 1 hours);
        vm.warp(uint256(vault.pendingDeadline()) + 1);
        assertTrue(_rebalance(0, 128, 0), "works again");
        assertEq(_balances()[1], 0, "acted");
    }

    /// The default 600k callback gas must cover a full re-weighting in the worst case: first
    /// ever result (zero -> non-zero slots), pause toggles, every strategy moves, and every
    /// account and slot is cold.
    function test_gas_fullReweightWithinDefaultCallbackGas() public {
        _deposit(alice, D);
        _deposit(bob, 2 * D);
        strat[0].slash(1_000);
        int256[] memory out = _out(0, 64, 128); // s0 up, s1 down, s2 out, pause
        _coolAll();
        uint256 g = gasleft();
        uint256 id = vault.requestRebalance();
        uint256 gasRequest = g - gasleft();

        // Callback alone, cold, exactly as the oracle would call it.
        uint256 snap = vm.snapshotState();
        _coolAll();
        vm.prank(address(oracle));
        g = gasleft();
        vault.onInferenceResult(id, RISK_MODEL, out);
        uint256 gasCallback = g - gasleft();
        vm.revertToState(snap);

        _coolAll();
        bytes memory proof = verifier.proofFor(oracle.getRequest(id).input, out, relayer);
        _coolAll();
        vm.recordLogs();
        vm.prank(relayer);
        g = gasleft();
        oracle.fulfill(id, out, relayer, proof);
        uint256 gasFulfil = g - gasleft();
        assertTrue(_callbackResult(id), "callbackSucceeded with the default limit");
        assertEq(_balances()[2], 0, "re-weighted");
        assertTrue(vault.depositsPaused(), "paused");

        VaultLog.log("gas requestRebalance (cold)", gasRequest);
        VaultLog.log("gas onInferenceResult (cold, worst case)", gasCallback);
        VaultLog.log("gas fulfill incl. verify + callback (cold)", gasFulfil);
        assertLt(gasCallback, 600_000, "callback fits the default limit");
    }

    function _coolAll() internal {
        address[7] memory a = [
            address(vault),
            address(token),
            address(oracle),
            address(registry),
            address(verifier),
            address(strat[0]),
            address(strat[1])
        ];
        for (uint256 i; i < a.length; ++i) {
            vm2.cool(a[i]);
        }
        vm2.cool(address(strat[2]));
    }

    // ================================================================== owner

    function test_setParameters_updatesAndEmits() public {
        vm2.expectEmit(false, false, false, true, address(vault));
        emit LRTVault.ParametersChanged(2_000, 0.5e18, 0.7e18, 800_000, 2 hours);
        vault.setParameters(2_000, 0.5e18, 0.7e18, 800_000, 2 hours);
        assertEq(vault.idleBufferBps(), 2_000, "buffer");
        assertEq(vault.exitThresholdWad(), 0.5e18, "exit");
        assertEq(vault.pauseThresholdWad(), 0.7e18, "pause");
        assertEq(uint256(vault.callbackGasLimit()), 800_000, "gas");
        assertEq(uint256(vault.requestTtl()), 2 hours, "ttl");
        // The new buffer applies to the next deposit and the new TTL to the next request.
        _deposit(alice, D);
        assertEq(_idle(), 200e18, "20% idle");
        _request();
        assertEq(uint256(vault.pendingDeadline()), block.timestamp + 2 hours, "ttl used");
    }

    function test_setParameters_revertsInvalidBuffer() public {
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InvalidBuffer.selector, 5_001));
        vault.setParameters(5_001, 0.6e18, 0.8e18, 600_000, 1 hours);
        vault.setParameters(5_000, 0.6e18, 0.8e18, 600_000, 1 hours); // bound is inclusive
    }

    function test_setParameters_revertsInvalidThresholds() public {
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InvalidThresholds.selector, 0.9e18, 0.8e18));
        vault.setParameters(1_000, 0.9e18, 0.8e18, 600_000, 1 hours);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InvalidThresholds.selector, 0.6e18, 1e18 + 1));
        vault.setParameters(1_000, 0.6e18, 1e18 + 1, 600_000, 1 hours);
        vault.setParameters(1_000, 0.8e18, 0.8e18, 600_000, 1 hours); // equal is fine
    }

    function test_setParameters_revertsNotOwner() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vault.setParameters(1_000, 0.6e18, 0.8e18, 600_000, 1 hours);
    }

    function test_setRiskModel_emitsAndClearsPending() public {
        _deposit(alice, D);
        uint256 old = _request();
        TestHashVerifier v2 = new TestHashVerifier();
        bytes32 m2 = keccak256("lrt-risk-v2");
        registry.register(m2, _model(address(v2), 8, 3), TestSetup.dev());

        vm2.expectEmit(false, false, false, true, address(vault));
        emit LRTVault.RiskModelChanged(m2);
        vault.setRiskModel(m2);
        assertEq(vault.riskModelId(), m2, "model");
        assertEq(vault.pendingRequestId(), 0, "pending cleared");
        assertEq(uint256(vault.pendingDeadline()), 0, "deadline cleared");

        // The old request is still fulfillable at the oracle, but the vault ignores it.
        bytes32 h = _vaultStateHash();
        assertFalse(_fulfil(old, _out(0, 128, 0)), "stale result refused");
        assertEq(_vaultStateHash(), h, "unchanged");

        // A new request (after the cooldown) uses the new model.
        _waitCooldown();
        uint256 id = _request();
        assertEq(oracle.getRequest(id).modelId, m2, "new model");
        int256[] memory out = _out(0, 128, 0);
        bytes memory proof = v2.proofFor(oracle.getRequest(id).input, out, relayer);
        vm.prank(relayer);
        oracle.fulfill(id, out, relayer, proof);
        assertEq(_balances()[1], 0, "acted on the new model's result");
    }

    function test_setRiskModel_revertsModelShapeMismatch() public {
        bytes32 m = keccak256("wrong-shape");
        registry.register(m, _model(address(new TestHashVerifier()), 8, 2), TestSetup.dev());
        vm.expectRevert(abi.encodeWithSelector(LRTVault.ModelShapeMismatch.selector, 8, 2));
        vault.setRiskModel(m);
        bytes32 m2 = keccak256("wrong-inputs");
        registry.register(m2, _model(address(new TestHashVerifier()), 7, 3), TestSetup.dev());
        vm.expectRevert(abi.encodeWithSelector(LRTVault.ModelShapeMismatch.selector, 7, 3));
        vault.setRiskModel(m2);
    }

    function test_setRiskModel_revertsUnknownModelAndNotOwner() public {
        bytes32 m = keccak256("nope");
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, m));
        vault.setRiskModel(m);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vault.setRiskModel(RISK_MODEL);
    }

    // ================================================================== review fixes

    // ---- 1. persistent loss signal

    /// A slashed strategy that the vault then drains (principal 0) still reports its loss:
    /// before the fix f4 fell back to 0 and the model saw a just-slashed operator as clean.
    function test_currentFeatures_lossSurvivesDrain() public {
        _deposit(alice, D);
        strat[1].slash(2_000);
        assertEq(vault.currentFeatures()[4], int256(25), "0.2 * 128 = 25.6 -> 25 while held");
        assertTrue(_rebalance(0, 96, 0), "s1 exits (0.75 >= 0.6)");
        assertEq(_balances()[1], 0, "drained");
        assertEq(strat[1].principal(), 0, "principal 0");
        int256[] memory f = vault.currentFeatures();
        assertEq(f[4], int256(25), "loss feature kept after the drain");
        assertEq(f[3], int256(0), "s0 clean");
        assertEq(f[5], int256(0), "s2 clean");
        // Refilled after a recovery: still reported, and sent to the oracle.
        assertTrue(_rebalance(0, 0, 0), "s1 refilled");
        assertGt(_balances()[1], 0, "refilled");
        _waitCooldown();
        uint256 id = _request();
        assertEq(oracle.getRequest(id).input[4], int256(25), "loss feature in the request");
    }

    // ---- 2. rebalance cooldown

    /// Looping request -> fulfil (the fulfiller collects each fee) spends at most one fee per
    /// interval: 3 rounds in 30 minutes instead of 30.
    function test_requestRebalance_feeDrainLoopIsRateLimited() public {
        _deposit(alice, D);
        uint256 fee = oracle.quoteFee(RISK_MODEL, 600_000);
        uint256 ethBefore = address(vault).balance;
        uint256 rounds;
        for (uint256 k; k < 30; ++k) {
            vm.prank(stranger);
            try vault.requestRebalance() returns (uint256 id) {
                ++rounds;
                int256[] memory out = _out(0, 0, 0);
                bytes memory proof = _proofFor(id, out, stranger);
                vm.prank(stranger);
                oracle.fulfill(id, out, stranger, proof);
            } catch (bytes memory reason) {
                assertEq(bytes32(bytes4(reason)), bytes32(LRTVault.RebalanceTooSoon.selector), "only the cooldown");
            }
            vm.warp(block.timestamp + 1 minutes);
        }
        assertEq(rounds, 3, "one round per 10 minutes");
        assertEq(ethBefore - address(vault).balance, 3 * fee, "ETH spent");
        assertEq(oracle.balances(stranger), 3 * fee, "fees collected");
    }

    /// With a TTL shorter than the interval an expired request cannot be replaced before the
    /// interval has passed either.
    function test_requestRebalance_cooldownAppliesAfterExpiry() public {
        vault.setParameters(1_000, 0.6e18, 0.8e18, 600_000, 60);
        uint256 t0 = block.timestamp;
        _request();
        vm.warp(t0 + 61);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.RebalanceTooSoon.selector, t0 + 10 minutes));
        _request();
        vm.warp(t0 + 10 minutes);
        _request();
        assertEq(uint256(vault.lastRequestAt()), t0 + 10 minutes, "lastRequestAt");
    }

    function test_setMinRebalanceInterval_updatesEmitsAndZeroDisables() public {
        assertEq(uint256(vault.minRebalanceInterval()), 10 minutes, "default");
        vm2.expectEmit(false, false, false, true, address(vault));
        emit LRTVault.MinRebalanceIntervalChanged(0);
        vault.setMinRebalanceInterval(0);
        assertEq(uint256(vault.minRebalanceInterval()), 0, "zero allowed");
        assertTrue(_rebalance(10, 10, 10), "first");
        assertTrue(_fulfil(_request(), _out(20, 20, 20)), "second in the same block");

        vault.setMinRebalanceInterval(1 hours);
        uint256 last = vault.lastRequestAt();
        vm.expectRevert(abi.encodeWithSelector(LRTVault.RebalanceTooSoon.selector, last + 1 hours));
        _request();
        vault.setMinRebalanceInterval(1 days); // the bound is inclusive
    }

    function test_setMinRebalanceInterval_revertsInvalidAndNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InvalidRebalanceInterval.selector, 1 days + 1, 1 days));
        vault.setMinRebalanceInterval(1 days + 1);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vault.setMinRebalanceInterval(0);
    }

    // ---- 3. parameter bounds from the oracle

    function test_setParameters_revertsInvalidCallbackGasLimit() public {
        uint32 max = oracle.MAX_CALLBACK_GAS();
        assertEq(uint256(max), 2_500_000, "oracle max");
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InvalidCallbackGasLimit.selector, 99_999, 100_000, max));
        vault.setParameters(1_000, 0.6e18, 0.8e18, 99_999, 1 hours);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InvalidCallbackGasLimit.selector, 0, 100_000, max));
        vault.setParameters(1_000, 0.6e18, 0.8e18, 0, 1 hours);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InvalidCallbackGasLimit.selector, max + 1, 100_000, max));
        vault.setParameters(1_000, 0.6e18, 0.8e18, max + 1, 1 hours);
        // Both ends inclusive, and the oracle accepts a request at the maximum.
        vault.setParameters(1_000, 0.6e18, 0.8e18, 100_000, 1 hours);
        vault.setParameters(1_000, 0.6e18, 0.8e18, max, 1 hours);
        uint256 id = _request();
        assertEq(uint256(oracle.getRequest(id).callbackGasLimit), max, "max gas accepted by the oracle");
    }

    function test_setParameters_revertsInvalidRequestTtl() public {
        uint64 lo = oracle.MIN_DEADLINE_DELAY() + 30;
        uint64 hi = oracle.MAX_DEADLINE_DELAY();
        assertEq(uint256(lo), 60, "30 + 30");
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InvalidRequestTtl.selector, lo - 1, lo, hi));
        vault.setParameters(1_000, 0.6e18, 0.8e18, 600_000, lo - 1);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InvalidRequestTtl.selector, 0, lo, hi));
        vault.setParameters(1_000, 0.6e18, 0.8e18, 600_000, 0);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.InvalidRequestTtl.selector, hi + 1, lo, hi));
        vault.setParameters(1_000, 0.6e18, 0.8e18, 600_000, hi + 1);
        // Both ends work end to end: the oracle accepts the resulting deadlines.
        vault.setParameters(1_000, 0.6e18, 0.8e18, 600_000, hi);
        _request();
        assertEq(uint256(vault.pendingDeadline()), block.timestamp + hi, "max ttl");
        vault.setParameters(1_000, 0.6e18, 0.8e18, 600_000, lo);
        vault.setRiskModel(RISK_MODEL); // clears the pending request
        _waitCooldown();
        _request();
        assertEq(uint256(vault.pendingDeadline()), block.timestamp + lo, "min ttl");
    }

    // ---- 4. model checks

    function _registerScaled(string memory name, uint8 scale, uint16 bits, uint16 inputs, uint16 outputs)
        internal
        returns (bytes32 id)
    {
        id = keccak256(bytes(name));
        ModelRegistry.Model memory m = _model(address(new TestHashVerifier()), inputs, outputs);
        m.inputScale = scale;
        m.inputBits = bits;
        m.circuitId = id;
        registry.register(id, m, TestSetup.dev());
    }

    function test_setRiskModel_revertsModelScaleMismatch() public {
        // 1.0 at scale 7 is 128 > 127, the largest 8-bit value.
        bytes32 a = _registerScaled("scale-7-bits-8", 7, 8, 8, 3);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.ModelScaleMismatch.selector, 7, 8));
        vault.setRiskModel(a);
        bytes32 b = _registerScaled("scale-15-bits-16", 15, 16, 8, 3);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.ModelScaleMismatch.selector, 15, 16));
        vault.setRiskModel(b);
        bytes32 c = _registerScaled("scale-200-bits-16", 200, 16, 8, 3);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.ModelScaleMismatch.selector, 200, 16));
        vault.setRiskModel(c);
        // Largest scale that fits: 2**6 = 64 <= 127; 2**14 <= 32767; 2**251 <= 2**252 - 1.
        vault.setRiskModel(_registerScaled("scale-6-bits-8", 6, 8, 8, 3));
        vault.setRiskModel(_registerScaled("scale-14-bits-16", 14, 16, 8, 3));
        bytes32 wide = _registerScaled("scale-251-bits-253", 251, 253, 8, 3);
        vault.setRiskModel(wide);
        assertEq(vault.riskModelId(), wide, "accepted");
    }

    /// A model at the largest accepted scale really takes the vault's features (1.0 included).
    function test_setRiskModel_maxScaleFeaturesAcceptedByOracle() public {
        vault.setRiskModel(_registerScaled("scale-6-bits-8", 6, 8, 8, 3));
        uint256 shares = _deposit(alice, D);
        _deposit(bob, 1e18);
        _withdraw(alice, shares); // pressure capped at 1.0 -> 64, the feature maximum
        int256[] memory f = vault.currentFeatures();
        assertEq(f[7], int256(64), "1.0 at scale 6");
        uint256 id = _request();
        assertEq(oracle.getRequest(id).input, f, "accepted and stored");
    }

    function test_constructor_checksModelAndAllowsUnset() public {
        bytes32 shape = _registerScaled("bad-shape", 7, 16, 8, 2);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.ModelShapeMismatch.selector, 8, 2));
        new LRTVault(token, oracle, shape, owner);
        bytes32 scale = _registerScaled("bad-scale", 7, 8, 8, 3);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.ModelScaleMismatch.selector, 7, 8));
        new LRTVault(token, oracle, scale, owner);
        bytes32 unknown = keccak256("not-registered");
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, unknown));
        new LRTVault(token, oracle, unknown, owner);

        // bytes32(0): set later; requests refuse until then.
        LRTVault v = new LRTVault(token, oracle, bytes32(0), owner);
        assertEq(v.riskModelId(), bytes32(0), "unset");
        vm.deal(address(v), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(LRTVault.RiskModelNotSet.selector));
        v.requestRebalance();
        v.setRiskModel(RISK_MODEL);
        assertGt(v.requestRebalance(), 0, "works once set");
    }

    // ---- 5. withdrawals take from the riskiest strategy first

    /// risks 0.125 / 0.5 / 0.25 -> balances 370.71 / 211.68 / 317.61, idle 100. Withdrawing 400
    /// takes idle, then s1 (riskiest), then s2; s0 (safest) is untouched. Before the fix the
    /// 300 came out of s0.
    function test_withdraw_takesFromRiskiestStrategyFirst() public {
        uint256 shares = _deposit(alice, D);
        assertTrue(_rebalance(16, 64, 32), "callback");
        uint256[3] memory o = vault.withdrawalOrder();
        assertEq(o[0], 1, "riskiest");
        assertEq(o[1], 2, "middle");
        assertEq(o[2], 0, "safest last");
        uint256 got = _withdraw(alice, (shares * 2) / 5);
        assertEq(got, 400e18, "amount");
        uint256[3] memory b = _balances();
        assertEq(_idle(), 0, "idle first");
        assertEq(b[1], 0, "riskiest emptied");
        assertEq(b[2], 317.61e18 - 88.32e18, "then the next riskiest");
        assertEq(b[0], 370.71e18, "safest untouched");
    }

    function test_withdrawalOrder_tiesByIndex() public {
        uint256[3] memory o = vault.withdrawalOrder();
        assertTrue(o[0] == 0 && o[1] == 1 && o[2] == 2, "no scores yet: index order");
        _deposit(alice, D);
        assertTrue(_rebalance(32, 16, 32), "callback");
        o = vault.withdrawalOrder();
        assertTrue(o[0] == 0 && o[1] == 2 && o[2] == 1, "0 and 2 tie at 0.25, then 1");
        assertTrue(_rebalance(8, 8, 16), "callback");
        o = vault.withdrawalOrder();
        assertTrue(o[0] == 2 && o[1] == 0 && o[2] == 1, "2, then 0 and 1 tied");
    }

    /// Any risks, any withdrawal: a strategy gives funds only once every riskier one (and any
    /// equally risky one with a lower index) is empty.
    function testFuzz_withdrawRespectsRiskOrder(int32 r0, int32 r1, int32 r2, uint256 amount, uint256 frac) public {
        _deposit(alice, bound(amount, 1e18, 1e27));
        int256[3] memory r = [boundInt(r0, 0, 76), boundInt(r1, 0, 76), boundInt(r2, 0, 76)];
        if (r0 % 5 == 0) r[1] = r[0]; // make ties common
        assertTrue(_rebalance(r[0], r[1], r[2]), "callback");
        uint256[3] memory before = _balances();
        uint256 shares = vault.sharesOf(alice);
        _withdraw(alice, bound(frac, 1, shares));
        uint256[3] memory afterB = _balances();
        uint256[3] memory risk = _risks();
        uint256[3] memory o = vault.withdrawalOrder();
        for (uint256 k; k < 3; ++k) {
            for (uint256 m = k + 1; m < 3; ++m) {
                bool first = risk[o[k]] > risk[o[m]] || (risk[o[k]] == risk[o[m]] && o[k] < o[m]);
                assertTrue(first, "order sorted by risk then index");
            }
        }
        for (uint256 k; k < 3; ++k) {
            if (afterB[o[k]] < before[o[k]]) {
                for (uint256 m; m < k; ++m) {
                    assertEq(afterB[o[m]], 0, "a riskier strategy still had funds");
                }
            }
        }
    }

    function test_constructor_initialState() public view {
        uint256[3] memory t = _targets();
        assertEq(t[0], 3334, "t0");
        assertEq(t[1], 3333, "t1");
        assertEq(t[2], 3333, "t2");
        for (uint256 i; i < 3; ++i) {
            assertEq(strat[i].vault(), address(vault), "strategy vault");
            assertEq(strat[i].owner(), owner, "strategy owner");
            assertEq(address(strat[i].token()), address(token), "strategy token");
        }
        assertEq(address(vault.asset()), address(token), "asset");
        assertEq(address(vault.oracle()), address(oracle), "oracle");
        assertEq(vault.riskModelId(), RISK_MODEL, "model");
    }
}

/// @notice LRTToken: ERC-20 behaviour, events and errors.
contract LRTTokenTest is Test {
    LRTToken internal token;
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function setUp() public {
        token = new LRTToken("Restaked ETH", "rstETH", address(this));
        token.mint(alice, 100e18);
    }

    function test_metadata() public view {
        assertEq(keccak256(bytes(token.name())), keccak256("Restaked ETH"), "name");
        assertEq(keccak256(bytes(token.symbol())), keccak256("rstETH"), "symbol");
        assertEq(uint256(token.decimals()), 18, "decimals");
        assertEq(token.owner(), address(this), "owner");
    }

    function test_mint_emitsAndUpdatesSupply() public {
        VaultVmLite(address(vm)).expectEmit(true, true, false, true, address(token));
        emit Transfer(address(0), bob, 5e18);
        token.mint(bob, 5e18);
        assertEq(token.balanceOf(bob), 5e18, "balance");
        assertEq(token.totalSupply(), 105e18, "supply");
    }

    function test_mint_revertsNotOwner() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, alice));
        token.mint(alice, 1);
    }

    function test_mint_revertsInvalidReceiver() public {
        vm.expectRevert(abi.encodeWithSelector(LRTToken.InvalidReceiver.selector, address(0)));
        token.mint(address(0), 1);
    }

    function test_transfer_movesAndEmits() public {
        VaultVmLite(address(vm)).expectEmit(true, true, false, true, address(token));
        emit Transfer(alice, bob, 40e18);
        vm.prank(alice);
        assertTrue(token.transfer(bob, 40e18), "returns true");
        assertEq(token.balanceOf(alice), 60e18, "from");
        assertEq(token.balanceOf(bob), 40e18, "to");
        assertEq(token.totalSupply(), 100e18, "supply unchanged");
    }

    function test_transfer_toSelf() public {
        vm.prank(alice);
        token.transfer(alice, 100e18);
        assertEq(token.balanceOf(alice), 100e18, "unchanged");
    }

    function test_transfer_revertsInsufficientBalance() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(LRTToken.InsufficientBalance.selector, alice, 100e18, 100e18 + 1));
        token.transfer(bob, 100e18 + 1);
    }

    function test_transfer_revertsInvalidReceiver() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(LRTToken.InvalidReceiver.selector, address(0)));
        token.transfer(address(0), 1);
    }

    function test_approve_setsAndEmits() public {
        VaultVmLite(address(vm)).expectEmit(true, true, false, true, address(token));
        emit Approval(alice, bob, 7e18);
        vm.prank(alice);
        assertTrue(token.approve(bob, 7e18), "returns true");
        assertEq(token.allowance(alice, bob), 7e18, "allowance");
        vm.prank(alice);
        token.approve(bob, 0);
        assertEq(token.allowance(alice, bob), 0, "reset");
    }

    function test_transferFrom_spendsAllowance() public {
        vm.prank(alice);
        token.approve(bob, 10e18);
        VaultVmLite(address(vm)).expectEmit(true, true, false, true, address(token));
        emit Transfer(alice, address(this), 4e18);
        vm.prank(bob);
        assertTrue(token.transferFrom(alice, address(this), 4e18), "returns true");
        assertEq(token.allowance(alice, bob), 6e18, "allowance spent");
        assertEq(token.balanceOf(address(this)), 4e18, "received");
    }

    function test_transferFrom_infiniteAllowanceNotSpent() public {
        vm.prank(alice);
        token.approve(bob, type(uint256).max);
        vm.prank(bob);
        token.transferFrom(alice, bob, 50e18);
        assertEq(token.allowance(alice, bob), type(uint256).max, "still infinite");
    }

    function test_transferFrom_revertsInsufficientAllowance() public {
        vm.prank(alice);
        token.approve(bob, 1e18);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(LRTToken.InsufficientAllowance.selector, bob, 1e18, 2e18));
        token.transferFrom(alice, bob, 2e18);
    }

    function test_transferFrom_revertsInsufficientBalance() public {
        vm.prank(alice);
        token.approve(bob, type(uint256).max);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(LRTToken.InsufficientBalance.selector, alice, 100e18, 101e18));
        token.transferFrom(alice, bob, 101e18);
    }

    function test_transferFrom_revertsInvalidReceiver() public {
        vm.prank(alice);
        token.approve(bob, type(uint256).max);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(LRTToken.InvalidReceiver.selector, address(0)));
        token.transferFrom(alice, address(0), 1);
    }

    function test_ownership_isTwoStep() public {
        token.transferOwnership(alice);
        assertEq(token.owner(), address(this), "not yet");
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotPendingOwner.selector, bob));
        token.acceptOwnership();
        vm.prank(alice);
        token.acceptOwnership();
        assertEq(token.owner(), alice, "transferred");
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, address(this)));
        token.mint(bob, 1);
    }

    function testFuzz_transferConservesSupply(uint256 amount, uint256 extra) public {
        amount = bound(amount, 0, 100e18);
        extra = bound(extra, 0, 1e30);
        token.mint(bob, extra);
        vm.prank(alice);
        token.transfer(bob, amount);
        assertEq(token.balanceOf(alice) + token.balanceOf(bob), token.totalSupply(), "conserved");
    }
}

/// @notice RestakingStrategy in isolation; this test contract plays the vault and the owner.
contract RestakingStrategyTest is Test {
    LRTToken internal token;
    RestakingStrategy internal s;
    address internal stranger = address(0xBAD);

    function setUp() public {
        token = new LRTToken("Restaked ETH", "rstETH", address(this));
        s = new RestakingStrategy(token, address(this), "op-set-A", address(this));
        token.mint(address(this), 1_000e18);
        _put(400e18);
    }

    function _put(uint256 amount) internal {
        token.transfer(address(s), amount);
        s.recordDeposit(amount);
    }

    function test_recordDeposit_revertsNotVault() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(RestakingStrategy.NotVault.selector, stranger));
        s.recordDeposit(1);
    }

    function test_withdraw_revertsNotVault() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(RestakingStrategy.NotVault.selector, stranger));
        s.withdraw(stranger, 1);
    }

    function test_slash_revertsNotOwner() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        s.slash(100);
    }

    function test_slash_revertsInvalidSlash() public {
        vm.expectRevert(abi.encodeWithSelector(RestakingStrategy.InvalidSlash.selector, 0));
        s.slash(0);
        vm.expectRevert(abi.encodeWithSelector(RestakingStrategy.InvalidSlash.selector, 10_001));
        s.slash(10_001);
    }

    function test_deposit_tracksPrincipal() public view {
        assertEq(s.principal(), 400e18, "principal");
        assertEq(s.balance(), 400e18, "balance");
        assertEq(s.lossRatioWad(), 0, "no loss");
        assertEq(keccak256(bytes(s.label())), keccak256("op-set-A"), "label");
    }

    function test_slash_reducesBalanceRaisesLoss() public {
        VaultVmLite(address(vm)).expectEmit(false, false, false, true, address(s));
        emit RestakingStrategy.Slashed(100e18, 2_500);
        s.slash(2_500);
        assertEq(s.balance(), 300e18, "balance");
        assertEq(s.principal(), 400e18, "principal kept");
        assertEq(s.lossRatioWad(), 0.25e18, "loss 25%");
        assertEq(token.balanceOf(address(0xdead)), 100e18, "burnt to sink");
        s.slash(10_000);
        assertEq(s.balance(), 0, "wiped");
        assertEq(s.lossRatioWad(), 1e18, "loss 100%");
    }

    function test_partialWithdraw_keepsLossRatio() public {
        s.slash(2_000); // 320 left of 400
        uint256 before = s.lossRatioWad();
        assertEq(before, 0.2e18, "20%");
        VaultVmLite(address(vm)).expectEmit(true, false, false, true, address(s));
        emit RestakingStrategy.Withdrawn(stranger, 120e18, 250e18);
        s.withdraw(stranger, 120e18);
        assertEq(token.balanceOf(stranger), 120e18, "paid out");
        assertEq(s.balance(), 200e18, "balance");
        assertEq(s.principal(), 250e18, "principal shrinks in proportion");
        assertEq(s.lossRatioWad(), 0.2e18, "ratio kept");
    }

    /// Was "loss history forgotten once emptied" (ratio 0): the lifetime loss now keeps it.
    function test_fullWithdraw_resetsPrincipalKeepsLossHistory() public {
        s.slash(5_000);
        s.withdraw(address(this), 200e18);
        assertEq(s.principal(), 0, "principal 0");
        assertEq(s.shortfallWad(), 0, "no current shortfall");
        assertEq(s.lifetimeLossWad(), 0.5e18, "lifetime loss kept");
        assertEq(s.lossRatioWad(), 0.5e18, "loss history kept once emptied");
    }

    function test_lossRatio_compoundsAcrossSlashes() public {
        s.slash(5_000); // 400 -> 200
        s.slash(5_000); // 200 -> 100
        assertEq(s.totalSlashed(), 300e18, "cumulative amount");
        assertEq(s.lifetimeLossWad(), 0.75e18, "1 - 0.5 * 0.5");
        assertEq(s.lossRatioWad(), 0.75e18, "ratio");
        s.slash(10_000);
        assertEq(s.lifetimeLossWad(), 1e18, "full slash is exactly 1.0");
        assertEq(s.totalSlashed(), 400e18, "everything");
        // Nothing left: a further slash loses and records nothing.
        s.slash(10_000);
        assertEq(s.totalSlashed(), 400e18, "unchanged");
        assertEq(s.lossRatioWad(), 1e18, "still 1.0, never above");
    }

    /// Refilling a drained strategy (fresh principal, no shortfall) keeps its history.
    function test_lossRatio_survivesDrainAndRefill() public {
        s.slash(2_000); // 400 -> 320
        s.withdraw(address(this), 320e18);
        _put(500e18);
        assertEq(s.shortfallWad(), 0, "fresh capital: no shortfall");
        assertEq(s.lossRatioWad(), 0.2e18, "history kept");
        token.transfer(address(s), 100e18); // gains do not erase it either
        assertEq(s.lossRatioWad(), 0.2e18, "still kept");
    }

    /// Flow-independent: a large deposit then withdrawal dilutes the shortfall (principal is
    /// cut in proportion) but not the lifetime loss, so churn cannot wash out a slash.
    function test_lossRatio_notDilutedByChurn() public {
        token.mint(address(this), 1e30);
        s.slash(5_000); // 400 -> 200, loss 0.5
        _put(1e27);
        s.withdraw(address(this), 1e27);
        assertLt(s.shortfallWad(), 1e15, "the shortfall alone is washed out");
        assertEq(s.lossRatioWad(), 0.5e18, "the loss ratio is not");
    }

    function testFuzz_lossRatioBoundedAndNeverDecreases(uint256 seed) public {
        token.mint(address(this), 1e30);
        uint256 prevLifetime;
        for (uint256 k; k < 12; ++k) {
            uint256 r = uint256(keccak256(abi.encode(seed, k)));
            uint256 op = r % 4;
            uint256 bal = s.balance();
            if (op == 0) {
                s.slash(bound(r >> 8, 1, 10_000));
            } else if (op == 1) {
                _put(bound(r >> 8, 0, 1e24));
            } else if (op == 2 && bal != 0) {
                s.withdraw(address(this), bound(r >> 8, 0, bal));
            } else {
                token.transfer(address(s), bound(r >> 8, 0, 1e22)); // donation
            }
            uint256 ratio = s.lossRatioWad();
            uint256 life = s.lifetimeLossWad();
            assertLe(ratio, 1e18, "ratio <= 1");
            assertGe(ratio, life, "ratio >= lifetime");
            assertGe(ratio, s.shortfallWad(), "ratio >= shortfall");
            assertGe(life, prevLifetime, "lifetime never decreases");
            prevLifetime = life;
        }
    }

    /// Over-withdrawing reverts before the token transfer: the principal update underflows
    /// (a Panic, not a custom error; the vault never asks for more than the balance).
    function test_withdraw_moreThanBalanceReverts() public {
        vm.expectRevert(abi.encodeWithSignature("Panic(uint256)", 0x11));
        s.withdraw(address(this), 400e18 + 1);
    }

    function test_gainNeverCountsAsLoss() public {
        token.transfer(address(s), 50e18); // rewards / donation
        assertEq(s.lossRatioWad(), 0, "no loss when above principal");
    }

    function testFuzz_partialWithdrawKeepsLossRatio(uint256 bps, uint256 amount) public {
        bps = bound(bps, 1, 9_999);
        s.slash(bps);
        uint256 bal = s.balance();
        amount = bound(amount, 0, bal - 1);
        uint256 before = s.lossRatioWad();
        s.withdraw(address(this), amount);
        uint256 afterR = s.lossRatioWad();
        // Rounding of the principal only ever moves the ratio by a hair.
        uint256 d = afterR > before ? afterR - before : before - afterR;
        assertLe(d, 1e18 / s.balance() + 1e6, "loss ratio kept");
    }
}

interface VaultVmLite {
    function expectEmit(bool, bool, bool, bool, address) external;
}

/// @notice Fuzz tests of the vault's arithmetic and the oracle round trip.
contract LRTVaultFuzzTest is VaultTestBase {
    function testFuzz_depositWithdrawRoundTrip(uint256 prior, uint256 amount, uint256 slashBps, uint256 donation)
        public
    {
        prior = bound(prior, 0, 1e27);
        amount = bound(amount, 1, 1e24);
        slashBps = bound(slashBps, 0, 10_000);
        donation = bound(donation, 0, 1e24);
        if (prior != 0) _deposit(alice, prior);
        if (slashBps != 0 && strat[1].balance() != 0) strat[1].slash(slashBps);
        if (donation != 0) {
            vm.prank(stranger);
            token.transfer(address(vault), donation);
        }
        uint256 ta = vault.totalAssets();
        uint256 ts = vault.totalShares();
        uint256 expectShares = (amount * (ts + 1e3)) / (ta + 1);
        if (expectShares == 0) {
            vm.expectRevert(abi.encodeWithSelector(LRTVault.ZeroAmount.selector));
            _deposit(bob, amount);
            return;
        }
        uint256 before = token.balanceOf(bob);
        uint256 shares = _deposit(bob, amount);
        assertEq(shares, expectShares, "shares formula");
        // Split the exit in two withdrawals to also exercise partial ones.
        uint256 first = shares / 3;
        uint256 got;
        if (first != 0) got = _withdraw(bob, first);
        got += _withdraw(bob, shares - first);
        assertEq(token.balanceOf(bob), before - amount + got, "tokens");
        assertLe(got, amount, "never more than deposited");
        // Loss bounded by the value of one share before the deposit (+2 wei of flooring).
        uint256 sharePrice = (ta + 1) / (ts + 1e3) + 1;
        assertLe(amount - got, sharePrice + 2, "bounded rounding loss");
    }

    /// The inflation attack never profits the attacker, and costs the victim at most the
    /// value of one share.
    function testFuzz_inflationAttackUnprofitable(uint256 seed, uint256 donation, uint256 victim) public {
        seed = bound(seed, 1, 1e18);
        donation = bound(donation, 1, 1e24);
        victim = bound(victim, 1, 1e24);
        uint256 atkShares = _deposit(stranger, seed);
        vm.prank(stranger);
        token.transfer(address(vault), donation);
        uint256 ta = vault.totalAssets();
        uint256 ts = vault.totalShares();
        if ((victim * (ts + 1e3)) / (ta + 1) == 0) {
            vm.expectRevert(abi.encodeWithSelector(LRTVault.ZeroAmount.selector));
            _deposit(alice, victim);
            return;
        }
        uint256 vShares = _deposit(alice, victim);
        uint256 vGot = _withdraw(alice, vShares);
        uint256 aGot = _withdraw(stranger, atkShares);
        assertLe(aGot, seed + donation, "attacker never profits");
        assertLe(victim - vGot, (ta + 1) / (ts + 1e3) + 2, "victim loses at most one share");
    }

    function testFuzz_riskOutputs(int32 a, int32 b, int32 c) public {
        _deposit(alice, 1_000e18);
        _deposit(bob, 333e18);
        strat[2].slash(1_234);
        uint256 total = vault.totalAssets();
        assertTrue(_rebalance(a, b, c), "callback never reverts");
        uint256[3] memory t = _targets();
        uint256[3] memory r = _risks();
        uint256 sum = t[0] + t[1] + t[2];
        bool allOut = true;
        uint256 maxR;
        for (uint256 i; i < 3; ++i) {
            assertLe(r[i], WAD, "risk clamped");
            if (r[i] < vault.exitThresholdWad()) allOut = false;
            else assertEq(t[i], 0, "exited strategy gets 0");
            if (r[i] > maxR) maxR = r[i];
        }
        assertEq(sum, allOut ? 0 : BPS, "targets sum to 10000 or 0");
        assertEq(vault.depositsPaused(), maxR >= vault.pauseThresholdWad(), "pause iff max >= threshold");
        assertEq(vault.totalAssets(), total, "rebalance conserves assets");
        // Balances follow the targets (within rounding).
        uint256 invest = (total * 9_000) / BPS;
        uint256[3] memory bal = _balances();
        for (uint256 i; i < 3; ++i) {
            _approxEq(bal[i], (invest * t[i]) / BPS, 3, "balance on target");
        }
    }

    function testFuzz_featuresWithinRange(
        uint256 d1,
        uint256 d2,
        uint256 s0,
        uint256 s1,
        uint256 w,
        uint256 donation,
        int32 risk
    ) public {
        d1 = bound(d1, 0, 1e27);
        d2 = bound(d2, 0, 1e24);
        if (d1 != 0) _deposit(alice, d1);
        if (d2 != 0) _deposit(bob, d2);
        if (risk % 3 == 0 && vault.totalAssets() != 0) {
            assertTrue(_rebalance(risk, -risk, risk / 2), "callback");
        }
        s0 = bound(s0, 0, 10_000);
        s1 = bound(s1, 0, 10_000);
        if (s0 != 0 && strat[0].balance() != 0) strat[0].slash(s0);
        if (s1 != 0 && strat[1].balance() != 0) strat[1].slash(s1);
        uint256 shares = vault.sharesOf(alice);
        w = bound(w, 0, shares);
        if (w != 0) _withdraw(alice, w);
        donation = bound(donation, 0, 1e24);
        if (donation != 0) {
            vm.prank(stranger);
            token.transfer(address(vault), donation);
        }
        int256[] memory f = vault.currentFeatures();
        int256 one = ONE;
        int256 shareSum;
        for (uint256 i; i < 8; ++i) {
            assertTrue(f[i] >= 0 && f[i] <= one, "feature in [0, 2^scale]");
        }
        shareSum = f[0] + f[1] + f[2] + f[6];
        assertTrue(shareSum <= one, "asset shares sum to <= 1");
        if (vault.totalAssets() != 0) {
            // Always accepted by the oracle (16-bit input range).
            _waitCooldown();
            uint256 id = _request();
            assertEq(oracle.getRequest(id).input, f, "sent as computed");
        }
    }
}
