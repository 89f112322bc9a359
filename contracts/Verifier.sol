// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

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
    ) external view returns (bool valid);
}
