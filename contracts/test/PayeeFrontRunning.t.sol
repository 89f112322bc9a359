// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceErrors} from "../utils/InferenceErrors.sol";
import {Test} from "./utils/Test.sol";
import {TestSetup} from "./utils/TestSetup.sol";
import {Decimal} from "../utils/Decimal.sol";
import {RiskPackedGroth16Verifier} from "./fixtures/RiskGroth16PackedVerifier.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {PackedGroth16Adapter} from "../verifiers/PackedGroth16Adapter.sol";
import {PackedGroth16BatchAdapter} from "../verifiers/PackedGroth16BatchAdapter.sol";

/// @notice Front-running a pending fulfilment, with the REAL packed Groth16 verifier of the risk
///         model and its real proofs (contracts/test/fixtures/risk_groth16_packed.json), through
///         the oracle. The proof names its payee (bits 36.. of the output word), so a copier who
///         sees the honest relayer's transaction in the mempool can either replay it unchanged
///         (and pay the ORIGINAL payee) or change the payee (and get InvalidProof). Either way
///         it earns nothing.
contract PayeeFrontRunningTest is Test {
    ModelRegistry registry;
    InferenceOracle oracle;
    PackedGroth16Adapter adapter;
    PackedGroth16BatchAdapter batchAdapter;
    bytes32 constant MODEL = keccak256("risk-groth16-packed");
    bytes32 constant BATCH_MODEL = keccak256("risk-groth16-packed-batch");
    address constant RELAYER_HOT_WALLET = address(0x5E4D); // sends the honest transactions
    address constant COPIER = address(0xC0B1E5);
    string json;

    int256[] input;
    int256[] output;
    bytes proof;
    address payee; // the payee the fixture proofs name (the honest relayer's)

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
        vm.label(COPIER, "copier");
        vm.label(payee, "payee");
    }

    function _model(address v, bool batch) internal pure returns (ModelRegistry.Model memory) {
        return TestSetup.riskModel(v, batch, bytes32(uint256(2)), 1e15, 250_000);
    }

    function _request(bytes32 model, int256[] memory x) internal returns (uint256) {
        uint256 fee = oracle.quoteFee(model, 0);
        return oracle.requestInference{value: fee}(model, x, address(0), 0, uint64(block.timestamp + 600));
    }

    /// @dev The honest relayer's pending transaction, as a copier reads it from the mempool.
    function _pendingTx(uint256 id) internal view returns (bytes memory) {
        return abi.encodeCall(InferenceOracle.fulfill, (id, output, payee, proof));
    }

    // ------------------------------------------------------------------ (a) front-running

    /// The copier swaps in its own address as payee (same output, same real proof): InvalidProof.
    function test_copierWithOwnPayee_invalidProof() public {
        uint256 id = _request(MODEL, input);
        (uint256 rid, int256[] memory out,, bytes memory p) =
            abi.decode(_slice4(_pendingTx(id)), (uint256, int256[], address, bytes));
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        vm.prank(COPIER);
        oracle.fulfill(rid, out, COPIER, p);
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Pending, "still pending");
        assertEq(oracle.balances(COPIER), 0, "copier unpaid");
        // The honest transaction still lands and pays its payee.
        vm.prank(RELAYER_HOT_WALLET);
        (bool ok,) = address(oracle).call(_pendingTx(id));
        assertTrue(ok, "honest fulfilment");
        assertEq(oracle.balances(payee), oracle.getRequest(id).fee, "payee paid");
        assertEq(oracle.balances(COPIER), 0, "copier still unpaid");
    }

    /// The copier replays the pending transaction unchanged, ahead of it: the request is
    /// fulfilled, the fee goes to the ORIGINAL payee, the copier only paid the gas; the honest
    /// transaction then reverts with AlreadyFulfilled, and the relayer has its fee anyway.
    function test_copierReplaysUnchanged_originalPayeePaid() public {
        uint256 id = _request(MODEL, input);
        uint256 fee = oracle.getRequest(id).fee;
        bytes memory pending = _pendingTx(id);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(id, MODEL, output, payee, true);
        vm.prank(COPIER);
        (bool ok,) = address(oracle).call(pending);
        assertTrue(ok, "the copy goes through");
        assertEq(oracle.balances(COPIER), 0, "copier never credited");
        assertEq(oracle.balances(payee), fee, "the original payee is");
        vm.prank(RELAYER_HOT_WALLET);
        (bool ok2, bytes memory ret) = address(oracle).call(pending);
        assertFalse(ok2, "honest transaction lands second");
        assertEq(ret, abi.encodeWithSelector(InferenceOracle.AlreadyFulfilled.selector, id), "AlreadyFulfilled");
        assertEq(oracle.balances(payee), fee, "paid once");
        assertEq(oracle.totalCredits(), fee, "nobody else credited");
    }

    /// Same two attacks on a pending fulfillBatch (batch verification path).
    function test_copierOnBatch_ownPayeeSkipped_unchangedPaysOriginal() public {
        uint256 n = 4;
        uint256[] memory ids = new uint256[](n);
        int256[][] memory outs = new int256[][](n);
        bytes[] memory prs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            string memory k = string.concat(".batch[", Decimal.toString(i), "]");
            ids[i] = _request(BATCH_MODEL, vm.parseJsonIntArray(json, string.concat(k, ".input")));
            outs[i] = vm.parseJsonIntArray(json, string.concat(k, ".output"));
            prs[i] = vm.parseJsonBytes(json, string.concat(k, ".proof"));
        }
        for (uint256 i; i < n; ++i) {
            vm.expectEmit(true, true, true, true, address(oracle));
            emit InferenceOracle.FulfillmentSkipped(ids[i], InferenceOracle.InvalidProof.selector);
        }
        vm.prank(COPIER);
        assertEq(oracle.fulfillBatch(ids, outs, COPIER, prs), 0, "own payee: every entry skipped");
        assertEq(oracle.balances(COPIER), 0, "copier unpaid");
        vm.prank(COPIER);
        assertEq(oracle.fulfillBatch(ids, outs, payee, prs), n, "unchanged: all fulfilled");
        assertEq(oracle.balances(COPIER), 0, "copier never credited");
        assertEq(oracle.balances(payee), n * oracle.getRequest(ids[0]).fee, "original payee paid");
    }

    // ------------------------------------------------------------------ (b) fuzz

    /// A random payee with the fixture's output and proof: InvalidProof unless it is the
    /// fixture's payee.
    function testFuzz_randomPayee_invalidUnlessFixturePayee(address p) public {
        vm.assume(p != address(0));
        uint256 id = _request(MODEL, input);
        if (p != payee) {
            vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
            oracle.fulfill(id, output, p, proof);
            assertEq(oracle.balances(p), 0, "random payee unpaid");
            p = payee; // then the right one still works
        }
        oracle.fulfill(id, output, p, proof);
        assertEq(oracle.balances(payee), oracle.getRequest(id).fee, "only the fixture payee is ever paid");
    }

    /// A random output (in the model's range or not) with the real proof and payee: never
    /// fulfils; out of range -> OutputOutOfRange, in range -> InvalidProof.
    function testFuzz_randomOutput_neverFulfils(int256[3] memory y, bool inRange) public {
        int256[] memory out = new int256[](3);
        for (uint256 i; i < 3; ++i) {
            out[i] = inRange ? boundInt(y[i], -2048, 2047) : y[i];
        }
        vm.assume(out[0] != output[0] || out[1] != output[1] || out[2] != output[2]);
        uint256 id = _request(MODEL, input);
        (bool ok, bytes memory ret) =
            address(oracle).call(abi.encodeCall(InferenceOracle.fulfill, (id, out, payee, proof)));
        assertFalse(ok, "never fulfils");
        bytes4 sel = bytes4(ret);
        assertTrue(
            sel == InferenceOracle.InvalidProof.selector || sel == InferenceErrors.OutputOutOfRange.selector,
            "InvalidProof or OutputOutOfRange"
        );
        if (inRange) assertEq(ret, abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id), "in range");
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Pending, "pending");
    }

    /// Random proof bytes (any length, or cut/padded to the 256 bytes of a proof) never fulfil:
    /// the adapter's MalformedProof for a wrong length, InvalidProof otherwise.
    function testFuzz_randomProofBytes_neverFulfil(bytes memory p, bool fitLength) public {
        if (fitLength) p = _resize(p, 256);
        vm.assume(keccak256(p) != keccak256(proof));
        uint256 id = _request(MODEL, input);
        (bool ok, bytes memory ret) =
            address(oracle).call(abi.encodeCall(InferenceOracle.fulfill, (id, output, payee, p)));
        assertFalse(ok, "never fulfils");
        if (p.length == 256) {
            assertEq(ret, abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id), "InvalidProof");
        } else {
            assertEq(ret, abi.encodeWithSelector(PackedGroth16Adapter.MalformedProof.selector, p.length), "length");
        }
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Pending, "pending");
    }

    /// Random 256-byte proofs (the right length: the pairing check itself refuses them), and
    /// the real proof with one random bit flipped.
    function testFuzz_random256ByteProof_orFlippedBit_invalid(bytes32[8] memory words, uint256 bit, bool flip) public {
        bytes memory p = flip ? _flip(proof, bound(bit, 0, 2047)) : abi.encodePacked(words);
        vm.assume(keccak256(p) != keccak256(proof));
        uint256 id = _request(MODEL, input);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, output, payee, p);
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Pending, "pending");
    }

    /// Random proofs, outputs and payees at once: never fulfilled, nobody credited.
    function testFuzz_randomEverything_neverFulfils(int256[3] memory y, address p, bytes32[8] memory words) public {
        vm.assume(p != address(0));
        int256[] memory out = new int256[](3);
        for (uint256 i; i < 3; ++i) {
            out[i] = boundInt(y[i], -2048, 2047);
        }
        uint256 id = _request(MODEL, input);
        (bool ok,) =
            address(oracle).call(abi.encodeCall(InferenceOracle.fulfill, (id, out, p, abi.encodePacked(words))));
        assertFalse(ok, "never fulfils");
        assertEq(oracle.totalCredits(), 0, "nobody credited");
    }

    /// A copied fulfilment never credits the copier, whoever it is and whichever of the two
    /// copies it sends.
    function testFuzz_copiedFulfilment_neverCreditsCopier(address copier, bool keepPayee) public {
        vm.assume(copier != payee && copier != address(0));
        uint256 id = _request(MODEL, input);
        uint256 fee = oracle.getRequest(id).fee;
        address named = keepPayee ? payee : copier;
        vm.prank(copier);
        (bool ok,) = address(oracle).call(abi.encodeCall(InferenceOracle.fulfill, (id, output, named, proof)));
        assertEq(ok, keepPayee, "only the unchanged copy goes through");
        assertEq(oracle.balances(copier), 0, "copier never credited");
        assertEq(oracle.balances(payee), keepPayee ? fee : 0, "the original payee is, when fulfilled");
    }

    // ------------------------------------------------------------------ utils

    function _slice4(bytes memory data) internal pure returns (bytes memory out) {
        out = new bytes(data.length - 4);
        for (uint256 i; i < out.length; ++i) {
            out[i] = data[i + 4];
        }
    }

    function _resize(bytes memory p, uint256 len) internal pure returns (bytes memory q) {
        q = new bytes(len);
        for (uint256 i; i < len && i < p.length; ++i) {
            q[i] = p[i];
        }
    }

    function _flip(bytes memory p, uint256 bit) internal pure returns (bytes memory q) {
        q = bytes.concat(p);
        q[bit / 8] = bytes1(uint8(q[bit / 8]) ^ uint8(1 << (bit % 8)));
    }
}
