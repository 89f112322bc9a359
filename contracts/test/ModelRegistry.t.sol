// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceErrors} from "../utils/InferenceErrors.sol";
import {OracleFixture} from "./utils/OracleFixture.sol";
import {TestHashVerifier, UnboundHashVerifier} from "./utils/TestHashVerifier.sol";
import {PathSpyVerifier} from "./utils/Mocks.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {Owned} from "../utils/Owned.sol";

contract ModelRegistryTest is OracleFixture {
    bytes32 internal constant M2 = keccak256("model-2");
    TestHashVerifier internal v2;

    function setUp() public override {
        super.setUp();
        v2 = new TestHashVerifier();
    }

    function _cfg(address v) internal pure returns (ModelRegistry.Model memory) {
        return modelConfig(v, 3, 2, 16, 32, true);
    }

    function _expectConfig(string memory reason) internal {
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.InvalidModelConfig.selector, reason));
    }

    // ================================================================== register

    function test_register_storesAndEmits() public {
        ModelRegistry.Model memory m = _cfg(address(v2));
        m.proofSystem = ModelRegistry.ProofSystem.Halo2;
        m.fee = 123;
        m.verifyGas = 456;
        // Set by the registry whatever is passed in.
        m.bindsPayee = false;
        m.verifierVersion = 77;
        vm.expectEmit(true, true, true, true, address(registry));
        emit ModelRegistry.SetupRecorded(m.circuitId, devSetup().setupHash, true);
        vm.expectEmit(true, true, true, true, address(registry));
        emit ModelRegistry.ModelRegistered(M2, address(v2), ModelRegistry.ProofSystem.Halo2, m.circuitId, 3, 2);
        vm.expectEmit(true, true, true, true, address(registry));
        emit ModelRegistry.ModelFeeChanged(M2, 123, 456);
        registry.register(M2, m, devSetup());
        ModelRegistry.Model memory got = registry.getModel(M2);
        assertEq(got.verifier, address(v2), "verifier");
        assertEq(uint256(got.proofSystem), uint256(ModelRegistry.ProofSystem.Halo2), "proof system");
        assertEq(uint256(got.inputSize), 3, "inputSize");
        assertEq(uint256(got.outputSize), 2, "outputSize");
        assertEq(uint256(got.inputScale), 7, "inputScale");
        assertEq(uint256(got.outputScale), 7, "outputScale");
        assertEq(uint256(got.inputBits), 16, "inputBits");
        assertEq(uint256(got.outputBits), 32, "outputBits");
        assertFalse(got.frozen, "not frozen");
        assertTrue(got.batchVerify, "batch");
        assertTrue(got.bindsPayee, "bindsPayee read from the verifier, not the argument");
        assertEq(uint256(got.verifierVersion), 1, "version 1 at registration, not the argument");
        assertEq(got.circuitId, m.circuitId, "circuitId");
        assertEq(uint256(got.fee), 123, "fee");
        assertEq(uint256(got.verifyGas), 456, "verifyGas");
        assertTrue(registry.isRegistered(M2), "registered");
        bytes32[] memory ids = registry.modelIds();
        assertEq(ids.length, 2, "two models");
        assertEq(ids[0], MODEL, "order 0");
        assertEq(ids[1], M2, "order 1");
    }

    function test_register_notOwner_reverts() public {
        ModelRegistry.Model memory m = _cfg(address(v2));
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, bob));
        vm.prank(bob);
        registry.register(M2, m, devSetup());
    }

    function test_register_twice_reverts() public {
        ModelRegistry.Model memory m = _cfg(address(v2));
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ModelAlreadyRegistered.selector, MODEL));
        registry.register(MODEL, m, devSetup());
        // Even a frozen model's id is never reused.
        registry.freeze(MODEL);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ModelAlreadyRegistered.selector, MODEL));
        registry.register(MODEL, m, devSetup());
    }

    function test_register_invalidConfigs_revert() public {
        ModelRegistry.Model memory m = _cfg(address(v2));
        m.proofSystem = ModelRegistry.ProofSystem.None;
        _expectConfig("proof system");
        registry.register(M2, m, devSetup());

        m = _cfg(address(0));
        _expectConfig("verifier has no code");
        registry.register(M2, m, devSetup());

        m = _cfg(address(0xBEEF)); // an EOA
        _expectConfig("verifier has no code");
        registry.register(M2, m, devSetup());

        m = _cfg(address(v2));
        m.inputSize = 0;
        _expectConfig("empty input or output");
        registry.register(M2, m, devSetup());

        m = _cfg(address(v2));
        m.outputSize = 0;
        _expectConfig("empty input or output");
        registry.register(M2, m, devSetup());

        m = _cfg(address(v2));
        m.inputSize = 1000;
        m.outputSize = 25;
        _expectConfig("too many signals");
        registry.register(M2, m, devSetup());

        m = _cfg(address(v2));
        m.inputBits = 1;
        _expectConfig("inputBits");
        registry.register(M2, m, devSetup());
        m.inputBits = 254;
        _expectConfig("inputBits");
        registry.register(M2, m, devSetup());

        m = _cfg(address(v2));
        m.outputBits = 1;
        _expectConfig("outputBits");
        registry.register(M2, m, devSetup());
        m.outputBits = 254;
        _expectConfig("outputBits");
        registry.register(M2, m, devSetup());

        m = _cfg(address(v2));
        m.circuitId = bytes32(0);
        _expectConfig("circuitId");
        registry.register(M2, m, devSetup());

        m = _cfg(address(v2));
        m.verifyGas = 0;
        _expectConfig("verifyGas is zero");
        registry.register(M2, m, devSetup());

        m = _cfg(address(v2));
        m.frozen = true;
        _expectConfig("cannot register frozen");
        registry.register(M2, m, devSetup());

        assertFalse(registry.isRegistered(M2), "nothing registered");
    }

    function test_register_boundaryConfigsAccepted() public {
        ModelRegistry.Model memory m = _cfg(address(v2));
        m.inputSize = 1000;
        m.outputSize = 24; // exactly MAX_SIGNALS
        m.inputBits = 2;
        m.outputBits = 253;
        registry.register(M2, m, devSetup());
        m = _cfg(address(v2));
        m.inputBits = 253;
        m.outputBits = 2;
        registry.register(keccak256("m3"), m, devSetup());
        assertEq(uint256(registry.MAX_SIGNALS()), 1024, "max signals");
    }

    function test_register_retiredVerifier_reverts() public {
        registry.freeze(MODEL); // retires hashVerifier
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.VerifierRetired.selector, address(hashVerifier)));
        registry.register(M2, _cfg(address(hashVerifier)), devSetup());
    }

    function test_getModel_unknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, M2));
        registry.getModel(M2);
        assertFalse(registry.isRegistered(M2), "not registered");
    }

    // ================================================================== freeze

    function test_freeze_marksRetiresAndEmits() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit ModelRegistry.ModelFrozen(MODEL);
        registry.freeze(MODEL);
        assertTrue(registry.getModel(MODEL).frozen, "frozen");
        assertTrue(registry.retiredVerifiers(address(hashVerifier)), "verifier retired");
        assertTrue(registry.isRegistered(MODEL), "still registered");
    }

    function test_freeze_twice_reverts() public {
        registry.freeze(MODEL);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ModelIsFrozen.selector, MODEL));
        registry.freeze(MODEL);
    }

    function test_freeze_unknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, M2));
        registry.freeze(M2);
    }

    function test_freeze_notOwner_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, bob));
        vm.prank(bob);
        registry.freeze(MODEL);
    }

    function test_freeze_dropsPendingUpgrade() public {
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), devSetup());
        registry.freeze(MODEL);
        (address pv,,) = registry.pendingUpgrades(MODEL);
        assertEq(pv, address(0), "pending dropped");
        vm.warp(block.timestamp + 3 days);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NoUpgradePending.selector, MODEL));
        registry.executeVerifierUpgrade(MODEL);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ModelIsFrozen.selector, MODEL));
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), devSetup());
    }

    /// Was "pending still fulfilled after freeze": a frozen model's verifier is retired, so its
    /// pending requests can no longer be fulfilled, and their requesters get refunds at once.
    function test_freeze_oracleRejectsNew_pendingRefundableAtOnce() public {
        uint256 a = request();
        uint256 b = request();
        registry.freeze(MODEL);
        uint256 fee = oracle.quoteFee(MODEL, 0); // the quote still answers
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.ModelFrozen.selector, MODEL));
        vm.prank(alice);
        oracle.requestInference{value: fee}(MODEL, defaultInput(), address(0), 0, soon());
        // Pending request a can no longer be fulfilled, even with a valid proof.
        bytes memory proof = proofOf(defaultInput(), defaultOutput(), relayer);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.RequestVerifierRetired.selector, a));
        vm.prank(relayer);
        oracle.fulfill(a, defaultOutput(), relayer, proof);
        assertTrue(oracle.isVerifierRetired(a), "retired");
        // Both are refunded before their deadline.
        assertLt(block.timestamp, oracle.getRequest(b).deadline, "before the deadline");
        uint256 before = alice.balance;
        oracle.refund(a);
        oracle.refund(b);
        assertEq(alice.balance, before + 2 * oracle.getRequest(a).fee, "both fees back");
        assertStatus(a, InferenceOracle.Status.Refunded, "a refunded after freeze");
        assertStatus(b, InferenceOracle.Status.Refunded, "b refunded after freeze");
        assertEq(oracle.getRequest(b).input, defaultInput(), "input still readable");
        assertEq(oracle.balances(relayer), 0, "nobody paid");
    }

    // ================================================================== setFee

    function test_setFee_updatesAndEmits() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit ModelRegistry.ModelFeeChanged(MODEL, 5, 99_000);
        registry.setFee(MODEL, 5, 99_000);
        ModelRegistry.Model memory m = registry.getModel(MODEL);
        assertEq(uint256(m.fee), 5, "fee");
        assertEq(uint256(m.verifyGas), 99_000, "verifyGas");
        assertEq(
            oracle.quoteFee(MODEL, 0), 5 + (99_000 + oracle.FULFILL_OVERHEAD_GAS()) * GAS_PRICE, "oracle quote follows"
        );
    }

    function test_setFee_zeroVerifyGas_reverts() public {
        _expectConfig("verifyGas is zero");
        registry.setFee(MODEL, 5, 0);
    }

    function test_setFee_unknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, M2));
        registry.setFee(M2, 5, 1);
    }

    function test_setFee_notOwner_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, bob));
        vm.prank(bob);
        registry.setFee(MODEL, 5, 1);
    }

    // ================================================================== upgrades

    function test_upgrade_fullFlow() public {
        uint64 readyAt = uint64(block.timestamp) + registry.UPGRADE_DELAY();
        vm.expectEmit(true, true, true, true, address(registry));
        emit ModelRegistry.VerifierUpgradeProposed(MODEL, address(v2), bytes32("c2"), readyAt);
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), devSetup());
        (address pv, bytes32 pc, uint64 pr) = registry.pendingUpgrades(MODEL);
        assertEq(pv, address(v2), "pending verifier");
        assertEq(pc, bytes32("c2"), "pending circuit");
        assertEq(uint256(pr), readyAt, "readyAt");

        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UpgradeNotReady.selector, MODEL, readyAt));
        registry.executeVerifierUpgrade(MODEL);
        vm.warp(uint256(readyAt) - 1);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UpgradeNotReady.selector, MODEL, readyAt));
        registry.executeVerifierUpgrade(MODEL);

        vm.warp(readyAt);
        assertEq(uint256(registry.getModel(MODEL).verifierVersion), 1, "version before");
        vm.expectEmit(true, true, true, true, address(registry));
        emit ModelRegistry.VerifierUpgraded(MODEL, address(hashVerifier), address(v2), bytes32("c2"));
        registry.executeVerifierUpgrade(MODEL);
        ModelRegistry.Model memory m = registry.getModel(MODEL);
        assertEq(m.verifier, address(v2), "new verifier");
        assertEq(m.circuitId, bytes32("c2"), "new circuit");
        assertEq(uint256(m.verifierVersion), 2, "version bumped");
        assertTrue(m.bindsPayee, "bindsPayee of the new verifier");
        assertFalse(m.batchVerify, "batch support reset");
        assertTrue(registry.retiredVerifiers(address(hashVerifier)), "old retired");
        (pv,,) = registry.pendingUpgrades(MODEL);
        assertEq(pv, address(0), "pending cleared");
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NoUpgradePending.selector, MODEL));
        registry.executeVerifierUpgrade(MODEL);
    }

    function test_upgrade_retiredVerifierNeverReused() public {
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), devSetup());
        vm.warp(block.timestamp + registry.UPGRADE_DELAY());
        registry.executeVerifierUpgrade(MODEL);
        // The old verifier can be neither re-proposed nor registered for a new model.
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.VerifierRetired.selector, address(hashVerifier)));
        registry.proposeVerifierUpgrade(MODEL, address(hashVerifier), bytes32("c1"), devSetup());
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.VerifierRetired.selector, address(hashVerifier)));
        registry.register(M2, _cfg(address(hashVerifier)), devSetup());
    }

    function test_upgrade_proposeCurrentVerifier_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.VerifierRetired.selector, address(hashVerifier)));
        registry.proposeVerifierUpgrade(MODEL, address(hashVerifier), bytes32("c1"), devSetup());
    }

    function test_upgrade_proposeNoCode_reverts() public {
        _expectConfig("verifier has no code");
        registry.proposeVerifierUpgrade(MODEL, address(0), bytes32("c2"), devSetup());
        _expectConfig("verifier has no code");
        registry.proposeVerifierUpgrade(MODEL, address(0xBEEF), bytes32("c2"), devSetup());
    }

    function test_upgrade_proposeUnknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, M2));
        registry.proposeVerifierUpgrade(M2, address(v2), bytes32("c2"), devSetup());
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, M2));
        registry.executeVerifierUpgrade(M2);
    }

    function test_upgrade_cancel() public {
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), devSetup());
        vm.expectEmit(true, true, true, true, address(registry));
        emit ModelRegistry.VerifierUpgradeCancelled(MODEL, address(v2));
        registry.cancelVerifierUpgrade(MODEL);
        (address pv,,) = registry.pendingUpgrades(MODEL);
        assertEq(pv, address(0), "cleared");
        vm.warp(block.timestamp + 3 days);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NoUpgradePending.selector, MODEL));
        registry.executeVerifierUpgrade(MODEL);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NoUpgradePending.selector, MODEL));
        registry.cancelVerifierUpgrade(MODEL);
        assertFalse(registry.retiredVerifiers(address(v2)), "a cancelled candidate is not retired");
        assertEq(registry.getModel(MODEL).verifier, address(hashVerifier), "unchanged");
    }

    function test_upgrade_reproposeRestartsDelay() public {
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), devSetup());
        vm.warp(block.timestamp + 1 days);
        TestHashVerifier v3 = new TestHashVerifier();
        registry.proposeVerifierUpgrade(MODEL, address(v3), bytes32("c3"), devSetup());
        uint64 readyAt = uint64(block.timestamp) + registry.UPGRADE_DELAY();
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UpgradeNotReady.selector, MODEL, readyAt));
        registry.executeVerifierUpgrade(MODEL);
        vm.warp(readyAt);
        registry.executeVerifierUpgrade(MODEL);
        assertEq(registry.getModel(MODEL).verifier, address(v3), "latest proposal wins");
    }

    function test_upgrade_candidateRetiredMeanwhile_reverts() public {
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), devSetup());
        // v2 gets used by another model which is then frozen: v2 is retired.
        registry.register(M2, _cfg(address(v2)), devSetup());
        registry.freeze(M2);
        vm.warp(block.timestamp + registry.UPGRADE_DELAY());
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.VerifierRetired.selector, address(v2)));
        registry.executeVerifierUpgrade(MODEL);
    }

    function test_upgrade_adminFunctions_ownerOnly() public {
        vm.startPrank(bob);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, bob));
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), devSetup());
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, bob));
        registry.cancelVerifierUpgrade(MODEL);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, bob));
        registry.executeVerifierUpgrade(MODEL);
        vm.stopPrank();
    }

    /// Was "pending requests use the new verifier": a request is pinned to the verifier version
    /// it was made under, so after an upgrade neither verifier can fulfil it (a proof the new
    /// one accepts is refused too); it is refundable at once, and new requests use the new one.
    function test_upgrade_pendingRequestsPinnedToTheirVerifier() public {
        uint256 fee = oracle.quoteFee(MODEL, 0);
        vm.prank(alice);
        uint256 id =
            oracle.requestInference{value: fee}(MODEL, defaultInput(), address(0), 0, uint64(block.timestamp + 3 days));
        PathSpyVerifier next = new PathSpyVerifier(); // accepts the same proofs as the old one
        registry.proposeVerifierUpgrade(MODEL, address(next), bytes32("c2"), devSetup());
        vm.warp(block.timestamp + registry.UPGRADE_DELAY()); // request still live
        assertFalse(oracle.isVerifierRetired(id), "not retired while only proposed");
        registry.executeVerifierUpgrade(MODEL);
        assertTrue(oracle.isVerifierRetired(id), "retired by the upgrade");
        bytes memory proof = proofOf(defaultInput(), defaultOutput(), relayer);
        assertTrue(next.verify(defaultInput(), defaultOutput(), relayer, proof), "the new verifier accepts it");
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.RequestVerifierRetired.selector, id));
        oracle.fulfill(id, defaultOutput(), relayer, proof);
        oracle.refund(id);
        assertStatus(id, InferenceOracle.Status.Refunded, "refunded before its deadline");
        uint256 id2 = request();
        fulfillAs(relayer, id2);
        assertStatus(id2, InferenceOracle.Status.Fulfilled, "a new request goes through the new verifier");
    }

    function test_upgrade_toUnboundVerifier_setsBindsPayeeFalse() public {
        UnboundHashVerifier unbound = new UnboundHashVerifier();
        registry.proposeVerifierUpgrade(MODEL, address(unbound), bytes32("c2"), devSetup());
        vm.warp(block.timestamp + registry.UPGRADE_DELAY());
        registry.executeVerifierUpgrade(MODEL);
        ModelRegistry.Model memory m = registry.getModel(MODEL);
        assertFalse(m.bindsPayee, "read from the new verifier");
        assertEq(uint256(m.verifierVersion), 2, "bumped");
        // And back: a third verifier that binds, version 3.
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c3"), devSetup());
        vm.warp(block.timestamp + registry.UPGRADE_DELAY());
        registry.executeVerifierUpgrade(MODEL);
        m = registry.getModel(MODEL);
        assertTrue(m.bindsPayee, "binds again");
        assertEq(uint256(m.verifierVersion), 3, "bumped again");
    }

    function test_register_unboundVerifier_bindsPayeeFalse() public {
        ModelRegistry.Model memory m = _cfg(address(new UnboundHashVerifier()));
        m.bindsPayee = true; // ignored
        registry.register(M2, m, devSetup());
        assertFalse(registry.getModel(M2).bindsPayee, "read from the verifier");
        assertEq(uint256(registry.getModel(M2).verifierVersion), 1, "version 1");
    }

    function test_cancelAndFreeze_doNotBumpVersion() public {
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), devSetup());
        registry.cancelVerifierUpgrade(MODEL);
        assertEq(uint256(registry.getModel(MODEL).verifierVersion), 1, "cancel: unchanged");
        registry.freeze(MODEL);
        assertEq(uint256(registry.getModel(MODEL).verifierVersion), 1, "freeze retires by the frozen flag");
    }

    // ================================================================== setup provenance

    function test_setup_recordedAtRegister() public {
        ModelRegistry.Model memory m = _cfg(address(v2));
        ModelRegistry.Setup memory s = ModelRegistry.Setup({setupHash: keccak256("ptau-28"), devKeys: false});
        vm.expectEmit(true, true, true, true, address(registry));
        emit ModelRegistry.SetupRecorded(m.circuitId, keccak256("ptau-28"), false);
        registry.register(M2, m, s);
        (bytes32 h, bool dev) = registry.setups(m.circuitId);
        assertEq(h, keccak256("ptau-28"), "setup hash");
        assertFalse(dev, "production keys");
        // The fixture's model was registered with dev keys.
        (h, dev) = registry.setups(registry.getModel(MODEL).circuitId);
        assertEq(h, devSetup().setupHash, "fixture setup hash");
        assertTrue(dev, "fixture keys are dev keys");
    }

    function test_setup_recordedAtUpgradeProposal() public {
        ModelRegistry.Setup memory s = ModelRegistry.Setup({setupHash: keccak256("srs-v2"), devKeys: false});
        vm.expectEmit(true, true, true, true, address(registry));
        emit ModelRegistry.SetupRecorded(bytes32("c2"), keccak256("srs-v2"), false);
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), s);
        (bytes32 h, bool dev) = registry.setups(bytes32("c2"));
        assertEq(h, keccak256("srs-v2"), "recorded at proposal, before execution");
        assertFalse(dev, "dev flag");
        (h,) = registry.setups(bytes32("never"));
        assertEq(h, bytes32(0), "unknown circuit: nothing recorded");
    }

    function test_setup_zeroHash_refused() public {
        ModelRegistry.Setup memory zero = ModelRegistry.Setup({setupHash: bytes32(0), devKeys: true});
        _expectConfig("setupHash");
        registry.register(M2, _cfg(address(v2)), zero);
        assertFalse(registry.isRegistered(M2), "not registered");
        _expectConfig("setupHash");
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32("c2"), zero);
        (address pv,,) = registry.pendingUpgrades(MODEL);
        assertEq(pv, address(0), "no upgrade pending");
    }

    function test_setup_writeOncePerCircuit() public {
        bytes32 cid = registry.getModel(MODEL).circuitId;
        ModelRegistry.Setup memory prod = ModelRegistry.Setup({setupHash: devSetup().setupHash, devKeys: false});
        // A proposal naming the live circuit cannot relabel its dev keys as production keys.
        _expectConfig("setup differs from the one recorded for this circuit");
        registry.proposeVerifierUpgrade(MODEL, address(v2), cid, prod);
        ModelRegistry.Setup memory other = ModelRegistry.Setup({setupHash: keccak256("other"), devKeys: true});
        _expectConfig("setup differs from the one recorded for this circuit");
        registry.proposeVerifierUpgrade(MODEL, address(v2), cid, other);
        // The same record again is accepted (a second model on the same circuit).
        ModelRegistry.Model memory m = _cfg(address(v2));
        m.circuitId = cid;
        registry.register(M2, m, devSetup());
        (bytes32 h, bool dev) = registry.setups(cid);
        assertEq(h, devSetup().setupHash, "unchanged hash");
        assertTrue(dev, "still dev keys");
    }

    function test_upgrade_zeroCircuitId_refused() public {
        _expectConfig("circuitId");
        registry.proposeVerifierUpgrade(MODEL, address(v2), bytes32(0), devSetup());
    }

    // ================================================================== ownership

    function test_ownership_twoStep() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit Owned.OwnershipTransferStarted(owner, bob);
        registry.transferOwnership(bob);
        assertEq(registry.pendingOwner(), bob, "pending");
        assertEq(registry.owner(), owner, "not yet");
        // owner still in charge until accepted
        registry.setFee(MODEL, 1, 1);

        vm.expectRevert(abi.encodeWithSelector(Owned.NotPendingOwner.selector, alice));
        vm.prank(alice);
        registry.acceptOwnership();

        vm.expectEmit(true, true, true, true, address(registry));
        emit Owned.OwnershipTransferred(owner, bob);
        vm.prank(bob);
        registry.acceptOwnership();
        assertEq(registry.owner(), bob, "bob owns");
        assertEq(registry.pendingOwner(), address(0), "pending cleared");

        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, owner));
        registry.setFee(MODEL, 1, 1);
        vm.prank(bob);
        registry.setFee(MODEL, 2, 2);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotPendingOwner.selector, bob));
        vm.prank(bob);
        registry.acceptOwnership();
    }

    function test_ownership_transferNotOwner_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, bob));
        vm.prank(bob);
        registry.transferOwnership(bob);
    }

    function test_ownership_cancelByZero() public {
        registry.transferOwnership(bob);
        registry.transferOwnership(address(0));
        vm.expectRevert(abi.encodeWithSelector(Owned.NotPendingOwner.selector, bob));
        vm.prank(bob);
        registry.acceptOwnership();
        assertEq(registry.owner(), owner, "unchanged");
    }

    function test_constructor_zeroOwner_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.ZeroAddress.selector));
        new ModelRegistry(address(0));
    }

    function test_constructor_emitsOwnershipTransferred() public {
        vm.expectEmit(true, true, true, true);
        emit Owned.OwnershipTransferred(address(0), bob);
        ModelRegistry r = new ModelRegistry(bob);
        assertEq(r.owner(), bob, "owner");
    }
}
