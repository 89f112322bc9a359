// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceErrors} from "../utils/InferenceErrors.sol";
import {OracleFixture} from "./utils/OracleFixture.sol";
import {RecordingConsumer} from "./utils/Mocks.sol";
import {InferenceOracle} from "../InferenceOracle.sol";
import {IInferenceConsumer} from "../IInferenceConsumer.sol";
import {ExactGasCall} from "../utils/ExactGasCall.sol";

contract OracleFuzzTest is OracleFixture {
    /// @dev Gas a RecordingConsumer spends between its entry and its first gasleft().
    uint256 internal entryOverhead;

    function setUp() public override {
        super.setUp();
        RecordingConsumer probe = new RecordingConsumer();
        (bool ok,) = address(probe).call{gas: 300_000}(
            abi.encodeCall(IInferenceConsumer.onInferenceResult, (1, MODEL, defaultOutput()))
        );
        require(ok, "probe");
        entryOverhead = 300_000 - probe.gasAtEntry();
    }

    function _range(uint16 bits) internal pure returns (int256 lo, int256 hi) {
        hi = int256((uint256(1) << (bits - 1)) - 1);
        lo = -hi - 1;
    }

    function _modelFor(uint16 bits, uint16 size) internal returns (bytes32 m) {
        m = keccak256(abi.encode("fuzz", bits, size));
        if (!registry.isRegistered(m)) _register(m, modelConfig(address(hashVerifier), size, 2, bits, 32, true));
    }

    function _values(uint256 seed, uint16 size, int256 lo, int256 hi) internal pure returns (int256[] memory v) {
        v = new int256[](size);
        for (uint256 i; i < size; ++i) {
            uint256 h = uint256(keccak256(abi.encode(seed, i)));
            if (h % 5 == 0) v[i] = lo;
            else if (h % 5 == 1) v[i] = hi;
            else if (h % 5 == 2) v[i] = int256(h % 3) - 1; // -1, 0, 1
            else v[i] = boundInt(int256(h), lo, hi);
        }
    }

    // ------------------------------------------------------------------ inputs

    /// @dev Any in-range input, at any bit width 2..253 and size, is accepted, packed and read
    ///      back exactly, and the unpacked input is what verification sees.
    function testFuzz_inputs_roundTrip(uint256 bitsSeed, uint256 sizeSeed, uint256 seed) public {
        uint16 bits = uint16(bound(bitsSeed, 2, 253));
        uint16 size = uint16(bound(sizeSeed, 1, 40));
        bytes32 m = _modelFor(bits, size);
        (int256 lo, int256 hi) = _range(bits);
        int256[] memory input = _values(seed, size, lo, hi);
        uint256 fee = oracle.quoteFee(m, 0);
        vm.prank(alice);
        uint256 id = oracle.requestInference{value: fee}(m, input, address(0), 0, soon());
        assertEq(oracle.getRequest(id).input, input, "round trip");
        int256[] memory out = defaultOutput();
        vm.prank(relayer);
        oracle.fulfill(id, out, relayer, proofOf(input, out, relayer));
        assertStatus(id, InferenceOracle.Status.Fulfilled, "verified against the stored input");
    }

    function testFuzz_inputs_outOfRangeRejected(
        uint256 bitsSeed,
        uint256 sizeSeed,
        uint256 idxSeed,
        uint256 seed,
        int256 bad,
        bool high
    ) public {
        uint16 bits = uint16(bound(bitsSeed, 2, 253));
        uint16 size = uint16(bound(sizeSeed, 1, 40));
        bytes32 m = _modelFor(bits, size);
        (int256 lo, int256 hi) = _range(bits);
        int256[] memory input = _values(seed, size, lo, hi);
        uint256 idx = bound(idxSeed, 0, size - 1);
        input[idx] = high ? boundInt(bad, hi + 1, type(int256).max) : boundInt(bad, type(int256).min, lo - 1);
        uint256 fee = oracle.quoteFee(m, 0);
        vm.expectRevert(abi.encodeWithSelector(InferenceErrors.InputOutOfRange.selector, idx, input[idx]));
        vm.prank(alice);
        oracle.requestInference{value: fee}(m, input, address(0), 0, soon());
    }

    // ------------------------------------------------------------------ fees

    function testFuzz_fee_anyOverpaymentCreditedExactly(uint256 baseFee, uint256 price, uint32 cbGas, uint256 value)
        public
    {
        baseFee = bound(baseFee, 0, 1e21);
        price = bound(price, 0, 1e12);
        cbGas = uint32(bound(cbGas, 0, oracle.MAX_CALLBACK_GAS()));
        registry.setFee(MODEL, uint128(baseFee), VERIFY_GAS);
        oracle.setGasPrice(price);
        uint256 quote = oracle.quoteFee(MODEL, cbGas);
        assertEq(
            quote, baseFee + (uint256(VERIFY_GAS) + cbGas + oracle.FULFILL_OVERHEAD_GAS()) * price, "quote formula"
        );
        value = bound(value, quote, quote + 1e24);
        vm.deal(alice, value);
        address cb = cbGas == 0 ? address(0) : address(new RecordingConsumer());
        vm.prank(alice);
        uint256 id = oracle.requestInference{value: value}(MODEL, defaultInput(), cb, cbGas, soon());
        assertEq(oracle.getRequest(id).fee, quote, "escrowed quote");
        assertEq(oracle.totalEscrowed(), quote, "escrow");
        assertEq(oracle.balances(alice), value - quote, "excess credited exactly");
        assertEq(oracle.totalCredits(), value - quote, "credits");
        assertEq(address(oracle).balance, value, "all ETH accounted");
    }

    function testFuzz_fee_belowQuoteRejected(uint256 baseFee, uint256 price, uint256 value) public {
        baseFee = bound(baseFee, 1, 1e21);
        price = bound(price, 0, 1e12);
        registry.setFee(MODEL, uint128(baseFee), VERIFY_GAS);
        oracle.setGasPrice(price);
        uint256 quote = oracle.quoteFee(MODEL, 0);
        value = bound(value, 0, quote - 1);
        vm.deal(alice, value);
        vm.expectRevert(abi.encodeWithSelector(InferenceOracle.InsufficientFee.selector, quote, value));
        vm.prank(alice);
        oracle.requestInference{value: value}(MODEL, defaultInput(), address(0), 0, soon());
    }

    // ------------------------------------------------------------------ deadlines

    function testFuzz_deadline_window(uint64 deadline, uint32 start) public {
        vm.warp(bound(start, 1, 4_000_000_000));
        uint64 earliest = uint64(block.timestamp) + oracle.MIN_DEADLINE_DELAY();
        uint64 latest = uint64(block.timestamp) + oracle.MAX_DEADLINE_DELAY();
        uint256 fee = oracle.quoteFee(MODEL, 0);
        if (deadline < earliest) {
            vm.expectRevert(abi.encodeWithSelector(InferenceOracle.DeadlineTooSoon.selector, deadline, earliest));
        } else if (deadline > latest) {
            vm.expectRevert(abi.encodeWithSelector(InferenceOracle.DeadlineTooFar.selector, deadline, latest));
        }
        vm.prank(alice);
        oracle.requestInference{value: fee}(MODEL, defaultInput(), address(0), 0, deadline);
    }

    /// @dev At any time t: fulfil works iff t <= deadline; refund works iff t > deadline.
    function testFuzz_deadline_fulfilXorRefund(uint256 delay, uint256 wait) public {
        delay = bound(delay, oracle.MIN_DEADLINE_DELAY(), oracle.MAX_DEADLINE_DELAY());
        uint64 deadline = uint64(block.timestamp + delay);
        uint256 fee = oracle.quoteFee(MODEL, 0);
        vm.prank(alice);
        uint256 id = oracle.requestInference{value: fee}(MODEL, defaultInput(), address(0), 0, deadline);
        vm.warp(block.timestamp + bound(wait, 0, delay + 1 days));
        bytes memory proof = proofOf(defaultInput(), defaultOutput(), relayer);
        if (block.timestamp <= deadline) {
            vm.expectRevert(abi.encodeWithSelector(InferenceOracle.DeadlineNotReached.selector, id, deadline));
            oracle.refund(id);
            oracle.fulfill(id, defaultOutput(), relayer, proof);
            assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled");
        } else {
            vm.expectRevert(abi.encodeWithSelector(InferenceOracle.RequestExpired.selector, id, deadline));
            oracle.fulfill(id, defaultOutput(), relayer, proof);
            oracle.refund(id);
            assertStatus(id, InferenceOracle.Status.Refunded, "refunded");
        }
        assertEq(oracle.totalEscrowed(), 0, "escrow released either way");
    }

    // ------------------------------------------------------------------ callback gas

    function testFuzz_callbackGas_limit(uint32 limit) public {
        uint32 max = oracle.MAX_CALLBACK_GAS();
        RecordingConsumer c = new RecordingConsumer();
        uint256 fee = oracle.quoteFee(MODEL, limit > max ? max : limit);
        if (limit > max) {
            vm.expectRevert(abi.encodeWithSelector(InferenceOracle.CallbackGasTooHigh.selector, limit, max));
        } else if (limit == 0) {
            vm.expectRevert(abi.encodeWithSelector(InferenceOracle.MissingCallbackGas.selector, address(c)));
        }
        vm.prank(alice);
        oracle.requestInference{value: fee}(MODEL, defaultInput(), address(c), limit, soon());
    }

    /// @dev Any limit up to the max: with generous gas the callback gets exactly its limit.
    function testFuzz_callbackGas_exactWithGenerousGas(uint32 limit) public {
        limit = uint32(bound(limit, 200_000, oracle.MAX_CALLBACK_GAS()));
        RecordingConsumer c = new RecordingConsumer();
        uint256 id = requestWithCallback(address(c), limit);
        int256[] memory out = defaultOutput();
        bytes memory data =
            abi.encodeCall(InferenceOracle.fulfill, (id, out, relayer, proofOf(defaultInput(), out, relayer)));
        (bool ok,) = address(oracle).call{gas: uint256(limit) * 2 + 500_000}(data);
        assertTrue(ok, "fulfil with generous gas");
        assertEq(c.gasAtEntry() + entryOverhead, limit, "callback got exactly its limit");
    }

    /// @dev Any gas the relayer picks: either a revert, or the callback got exactly its limit.
    function testFuzz_callbackGas_neverStarved(uint32 limit, uint256 gas) public {
        limit = uint32(bound(limit, 200_000, oracle.MAX_CALLBACK_GAS()));
        // Aim at the critical zone: around limit * 64/63 plus the oracle's own work.
        gas = bound(gas, uint256(limit), uint256(limit) + uint256(limit) / 63 + 120_000);
        RecordingConsumer c = new RecordingConsumer();
        uint256 id = requestWithCallback(address(c), limit);
        int256[] memory out = defaultOutput();
        bytes memory data =
            abi.encodeCall(InferenceOracle.fulfill, (id, out, relayer, proofOf(defaultInput(), out, relayer)));
        vm.prank(relayer);
        (bool ok, bytes memory ret) = address(oracle).call{gas: gas}(data);
        if (ok) {
            assertEq(c.gasAtEntry() + entryOverhead, limit, "success => exact gas");
            assertStatus(id, InferenceOracle.Status.Fulfilled, "fulfilled");
        } else {
            assertTrue(ret.length == 0 || bytes4(ret) == ExactGasCall.InsufficientGasForCallback.selector, "reason");
            assertEq(c.calls(), 0, "callback did not run");
            assertStatus(id, InferenceOracle.Status.Pending, "pending");
        }
    }
}
