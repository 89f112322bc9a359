// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {Decimal} from "../utils/Decimal.sol";
import {TestSetup} from "./utils/TestSetup.sol";
import {RiskPackedGroth16Verifier} from "./fixtures/RiskGroth16PackedVerifier.sol";
import {Groth16Verifier} from "./fixtures/RiskGroth16Verifier.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {Groth16VerifierAdapter} from "../verifiers/Groth16VerifierAdapter.sol";
import {VerifierAdapterBase} from "../verifiers/VerifierAdapterBase.sol";
import {Groth16BatchVerifier} from "../verifiers/Groth16BatchVerifier.sol";
import {PackedGroth16Adapter} from "../verifiers/PackedGroth16Adapter.sol";
import {PackedGroth16BatchAdapter} from "../verifiers/PackedGroth16BatchAdapter.sol";

/// @notice The packed-signal adapters with the REAL snarkjs verifier of the packed risk circuit
///         and real Groth16 proofs (contracts/test/fixtures/risk_groth16_packed.json, written by
///         scripts/groth16_fixture.py): 8 inputs + 3 outputs of 12 bits in 2 public signals.
contract PackedGroth16FixtureTest is Test {
    ModelRegistry registry;
    InferenceOracle oracle;
    PackedGroth16Adapter adapter;
    PackedGroth16BatchAdapter batchAdapter;
    bytes32 constant MODEL = keccak256("risk-groth16-packed");
    bytes32 constant BATCH_MODEL = keccak256("risk-groth16-packed-batch");
    bytes32 constant PLAIN_MODEL = keccak256("risk-groth16-plain");
    address relayer = address(0xBEEF); // sends the transactions; the fee goes to `payee`
    address payee; // the payee every fixture proof names (".payee")
    string json;

    int256[] input;
    int256[] output;
    bytes proof;

    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/contracts/test/fixtures/risk_groth16_packed.json"));
        input = vm.parseJsonIntArray(json, ".input");
        output = vm.parseJsonIntArray(json, ".output");
        proof = vm.parseJsonBytes(json, ".proof");
        payee = vm.parseJsonAddress(json, ".payee");
        registry = new ModelRegistry(address(this));
        oracle = new InferenceOracle(registry, address(this), 1 gwei);
        RiskPackedGroth16Verifier snarkjs = new RiskPackedGroth16Verifier();
        adapter = new PackedGroth16Adapter(address(snarkjs), 8, 3, 12, 12);
        batchAdapter =
            new PackedGroth16BatchAdapter(address(snarkjs), 8, 3, 12, 12, vm.parseJsonUintArray(json, ".vk_words"));
        registry.register(MODEL, _model(address(adapter), false), TestSetup.dev());
        registry.register(BATCH_MODEL, _model(address(batchAdapter), true), TestSetup.dev());
    }

    function _model(address v, bool batch) internal pure returns (ModelRegistry.Model memory) {
        return TestSetup.riskModel(v, batch, bytes32(uint256(2)), 0, 250_000);
    }

    function _request(bytes32 model, int256[] memory x) internal returns (uint256) {
        uint256 fee = oracle.quoteFee(model, 0);
        return oracle.requestInference{value: fee}(model, x, address(0), 0, uint64(block.timestamp + 600));
    }

    function _fulfilGas(bytes32 model, int256[] memory x, int256[] memory y, bytes memory p)
        internal
        returns (uint256 g)
    {
        uint256 id = _request(model, x);
        vm.prank(relayer);
        g = gasleft();
        oracle.fulfill(id, y, payee, p);
        g -= gasleft();
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Fulfilled, "fulfilled");
    }

    // --- encoding --------------------------------------------------------------------------

    function test_packSignalsEqualsTheCircuitsPublicSignals() public view {
        uint256[] memory want = vm.parseJsonUintArray(json, ".public_signals");
        uint256[] memory got = adapter.packSignals(input, output, payee);
        assertEq(got.length, 2, "2 public signals for 8 + 3 values");
        assertEq(got[0], want[0], "output word");
        assertEq(got[1], want[1], "input word");
        assertEq(adapter.inputWords(), 1, "one input word");
        assertEq(adapter.outputWords(), 1, "one output word");
        assertEq(adapter.perWordIn(), 21, "floor(253 / 12)");
        assertEq(
            adapter.selector(),
            bytes4(keccak256("verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[2])")),
            "selector"
        );
        assertEq(adapter.minVerifyGas(), 230_000 + 2 * 8_000, "gas floor priced per word");
    }

    function test_packingOffsetsAndOrder() public view {
        int256[] memory x = new int256[](8);
        int256[] memory y = new int256[](3);
        x[0] = -2048; // lowest value: u = 0
        x[1] = 2047; // highest value: u = 4095
        x[7] = -1; // u = 2047
        y[2] = 1; // u = 2049 in the third output slot
        uint256[] memory w = adapter.packSignals(x, y, payee);
        uint256 expectIn = 0 | (4095 << 12);
        for (uint256 i = 2; i < 7; ++i) {
            expectIn |= 2048 << (12 * i);
        }
        expectIn |= 2047 << (12 * 7);
        assertEq(w[1], expectIn, "inputs little-endian by index, offset by 2^11");
        assertEq(w[0], 2048 | (2048 << 12) | (2049 << 24) | (uint256(uint160(payee)) << 36), "outputs, then the payee");
    }

    // --- payee -----------------------------------------------------------------------------

    /// The payee sits in the spare bits of the (only) output word, where the circuit's manifest
    /// says (payee slot {signal: 0, shift: 36, extra: 0}): no extra public signal.
    function test_payeeInTheSpareBitsOfTheOutputWord() public view {
        assertTrue(adapter.bindsPayee(), "binds the payee");
        assertFalse(adapter.payeeOwnWord(), "no word of its own");
        assertEq(adapter.payeeShift(), 36, "above 3 values of 12 bits");
        assertEq(adapter.payeeShift(), vm.parseJsonUint(json, ".payee_slot.shift"), "manifest shift");
        assertEq(vm.parseJsonUint(json, ".payee_slot.signal"), 0, "manifest: in signal 0");
        assertEq(vm.parseJsonUint(json, ".payee_slot.extra"), 0, "manifest: no extra signal");
        uint256[] memory want = vm.parseJsonUintArray(json, ".public_signals");
        assertEq(want[0] >> 36, uint256(uint160(payee)), "the circuit's output word carries the payee");
        assertEq(want[0] & ((uint256(1) << 36) - 1), adapter.packSignals(input, output, address(0))[0], "values below");
        assertEq(payee, address(0x7E1A7E5), "fixture payee == the forge tests' relayer");
        // Another payee changes exactly the payee bits of word 0.
        uint256[] memory other = adapter.packSignals(input, output, address(0xC0B1E5));
        assertEq(other[0], (want[0] & ((uint256(1) << 36) - 1)) | (uint256(0xC0B1E5) << 36), "other payee");
        assertEq(other[1], want[1], "input word unchanged");
        assertLt(adapter.packSignals(input, output, address(type(uint160).max))[0], uint256(1) << 253, "< 2^253");
    }

    /// The real proof verifies for its payee only.
    function testFuzz_realProofOtherPayeeFails(address other) public view {
        vm.assume(other != payee);
        assertTrue(adapter.verify(input, output, payee, proof), "its payee");
        assertFalse(adapter.verify(input, output, other, proof), "any other payee");
    }

    /// Where the last output word has no room for 160 more bits, the payee is a word of its own
    /// right after the output words; exactly 253 bits still fit.
    function test_payeeOwnWordWhenNoRoom() public {
        address v = address(new RiskPackedGroth16Verifier()); // any code
        // 3 outputs of 31 bits: 93 + 160 = 253, fits.
        PackedGroth16Adapter fits = new PackedGroth16Adapter(v, 8, 3, 12, 31);
        assertFalse(fits.payeeOwnWord(), "93 + 160 = 253 fits");
        assertEq(fits.payeeShift(), 93, "shift");
        assertEq(fits.packSignals(input, new int256[](3), address(1)).length, 2, "2 signals");
        // 1 output of 94 bits: 94 + 160 > 253, a word of its own.
        PackedGroth16Adapter own = new PackedGroth16Adapter(v, 8, 1, 12, 94);
        assertTrue(own.payeeOwnWord(), "no room");
        assertEq(own.payeeShift(), 0, "shift 0");
        int256[] memory y = new int256[](1);
        y[0] = -1;
        uint256[] memory w = own.packSignals(input, y, address(0xC0B1E5));
        assertEq(w.length, 3, "output word, payee word, input word");
        assertEq(w[0], (uint256(1) << 93) - 1, "output word without the payee");
        assertEq(w[1], 0xC0B1E5, "payee word");
        assertEq(w[2], adapter.packSignals(input, output, payee)[1], "input word last");
        assertEq(
            own.selector(), bytes4(keccak256("verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[3])")), "N=3"
        );
        assertEq(own.minVerifyGas(), 230_000 + 3 * 8_000, "gas floor counts the payee word");
        // 21 outputs of 12 bits fill the word (252 bits): own word after it.
        PackedGroth16Adapter full = new PackedGroth16Adapter(v, 8, 21, 12, 12);
        assertTrue(full.payeeOwnWord(), "full last word");
        // 22 outputs: the second word holds one value, the payee fits above it.
        PackedGroth16Adapter spill = new PackedGroth16Adapter(v, 8, 22, 12, 12);
        assertFalse(spill.payeeOwnWord(), "room in the second output word");
        assertEq(spill.payeeShift(), 12, "above its one value");
    }

    function test_outOfRangeValuesRevertWithCustomErrors() public {
        int256[] memory y = output;
        y[1] = 2048;
        vm.expectRevert(abi.encodeWithSelector(PackedGroth16Adapter.PackedOutputOutOfRange.selector, 1, int256(2048)));
        adapter.verify(input, y, payee, proof);
        y[1] = -2049;
        vm.expectRevert(abi.encodeWithSelector(PackedGroth16Adapter.PackedOutputOutOfRange.selector, 1, int256(-2049)));
        adapter.verify(input, y, payee, proof);
        int256[] memory x = input;
        x[6] = 1 << 200;
        vm.expectRevert(
            abi.encodeWithSelector(PackedGroth16Adapter.PackedInputOutOfRange.selector, 6, int256(1 << 200))
        );
        adapter.packSignals(x, output, payee);
    }

    function test_carryIntoTheNextValueIsRejected() public {
        // Without range checks, output[0] + 2^12 with output[1] - 1 packs to the very same word:
        // the adapter must refuse it rather than let the (valid) proof verify another output.
        int256[] memory y = new int256[](3);
        y[0] = output[0] + 4096;
        y[1] = output[1] - 1;
        y[2] = output[2];
        vm.expectRevert(abi.encodeWithSelector(PackedGroth16Adapter.PackedOutputOutOfRange.selector, 0, y[0]));
        adapter.verify(input, y, payee, proof);
    }

    function test_constructorRejectsUnpackableWidths() public {
        address v = address(new RiskPackedGroth16Verifier());
        vm.expectRevert(abi.encodeWithSelector(PackedGroth16Adapter.InvalidPackingBits.selector, 0));
        new PackedGroth16Adapter(v, 8, 3, 0, 12);
        vm.expectRevert(abi.encodeWithSelector(PackedGroth16Adapter.InvalidPackingBits.selector, 254));
        new PackedGroth16Adapter(v, 8, 3, 12, 254);
        uint256[] memory vk = vm.parseJsonUintArray(json, ".vk_words");
        // 300 inputs of 12 bits: 15 words, + 1 output word: the 2-signal key does not fit.
        vm.expectRevert(
            abi.encodeWithSelector(Groth16BatchVerifier.InvalidVerificationKey.selector, vk.length, 14 + 2 * 17)
        );
        new PackedGroth16BatchAdapter(v, 300, 3, 12, 12, vk);
    }

    // --- single proofs ---------------------------------------------------------------------

    function test_realProofFulfils() public {
        uint256 g = _fulfilGas(MODEL, input, output, proof);
        assertLt(g, 330_000, "fulfil with packed Groth16 verification");
    }

    function test_packingSavesGasAgainstTheUnpackedCircuit() public {
        string memory plain = vm.readFile(string.concat(vm.projectRoot(), "/contracts/test/fixtures/risk_groth16.json"));
        Groth16VerifierAdapter plainAdapter = new Groth16VerifierAdapter(address(new Groth16Verifier()), 8, 3);
        registry.register(PLAIN_MODEL, _model(address(plainAdapter), false), TestSetup.dev());
        uint256 gPlain = _fulfilGas(
            PLAIN_MODEL,
            vm.parseJsonIntArray(plain, ".input"),
            vm.parseJsonIntArray(plain, ".output"),
            vm.parseJsonBytes(plain, ".proof")
        );
        uint256 gPacked = _fulfilGas(MODEL, input, output, proof);
        assertGt(gPlain, gPacked + 45_000, "packing 11 signals into 2 saves ~9 ecMul+ecAdd");
    }

    function test_tamperedOutputRejected() public {
        uint256 id = _request(MODEL, input);
        output[1] += 1;
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, output, payee, proof);
    }

    function test_tamperedProofRejected() public {
        uint256 id = _request(MODEL, input);
        proof[100] = bytes1(uint8(proof[100]) ^ 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, output, payee, proof);
    }

    function test_proofForAnotherInputRejected() public {
        int256[] memory other = vm.parseJsonIntArray(json, ".batch[1].input"); // has negative values
        uint256 id = _request(MODEL, other);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, output, payee, proof);
    }

    function test_negativeInputsProveAndVerify() public {
        int256[] memory x = vm.parseJsonIntArray(json, ".batch[1].input");
        assertTrue(x[0] < 0, "fixture entry has negative inputs");
        _fulfilGas(MODEL, x, vm.parseJsonIntArray(json, ".batch[1].output"), vm.parseJsonBytes(json, ".batch[1].proof"));
    }

    /// Any other in-range output fails with the real proof (packing is injective on the range).
    function testFuzz_otherInRangeOutputFails(uint256 which, int256 value) public view {
        uint256 j = bound(which, 0, 2);
        int256 v = boundInt(value, -2048, 2047);
        vm.assume(v != output[j]);
        int256[] memory y = output;
        y[j] = v;
        assertFalse(adapter.verify(input, y, payee, proof), "another output never verifies");
    }

    function test_adapterFailsClosedWhenShortOfGas() public {
        (bool ok, bytes memory ret) =
            address(adapter).call{gas: 120_000}(abi.encodeCall(adapter.verify, (input, output, payee, proof)));
        assertFalse(ok, "must revert");
        assertEq(bytes4(ret), VerifierAdapterBase.InsufficientVerificationGas.selector, "named error");
        assertTrue(adapter.verify{gas: 400_000}(input, output, payee, proof), "valid with enough gas");
    }

    function test_malformedProofLength() public {
        vm.expectRevert(abi.encodeWithSelector(PackedGroth16Adapter.MalformedProof.selector, 255));
        adapter.verify(input, output, payee, new bytes(255));
        // Same selector as the plain adapter's error: one FulfillmentSkipped reason for both.
        assertEq(PackedGroth16Adapter.MalformedProof.selector, Groth16VerifierAdapter.MalformedProof.selector, "sel");
    }

    // --- batches ---------------------------------------------------------------------------

    function _batch(uint256 n)
        internal
        view
        returns (int256[][] memory ins, int256[][] memory outs, bytes[] memory prs)
    {
        ins = new int256[][](n);
        outs = new int256[][](n);
        prs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            string memory k = string.concat(".batch[", Decimal.toString(i), "]");
            ins[i] = vm.parseJsonIntArray(json, string.concat(k, ".input"));
            outs[i] = vm.parseJsonIntArray(json, string.concat(k, ".output"));
            prs[i] = vm.parseJsonBytes(json, string.concat(k, ".proof"));
        }
    }

    function test_batchVerifyAgreesWithSnarkjs() public view {
        (int256[][] memory ins, int256[][] memory outs, bytes[] memory prs) = _batch(16);
        for (uint256 i; i < 16; ++i) {
            assertTrue(adapter.verify(ins[i], outs[i], payee, prs[i]), "each proof valid via snarkjs");
        }
        assertTrue(batchAdapter.verifyBatch(ins, outs, payee, prs), "batch valid");
        assertEq(
            batchAdapter.vkHash(), keccak256(abi.encodePacked(vm.parseJsonUintArray(json, ".vk_words"))), "vk hash"
        );
        assertEq(batchAdapter.verificationKey().length, 14 + 2 * 3, "key for 2 public signals");
    }

    function test_batchVerifyRejectsOneBadProof() public {
        (int256[][] memory ins, int256[][] memory outs, bytes[] memory prs) = _batch(16);
        outs[7][2] += 1;
        assertFalse(batchAdapter.verifyBatch(ins, outs, payee, prs), "one wrong output fails the batch");
        (ins, outs, prs) = _batch(16);
        (prs[3], prs[4]) = (prs[4], prs[3]);
        assertFalse(batchAdapter.verifyBatch(ins, outs, payee, prs), "swapped proofs fail the batch");
        (ins, outs, prs) = _batch(16);
        ins[5][0] += 1;
        assertFalse(batchAdapter.verifyBatch(ins, outs, payee, prs), "another input fails the batch");
        (ins, outs, prs) = _batch(4);
        outs[2][0] = 4096;
        vm.expectRevert(abi.encodeWithSelector(PackedGroth16Adapter.PackedOutputOutOfRange.selector, 0, int256(4096)));
        batchAdapter.verifyBatch(ins, outs, payee, prs);
    }

    function test_fulfillBatchWithPackedBatchVerification() public {
        (int256[][] memory ins, int256[][] memory outs, bytes[] memory prs) = _batch(16);
        uint256[] memory ids = new uint256[](16);
        for (uint256 i; i < 16; ++i) {
            ids[i] = _request(BATCH_MODEL, ins[i]);
        }
        vm.prank(relayer);
        uint256 g = gasleft();
        uint256 n = oracle.fulfillBatch(ids, outs, payee, prs);
        g -= gasleft();
        assertEq(n, 16, "all fulfilled");
        assertLt(g / 16, 110_000, "batched packed Groth16 fulfilment per request");
    }

    function test_fulfillBatchSkipsBadProofAndFallsBack() public {
        (int256[][] memory ins, int256[][] memory outs, bytes[] memory prs) = _batch(5);
        uint256[] memory ids = new uint256[](5);
        for (uint256 i; i < 5; ++i) {
            ids[i] = _request(BATCH_MODEL, ins[i]);
        }
        outs[2][0] += 1; // entry 2 now claims a wrong output
        vm.expectEmit(true, false, false, true);
        emit InferenceOracle.FulfillmentSkipped(ids[2], InferenceOracle.InvalidProof.selector);
        uint256 n = oracle.fulfillBatch(ids, outs, payee, prs);
        assertEq(n, 4, "the four valid entries go through");
        assertTrue(oracle.requestStatus(ids[2]) == InferenceOracle.Status.Pending, "bad entry still pending");
    }
}
