// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {TestSetup} from "./utils/TestSetup.sol";
import {Decimal} from "../utils/Decimal.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {ProvenResults} from "../crosschain/ProvenResults.sol";
import {CrossChainInbox} from "../crosschain/CrossChainInbox.sol";
import {RecordingCrossChainConsumer} from "./utils/CrossChainMocks.sol";
import {SlicedGroth16Adapter} from "../verifiers/SlicedGroth16Adapter.sol";
import {PackedGroth16Adapter} from "../verifiers/PackedGroth16Adapter.sol";
import {SignalPacking} from "../verifiers/SignalPacking.sol";

/// @notice SlicedGroth16Adapter with REAL slice proofs: a toy sliced model (8 inputs, 3 outputs
///         of 12 bits, k = 2, 4, 8 slices) whose slices are real circom circuits with circomlib
///         Poseidon boundary commitments, all set up from one ptau
///         (contracts/test/fixtures/slicedtoy_k*.json, scripts/sliced_adapter_fixture.py).
///         Requests 0 and 1 have unrelated inputs; request 2 is request 0 with input 0 one
///         higher, so its slices 1.. are "slice j re-proven on another activation" for request 0.
contract SlicedAdapterTest is Test {
    ModelRegistry registry;
    InferenceOracle oracle;
    SlicedGroth16Adapter a2;
    SlicedGroth16Adapter a4;
    SlicedGroth16Adapter a8;
    string j2;
    string j4;
    string j8;
    address payee;
    bytes32 constant M2 = keccak256("sliced-toy-k2");
    bytes32 constant M4 = keccak256("sliced-toy-k4");
    bytes32 constant M8 = keccak256("sliced-toy-k8");
    bytes32 constant M4_BATCH = keccak256("sliced-toy-k4-batch");
    address constant COPIER = address(0xC0B1E5);
    uint256 constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint256 constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;

    /// @dev One request's parts.
    struct Req {
        int256[] input;
        int256[] output;
        uint256[] commitments;
        uint256[8][] proofs;
    }

    function setUp() public {
        j2 = _read(2);
        j4 = _read(4);
        j8 = _read(8);
        a2 = _adapter(j2);
        a4 = _adapter(j4);
        a8 = _adapter(j8);
        payee = vm.parseJsonAddress(j4, ".payee");
        registry = new ModelRegistry(address(this));
        oracle = new InferenceOracle(registry, address(this), 1 gwei);
        registry.register(M2, _model(address(a2), false), TestSetup.dev());
        registry.register(M4, _model(address(a4), false), TestSetup.dev());
        registry.register(M8, _model(address(a8), false), TestSetup.dev());
        registry.register(M4_BATCH, _model(address(a4), true), TestSetup.dev());
    }

    // --- fixture helpers ---------------------------------------------------------------------

    function _read(uint256 k) internal view returns (string memory) {
        return vm.readFile(
            string.concat(vm.projectRoot(), "/contracts/test/fixtures/slicedtoy_k", Decimal.toString(k), ".json")
        );
    }

    function _vks(string memory json) internal pure returns (uint256[][] memory vks) {
        uint256 k = vm.parseJsonUint(json, ".k");
        vks = new uint256[][](k);
        for (uint256 j; j < k; ++j) {
            vks[j] = vm.parseJsonUintArray(json, string.concat(".vks[", Decimal.toString(j), "]"));
        }
    }

    function _adapter(string memory json) internal returns (SlicedGroth16Adapter) {
        return new SlicedGroth16Adapter(8, 3, 12, 12, _vks(json));
    }

    function _req(string memory json, uint256 i) internal pure returns (Req memory r) {
        string memory p = string.concat(".requests[", Decimal.toString(i), "]");
        r.input = vm.parseJsonIntArray(json, string.concat(p, ".input"));
        r.output = vm.parseJsonIntArray(json, string.concat(p, ".output"));
        r.commitments = vm.parseJsonUintArray(json, string.concat(p, ".commitments"));
        uint256 k = vm.parseJsonUint(json, ".k");
        r.proofs = new uint256[8][](k);
        for (uint256 j; j < k; ++j) {
            r.proofs[j] = _proofAt(json, i, j);
        }
    }

    function _proofAt(string memory json, uint256 i, uint256 j) internal pure returns (uint256[8] memory w) {
        uint256[] memory words = vm.parseJsonUintArray(
            json, string.concat(".requests[", Decimal.toString(i), "].proofs[", Decimal.toString(j), "]")
        );
        for (uint256 t; t < 8; ++t) {
            w[t] = words[t];
        }
    }

    function _enc(Req memory r) internal pure returns (bytes memory) {
        return abi.encode(r.commitments, r.proofs);
    }

    function _verify(SlicedGroth16Adapter a, Req memory r) internal view returns (bool) {
        return a.verify(r.input, r.output, payee, _enc(r));
    }

    function _model(address v, bool batch) internal pure returns (ModelRegistry.Model memory) {
        return TestSetup.riskModel(v, batch, bytes32(uint256(4)), 1e15, 600_000);
    }

    function _request(bytes32 model, int256[] memory x) internal returns (uint256) {
        uint256 fee = oracle.quoteFee(model, 0);
        return oracle.requestInference{value: fee}(model, x, address(0), 0, uint64(block.timestamp + 600));
    }

    // --- valid proofs ------------------------------------------------------------------------

    function test_validSlicedProofsAccepted() public view {
        for (uint256 i; i < 3; ++i) {
            assertTrue(_verify(a2, _req(j2, i)), "k = 2");
            assertTrue(_verify(a4, _req(j4, i)), "k = 4");
            assertTrue(_verify(a8, _req(j8, i)), "k = 8");
        }
        // The Python encoding (the fulfil argument the fixture wrote) is abi.encode's.
        assertEq(_enc(_req(j4, 0)), vm.parseJsonBytes(j4, ".requests[0].proof"), "encoding");
        assertTrue(a4.bindsPayee(), "binds the payee");
    }

    /// The adapter rebuilds exactly the public signals snarkjs proved each slice with.
    function test_sliceSignalsEqualTheCircuitsPublicSignals() public view {
        for (uint256 i; i < 3; ++i) {
            Req memory r = _req(j8, i);
            uint256[][] memory s = a8.sliceSignals(r.input, r.output, payee, r.commitments);
            assertEq(s.length, 8, "k signal lists");
            for (uint256 j; j < 8; ++j) {
                uint256[] memory want = vm.parseJsonUintArray(
                    j8, string.concat(".requests[", Decimal.toString(i), "].public_signals[", Decimal.toString(j), "]")
                );
                assertEq(s[j].length, want.length, "signal count");
                assertEq(a8.numSignals(j), want.length, "numSignals");
                for (uint256 t; t < want.length; ++t) {
                    assertEq(s[j][t], want[t], "signal");
                }
            }
        }
    }

    function test_keysStoredAsGiven() public view {
        uint256[][] memory vks = _vks(j8);
        bytes memory all;
        for (uint256 j; j < 8; ++j) {
            uint256[] memory got = a8.verificationKey(j);
            assertEq(keccak256(abi.encodePacked(got)), keccak256(abi.encodePacked(vks[j])), "slice key");
            all = j == 0 ? abi.encodePacked(got) : abi.encodePacked(all, _tail(got, 10));
        }
        assertEq(a8.vkHash(), keccak256(all), "vkHash over alpha, beta, gamma, then each delta and IC");
        assertEq(a8.numSlices(), 8, "k");
    }

    // --- soundness: the slices must chain into one computation ---------------------------------

    /// c_j changed in any position (or replaced by another request's): refused.
    function test_commitmentsThatDoNotChainRefused() public view {
        Req memory other = _req(j4, 1);
        for (uint256 i; i < 3; ++i) {
            Req memory r = _req(j4, 0);
            r.commitments[i] = addmod(r.commitments[i], 1, R);
            assertFalse(_verify(a4, r), "c_j + 1");
            r = _req(j4, 0);
            r.commitments[i] = other.commitments[i];
            assertFalse(_verify(a4, r), "another request's c_j");
        }
        Req memory s = _req(j4, 0);
        (s.commitments[0], s.commitments[2]) = (s.commitments[2], s.commitments[0]);
        assertFalse(_verify(a4, s), "commitments swapped");
    }

    /// Real slice proofs in the wrong order (any transposition, or reversed): refused, whatever
    /// the commitments.
    function test_slicesInTheWrongOrderRefused() public view {
        for (uint256 x; x < 4; ++x) {
            for (uint256 y = x + 1; y < 4; ++y) {
                Req memory r = _req(j4, 0);
                (r.proofs[x], r.proofs[y]) = (r.proofs[y], r.proofs[x]);
                assertFalse(_verify(a4, r), "two slices swapped");
            }
        }
        Req memory rev = _req(j4, 0);
        for (uint256 j; j < 2; ++j) {
            (rev.proofs[j], rev.proofs[3 - j]) = (rev.proofs[3 - j], rev.proofs[j]);
        }
        (rev.commitments[0], rev.commitments[2]) = (rev.commitments[2], rev.commitments[0]);
        assertFalse(_verify(a4, rev), "reversed, commitments reversed");
    }

    /// k - 1 slices (any one left out, commitments trimmed or not), or one too many: refused
    /// with SliceCountMismatch before any pairing.
    function test_missingSliceRefused() public {
        Req memory r = _req(j4, 0);
        for (uint256 miss; miss < 4; ++miss) {
            uint256[8][] memory three = new uint256[8][](3);
            uint256 t;
            for (uint256 j; j < 4; ++j) {
                if (j != miss) three[t++] = r.proofs[j];
            }
            vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.SliceCountMismatch.selector, 3, 3, 4, 3));
            a4.verify(r.input, r.output, payee, abi.encode(r.commitments, three));
            uint256[] memory two = new uint256[](2);
            (two[0], two[1]) = (r.commitments[0], r.commitments[miss == 0 ? 1 : 2]);
            vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.SliceCountMismatch.selector, 3, 2, 4, 3));
            a4.verify(r.input, r.output, payee, abi.encode(two, three));
        }
        // The k = 4 proof of the same input is not a k = 8 proof, and the k = 2 one not a k = 4 one.
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.SliceCountMismatch.selector, 7, 3, 8, 4));
        a8.verify(r.input, r.output, payee, _enc(r));
        Req memory r2 = _req(j2, 0);
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.SliceCountMismatch.selector, 3, 1, 4, 2));
        a4.verify(r2.input, r2.output, payee, _enc(r2));
    }

    /// Request 0 with its slices j.. replaced by request 2's (the same model on input 0 + 1: from
    /// slice 1 on, a chain "re-proven on another activation", each one a valid proof on its own):
    /// refused for every cut point, with either request's commitments and either output.
    function test_sliceReprovenOnAnotherActivationRefused() public view {
        _mixRefused(_req(j4, 0), _req(j4, 2));
    }

    /// Slices of the right circuits from two different requests, cut anywhere: refused.
    function test_slicesFromTwoRequestsRefused() public view {
        _mixRefused(_req(j4, 0), _req(j4, 1));
        _mixRefused(_req(j4, 1), _req(j4, 0));
    }

    /// Every mix of a's first slices with b's last ones (cut 1..3) under every choice of
    /// commitment per position (a's or b's) and either output, for a's input: all refused.
    function _mixRefused(Req memory a, Req memory b) internal view {
        for (uint256 cut = 1; cut < 4; ++cut) {
            for (uint256 mask; mask < 8; ++mask) {
                for (uint256 o; o < 2; ++o) {
                    Req memory m = _req(j4, 0);
                    m.input = a.input;
                    m.output = o == 0 ? a.output : b.output;
                    for (uint256 j; j < 4; ++j) {
                        m.proofs[j] = j < cut ? a.proofs[j] : b.proofs[j];
                    }
                    for (uint256 i; i < 3; ++i) {
                        m.commitments[i] = (mask >> i) & 1 == 0 ? a.commitments[i] : b.commitments[i];
                    }
                    assertFalse(_verify(a4, m), "mixed chain");
                }
            }
        }
        // b's whole chain is valid for b's input only.
        Req memory w = b;
        w.input = a.input;
        assertFalse(_verify(a4, w), "b's proofs for a's input");
    }

    /// Slice 0 of ANOTHER model (k = 8, same computation, same input, so the very same public
    /// signals [c_1, input word]; only the keys differ): refused. Likewise its last slice.
    function test_sliceFromAnotherModelRefused() public view {
        Req memory r = _req(j4, 0);
        Req memory other = _req(j8, 0);
        assertEq(other.commitments[0], r.commitments[0], "same c_1: slice 0 is the same circuit");
        assertTrue(_verify(a4, r), "valid as given");
        r.proofs[0] = other.proofs[0];
        assertFalse(_verify(a4, r), "k = 8 model's slice 0");
        r = _req(j4, 0);
        Req memory k2 = _req(j2, 0);
        r.proofs[0] = k2.proofs[0];
        assertFalse(_verify(a4, r), "k = 2 model's slice 0");
    }

    // --- payee -------------------------------------------------------------------------------

    function testFuzz_otherPayeeRefused(address other) public view {
        vm.assume(other != payee);
        Req memory r = _req(j4, 0);
        assertTrue(a4.verify(r.input, r.output, payee, _enc(r)), "its payee");
        assertFalse(a4.verify(r.input, r.output, other, _enc(r)), "any other payee");
    }

    function testFuzz_otherOutputRefused(uint256 which, int256 value) public view {
        Req memory r = _req(j4, 0);
        uint256 j = bound(which, 0, 2);
        int256 v = boundInt(value, -2048, 2047);
        vm.assume(v != r.output[j]);
        r.output[j] = v;
        assertFalse(_verify(a4, r), "another output");
    }

    // --- tampering and encoding ----------------------------------------------------------------

    /// Every word of every slice proof with its low bit flipped: false, or MalformedProof(0) when
    /// the point left the curve. Never valid.
    function test_tamperedProofWordsRefused() public view {
        Req memory r = _req(j4, 0);
        for (uint256 j; j < 4; ++j) {
            for (uint256 t; t < 8; ++t) {
                Req memory m = _req(j4, 0);
                m.proofs[j][t] ^= 1;
                (bool ok, bytes memory ret) =
                    address(a4).staticcall(abi.encodeCall(a4.verify, (r.input, r.output, payee, _enc(m))));
                if (ok) {
                    assertFalse(abi.decode(ret, (bool)), "tampered word verifies");
                } else {
                    assertEq(ret, abi.encodeWithSelector(SlicedGroth16Adapter.MalformedProof.selector, 0), "off curve");
                }
            }
        }
    }

    /// Non-canonical field elements: a commitment + R, a coordinate + Q (the same point mod Q).
    function test_nonCanonicalFieldElementsRefused() public {
        Req memory r = _req(j4, 0);
        uint256 c = r.commitments[1] + R;
        r.commitments[1] = c;
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.NonCanonicalCommitment.selector, 1, c));
        _verify(a4, r);
        for (uint256 t; t < 8; ++t) {
            r = _req(j4, 0);
            if (r.proofs[2][t] >= type(uint256).max - Q) continue;
            r.proofs[2][t] += Q;
            vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.MalformedProof.selector, 32 * (3 + 9 * 4)));
            _verify(a4, r);
        }
    }

    /// Only the canonical ABI encoding: other offsets, trailing or missing bytes.
    function test_nonCanonicalEncodingRefused() public {
        Req memory r = _req(j4, 0);
        bytes memory p = _enc(r);
        uint256 len = p.length;
        assertEq(len, 32 * (3 + 9 * 4), "canonical length");
        bytes memory longer = bytes.concat(p, bytes1(0));
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.MalformedProof.selector, len + 1));
        a4.verify(r.input, r.output, payee, longer);
        bytes memory shorter = new bytes(len - 32);
        for (uint256 i; i < len - 32; ++i) {
            shorter[i] = p[i];
        }
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.MalformedProof.selector, len - 32));
        a4.verify(r.input, r.output, payee, shorter);
        bytes memory moved = bytes.concat(p);
        moved[31] = bytes1(uint8(0x60)); // commitments' offset 0x60 instead of 0x40
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.MalformedProof.selector, len));
        a4.verify(r.input, r.output, payee, moved);
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.MalformedProof.selector, 0));
        a4.verify(r.input, r.output, payee, "");
    }

    function test_sizesAndRangesRefused() public {
        Req memory r = _req(j4, 0);
        bytes memory p = _enc(r);
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.SignalCountMismatch.selector, 8, 7, 3, 3));
        a4.verify(new int256[](7), r.output, payee, p);
        int256[] memory y = r.output;
        y[2] = 2048;
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.PackedOutputOutOfRange.selector, 2, int256(2048)));
        a4.verify(r.input, y, payee, p);
        int256[] memory x = r.input;
        x[5] = -2049;
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.PackedInputOutOfRange.selector, 5, int256(-2049)));
        a4.verify(x, r.output, payee, p);
        // Same selectors as the packed adapter's: one FulfillmentSkipped reason whatever the adapter.
        assertEq(
            SlicedGroth16Adapter.PackedOutputOutOfRange.selector,
            PackedGroth16Adapter.PackedOutputOutOfRange.selector,
            "sel"
        );
        assertEq(SlicedGroth16Adapter.MalformedProof.selector, PackedGroth16Adapter.MalformedProof.selector, "sel");
    }

    function test_failsClosedWhenShortOfGas() public {
        Req memory r = _req(j4, 0);
        uint256 floor = a4.minVerifyGas();
        (bool ok, bytes memory ret) =
            address(a4).call{gas: floor - 20_000}(abi.encodeCall(a4.verify, (r.input, r.output, payee, _enc(r))));
        assertFalse(ok, "reverts, never false");
        assertEq(bytes4(ret), SlicedGroth16Adapter.InsufficientVerificationGas.selector, "named error");
        assertTrue(a4.verify{gas: floor + 50_000}(r.input, r.output, payee, _enc(r)), "the floor is enough");
    }

    // --- construction ------------------------------------------------------------------------

    function test_constructorChecks() public {
        uint256[][] memory vks = _vks(j4);
        uint256[][] memory one = new uint256[][](1);
        one[0] = vks[0];
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.TooFewSlices.selector, 1));
        new SlicedGroth16Adapter(8, 3, 12, 12, one);
        // 30 inputs of 12 bits: 2 input words, so slice 0 has 3 signals and needs 22 words.
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.InvalidVerificationKey.selector, 0, 20, 22));
        new SlicedGroth16Adapter(30, 3, 12, 12, vks);
        // A key from another ceremony (the risk model's packed circuit, also 2 signals).
        vks[2] = vm.parseJsonUintArray(
            vm.readFile(string.concat(vm.projectRoot(), "/contracts/test/fixtures/risk_groth16_packed.json")),
            ".vk_words"
        );
        assertEq(vks[2].length, 20, "same size as a middle slice's key");
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.SetupMismatch.selector, 2));
        new SlicedGroth16Adapter(8, 3, 12, 12, vks);
        vks = _vks(j4);
        vks[3][7] ^= 1; // gamma
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.SetupMismatch.selector, 3));
        new SlicedGroth16Adapter(8, 3, 12, 12, vks);
        vm.expectRevert(abi.encodeWithSelector(SignalPacking.InvalidPackingBits.selector, 0));
        new SlicedGroth16Adapter(8, 3, 0, 12, _vks(j4));
        vm.expectRevert(abi.encodeWithSelector(SlicedGroth16Adapter.NoSuchSlice.selector, 4, 4));
        a4.numSignals(4);
        // 80 slices of 2 signals: 32 * (10 + 80 * 10) bytes of keys, over EIP-170's code limit.
        uint256[][] memory many = new uint256[][](80);
        vks = _vks(j4);
        for (uint256 j; j < 80; ++j) {
            many[j] = vks[j == 0 ? 0 : j == 79 ? 3 : 1];
        }
        vm.expectRevert(SlicedGroth16Adapter.VerificationKeyNotStored.selector);
        new SlicedGroth16Adapter(8, 3, 12, 12, many);
    }

    /// Without room in the last output word the payee gets a word of its own right after the
    /// output words (last slice: [output words, payee, c_{k-1}]), as in the packed layout.
    function test_payeeOwnWordLayout() public {
        uint256[][] memory vks = _vks(j4);
        // 21 outputs of 12 bits fill a word (252 bits): the last slice has 3 signals, one IC more.
        uint256[] memory last = new uint256[](vks[3].length + 2);
        for (uint256 t; t < vks[3].length; ++t) {
            last[t] = vks[3][t];
        }
        vks[3] = last;
        SlicedGroth16Adapter own = new SlicedGroth16Adapter(8, 21, 12, 12, vks);
        assertTrue(own.payeeOwnWord(), "no room");
        assertEq(own.numSignals(3), 3, "output word, payee word, c_3");
        Req memory r = _req(j4, 0);
        int256[] memory y = new int256[](21);
        y[0] = -2048;
        uint256[][] memory s = own.sliceSignals(r.input, y, address(0xC0B1E5), r.commitments);
        assertEq(s[3][0], uint256(2048) * (((uint256(1) << 252) - 1) / 4095) - 2048, "all values offset, y[0] = 0");
        assertEq(s[3][1], 0xC0B1E5, "payee word");
        assertEq(s[3][2], r.commitments[2], "c_3 last");
        assertEq(a4.payeeShift(), 36, "toy: payee above 3 values of 12 bits");
    }

    // --- through the oracle --------------------------------------------------------------------

    function test_fulfilThroughTheOracle() public {
        Req memory r = _req(j4, 0);
        uint256 id = _request(M4, r.input);
        vm.expectEmit(true, true, true, true, address(oracle));
        emit InferenceOracle.InferenceFulfilled(id, M4, r.output, payee, true);
        vm.prank(COPIER); // anyone may send it; the proof's payee is paid
        oracle.fulfill(id, r.output, payee, _enc(r));
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Fulfilled, "fulfilled");
        assertEq(oracle.balances(payee), oracle.getRequest(id).fee, "payee credited");
        assertEq(oracle.balances(COPIER), 0, "sender not");
    }

    function test_oracleRefusesBrokenChains() public {
        Req memory a = _req(j4, 0);
        Req memory b = _req(j4, 2);
        uint256 id = _request(M4, a.input);
        Req memory m = _req(j4, 0);
        m.proofs[3] = b.proofs[3];
        m.commitments[2] = b.commitments[2];
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, a.output, payee, _enc(m));
        // Request 2's whole (valid) chain, on request 0's input.
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        oracle.fulfill(id, b.output, payee, _enc(b));
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Pending, "still pending");
        oracle.fulfill(id, a.output, payee, _enc(a));
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Fulfilled, "the honest chain fulfils");
    }

    /// A copier front-running the honest fulfilment: its own payee -> InvalidProof; replayed
    /// unchanged -> the original payee is paid.
    function test_frontRunningCopyPaysTheCopierNothing() public {
        Req memory r = _req(j4, 0);
        uint256 id = _request(M4, r.input);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InvalidProof.selector, id));
        vm.prank(COPIER);
        oracle.fulfill(id, r.output, COPIER, _enc(r));
        vm.prank(COPIER);
        oracle.fulfill(id, r.output, payee, _enc(r));
        assertEq(oracle.balances(COPIER), 0, "copier never credited");
        assertEq(oracle.balances(payee), oracle.getRequest(id).fee, "original payee paid");
    }

    /// fulfillBatch, one pairing check for all requests' slices (batchVerify), and with one bad
    /// entry: the batch check fails, the oracle falls back to one by one and skips only it.
    function test_fulfillBatch() public {
        uint256[] memory ids = new uint256[](3);
        int256[][] memory outs = new int256[][](3);
        bytes[] memory prs = new bytes[](3);
        for (uint256 i; i < 3; ++i) {
            Req memory r = _req(j4, i);
            ids[i] = _request(M4_BATCH, r.input);
            outs[i] = r.output;
            prs[i] = _enc(r);
        }
        int256[][] memory ins = new int256[][](3);
        for (uint256 i; i < 3; ++i) {
            ins[i] = _req(j4, i).input;
        }
        assertTrue(a4.verifyBatch(ins, outs, payee, prs), "batch check");
        uint256 g = gasleft();
        a4.verifyBatch(ins, outs, payee, prs);
        g -= gasleft();
        assertLt(g, a4.batchVerifyGas(3), "the batch floor covers a batch of 3");
        assertLt(a4.batchVerifyGas(3), 3 * a4.minVerifyGas(), "and is below 3 single checks");
        (bool ok, bytes memory ret) = address(a4).call{gas: a4.batchVerifyGas(3) - 10_000}(
            abi.encodeCall(a4.verifyBatch, (ins, outs, payee, prs))
        );
        assertFalse(ok, "short of gas: reverts");
        assertEq(bytes4(ret), SlicedGroth16Adapter.InsufficientVerificationGas.selector, "named error");
        assertFalse(a4.verifyBatch(ins, outs, COPIER, prs), "batch check, other payee");
        uint256 snap = vm.snapshotState();
        assertEq(oracle.fulfillBatch(ids, outs, payee, prs), 3, "all three");
        vm.revertToState(snap);
        prs[1] = prs[2]; // request 2's proof for request 1
        vm.expectEmit(true, false, false, true);
        emit InferenceOracle.FulfillmentSkipped(ids[1], InferenceOracle.InvalidProof.selector);
        assertEq(oracle.fulfillBatch(ids, outs, payee, prs), 2, "the bad entry skipped");
        assertTrue(oracle.requestStatus(ids[1]) == InferenceOracle.Status.Pending, "still pending");
        // The same through a model without batch verification (one by one).
        for (uint256 i; i < 3; ++i) {
            ids[i] = _request(M4, ins[i]);
            prs[i] = _enc(_req(j4, i));
        }
        assertEq(oracle.fulfillBatch(ids, outs, payee, prs), 3, "one by one");
    }

    /// Two requests' proofs of the same slice tampered so their errors cancel in any check
    /// that weights them equally: C + G in one, C - G in the other (G the G1 generator). Each
    /// pairing equation is off by e(G, delta_1) and e(-G, delta_1): only independent weights
    /// r_{n,j} (Fiat-Shamir) refuse the pair.
    function test_batchWeightsAreIndependent() public view {
        Req memory a = _req(j4, 0);
        Req memory b = _req(j4, 1);
        uint256 Qm = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
        (a.proofs[1][6], a.proofs[1][7]) = _ecAdd(a.proofs[1][6], a.proofs[1][7], 1, 2);
        (b.proofs[1][6], b.proofs[1][7]) = _ecAdd(b.proofs[1][6], b.proofs[1][7], 1, Qm - 2);
        int256[][] memory ins = new int256[][](2);
        int256[][] memory outs = new int256[][](2);
        bytes[] memory prs = new bytes[](2);
        (ins[0], outs[0], prs[0]) = (a.input, a.output, _enc(a));
        (ins[1], outs[1], prs[1]) = (b.input, b.output, _enc(b));
        assertFalse(a4.verifyBatch(ins, outs, payee, prs), "cancelling errors refused");
        assertFalse(_verify(a4, a), "each one refused alone");
    }

    function _ecAdd(uint256 x1, uint256 y1, uint256 x2, uint256 y2) internal view returns (uint256, uint256) {
        (bool ok, bytes memory r) = address(6).staticcall(abi.encode(x1, y1, x2, y2));
        assertTrue(ok, "ecAdd");
        return abi.decode(r, (uint256, uint256));
    }

    function test_provenResults() public {
        ProvenResults results = new ProvenResults(registry);
        Req memory r = _req(j4, 0);
        Req memory b = _req(j4, 2);
        vm.expectRevert();
        results.submit(M4, r.input, b.output, payee, _enc(b));
        results.submit(M4, r.input, r.output, payee, _enc(r));
        (int256[] memory out, bool proven) = results.provenOutput(M4, r.input);
        assertTrue(proven, "proven");
        assertEq(out, r.output, "output");
    }

    /// The same sliced proof delivered to another chain's inbox (its registry holds the model
    /// with the same adapter): verified there and handed to the consumer; a broken chain is not.
    function test_crossChainDelivery() public {
        CrossChainInbox inbox = new CrossChainInbox(registry);
        RecordingCrossChainConsumer consumer = new RecordingCrossChainConsumer();
        Req memory r = _req(j4, 0);
        Req memory b = _req(j4, 2);
        CrossChainInbox.Message memory m = CrossChainInbox.Message({
            srcChainId: uint64(block.chainid + 1),
            srcOracle: address(0x5EC),
            requestId: 7,
            modelId: M4,
            consumer: address(consumer),
            gasLimit: 1_000_000, // the recording consumer stores 11 values
            payee: payee
        });
        Req memory broken = _req(j4, 0);
        broken.proofs[3] = b.proofs[3];
        broken.commitments[2] = b.commitments[2];
        vm.expectRevert();
        inbox.deliver(m, r.input, r.output, _enc(broken));
        inbox.deliver(m, r.input, r.output, _enc(r));
        assertEq(consumer.calls(), 1, "delivered once");
        assertEq(consumer.lastOutput(), r.output, "the proven output");
    }

    // --- gas ---------------------------------------------------------------------------------

    /// Whole fulfil and verify alone for k = 2, 4, 8 (bench/bench_sliced_gas.py measures the same
    /// on anvil, with the transaction's intrinsic and calldata gas).
    function test_gas() public {
        _gas(M2, j2, a2, 400_000);
        _gas(M4, j4, a4, 570_000);
        _gas(M8, j8, a8, 1_000_000);
    }

    function _gas(bytes32 model, string memory json, SlicedGroth16Adapter a, uint256 cap) internal {
        Req memory r = _req(json, 0);
        bytes memory p = _enc(r);
        uint256 g = gasleft();
        assertTrue(a.verify(r.input, r.output, payee, p), "valid");
        uint256 gv = g - gasleft();
        uint256 id = _request(model, r.input);
        g = gasleft();
        oracle.fulfill(id, r.output, payee, p);
        uint256 gf = g - gasleft();
        emit GasUsed(a.numSlices(), gv, gf);
        assertLt(gv, a.minVerifyGas(), "the floor covers a verification");
        assertLt(a.minVerifyGas(), gv + 40_000, "and is not far above it");
        assertLt(gf, cap, "fulfil gas (execution only)");
    }

    /// @notice Measured gas (forge, execution only) for k slices: verify alone and whole fulfil.
    event GasUsed(uint256 k, uint256 verifyGas, uint256 fulfilGas);

    function _tail(uint256[] memory v, uint256 from) internal pure returns (uint256[] memory out) {
        out = new uint256[](v.length - from);
        for (uint256 i = from; i < v.length; ++i) {
            out[i - from] = v[i];
        }
    }
}

/// @notice The adapter on the slice COMPILER's fixtures (scripts/sliced_fixture.py ->
///         contracts/test/fixtures/sliced_k{2,3,4}.json): a residual MLP 8-16-16-16-3 compiled by
///         the direct generator into k slices on one ptau, 11-bit inputs and 25-bit outputs, two
///         requests per k. The same model cut three ways: a slice of one cut is a slice of
///         "another model" for the others.
contract SlicedCompilerFixtureTest is Test {
    ModelRegistry registry;
    InferenceOracle oracle;
    SlicedGroth16Adapter[5] adapters; // by k (2..4)
    string[5] jsons;
    address payee;
    bytes32 constant M3 = keccak256("sliced-mlp-k3");
    bytes32 constant M4 = keccak256("sliced-mlp-k4");

    struct Req {
        int256[] input;
        int256[] output;
        uint256[] commitments;
        uint256[8][] proofs;
    }

    function setUp() public {
        for (uint256 k = 2; k <= 4; ++k) {
            jsons[k] = vm.readFile(
                string.concat(vm.projectRoot(), "/contracts/test/fixtures/sliced_k", Decimal.toString(k), ".json")
            );
            uint256[][] memory vks = new uint256[][](k);
            for (uint256 j; j < k; ++j) {
                vks[j] = vm.parseJsonUintArray(jsons[k], string.concat(".vk_words[", Decimal.toString(j), "]"));
            }
            adapters[k] = new SlicedGroth16Adapter(8, 3, 11, 25, vks);
        }
        payee = vm.parseJsonAddress(jsons[3], ".payee");
        registry = new ModelRegistry(address(this));
        oracle = new InferenceOracle(registry, address(this), 1 gwei);
        registry.register(M3, _model(address(adapters[3])), TestSetup.dev());
        registry.register(M4, _model(address(adapters[4])), TestSetup.dev());
    }

    function _model(address v) internal pure returns (ModelRegistry.Model memory) {
        return ModelRegistry.Model({
            verifier: v,
            proofSystem: ModelRegistry.ProofSystem.Groth16,
            inputSize: 8,
            outputSize: 3,
            inputScale: 10,
            outputScale: 19,
            inputBits: 11,
            outputBits: 25,
            frozen: false,
            batchVerify: true,
            bindsPayee: false,
            verifierVersion: 0,
            circuitId: bytes32(uint256(5)),
            fee: 1e15,
            verifyGas: 600_000
        });
    }

    function _req(uint256 k, uint256 i) internal view returns (Req memory r) {
        string memory p = string.concat(".requests[", Decimal.toString(i), "]");
        r.input = vm.parseJsonIntArray(jsons[k], string.concat(p, ".input"));
        r.output = vm.parseJsonIntArray(jsons[k], string.concat(p, ".output"));
        r.commitments = vm.parseJsonUintArray(jsons[k], string.concat(p, ".commitments"));
        r.proofs = new uint256[8][](k);
        for (uint256 j; j < k; ++j) {
            uint256[] memory w = vm.parseJsonUintArray(jsons[k], string.concat(p, ".proofs[", Decimal.toString(j), "]"));
            for (uint256 t; t < 8; ++t) {
                r.proofs[j][t] = w[t];
            }
        }
    }

    function _ok(uint256 k, Req memory r) internal view returns (bool) {
        return adapters[k].verify(r.input, r.output, payee, abi.encode(r.commitments, r.proofs));
    }

    function test_validAndSignalsMatch() public view {
        for (uint256 k = 2; k <= 4; ++k) {
            for (uint256 i; i < 2; ++i) {
                Req memory r = _req(k, i);
                assertTrue(_ok(k, r), "valid");
                string memory p = string.concat(".requests[", Decimal.toString(i), "]");
                assertEq(
                    abi.encode(r.commitments, r.proofs), vm.parseJsonBytes(jsons[k], string.concat(p, ".proof")), "enc"
                );
                uint256[][] memory s = adapters[k].sliceSignals(r.input, r.output, payee, r.commitments);
                for (uint256 j; j < k; ++j) {
                    uint256[] memory want =
                        vm.parseJsonUintArray(jsons[k], string.concat(p, ".public_signals[", Decimal.toString(j), "]"));
                    assertEq(s[j].length, want.length, "count");
                    for (uint256 t; t < want.length; ++t) {
                        assertEq(s[j][t], want[t], "signal");
                    }
                }
            }
        }
    }

    function test_refusals() public view {
        Req memory a = _req(4, 0);
        Req memory b = _req(4, 1);
        for (uint256 cut = 1; cut < 4; ++cut) {
            Req memory m = _req(4, 0);
            for (uint256 j = cut; j < 4; ++j) {
                m.proofs[j] = b.proofs[j];
            }
            assertFalse(_ok(4, m), "two requests, a's commitments");
            for (uint256 i = cut - 1; i < 3; ++i) {
                m.commitments[i] = b.commitments[i];
            }
            assertFalse(_ok(4, m), "two requests, b's commitments from the cut");
        }
        Req memory sw = _req(4, 0);
        (sw.proofs[1], sw.proofs[2]) = (sw.proofs[2], sw.proofs[1]);
        assertFalse(_ok(4, sw), "wrong order");
        Req memory nc = _req(4, 0);
        nc.commitments[1] ^= 1;
        assertFalse(_ok(4, nc), "commitments do not chain");
        assertFalse(
            adapters[4].verify(a.input, a.output, address(0xC0B1E5), abi.encode(a.commitments, a.proofs)), "other payee"
        );
        // k = 3 cuts [0,1,2,4], k = 4 cuts [0,1,2,3,4]: slices 0 and 1 are the same layers and the
        // same commitments c_1, c_2, but of another model (other keys).
        Req memory k3 = _req(3, 0);
        assertEq(k3.commitments[0], a.commitments[0], "same c_1");
        Req memory other = _req(4, 0);
        other.proofs[0] = k3.proofs[0];
        assertFalse(_ok(4, other), "slice 0 of the k = 3 model");
    }

    function test_fulfilThroughTheOracle() public {
        Req memory r = _req(4, 0);
        uint256 fee = oracle.quoteFee(M4, 0);
        uint256 id = oracle.requestInference{value: fee}(M4, r.input, address(0), 0, uint64(block.timestamp + 600));
        oracle.fulfill(id, r.output, payee, abi.encode(r.commitments, r.proofs));
        assertTrue(oracle.requestStatus(id) == InferenceOracle.Status.Fulfilled, "fulfilled");
        assertEq(oracle.balances(payee), fee, "payee credited");
        fee = oracle.quoteFee(M3, 0);
        uint256[] memory ids = new uint256[](2);
        int256[][] memory outs = new int256[][](2);
        bytes[] memory prs = new bytes[](2);
        for (uint256 i; i < 2; ++i) {
            Req memory q = _req(3, i);
            ids[i] = oracle.requestInference{value: fee}(M3, q.input, address(0), 0, uint64(block.timestamp + 600));
            outs[i] = q.output;
            prs[i] = abi.encode(q.commitments, q.proofs);
        }
        assertEq(oracle.fulfillBatch(ids, outs, payee, prs), 2, "batch of the k = 3 model");
    }
}
