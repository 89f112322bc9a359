// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OracleFixture} from "./utils/OracleFixture.sol";
import {TestHashVerifier} from "./utils/TestHashVerifier.sol";
import {Groth16Stub6, Halo2Stub, WeirdReturnVerifier, FieldEncodingHarness} from "./utils/Mocks.sol";
import {FieldEncoding} from "../verifiers/FieldEncoding.sol";
import {Groth16VerifierAdapter} from "../verifiers/Groth16VerifierAdapter.sol";
import {Halo2VerifierAdapter} from "../verifiers/Halo2VerifierAdapter.sol";
import {VerifierAdapterBase} from "../verifiers/VerifierAdapterBase.sol";
import {IInferenceVerifier} from "../Verifier.sol";
import {InferenceOracle} from "../InferenceOracle.sol";

contract VerifierAdaptersTest is OracleFixture {
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint256 internal constant HALF = (R - 1) / 2; // == R / 2 (R is odd)

    FieldEncodingHarness internal fe;
    Groth16Stub6 internal g16;
    Groth16VerifierAdapter internal gAdapter;
    Halo2Stub internal h2;
    Halo2VerifierAdapter internal hAdapter;

    uint256[2] internal A = [uint256(11), 12];
    uint256[2][2] internal B = [[uint256(21), 22], [uint256(23), 24]];
    uint256[2] internal C = [uint256(31), 32];

    function setUp() public override {
        super.setUp();
        fe = new FieldEncodingHarness();
        g16 = new Groth16Stub6();
        gAdapter = new Groth16VerifierAdapter(address(g16), 3, 2);
        h2 = new Halo2Stub();
        hAdapter = new Halo2VerifierAdapter(address(h2), 3, 2, 300_000);
    }

    function _g16Proof() internal view returns (bytes memory) {
        return abi.encode(A, B, C);
    }

    /// @dev circom order: outputs first, then the payee, then inputs; negatives as r - |x|.
    function _g16Signals(int256[] memory input, int256[] memory output, address payee)
        internal
        pure
        returns (uint256[6] memory s)
    {
        s[0] = _f(output[0]);
        s[1] = _f(output[1]);
        s[2] = uint256(uint160(payee));
        s[3] = _f(input[0]);
        s[4] = _f(input[1]);
        s[5] = _f(input[2]);
    }

    function _f(int256 v) internal pure returns (uint256) {
        return v >= 0 ? uint256(v) : R - uint256(-v);
    }

    function _armDefault() internal {
        g16.arm(A, B, C, _g16Signals(defaultInput(), defaultOutput(), relayer));
    }

    // ================================================================== FieldEncoding

    function test_field_positive() public view {
        assertEq(fe.toField(0), 0, "zero");
        assertEq(fe.toField(5), 5, "five");
        assertEq(fe.toField(int256(HALF)), HALF, "r/2 accepted as itself");
    }

    function test_field_negative() public view {
        assertEq(fe.toField(-1), R - 1, "-1");
        assertEq(fe.toField(-5), R - 5, "-5");
        assertEq(fe.toField(-int256(HALF)), R - HALF, "-r/2");
        assertEq(R - HALF, HALF + 1, "-r/2 lands just above r/2: no collision");
    }

    function test_field_outside_reverts() public {
        int256 over = int256(HALF) + 1;
        vm.expectRevert(abi.encodeWithSelector(FieldEncoding.ValueOutsideField.selector, over));
        fe.toField(over);
        vm.expectRevert(abi.encodeWithSelector(FieldEncoding.ValueOutsideField.selector, -over));
        fe.toField(-over);
        vm.expectRevert(abi.encodeWithSelector(FieldEncoding.ValueOutsideField.selector, type(int256).max));
        fe.toField(type(int256).max);
        vm.expectRevert(abi.encodeWithSelector(FieldEncoding.ValueOutsideField.selector, type(int256).min));
        fe.toField(type(int256).min);
        vm.expectRevert(abi.encodeWithSelector(FieldEncoding.ValueOutsideField.selector, type(int256).min + 1));
        fe.toField(type(int256).min + 1);
    }

    function testFuzz_field_injectiveAndInRange(int256 a, int256 b) public view {
        a = boundInt(a, -int256(HALF), int256(HALF));
        b = boundInt(b, -int256(HALF), int256(HALF));
        uint256 fa = fe.toField(a);
        assertLt(fa, R, "in field");
        // decode: above r/2 means negative
        int256 back = fa > HALF ? -int256(R - fa) : int256(fa);
        assertEq(back, a, "round trip");
        if (a != b) assertTrue(fa != fe.toField(b), "injective");
    }

    // ================================================================== Groth16 adapter

    function test_g16_selectorMatchesSnarkjsSignature() public {
        assertEq(gAdapter.selector(), Groth16Stub6.verifyProof.selector, "matches a compiled uint256[6] verifier");
        assertEq(
            gAdapter.selector(),
            bytes4(keccak256("verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[6])")),
            "N = 3 inputs + 2 outputs + payee"
        );
        _checkSelector(1, 0, "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[2])");
        _checkSelector(8, 2, "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[11])");
        _checkSelector(8, 3, "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[12])"); // the risk fixture
        _checkSelector(64, 1, "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[66])");
        _checkSelector(90, 10, "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[101])");
        _checkSelector(1000, 24, "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[1025])");
        _checkSelector(0, 0, "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[1])");
    }

    function _checkSelector(uint256 nIn, uint256 nOut, string memory sig) internal {
        Groth16VerifierAdapter a = new Groth16VerifierAdapter(address(g16), nIn, nOut);
        assertEq(a.selector(), bytes4(keccak256(bytes(sig))), sig);
        assertEq(a.minVerifyGas(), a.BASE_GAS() + a.GAS_PER_SIGNAL() * (nIn + nOut + 1), "gas floor");
    }

    function test_g16_views() public view {
        assertEq(gAdapter.verifier(), address(g16), "verifier");
        assertEq(gAdapter.numInputs(), 3, "inputs");
        assertEq(gAdapter.numOutputs(), 2, "outputs");
        assertEq(gAdapter.minVerifyGas(), 230_000 + 8_000 * 6, "floor: 5 values + the payee");
        assertTrue(gAdapter.bindsPayee(), "Groth16 binds the payee");
        assertEq(gAdapter.PROOF_LENGTH(), 256, "proof length");
    }

    function test_g16_noVerifierCode_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(VerifierAdapterBase.NoVerifierCode.selector, address(0xBEEF)));
        new Groth16VerifierAdapter(address(0xBEEF), 3, 2);
    }

    function test_g16_validProof_true() public {
        _armDefault();
        assertTrue(gAdapter.verify(defaultInput(), defaultOutput(), relayer, _g16Proof()), "valid");
    }

    /// @dev The exact calldata: selector, a, b, c, then outputs, the payee, then inputs,
    ///      negatives as r-|x|.
    function test_g16_calldataLayout() public {
        _armDefault();
        uint256[6] memory s = _g16Signals(defaultInput(), defaultOutput(), relayer);
        assertEq(s[1], R - 9, "output -9 encoded");
        assertEq(s[2], uint256(uint160(relayer)), "payee after the outputs");
        assertEq(s[3], R - 5, "input -5 encoded");
        assertEq(s[5], R - 32768, "input -32768 encoded");
        vm.expectCall(address(g16), abi.encodeWithSelector(Groth16Stub6.verifyProof.selector, A, B, C, s));
        assertTrue(gAdapter.verify(defaultInput(), defaultOutput(), relayer, _g16Proof()), "valid");
    }

    function test_g16_inputsFirstOrder_rejected() public {
        int256[] memory input = defaultInput();
        int256[] memory output = defaultOutput();
        // Arm the stub with the WRONG (inputs-first) order: the adapter must not match it.
        uint256 p = uint256(uint160(relayer));
        uint256[6] memory wrong = [_f(input[0]), _f(input[1]), _f(input[2]), p, _f(output[0]), _f(output[1])];
        g16.arm(A, B, C, wrong);
        assertFalse(gAdapter.verify(input, output, relayer, _g16Proof()), "order matters");
        // Nor the payee at another position (first, or last).
        g16.arm(A, B, C, [p, _f(output[0]), _f(output[1]), _f(input[0]), _f(input[1]), _f(input[2])]);
        assertFalse(gAdapter.verify(input, output, relayer, _g16Proof()), "payee position matters");
        g16.arm(A, B, C, [_f(output[0]), _f(output[1]), _f(input[0]), _f(input[1]), _f(input[2]), p]);
        assertFalse(gAdapter.verify(input, output, relayer, _g16Proof()), "payee position matters (last)");
    }

    /// @dev The payee is a public signal: a proof armed for one payee is false for any other.
    function testFuzz_g16_otherPayee_false(address other) public {
        vm.assume(other != relayer);
        _armDefault();
        assertTrue(gAdapter.verify(defaultInput(), defaultOutput(), relayer, _g16Proof()), "its own payee");
        assertFalse(gAdapter.verify(defaultInput(), defaultOutput(), other, _g16Proof()), "another payee");
    }

    function test_g16_wrongProofOrSignals_false() public {
        _armDefault();
        bytes memory bad = abi.encode([uint256(11), 13], B, C);
        assertFalse(gAdapter.verify(defaultInput(), defaultOutput(), relayer, bad), "other proof");
        assertFalse(gAdapter.verify(ints(-5, 32767, -32767), defaultOutput(), relayer, _g16Proof()), "other input");
        assertFalse(gAdapter.verify(defaultInput(), ints(7, 9), relayer, _g16Proof()), "other output (sign)");
    }

    function test_g16_malformedProof_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Groth16VerifierAdapter.MalformedProof.selector, 0));
        gAdapter.verify(defaultInput(), defaultOutput(), relayer, "");
        vm.expectRevert(abi.encodeWithSelector(Groth16VerifierAdapter.MalformedProof.selector, 255));
        gAdapter.verify(defaultInput(), defaultOutput(), relayer, new bytes(255));
        vm.expectRevert(abi.encodeWithSelector(Groth16VerifierAdapter.MalformedProof.selector, 257));
        gAdapter.verify(defaultInput(), defaultOutput(), relayer, new bytes(257));
    }

    function test_g16_signalCountMismatch_reverts() public {
        bytes memory p = _g16Proof();
        vm.expectRevert(abi.encodeWithSelector(VerifierAdapterBase.SignalCountMismatch.selector, 3, 2, 2, 2));
        gAdapter.verify(ints(1, 2), defaultOutput(), relayer, p);
        vm.expectRevert(abi.encodeWithSelector(VerifierAdapterBase.SignalCountMismatch.selector, 3, 3, 2, 3));
        gAdapter.verify(defaultInput(), ints(1, 2, 3), relayer, p);
    }

    function test_g16_valueOutsideField_reverts() public {
        bytes memory p = _g16Proof();
        vm.expectRevert(abi.encodeWithSelector(FieldEncoding.ValueOutsideField.selector, type(int256).min));
        gAdapter.verify(ints(0, type(int256).min, 0), defaultOutput(), relayer, p);
        vm.expectRevert(abi.encodeWithSelector(FieldEncoding.ValueOutsideField.selector, type(int256).max));
        gAdapter.verify(defaultInput(), ints(type(int256).max, 0), relayer, p);
    }

    function test_g16_nonOneAnswer_false() public {
        _armDefault();
        g16.setAnswer(2);
        assertFalse(gAdapter.verify(defaultInput(), defaultOutput(), relayer, _g16Proof()), "only exactly 1 is true");
    }

    function test_g16_malformedReturn_false() public {
        WeirdReturnVerifier w = new WeirdReturnVerifier();
        Groth16VerifierAdapter a = new Groth16VerifierAdapter(address(w), 3, 2);
        assertFalse(a.verify(defaultInput(), defaultOutput(), relayer, _g16Proof()), "64-byte answer is not true");
        // A target without verifyProof (reverts on dispatch) is also just false.
        Groth16VerifierAdapter b = new Groth16VerifierAdapter(address(hashVerifier), 3, 2);
        assertFalse(b.verify(defaultInput(), defaultOutput(), relayer, _g16Proof()), "revert is false");
    }

    function _g16CallWithGas(uint256 gas) internal view returns (bool ok, bytes memory ret) {
        (ok, ret) = address(gAdapter).staticcall{gas: gas}(
            abi.encodeCall(IInferenceVerifier.verify, (defaultInput(), defaultOutput(), relayer, _g16Proof()))
        );
    }

    /// @dev The snarkjs trap: the bare verifier says FALSE when short of gas. The adapter turns
    ///      that situation into a revert.
    function test_g16_lowGas_revertsNeverFalse() public {
        _armDefault();
        // The bare stub, short of gas, answers 0 for a valid proof (what the adapter guards against).
        (bool okBare, bytes memory retBare) = address(g16).staticcall{gas: 150_000}(
            abi.encodeWithSelector(
                Groth16Stub6.verifyProof.selector, A, B, C, _g16Signals(defaultInput(), defaultOutput(), relayer)
            )
        );
        assertTrue(okBare, "bare call returns");
        assertEq(abi.decode(retBare, (uint256)), 0, "bare verifier fails open to false");
        // Through the adapter with the same gas: a revert naming the floor.
        (bool ok, bytes memory ret) = _g16CallWithGas(150_000);
        assertFalse(ok, "adapter reverts");
        assertEq(bytes4(ret), VerifierAdapterBase.InsufficientVerificationGas.selector, "named error");
        (uint256 required, uint256 available) = _decode2(ret);
        assertEq(required, _required(gAdapter.minVerifyGas()), "required");
        assertLt(available, required, "available below floor");
        // With enough gas: true.
        (ok, ret) = _g16CallWithGas(400_000);
        assertTrue(ok && abi.decode(ret, (bool)), "true with enough gas");
    }

    /// @dev Whatever the gas, a valid proof is never reported invalid: revert or true.
    function testFuzz_g16_failClosed(uint256 gas) public {
        _armDefault();
        gas = bound(gas, 20_000, 600_000);
        (bool ok, bytes memory ret) = _g16CallWithGas(gas);
        if (ok) assertTrue(abi.decode(ret, (bool)), "never false for a valid proof");
    }

    /// @dev Gas the adapter must have left so that the call can forward exactly minVerifyGas
    ///      after the 63/64 rule (plus a reserve for the call itself).
    function _required(uint256 minVerifyGas) internal pure returns (uint256) {
        return (minVerifyGas * 64) / 63 + 5_000;
    }

    /// @dev The verifier gets exactly minVerifyGas, never more (a failing precompile burning
    ///      everything cannot starve a batch): a verifier needing more answers "invalid" even
    ///      when the caller has plenty of gas; one needing a bit less answers "valid".
    function test_g16_forwardsExactlyMinVerifyGas() public {
        _armDefault();
        uint256 cap = gAdapter.minVerifyGas();
        g16.setGasNeeded(cap + 1);
        (bool ok, bytes memory ret) = _g16CallWithGas(5_000_000);
        assertTrue(ok && !abi.decode(ret, (bool)), "capped at minVerifyGas");
        g16.setGasNeeded(cap - 2_000);
        (ok, ret) = _g16CallWithGas(5_000_000);
        assertTrue(ok && abi.decode(ret, (bool)), "enough within the cap");
        // At exactly the required floor the verifier still gets its full allowance.
        (ok, ret) = _g16CallWithGas(_required(cap) + 5_000);
        assertTrue(ok && abi.decode(ret, (bool)), "floor is sufficient");
    }

    function _decode2(bytes memory ret) internal pure returns (uint256 a, uint256 b) {
        assembly {
            a := mload(add(ret, 36))
            b := mload(add(ret, 68))
        }
    }

    // ================================================================== Halo2 adapter

    function _instances(int256[] memory input, int256[] memory output) internal pure returns (uint256[] memory s) {
        s = new uint256[](input.length + output.length);
        for (uint256 i; i < input.length; ++i) {
            s[i] = _f(input[i]);
        }
        for (uint256 i; i < output.length; ++i) {
            s[input.length + i] = _f(output[i]);
        }
    }

    function test_h2_validProof_trueAndLayout() public {
        uint256[] memory inst = _instances(defaultInput(), defaultOutput());
        assertEq(inst[0], R - 5, "inputs first, negative encoded");
        assertEq(inst[3], 7, "then outputs");
        assertEq(inst[4], R - 9, "negative output encoded");
        bytes memory proof = h2.proofFor(inst);
        vm.expectCall(address(h2), abi.encodeWithSignature("verifyProof(bytes,uint256[])", proof, inst));
        assertTrue(hAdapter.verify(defaultInput(), defaultOutput(), relayer, proof), "valid");
    }

    function test_h2_revertingVerifier_false() public view {
        bytes memory proof = h2.proofFor(_instances(defaultInput(), defaultOutput()));
        assertFalse(hAdapter.verify(defaultInput(), ints(7, 9), relayer, proof), "other output");
        assertFalse(hAdapter.verify(ints(1, 2, 3), defaultOutput(), relayer, proof), "other input");
        assertFalse(hAdapter.verify(defaultInput(), defaultOutput(), relayer, hex"00"), "garbage");
        // outputs-first instances would be a different proof
        uint256[] memory swapped = _instances(defaultOutput(), defaultInput());
        assertFalse(hAdapter.verify(defaultInput(), defaultOutput(), relayer, h2.proofFor(swapped)), "order matters");
    }

    /// @dev EZKL circuits have no payee instance: the adapter says so and ignores the payee.
    function testFuzz_h2_payeeIgnored_bindsPayeeFalse(address anyPayee) public view {
        assertFalse(hAdapter.bindsPayee(), "Halo2 does not bind the payee");
        bytes memory proof = h2.proofFor(_instances(defaultInput(), defaultOutput()));
        assertTrue(hAdapter.verify(defaultInput(), defaultOutput(), anyPayee, proof), "valid for any payee");
    }

    function test_h2_signalCountMismatch_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(VerifierAdapterBase.SignalCountMismatch.selector, 3, 4, 2, 2));
        hAdapter.verify(new int256[](4), defaultOutput(), relayer, "");
        vm.expectRevert(abi.encodeWithSelector(VerifierAdapterBase.SignalCountMismatch.selector, 3, 3, 2, 1));
        hAdapter.verify(defaultInput(), new int256[](1), relayer, "");
    }

    function test_h2_noVerifierCode_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(VerifierAdapterBase.NoVerifierCode.selector, address(0)));
        new Halo2VerifierAdapter(address(0), 3, 2, 1);
    }

    function test_h2_insufficientGas_reverts() public view {
        bytes memory proof = h2.proofFor(_instances(defaultInput(), defaultOutput()));
        (bool ok, bytes memory ret) = address(hAdapter).staticcall{gas: 150_000}(
            abi.encodeCall(IInferenceVerifier.verify, (defaultInput(), defaultOutput(), relayer, proof))
        );
        assertFalse(ok, "reverts");
        assertEq(bytes4(ret), VerifierAdapterBase.InsufficientVerificationGas.selector, "named error");
        (uint256 required,) = _decode2(ret);
        assertEq(required, _required(300_000), "floor from constructor");
    }

    function test_h2_valueOutsideField_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(FieldEncoding.ValueOutsideField.selector, type(int256).min));
        hAdapter.verify(ints(type(int256).min, 0, 0), defaultOutput(), relayer, "");
    }

    // ================================================================== through the oracle

    function test_oracle_withGroth16Adapter_endToEnd() public {
        bytes32 m = keccak256("g16");
        _register(m, modelConfig(address(gAdapter), 3, 2, 16, 32, false));
        uint256 fee = oracle.quoteFee(m, 0);
        vm.prank(alice);
        uint256 id = oracle.requestInference{value: fee}(m, defaultInput(), address(0), 0, soon());
        _armDefault();
        // Wrong length is the adapter's error, bubbled by fulfill.
        vm.expectRevert(abi.encodeWithSelector(Groth16VerifierAdapter.MalformedProof.selector, 3));
        oracle.fulfill(id, defaultOutput(), relayer, hex"010203");
        // Another output: invalid.
        bytes memory proof = _g16Proof();
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, ints(7, 9), relayer, proof);
        // Too little gas: never InvalidProof, only a revert (sweep across the floor).
        for (uint256 g = 200_000; g < 700_000; g += 25_000) {
            (bool ok, bytes memory ret) = address(oracle).call{gas: g}(
                abi.encodeCall(InferenceOracle.fulfill, (id, defaultOutput(), relayer, proof))
            );
            if (ok) break;
            assertTrue(
                ret.length < 4 || bytes4(ret) != InferenceOracle.InvalidProof.selector,
                "short of gas must not look like an invalid proof"
            );
        }
        if (oracle.requestStatus(id) == InferenceOracle.Status.Pending) {
            vm.prank(relayer);
            oracle.fulfill(id, defaultOutput(), relayer, proof);
        }
        assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled through the Groth16 adapter");
    }

    function test_oracle_batchSkipReportsAdapterError() public {
        bytes32 m = keccak256("g16b");
        _register(m, modelConfig(address(gAdapter), 3, 2, 16, 32, false));
        uint256 fee = oracle.quoteFee(m, 0);
        vm.prank(alice);
        uint256 id = oracle.requestInference{value: fee}(m, defaultInput(), address(0), 0, soon());
        uint256[] memory ids = new uint256[](1);
        ids[0] = id;
        int256[][] memory outs = new int256[][](1);
        outs[0] = defaultOutput();
        bytes[] memory proofs = new bytes[](1);
        proofs[0] = hex"01";
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.FulfillmentSkipped(id, Groth16VerifierAdapter.MalformedProof.selector);
        assertEq(oracle.fulfillBatch(ids, outs, relayer, proofs), 0, "skipped");
    }

    function test_oracle_withHalo2Adapter_endToEnd() public {
        bytes32 m = keccak256("h2");
        _registerModel(m, address(hAdapter));
        uint256 fee = oracle.quoteFee(m, 0);
        vm.prank(alice);
        uint256 id = oracle.requestInference{value: fee}(m, defaultInput(), address(0), 0, soon());
        bytes memory proof = h2.proofFor(_instances(defaultInput(), defaultOutput()));
        assertFalse(oracle.getModel(m).bindsPayee, "commit-reveal model");
        // Not committed: refused before verification.
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.FulfillmentNotCommitted.selector, id));
        oracle.fulfill(id, defaultOutput(), relayer, proof);
        // Committed (output 7, 9 and the right one), one block later.
        bytes32 wrong = oracle.fulfillmentCommitment(id, ints(7, 9), relayer, proof);
        bytes32 right = oracle.fulfillmentCommitment(id, defaultOutput(), relayer, proof);
        vm.prank(relayer);
        oracle.commitFulfillment(wrong);
        vm.prank(relayer);
        oracle.commitFulfillment(right);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, ints(7, 9), relayer, proof);
        vm.prank(relayer);
        oracle.fulfill(id, defaultOutput(), relayer, proof);
        assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled through the Halo2 adapter");
        assertEq(oracle.balances(relayer), fee, "the committed payee is paid");
    }

    function _registerModel(bytes32 m, address v) internal {
        _register(m, modelConfig(v, 3, 2, 16, 32, false));
    }
}
