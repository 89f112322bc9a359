// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IBatchInferenceVerifier} from "../Verifier.sol";
import {FieldEncoding} from "./FieldEncoding.sol";
import {Groth16ProofErrors} from "./Groth16ProofErrors.sol";
import {Bn254} from "./Bn254.sol";

/// @title Groth16BatchVerifier
/// @notice Verifies a batch of Groth16 proofs of the same circuit with one pairing check, using a
///         random linear combination (Bellare–Garay–Rabin small-exponent batching). One proof
///         costs 4 pairings; k proofs cost k + 3 pairings and the public-input multi-scalar
///         multiplication is done once for the whole batch.
/// @dev Abstract: the concrete adapter says how an entry's (input, output) become its public
///      signals (`_entrySignals`), so plain and packed signal layouts share this code.
///      The batch path needs the verification key itself, stored as contract code (cheap to
///      read). `vkHash` lets anyone check it is the key of the registered circuit: the deploy
///      tool derives both from the same verification_key.json, and the tests check that the
///      batch path and the snarkjs path agree on real proofs.
///
///      Randomness: r_i = H(transcript, i) where the transcript hashes every proof and public
///      signal of the batch (Fiat-Shamir), so a prover cannot choose proofs after seeing r.
abstract contract Groth16BatchVerifier is IBatchInferenceVerifier {
    /// @dev Base field of BN254 (coordinates).
    uint256 private constant Q = Bn254.Q;
    uint256 private constant R = FieldEncoding.R;

    /// @notice Code address holding the verification key words (see `_vkWords` layout).
    address public immutable vkPointer;
    /// @notice keccak256 of the verification key words.
    bytes32 public immutable vkHash;
    /// @dev Public signals per proof (the key has one IC point more).
    uint256 private immutable _batchSignals;

    /// @notice The verification key does not have `expected` words (14 + 2 * (signals + 1)), or
    ///         could not be stored.
    error InvalidVerificationKey(uint256 words, uint256 expected);
    /// @notice The batch's inputs, outputs and proofs differ in length.
    error BatchLengthMismatch(uint256 inputs, uint256 outputs, uint256 proofs);
    /// @notice A batch needs at least one proof.
    error EmptyBatch();

    /// @param numSignals Public signals per proof.
    /// @param vk Verification key words: alpha1 (x, y), beta2, gamma2, delta2 (each x_im, x_re,
    ///        y_im, y_re: EIP-197 order), then IC[0..n] (x, y) with n = numSignals.
    constructor(uint256 numSignals, uint256[] memory vk) {
        uint256 expected = 14 + 2 * (numSignals + 1);
        if (vk.length != expected) revert InvalidVerificationKey(vk.length, expected);
        _batchSignals = numSignals;
        bytes memory words = abi.encodePacked(vk);
        vkHash = keccak256(words);
        // Runtime code = 0x00 (STOP, so the data can never be executed) ++ words.
        bytes memory init = abi.encodePacked(hex"61", uint16(words.length + 1), hex"80600a3d393df300", words);
        address ptr;
        assembly {
            ptr := create(0, add(init, 32), mload(init))
        }
        if (ptr == address(0)) revert InvalidVerificationKey(vk.length, expected);
        vkPointer = ptr;
    }

    /// @dev Running sums of the batch: the pairing input, sum r_i, sum r_i s_ij, sum r_i C_i.
    struct Acc {
        uint256[] pairing;
        uint256 rSum;
        uint256[] coeff;
        uint256[2] c;
    }

    /// @inheritdoc IBatchInferenceVerifier
    function verifyBatch(
        int256[][] calldata inputs,
        int256[][] calldata outputs,
        address payee,
        bytes[] calldata proofs
    ) external view returns (bool) {
        uint256 k = proofs.length;
        if (k == 0) revert EmptyBatch();
        if (inputs.length != k || outputs.length != k) revert BatchLengthMismatch(inputs.length, outputs.length, k);
        uint256[][] memory signals = _allSignals(inputs, outputs, payee, proofs);
        Acc memory acc = _accumulate(signals, proofs);
        return _finish(acc, k);
    }

    /// @dev Public signals of every entry, each checked by the concrete adapter.
    function _allSignals(
        int256[][] calldata inputs,
        int256[][] calldata outputs,
        address payee,
        bytes[] calldata proofs
    ) private view returns (uint256[][] memory signals) {
        signals = new uint256[][](proofs.length);
        for (uint256 i; i < proofs.length; ++i) {
            signals[i] = _entrySignals(inputs[i], outputs[i], payee, proofs[i]);
        }
    }

    /// @dev One entry's public signals as field elements, in the circuit's order; reverts when
    ///      the sizes, the proof length or a value is not acceptable.
    function _entrySignals(int256[] calldata input, int256[] calldata output, address payee, bytes calldata proof)
        internal
        view
        virtual
        returns (uint256[] memory);

    /// @dev Pairing input: k pairs (-r_i A_i, B_i), then three pairs filled by `_finish`.
    function _accumulate(uint256[][] memory signals, bytes[] calldata proofs) private view returns (Acc memory acc) {
        uint256 k = proofs.length;
        uint256 n = _batchSignals;
        bytes32 transcript = keccak256(abi.encode(vkHash, signals, proofs));
        acc.pairing = new uint256[](6 * (k + 3));
        acc.coeff = new uint256[](n);
        for (uint256 i; i < k; ++i) {
            uint256 r = uint256(keccak256(abi.encode(transcript, i))) % R;
            if (r == 0) r = 1;
            acc.rSum = addmod(acc.rSum, r, R);
            uint256[] memory s = signals[i];
            for (uint256 j; j < n; ++j) {
                acc.coeff[j] = addmod(acc.coeff[j], mulmod(r, s[j], R), R);
            }
            acc.c = _ecAdd(acc.c, _putProof(acc.pairing, i, proofs[i], r));
        }
    }

    /// @dev Adds (sum r_i alpha, beta), (sum r_i vk_x_i, gamma), (sum r_i C_i, delta) and runs
    ///      the pairing check. sum r_i vk_x_i = rSum * IC0 + sum_j coeff_j * IC_{j+1}.
    function _finish(Acc memory acc, uint256 k) private view returns (bool) {
        uint256 n = acc.coeff.length;
        uint256[] memory vk = _vkWords(14 + 2 * (n + 1));
        uint256[2] memory x = _ecMul([vk[14], vk[15]], acc.rSum);
        for (uint256 j; j < n; ++j) {
            if (acc.coeff[j] != 0) x = _ecAdd(x, _ecMul([vk[16 + 2 * j], vk[17 + 2 * j]], acc.coeff[j]));
        }
        _putPair(acc.pairing, k, _ecMul([vk[0], vk[1]], acc.rSum), vk, 2);
        _putPair(acc.pairing, k + 1, x, vk, 6);
        _putPair(acc.pairing, k + 2, acc.c, vk, 10);
        return _pairing(acc.pairing);
    }

    /// @notice The verification key words, as passed to the constructor.
    /// @return The words.
    function verificationKey() external view returns (uint256[] memory) {
        return _vkWords(14 + 2 * (_batchSignals + 1));
    }

    /// @dev Writes the pair (-r A, B) at position i; returns r C.
    function _putProof(uint256[] memory pairing, uint256 i, bytes calldata proof, uint256 r)
        private
        view
        returns (uint256[2] memory)
    {
        (uint256[2] memory a, uint256[4] memory b, uint256[2] memory c) = _proofPoints(proof);
        uint256[2] memory ra = _ecMul(a, r);
        uint256 o = 6 * i;
        pairing[o] = ra[0];
        pairing[o + 1] = ra[1] == 0 ? 0 : Q - ra[1];
        pairing[o + 2] = b[0];
        pairing[o + 3] = b[1];
        pairing[o + 4] = b[2];
        pairing[o + 5] = b[3];
        return _ecMul(c, r);
    }

    function _proofPoints(bytes calldata proof)
        private
        pure
        returns (uint256[2] memory a, uint256[4] memory b, uint256[2] memory c)
    {
        (a, b, c) = abi.decode(proof, (uint256[2], uint256[4], uint256[2]));
        // Canonical coordinates only: the precompiles reject points not on the curve, this
        // rejects the same point written with an out-of-range coordinate.
        if (a[0] >= Q || a[1] >= Q || c[0] >= Q || c[1] >= Q) revert Groth16ProofErrors.MalformedProof(proof.length);
        for (uint256 t; t < 4; ++t) {
            if (b[t] >= Q) revert Groth16ProofErrors.MalformedProof(proof.length);
        }
    }

    function _putPair(uint256[] memory pairing, uint256 slot, uint256[2] memory g1, uint256[] memory vk, uint256 g2At)
        private
        pure
    {
        uint256 o = 6 * slot;
        pairing[o] = g1[0];
        pairing[o + 1] = g1[1];
        pairing[o + 2] = vk[g2At];
        pairing[o + 3] = vk[g2At + 1];
        pairing[o + 4] = vk[g2At + 2];
        pairing[o + 5] = vk[g2At + 3];
    }

    function _vkWords(uint256 count) private view returns (uint256[] memory vk) {
        vk = new uint256[](count);
        address ptr = vkPointer;
        assembly {
            extcodecopy(ptr, add(vk, 32), 1, mul(count, 32))
        }
    }

    /// @dev Precompile calls with bounded gas (Bn254): a point off the curve reverts MalformedProof.
    function _ecAdd(uint256[2] memory p1, uint256[2] memory p2) private view returns (uint256[2] memory r) {
        (r[0], r[1]) = Bn254.add(p1[0], p1[1], p2[0], p2[1]);
    }

    function _ecMul(uint256[2] memory p, uint256 s) private view returns (uint256[2] memory r) {
        (r[0], r[1]) = Bn254.mul(p[0], p[1], s);
    }

    /// @dev A failed precompile call (invalid G2 point, or out of gas) is "not valid": the
    ///      oracle then falls back to verifying one by one, where the gas floor applies.
    function _pairing(uint256[] memory words) private view returns (bool) {
        return Bn254.pairing(words);
    }
}
