// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceVerifier} from "../Verifier.sol";

/// @title VerifierAdapterBase
/// @notice What both adapters share: signal counts and a gas floor checked before the call, so
///         a verifier that fails *open to false* when short of gas (snarkjs' pairing check does)
///         reports that as a revert, never as "invalid proof".
abstract contract VerifierAdapterBase is IInferenceVerifier {
    /// @notice The generated verifier (snarkjs or EZKL) this adapter calls.
    address public immutable verifier;
    /// @notice Model input size (values).
    uint256 public immutable numInputs;
    /// @notice Model output size (values).
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
