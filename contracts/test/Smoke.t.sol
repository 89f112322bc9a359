// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {TestHashVerifier} from "./utils/TestHashVerifier.sol";
import {ModelRegistry} from "../ModelRegistry.sol";
import {InferenceOracle} from "../InferenceOracle.sol";

contract SmokeTest is Test {
    function test_requestAndFulfil() public {
        ModelRegistry reg = new ModelRegistry(address(this));
        InferenceOracle oracle = new InferenceOracle(reg, address(this), 1 gwei);
        TestHashVerifier v = new TestHashVerifier();
        bytes32 id = keccak256("m");
        reg.register(id, ModelRegistry.Model({
            verifier: address(v), proofSystem: ModelRegistry.ProofSystem.Groth16,
            inputSize: 3, outputSize: 2, inputScale: 7, outputScale: 7, inputBits: 16, outputBits: 32,
            frozen: false, batchVerify: true, circuitId: bytes32(uint256(1)), fee: 1e15, verifyGas: 250_000
        }));
        int256[] memory input = new int256[](3);
        input[0] = -5; input[1] = 32767; input[2] = -32768;
        uint256 fee = oracle.quoteFee(id, 0);
        uint256 rid = oracle.requestInference{value: fee}(id, input, address(0), 0, uint64(block.timestamp + 100));
        InferenceOracle.RequestView memory r = oracle.getRequest(rid);
        assertEq(r.input, input, "input roundtrip");
        int256[] memory out = new int256[](2);
        out[0] = 7; out[1] = -9;
        oracle.fulfill(rid, out, v.proofFor(input, out));
        assertTrue(oracle.requestStatus(rid) == InferenceOracle.Status.Fulfilled, "fulfilled");
    }
}
