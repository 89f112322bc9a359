// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceVerifier, IBatchInferenceVerifier} from "../../Verifier.sol";
import {FieldEncoding} from "../../verifiers/FieldEncoding.sol";
import {IInferenceConsumer} from "../../IInferenceConsumer.sol";
import {InferenceOracle} from "../../InferenceOracle.sol";

// ============================================================================ verifier doubles

/// @notice TEST DOUBLE. Same proofs as TestHashVerifier
///         (abi.encode(keccak256(abi.encode(in, out, payee)))), binds the payee, but each path
///         can be switched off, so a test can tell which one the oracle used: the oracle calls
///         verifiers with STATICCALL, so a double cannot count in storage. With
///         `acceptSingle = false` only the batch path can fulfil anything.
contract PathSpyVerifier is IInferenceVerifier, IBatchInferenceVerifier {
    bool public acceptSingle = true;
    bool public acceptBatch = true;
    bool public revertBatch;

    /// @notice verifyBatch was configured to revert.
    error BatchBoom();

    /// @notice Switches the paths.
    /// @param single Whether `verify` may accept a proof.
    /// @param batch Whether `verifyBatch` may accept proofs.
    /// @param revertBatch_ Whether `verifyBatch` reverts.
    function configure(bool single, bool batch, bool revertBatch_) external {
        acceptSingle = single;
        acceptBatch = batch;
        revertBatch = revertBatch_;
    }

    /// @notice The proof this double accepts for (input, output, payee).
    /// @param input The model input.
    /// @param output The claimed output.
    /// @param payee The fee recipient.
    /// @return The proof.
    function proofFor(int256[] memory input, int256[] memory output, address payee) public pure returns (bytes memory) {
        return abi.encode(keccak256(abi.encode(input, output, payee)));
    }

    /// @inheritdoc IInferenceVerifier
    function bindsPayee() external pure returns (bool) {
        return true;
    }

    /// @inheritdoc IInferenceVerifier
    function verify(int256[] calldata input, int256[] calldata output, address payee, bytes calldata proof)
        external
        view
        returns (bool)
    {
        if (!acceptSingle) return false;
        return keccak256(proof) == keccak256(proofFor(input, output, payee));
    }

    /// @inheritdoc IBatchInferenceVerifier
    function verifyBatch(
        int256[][] calldata inputs,
        int256[][] calldata outputs,
        address payee,
        bytes[] calldata proofs
    ) external view returns (bool) {
        if (revertBatch) revert BatchBoom();
        if (!acceptBatch) return false;
        for (uint256 i; i < proofs.length; ++i) {
            if (keccak256(proofs[i]) != keccak256(proofFor(inputs[i], outputs[i], payee))) return false;
        }
        return true;
    }
}

/// @notice TEST DOUBLE: like TestHashVerifier, with a salt in every proof
///         (abi.encode(keccak256(abi.encode(salt, in, out, payee)))): verifiers with different
///         salts accept disjoint proofs, as two circuits (an old and an upgraded one) would.
contract SaltedHashVerifier is IInferenceVerifier {
    bytes32 public immutable salt;

    constructor(bytes32 salt_) {
        salt = salt_;
    }

    /// @notice The proof this verifier accepts for (input, output, payee).
    /// @param input The model input.
    /// @param output The claimed output.
    /// @param payee The fee recipient.
    /// @return The proof.
    function proofFor(int256[] memory input, int256[] memory output, address payee) public view returns (bytes memory) {
        return abi.encode(keccak256(abi.encode(salt, input, output, payee)));
    }

    /// @inheritdoc IInferenceVerifier
    function bindsPayee() external pure returns (bool) {
        return true;
    }

    /// @inheritdoc IInferenceVerifier
    function verify(int256[] calldata input, int256[] calldata output, address payee, bytes calldata proof)
        external
        view
        returns (bool)
    {
        return keccak256(proof) == keccak256(proofFor(input, output, payee));
    }
}

/// @notice TEST DOUBLE: a verifier that always reverts with a custom error.
contract RevertingVerifier is IInferenceVerifier {
    /// @notice Always.
    error VerifierExploded(uint256 code);

    /// @inheritdoc IInferenceVerifier
    function bindsPayee() external pure returns (bool) {
        return true;
    }

    /// @inheritdoc IInferenceVerifier
    function verify(int256[] calldata, int256[] calldata, address, bytes calldata) external pure returns (bool) {
        revert VerifierExploded(42);
    }
}

/// @notice A stand-in for a snarkjs verifier with 6 public signals (2 outputs + payee + 3 inputs):
///         `verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[6])`. It accepts exactly the
///         (proof, signals) the test armed it with. Like the real one (docs/toolchain.md "TRAP"), it
///         returns FALSE instead of reverting when it runs short of gas (below `gasNeeded`).
contract Groth16Stub6 {
    bytes32 public expected;
    uint256 public gasNeeded = 220_000;
    uint256 public answer = 1; // what a matching call returns (1 = true)

    /// @notice Arms the stub: only this (proof, signals) will verify.
    function arm(uint256[2] calldata a, uint256[2][2] calldata b, uint256[2] calldata c, uint256[6] calldata pub)
        external
    {
        expected = keccak256(abi.encode(a, b, c, pub));
    }

    /// @notice Gas below which the stub answers 0 (like a pairing precompile short of gas).
    function setGasNeeded(uint256 g) external {
        gasNeeded = g;
    }

    /// @notice What a matching call returns.
    function setAnswer(uint256 v) external {
        answer = v;
    }

    /// @notice The snarkjs entry point for 6 public signals.
    function verifyProof(
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[6] calldata pub
    ) external view returns (uint256) {
        if (gasleft() < gasNeeded) return 0; // the pairing precompile failing short of gas
        // Emulate the pairing cost so a short call really is short.
        uint256 stop = gasleft() - (gasNeeded - 10_000);
        while (gasleft() > stop) {}
        return keccak256(abi.encode(a, b, c, pub)) == expected ? answer : 0;
    }
}

/// @notice Returns 64 bytes (not a single word) for any call: malformed answer.
contract WeirdReturnVerifier {
    fallback() external {
        assembly {
            mstore(0, 1)
            mstore(32, 1)
            return(0, 64)
        }
    }
}

/// @notice A stand-in for an EZKL verifier: `verifyProof(bytes proof, uint256[] instances)`,
///         valid proof = abi.encode(keccak256(abi.encode(instances))), reverts on a bad proof.
contract Halo2Stub {
    error BadProof();

    function proofFor(uint256[] memory instances) public pure returns (bytes memory) {
        return abi.encode(keccak256(abi.encode(instances)));
    }

    function verifyProof(bytes calldata proof, uint256[] calldata instances) external pure returns (bool) {
        if (keccak256(proof) != keccak256(proofFor(instances))) revert BadProof();
        return true;
    }
}

/// @notice Exposes the internal library for tests.
contract FieldEncodingHarness {
    function toField(int256 v) external pure returns (uint256) {
        return FieldEncoding.toField(v);
    }
}

// ============================================================================ consumers

/// @notice Records the gas it had at entry and the result.
contract RecordingConsumer is IInferenceConsumer {
    uint256 public gasAtEntry;
    uint256 public lastRequestId;
    bytes32 public lastModelId;
    int256[] internal _lastOutput;
    uint256 public calls;

    function onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata output) external {
        uint256 g = gasleft();
        gasAtEntry = g;
        lastRequestId = requestId;
        lastModelId = modelId;
        _lastOutput = output;
        ++calls;
    }

    function lastOutput() external view returns (int256[] memory) {
        return _lastOutput;
    }
}

/// @notice Always reverts.
contract RevertingConsumer is IInferenceConsumer {
    error NoThanks();

    function onInferenceResult(uint256, bytes32, int256[] calldata) external pure {
        revert NoThanks();
    }
}

/// @notice Burns every unit of gas it is given.
contract GasBurnerConsumer is IInferenceConsumer {
    function onInferenceResult(uint256, bytes32, int256[] calldata) external pure {
        assembly {
            invalid()
        }
    }
}

/// @notice Returns `size` bytes of return data (a returndata bomb).
contract HugeReturnConsumer {
    uint256 public immutable size;

    constructor(uint256 size_) {
        size = size_;
    }

    fallback() external {
        uint256 s = size;
        assembly {
            return(0, s)
        }
    }
}

/// @notice From its callback, tries fulfill / fulfillBatch (as its own payee) / refund / withdraw
///         (all must fail with ReentrantCall) and requestInference (must work). Records what
///         happened.
contract ReentrantConsumer is IInferenceConsumer {
    InferenceOracle public immutable oracle;
    bytes4 public fulfillErr;
    bytes4 public batchErr;
    bytes4 public refundErr;
    bytes4 public withdrawErr;
    uint256 public newRequestId;
    bool public called;

    // What to request from inside the callback.
    bytes32 public modelId;
    int256[] internal _input;
    uint256 public targetId; // id to try to fulfil / refund
    int256[] internal _targetOutput;
    bytes internal _targetProof; // a VALID proof for targetId and this payee: only the lock may stop it

    constructor(InferenceOracle oracle_) {
        oracle = oracle_;
    }

    receive() external payable {}

    function setup(
        bytes32 modelId_,
        int256[] calldata input,
        uint256 targetId_,
        int256[] calldata targetOutput,
        bytes calldata targetProof
    ) external {
        modelId = modelId_;
        _input = input;
        targetId = targetId_;
        _targetOutput = targetOutput;
        _targetProof = targetProof;
    }

    function onInferenceResult(uint256, bytes32, int256[] calldata) external {
        called = true;
        int256[] memory output = _targetOutput;
        try oracle.fulfill(targetId, output, address(this), _targetProof) {}
        catch (bytes memory e) {
            fulfillErr = bytes4(e);
        }
        uint256[] memory ids = new uint256[](1);
        ids[0] = targetId;
        int256[][] memory outs = new int256[][](1);
        outs[0] = output;
        bytes[] memory prs = new bytes[](1);
        prs[0] = _targetProof;
        try oracle.fulfillBatch(ids, outs, address(this), prs) {}
        catch (bytes memory e) {
            batchErr = bytes4(e);
        }
        try oracle.refund(targetId) {}
        catch (bytes memory e) {
            refundErr = bytes4(e);
        }
        try oracle.withdraw() {}
        catch (bytes memory e) {
            withdrawErr = bytes4(e);
        }
        uint256 fee = oracle.quoteFee(modelId, 0);
        newRequestId =
            oracle.requestInference{value: fee}(modelId, _input, address(0), 0, uint64(block.timestamp + 1 hours));
    }
}

// ============================================================================ accounts

/// @notice An account (requester / relayer) that rejects plain ETH transfers.
contract EthRejecter {
    InferenceOracle public immutable oracle;

    constructor(InferenceOracle oracle_) {
        oracle = oracle_;
    }

    function request(bytes32 modelId, int256[] calldata input, uint64 deadline) external payable returns (uint256) {
        return oracle.requestInference{value: msg.value}(modelId, input, address(0), 0, deadline);
    }

    /// @notice Fulfils `id` naming itself as payee (`proof` must be made for this address).
    function fulfill(uint256 id, int256[] calldata output, bytes calldata proof) external {
        oracle.fulfill(id, output, address(this), proof);
    }

    function withdraw() external {
        oracle.withdraw();
    }

    receive() external payable {
        revert("no ETH");
    }
}

/// @notice A requester whose receive() answers a refund with a huge amount of return data.
contract ReturnBombRequester {
    InferenceOracle public immutable oracle;
    uint256 public immutable size;

    constructor(InferenceOracle oracle_, uint256 size_) {
        oracle = oracle_;
        size = size_;
    }

    function request(bytes32 modelId, int256[] calldata input, uint64 deadline) external payable returns (uint256) {
        return oracle.requestInference{value: msg.value}(modelId, input, address(0), 0, deadline);
    }

    function withdraw() external {
        oracle.withdraw();
    }

    /// @dev With size == 0: adaptive, returns as much as its own gas can pay for (memory cost
    ///      3w + w^2/512 for w words), so a caller copying it would need about as much again.
    receive() external payable {
        uint256 s = size;
        if (s == 0) {
            uint256 g = gasleft() - 20_000;
            uint256 w = _sqrt(512 * g + 768 * 768) - 768; // solves 3w + w^2/512 = g
            s = w * 32;
        }
        assembly {
            return(0, s)
        }
    }

    function _sqrt(uint256 x) private pure returns (uint256 y) {
        y = x;
        uint256 z = (x + 1) / 2;
        while (z < y) {
            y = z;
            z = (x / z + z) / 2;
        }
    }
}

/// @notice A requester whose receive() tries to re-enter refund and withdraw.
contract ReentrantRequester {
    InferenceOracle public immutable oracle;
    bytes4 public refundErr;
    bytes4 public withdrawErr;
    uint256 public received;

    constructor(InferenceOracle oracle_) {
        oracle = oracle_;
    }

    function request(bytes32 modelId, int256[] calldata input, uint64 deadline) external payable returns (uint256) {
        return oracle.requestInference{value: msg.value}(modelId, input, address(0), 0, deadline);
    }

    receive() external payable {
        received += msg.value;
        try oracle.refund(1) {}
        catch (bytes memory e) {
            refundErr = bytes4(e);
        }
        try oracle.withdraw() {}
        catch (bytes memory e) {
            withdrawErr = bytes4(e);
        }
    }
}
