// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./Test.sol";
import {TestHashVerifier} from "./TestHashVerifier.sol";
import {TestSetup} from "./TestSetup.sol";
import {ModelRegistry} from "../../ModelRegistry.sol";
import {InferenceOracle} from "../../InferenceOracle.sol";

/// @notice Shared deployment: a registry, an oracle, a hash-verifier model (3 inputs of 16 bits,
///         2 outputs of 32 bits, batchable, binds the payee) and helpers to request and fulfil.
abstract contract OracleFixture is Test {
    ModelRegistry internal registry;
    InferenceOracle internal oracle;
    TestHashVerifier internal hashVerifier;

    bytes32 internal constant MODEL = keccak256("model-a");
    uint128 internal constant BASE_FEE = 1e15;
    uint32 internal constant VERIFY_GAS = 250_000;
    uint256 internal constant GAS_PRICE = 1 gwei;

    address internal owner = address(this);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal relayer = address(0x7E1A7E5);

    function setUp() public virtual {
        registry = new ModelRegistry(owner);
        oracle = new InferenceOracle(registry, owner, GAS_PRICE);
        hashVerifier = new TestHashVerifier();
        _register(MODEL, modelConfig(address(hashVerifier), 3, 2, 16, 32, true));
        vm.deal(alice, 1000 ether);
        vm.deal(bob, 1000 ether);
        vm.deal(relayer, 1 ether);
        vm.label(address(oracle), "oracle");
        vm.label(address(registry), "registry");
        vm.label(alice, "alice");
        vm.label(bob, "bob");
        vm.label(relayer, "relayer");
    }

    function modelConfig(
        address verifier,
        uint16 inputSize,
        uint16 outputSize,
        uint16 inputBits,
        uint16 outputBits,
        bool batchVerify
    ) internal pure returns (ModelRegistry.Model memory) {
        return ModelRegistry.Model({
            verifier: verifier,
            proofSystem: ModelRegistry.ProofSystem.Groth16,
            inputSize: inputSize,
            outputSize: outputSize,
            inputScale: 7,
            outputScale: 7,
            inputBits: inputBits,
            outputBits: outputBits,
            frozen: false,
            batchVerify: batchVerify,
            bindsPayee: false, // set by the registry from the verifier
            verifierVersion: 0, // set by the registry
            circuitId: keccak256(abi.encode(verifier, inputSize, outputSize)),
            fee: BASE_FEE,
            verifyGas: VERIFY_GAS
        });
    }

    /// @dev Setup provenance the tests register circuits with (a made-up ptau hash, dev keys).
    function devSetup() internal pure returns (ModelRegistry.Setup memory) {
        return TestSetup.dev();
    }

    /// @dev Registers `m` under `id` with `devSetup()`.
    function _register(bytes32 id, ModelRegistry.Model memory m) internal {
        registry.register(id, m, devSetup());
    }

    function ints(int256 a, int256 b, int256 c) internal pure returns (int256[] memory v) {
        v = new int256[](3);
        v[0] = a;
        v[1] = b;
        v[2] = c;
    }

    function ints(int256 a, int256 b) internal pure returns (int256[] memory v) {
        v = new int256[](2);
        v[0] = a;
        v[1] = b;
    }

    function defaultInput() internal pure returns (int256[] memory) {
        return ints(-5, 32767, -32768);
    }

    function defaultOutput() internal pure returns (int256[] memory) {
        return ints(7, -9);
    }

    /// @dev The hash verifier's proof of (input, output) made for `payee`.
    function proofOf(int256[] memory input, int256[] memory output, address payee)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encode(keccak256(abi.encode(input, output, payee)));
    }

    function soon() internal view returns (uint64) {
        return uint64(block.timestamp + 1 hours);
    }

    /// @dev alice requests MODEL with `input`, no callback, paying the exact quote.
    function requestAs(address who, int256[] memory input) internal returns (uint256 id) {
        uint256 fee = oracle.quoteFee(MODEL, 0);
        vm.prank(who);
        id = oracle.requestInference{value: fee}(MODEL, input, address(0), 0, soon());
    }

    function request() internal returns (uint256) {
        return requestAs(alice, defaultInput());
    }

    function requestWithCallback(address callback, uint32 gasLimit) internal returns (uint256 id) {
        uint256 fee = oracle.quoteFee(MODEL, gasLimit);
        vm.prank(alice);
        id = oracle.requestInference{value: fee}(MODEL, defaultInput(), callback, gasLimit, soon());
    }

    /// @dev `who` fulfils `id` with the default output and a proof made for itself as payee.
    function fulfillAs(address who, uint256 id) internal {
        int256[] memory out = defaultOutput();
        bytes memory proof = proofOf(oracle.getRequest(id).input, out, who);
        vm.prank(who);
        oracle.fulfill(id, out, who, proof);
    }

    function statusOf(uint256 id) internal view returns (InferenceOracle.Status) {
        return oracle.requestStatus(id);
    }

    function assertStatus(uint256 id, InferenceOracle.Status s, string memory m) internal view {
        assertEq(uint256(oracle.requestStatus(id)), uint256(s), m);
    }
}
