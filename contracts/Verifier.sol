// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Decimal} from "./utils/Decimal.sol";

/// @title IInferenceVerifier
/// @notice The one interface the oracle calls to check a proof of inference, whatever the proof
///         system. The caller passes the request's own input and the claimed output: the
///         adapter rebuilds the public signals from them, so a proof made for another input or
///         another output can never pass.
interface IInferenceVerifier {
    /// @notice Checks `proof` for the inference `input` -> `output` (fixed-point integers),
    ///         made for `payee` when the adapter binds payees.
    /// @param input The model input at the registered input scale.
    /// @param output The claimed model output at the registered output scale.
    /// @param payee The fee recipient the proof names (ignored when `bindsPayee()` is false).
    /// @param proof The proof in the adapter's encoding.
    /// @return valid True only when the proof verifies for exactly these public signals.
    function verify(int256[] calldata input, int256[] calldata output, address payee, bytes calldata proof)
        external
        view
        returns (bool valid);

    /// @notice Whether `verify` binds the payee: a proof made for one payee never verifies for
    ///         another. When false, the oracle protects fees with commit-reveal instead.
    /// @return True when the payee is a public signal of the proof.
    function bindsPayee() external view returns (bool);
}

/// @title IBatchInferenceVerifier
/// @notice Optional: verifies several proofs of the same circuit at once, cheaper than one by
///         one. All-or-nothing: false when any proof in the batch is invalid.
interface IBatchInferenceVerifier {
    /// @notice Checks every (inputs[i], outputs[i], payee, proofs[i]) together.
    /// @param inputs The requests' inputs.
    /// @param outputs The claimed outputs.
    /// @param payee The fee recipient every proof names.
    /// @param proofs The proofs, one per entry.
    /// @return valid True only when every proof is valid.
    function verifyBatch(
        int256[][] calldata inputs,
        int256[][] calldata outputs,
        address payee,
        bytes[] calldata proofs
    )
        external
        view
        returns (bool valid);
}

/// @title FieldEncoding
/// @notice Signed fixed-point integers to BN254 scalar-field elements: v >= 0 maps to v,
///         v < 0 maps to r - |v| (how circuits represent negative numbers).
library FieldEncoding {
    /// @dev The BN254 scalar field order (Groth16 public signals and Halo2-KZG instances).
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice |value| is not below r/2, so its field encoding would collide with another value's.
    error ValueOutsideField(int256 value);

    function toField(int256 v) internal pure returns (uint256) {
        // |v| must be below r/2, else the encoding of v and of some other value would collide.
        if (v >= 0) {
            if (uint256(v) > R / 2) revert ValueOutsideField(v);
            return uint256(v);
        }
        if (v == type(int256).min || uint256(-v) > R / 2) revert ValueOutsideField(v);
        return R - uint256(-v);
    }
}

/// @title VerifierAdapterBase
/// @notice What both adapters share: signal counts and a gas floor checked before the call, so
///         a verifier that fails *open to false* when short of gas (snarkjs' pairing check does)
///         reports that as a revert, never as "invalid proof".
abstract contract VerifierAdapterBase is IInferenceVerifier {
    address public immutable verifier;
    uint256 public immutable numInputs;
    uint256 public immutable numOutputs;
    /// @notice Gas that must be left before calling the verifier.
    uint256 public immutable minVerifyGas;

    /// @notice The input or output length is not the circuit's.
    error SignalCountMismatch(uint256 expectedInputs, uint256 gotInputs, uint256 expectedOutputs, uint256 gotOutputs);
    /// @notice Less gas is left than a verification needs (a snarkjs verifier would say "false").
    error InsufficientVerificationGas(uint256 required, uint256 available);
    /// @notice The verifier address has no code.
    error NoVerifierCode(address verifier);

    constructor(address verifier_, uint256 numInputs_, uint256 numOutputs_, uint256 minVerifyGas_) {
        if (verifier_.code.length == 0) revert NoVerifierCode(verifier_);
        verifier = verifier_;
        numInputs = numInputs_;
        numOutputs = numOutputs_;
        minVerifyGas = minVerifyGas_;
    }

    function _checkSizes(int256[] calldata input, int256[] calldata output) internal view {
        if (input.length != numInputs || output.length != numOutputs) {
            revert SignalCountMismatch(numInputs, input.length, numOutputs, output.length);
        }
    }

    /// @dev Static call with the gas floor; a revert or malformed answer counts as invalid.
    ///      Exactly `minVerifyGas` is forwarded: a malformed proof makes a failing precompile
    ///      burn all the gas it is given, and inside a batch that must not starve the others.
    function _call(bytes memory data) internal view returns (bool) {
        uint256 required = (minVerifyGas * 64) / 63 + 5_000;
        uint256 available = gasleft();
        if (available < required) revert InsufficientVerificationGas(required, available);
        (bool ok, bytes memory ret) = verifier.staticcall{gas: minVerifyGas}(data);
        if (!ok || ret.length != 32) return false;
        return abi.decode(ret, (uint256)) == 1;
    }
}

/// @title Groth16VerifierAdapter
/// @notice Calls a verifier generated by snarkjs (`verifyProof(uint[2],uint[2][2],uint[2],uint[N])`).
///         Proof encoding: abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c), 256 bytes.
///         Public signals in circom's order: outputs, the payee (a 160-bit value the circuit
///         decomposes into bits, so it is bound), then inputs.
contract Groth16VerifierAdapter is VerifierAdapterBase {
    /// @dev Execution gas of a snarkjs verifyProof is ~190 k + ~7 k per public signal (TOOLCHAIN.md).
    uint256 public constant BASE_GAS = 230_000;
    uint256 public constant GAS_PER_SIGNAL = 8_000;
    uint256 public constant PROOF_LENGTH = 256;

    bytes4 public immutable selector;

    error MalformedProof(uint256 length);

    /// @param verifier_ The snarkjs-generated verifier.
    /// @param numInputs_ Model input size.
    /// @param numOutputs_ Model output size.
    constructor(address verifier_, uint256 numInputs_, uint256 numOutputs_)
        VerifierAdapterBase(
            verifier_, numInputs_, numOutputs_, BASE_GAS + GAS_PER_SIGNAL * (numInputs_ + numOutputs_ + 1)
        )
    {
        // The selector depends on the number of public signals (a fixed-size array in the ABI).
        selector = bytes4(
            keccak256(
                abi.encodePacked(
                    "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[",
                    Decimal.toString(numInputs_ + numOutputs_ + 1),
                    "])"
                )
            )
        );
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
        _checkSizes(input, output);
        if (proof.length != PROOF_LENGTH) revert MalformedProof(proof.length);
        uint256 n = output.length + 1 + input.length;
        bytes memory data = new bytes(4 + PROOF_LENGTH + 32 * n);
        bytes4 sel = selector;
        assembly {
            let p := add(data, 32)
            mstore(p, sel)
            calldatacopy(add(p, 4), proof.offset, 256)
        }
        uint256 pos = 4 + PROOF_LENGTH + 32; // +32: skip the bytes length word
        for (uint256 i; i < output.length; ++i) {
            uint256 f = FieldEncoding.toField(output[i]);
            assembly {
                mstore(add(data, pos), f)
            }
            pos += 32;
        }
        assembly {
            mstore(add(data, pos), payee)
        }
        pos += 32;
        for (uint256 i; i < input.length; ++i) {
            uint256 f = FieldEncoding.toField(input[i]);
            assembly {
                mstore(add(data, pos), f)
            }
            pos += 32;
        }
        return _call(data);
    }
}

/// @title Halo2VerifierAdapter
/// @notice Calls a verifier generated by EZKL (`verifyProof(bytes proof, uint256[] instances)`).
///         Proof encoding: EZKL's raw proof bytes. Instances: inputs first, then outputs.
///         EZKL verifiers revert on a bad proof; the adapter turns that into `false`.
///         The circuit has no payee instance (EZKL generates it from the ONNX graph alone), so
///         `bindsPayee()` is false and the oracle requires commit-reveal for these models.
contract Halo2VerifierAdapter is VerifierAdapterBase {
    /// @param verifier_ The EZKL-generated verifier.
    /// @param numInputs_ Model input size.
    /// @param numOutputs_ Model output size.
    /// @param minVerifyGas_ Gas floor for one verification (measured per circuit at compile time).
    constructor(address verifier_, uint256 numInputs_, uint256 numOutputs_, uint256 minVerifyGas_)
        VerifierAdapterBase(verifier_, numInputs_, numOutputs_, minVerifyGas_)
    {}

    /// @inheritdoc IInferenceVerifier
    function bindsPayee() external pure returns (bool) {
        return false;
    }

    /// @inheritdoc IInferenceVerifier
    function verify(int256[] calldata input, int256[] calldata output, address, bytes calldata proof)
        external
        view
        returns (bool)
    {
        _checkSizes(input, output);
        uint256[] memory instances = new uint256[](input.length + output.length);
        for (uint256 i; i < input.length; ++i) {
            instances[i] = FieldEncoding.toField(input[i]);
        }
        for (uint256 i; i < output.length; ++i) {
            instances[input.length + i] = FieldEncoding.toField(output[i]);
        }
        return _call(abi.encodeWithSignature("verifyProof(bytes,uint256[])", proof, instances));
    }
}
