// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {Decimal} from "../utils/Decimal.sol";
import {TestSetup} from "./utils/TestSetup.sol";
import {Groth16Verifier} from "./fixtures/RiskGroth16Verifier.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {Groth16VerifierAdapter} from "../verifiers/Groth16VerifierAdapter.sol";
import {VerifierAdapterBase} from "../verifiers/VerifierAdapterBase.sol";
import {Groth16BatchAdapter} from "../verifiers/Groth16BatchAdapter.sol";

/// @notice The fulfilment path with the REAL snarkjs verifier of the risk model and real
///         Groth16 proofs (contracts/test/fixtures, written by scripts/groth16_fixture.py),
///         single and batched.
contract Groth16FixtureTest is Test {
    ModelRegistry registry;
    InferenceOracle oracle;
    Groth16Verifier snarkjs;
    Groth16VerifierAdapter adapter;
    Groth16BatchAdapter batchAdapter;
    bytes32 constant MODEL = keccak256("risk-groth16");
    bytes32 constant BATCH_MODEL = keccak256("risk-groth16-batch");
    address relayer = address(0xBEEF); // sends the transactions; the fee goes to `payee`
    address payee; // the payee every fixture proof names (".payee")
    string json;

    int256[] input;
    int256[] output;
    bytes proof;

    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/contracts/test/fixtures/risk_groth16.json"));
        input = vm.parseJsonIntArray(json, ".input");
        output = vm.parseJsonIntArray(json, ".output");
        proof = vm.parseJsonBytes(json, ".proof");
        payee = vm.parseJsonAddress(json, ".payee");
        registry = new ModelRegistry(address(this));
        oracle = new InferenceOracle(registry, address(this), 1 gwei);
        snarkjs = new Groth16Verifier();
        adapter = new Groth16VerifierAdapter(address(snarkjs), 8, 3);
        batchAdapter = new Groth16BatchAdapter(address(snarkjs), 8, 3, vm.parseJsonUintArray(json, ".vk_words"));
        registry.register(MODEL, _model(address(adapter), false), TestSetup.dev());
        registry.register(BATCH_MODEL, _model(address(batchAdapter), true), TestSetup.dev());
    }

    function _model(address v, bool batch) internal pure returns (ModelRegistry.Model memory) {
        return TestSetup.riskModel(v, batch, bytes32(uint256(1)), 0, 320_000);
    }

    function _request(bytes32 model, int256[] memory x) internal returns (uint256) {
        uint256 fee = oracle.quoteFee(model, 0);
        return oracle.requestInference{value: fee}(model, x, address(0), 0, uint64(block.timestamp + 600));
    }

    function test_realProofFulfils() public {
        uint256 id = _request(MODEL, input);
        vm.prank(relayer);
        uint256 g = gasleft();
        oracle.fulfill(id, output, payee, proof);
        g -= gasleft();
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Fulfilled, "fulfilled");
        assertLt(g, 400_000, "fulfil with real Groth16 verification under 400k gas");
    }

    /// The unpacked circuit has 12 public signals: 3 outputs, the payee, 8 inputs; the adapter
    /// calls the snarkjs verifier with exactly the circuit's signals.
    function test_publicSignalsIncludeThePayee() public {
        uint256[] memory want = vm.parseJsonUintArray(json, ".public_signals");
        assertEq(want.length, 12, "3 outputs + payee + 8 inputs");
        assertEq(want[3], uint256(uint160(payee)), "payee right after the outputs");
        assertEq(vm.parseJsonUint(json, ".payee_slot.signal"), 3, "manifest: signal 3");
        assertEq(vm.parseJsonUint(json, ".payee_slot.extra"), 1, "manifest: one extra signal");
        assertEq(payee, address(0x7E1A7E5), "fixture payee == the forge tests' relayer");
        assertTrue(adapter.bindsPayee(), "binds");
        assertEq(
            adapter.selector(),
            bytes4(keccak256("verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[12])")),
            "N=12"
        );
        vm.expectCall(address(snarkjs), abi.encodePacked(adapter.selector(), proof, want));
        assertTrue(adapter.verify(input, output, payee, proof), "valid");
    }

    /// The real proof verifies for its payee only (single and batch adapters).
    function testFuzz_otherPayeeRejected(address other) public view {
        vm.assume(other != payee);
        assertFalse(adapter.verify(input, output, other, proof), "single");
        (int256[][] memory ins, int256[][] memory outs, bytes[] memory prs) = _batch(3);
        assertTrue(batchAdapter.verifyBatch(ins, outs, payee, prs), "batch for its payee");
        assertFalse(batchAdapter.verifyBatch(ins, outs, other, prs), "batch for another payee");
    }

    function test_realProofCreditsThePayeeNotTheSender() public {
        uint256 id = _request(MODEL, input);
        uint256 fee = oracle.getRequest(id).fee;
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        vm.prank(relayer);
        oracle.fulfill(id, output, relayer, proof); // the sender as payee: not what the proof names
        vm.prank(relayer);
        oracle.fulfill(id, output, payee, proof);
        assertEq(oracle.balances(payee), fee, "payee credited");
        assertEq(oracle.balances(relayer), 0, "sender not credited");
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
        int256[] memory other = vm.parseJsonIntArray(json, ".batch[0].input");
        uint256 id = _request(MODEL, other);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, output, payee, proof);
    }

    function test_adapterFailsClosedWhenShortOfGas() public {
        // With too little gas the snarkjs pairing check would return false; the adapter
        // reverts instead so a valid proof is never reported as invalid.
        (bool ok, bytes memory ret) =
            address(adapter).call{gas: 120_000}(abi.encodeCall(adapter.verify, (input, output, payee, proof)));
        assertFalse(ok, "must revert");
        assertEq(bytes4(ret), VerifierAdapterBase.InsufficientVerificationGas.selector, "named error");
        assertTrue(adapter.verify{gas: 400_000}(input, output, payee, proof), "valid with enough gas");
    }

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
        (int256[][] memory ins, int256[][] memory outs, bytes[] memory prs) = _batch(10);
        for (uint256 i; i < 10; ++i) {
            assertTrue(adapter.verify(ins[i], outs[i], payee, prs[i]), "each proof valid via snarkjs");
        }
        assertTrue(batchAdapter.verifyBatch(ins, outs, payee, prs), "batch valid");
        assertEq(
            batchAdapter.vkHash(), keccak256(abi.encodePacked(vm.parseJsonUintArray(json, ".vk_words"))), "vk hash"
        );
    }

    function test_batchVerifyRejectsOneBadProof() public view {
        (int256[][] memory ins, int256[][] memory outs, bytes[] memory prs) = _batch(10);
        outs[7][2] += 1;
        assertFalse(batchAdapter.verifyBatch(ins, outs, payee, prs), "one wrong output fails the batch");
        (ins, outs, prs) = _batch(10);
        (prs[3], prs[4]) = (prs[4], prs[3]);
        assertFalse(batchAdapter.verifyBatch(ins, outs, payee, prs), "swapped proofs fail the batch");
    }

    function test_fulfillBatchWithBatchVerification() public {
        (int256[][] memory ins, int256[][] memory outs, bytes[] memory prs) = _batch(10);
        uint256[] memory ids = new uint256[](10);
        for (uint256 i; i < 10; ++i) {
            ids[i] = _request(BATCH_MODEL, ins[i]);
        }
        vm.prank(relayer);
        uint256 g = gasleft();
        uint256 n = oracle.fulfillBatch(ids, outs, payee, prs);
        g -= gasleft();
        assertEq(n, 10, "all fulfilled");
        assertLt(g / 10, 150_000, "batched Groth16 fulfilment per request");
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
