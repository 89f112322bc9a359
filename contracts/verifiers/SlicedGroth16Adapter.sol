// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceVerifier, IBatchInferenceVerifier} from "../Verifier.sol";
import {Bn254} from "./Bn254.sol";
import {SignalPacking} from "./SignalPacking.sol";

/// @title SlicedGroth16Adapter
/// @notice Verifies a SLICED model: k Groth16 circuits (slices) that together compute the model,
///         chained by Poseidon commitments to the activations at their boundaries
///         (docs/sliced-models.md), with ONE pairing check for all k proofs: 2k + 2 pairings
///         instead of 4k.
///
///         Public signals, rebuilt here from the request (snarkjs order, outputs first):
///         - slice 0:         [c_1, input words...]
///         - slice j (middle): [c_{j+1}, c_j]
///         - slice k-1:       [output words... (payee above the values of the last one, or a word
///                            of its own after them), c_{k-1}]
///         Input and output words are packed as for `PackedGroth16Adapter` (8 inputs of 12 bits:
///         one word). c_j commits to the activation between slice j-1 and slice j; slice j-1
///         proves it hashed its output into c_j, slice j proves it hashed its input into c_j. So
///         the k proofs verify for one list (c_1..c_{k-1}) only if every slice ran on the
///         activation the previous one produced (Poseidon collision resistance), starting from
///         the request's input and ending at the claimed output, for the named payee: one
///         computation of the whole model. The intermediate activations never go on-chain.
///
///         Proof encoding: abi.encode(uint256[] commitments /* c_1..c_{k-1} */,
///         uint256[8][] proofs /* slice 0..k-1: a.x, a.y, b.x_im, b.x_re, b.y_im, b.y_re, c.x,
///         c.y, the words of the Groth16 adapters' proof */), canonical ABI encoding only.
///
/// @dev Batched check. Slice j's Groth16 equation is e(A_j, B_j) = e(alpha, beta) *
///      e(X_j, gamma) * e(C_j, delta_j), X_j = IC_j[0] + sum_i s_ji IC_j[i+1]. All slices come
///      from the same powers-of-tau, so alpha, beta and gamma are shared (checked at
///      construction); delta_j and IC_j are the slice's own. Let E_j in G_T be
///      e(-A_j, B_j) e(alpha, beta) e(X_j, gamma) e(C_j, delta_j): slice j verifies iff E_j = 1.
///      With scalars r_j, bilinearity gives
///        prod_j E_j^{r_j} = prod_j e(-r_j A_j, B_j) * e(sum r_j alpha, beta)
///                           * e(sum_j r_j X_j, gamma) * prod_j e(r_j C_j, delta_j),
///      2k + 2 pairings in one precompile call. Soundness: G_T has prime order R, so write
///      E_j = g^{e_j}; the check passes iff sum_j r_j e_j = 0 (mod R). r_0 = 1 and, for j > 0,
///      r_j = keccak256(transcript, entry, j) mod R (never 0), where the transcript hashes the
///      verification key, the input and output words (with the payee) and the whole proof
///      bytes (every commitment and every A, B, C): every e_j is fixed before the r_j are known
///      (Fiat-Shamir). If only e_0 != 0 the check fails outright (r_0 = 1); otherwise, for any
///      fixed e, at most one value of some r_j (j > 0) satisfies the equation, so each attempt
///      (a new transcript, a new hash) passes with probability about 1/R ~ 2^-254 (the mod-R
///      reduction of a 256-bit hash skews this by a factor below 6). The precompiles also refuse
///      points off the curve (and G2 points outside the subgroup), and every coordinate and
///      commitment must be canonical (< Q, < R), so each proof has exactly one encoding.
///
///      `verifyBatch` extends this to n requests of the model: the (C, delta_j) terms of slice j
///      merge across requests, so n requests cost n*k + k + 2 pairings instead of n * (2k + 2).
///
///      The verification keys are stored as contract code (cheap to read), write-once at
///      construction; `vkHash` lets anyone check them against the slices' verification_key.json.
contract SlicedGroth16Adapter is IInferenceVerifier, IBatchInferenceVerifier {
    /// @notice Words of one slice proof: A (2), B (4), C (2).
    uint256 public constant PROOF_WORDS = 8;
    /// @notice Words of alpha, beta and gamma at the start of the stored key.
    uint256 private constant SHARED_WORDS = 10;
    /// @notice Gas of verify besides the precompiles (decoding, packing, hashing, memory), with
    ///         margin: BASE_GAS + GAS_PER_SLICE * k + GAS_PER_VALUE * values; part of `minVerifyGas`.
    uint256 public constant BASE_GAS = 30_000;
    /// @notice Per-slice part of the gas besides the precompiles.
    uint256 public constant GAS_PER_SLICE = 8_000;
    /// @notice Per input and output value: range check and packing (~450 measured), with margin.
    uint256 public constant GAS_PER_VALUE = 600;

    /// @notice Number of slices k (>= 2).
    uint256 public immutable numSlices;
    /// @notice Model input size (values).
    uint256 public immutable numInputs;
    /// @notice Model output size (values).
    uint256 public immutable numOutputs;
    /// @notice Signed bit width of each input value.
    uint256 public immutable inputBits;
    /// @notice Signed bit width of each output value.
    uint256 public immutable outputBits;
    /// @notice Words holding the input values (public inputs of slice 0).
    uint256 public immutable inputWords;
    /// @notice Words holding the output values (public outputs of the last slice).
    uint256 public immutable outputWords;
    /// @notice True when the payee is a word of its own after the output words.
    bool public immutable payeeOwnWord;
    /// @notice Bit offset of the payee in the last output word; 0 when it has a word of its own.
    uint256 public immutable payeeShift;
    /// @notice Code address holding the verification key words (layout: alpha, beta, gamma, then
    ///         per slice delta_j and IC_j).
    address public immutable vkPointer;
    /// @notice keccak256 of the stored verification key words.
    bytes32 public immutable vkHash;
    /// @notice Gas `verify` needs: it reverts with InsufficientVerificationGas below this, so a
    ///         short gas limit is never reported as an invalid proof.
    uint256 public immutable minVerifyGas;
    /// @dev Number of words of the stored key.
    uint256 private immutable _vkWords;
    /// @dev ecMul calls per request (the first request of a check saves 3: r_0 = 1).
    uint256 private immutable _ecMulsPerEntry;
    /// @dev Gas per request besides the precompiles (decoding, packing, bookkeeping).
    uint256 private immutable _perEntryGas;

    /// @notice A sliced model needs at least 2 slices (one slice is a plain packed circuit).
    error TooFewSlices(uint256 slices);
    /// @notice Slice `slice`'s key does not have `expected` words (14 + 2 * (signals + 1)).
    error InvalidVerificationKey(uint256 slice, uint256 words, uint256 expected);
    /// @notice Slice `slice`'s alpha, beta or gamma differ from slice 0's: not the same ceremony,
    ///         so its pairing check cannot be combined with the others.
    error SetupMismatch(uint256 slice);
    /// @notice The keys could not be stored as code (more than the 24,576 bytes of EIP-170).
    error VerificationKeyNotStored();
    /// @notice The input or output length is not the model's.
    error SignalCountMismatch(uint256 expectedInputs, uint256 gotInputs, uint256 expectedOutputs, uint256 gotOutputs);
    /// @notice The proof bytes are not the canonical encoding of (uint256[], uint256[8][]), or a
    ///         point in them is not on the curve (length 0) or has a coordinate >= the base field.
    error MalformedProof(uint256 length);
    /// @notice The proof does not carry k - 1 commitments and k slice proofs.
    error SliceCountMismatch(uint256 expectedCommitments, uint256 commitments, uint256 expectedProofs, uint256 proofs);
    /// @notice Commitment c_{index+1} is not a canonical field element (>= the BN254 scalar order).
    error NonCanonicalCommitment(uint256 index, uint256 value);
    /// @notice input[index] is outside [-2^(inputBits-1), 2^(inputBits-1)).
    error PackedInputOutOfRange(uint256 index, int256 value);
    /// @notice output[index] is outside [-2^(outputBits-1), 2^(outputBits-1)).
    error PackedOutputOutOfRange(uint256 index, int256 value);
    /// @notice Less gas is left than the verification needs (the pairing precompile would fail).
    error InsufficientVerificationGas(uint256 required, uint256 available);
    /// @notice There is no slice `slice` (the model has `slices`).
    error NoSuchSlice(uint256 slice, uint256 slices);
    /// @notice A batch needs at least one entry, and as many inputs and outputs as proofs.
    error BatchLengthMismatch(uint256 inputs, uint256 outputs, uint256 proofs);

    /// @dev One request's packed words and where its slice proofs start in the proof bytes.
    struct Entry {
        uint256[] inWords;
        uint256[] outWords; // with the payee
        uint256[] commitments; // c_1 .. c_{k-1}
        uint256 proofsAt; // byte offset of proof 0 in the proof bytes
        bytes32 hash; // keccak256(input words, output words, proof bytes)
    }

    /// @dev Running sums: pairing input, per-slice sum r C, sum r X, sum r.
    struct Acc {
        uint256[] pairing;
        uint256[2][] c;
        uint256[2] x;
        uint256 rSum;
    }

    /// @param numInputs_ Model input size (values).
    /// @param numOutputs_ Model output size (values).
    /// @param inputBits_ Signed bit width of each input (manifest input_bits).
    /// @param outputBits_ Signed bit width of each output (manifest output_bits).
    /// @param vks Per slice, in order, its verification key words (oracle/chain/vk.py): alpha1,
    ///        beta2, gamma2, delta2 (G2 as x_im, x_re, y_im, y_re), then IC[0..n] for its n public
    ///        signals (slice 0: 1 + input words; middle: 2; last: output words (+ 1 payee word) + 1).
    constructor(
        uint256 numInputs_,
        uint256 numOutputs_,
        uint256 inputBits_,
        uint256 outputBits_,
        uint256[][] memory vks
    ) {
        uint256 k = vks.length;
        if (k < 2) revert TooFewSlices(k);
        numSlices = k;
        numInputs = numInputs_;
        numOutputs = numOutputs_;
        inputBits = inputBits_;
        outputBits = outputBits_;
        uint256 inW = SignalPacking.words(numInputs_, inputBits_);
        uint256 outW = SignalPacking.words(numOutputs_, outputBits_);
        bool own = SignalPacking.payeeOwnWord(numOutputs_, outputBits_);
        inputWords = inW;
        outputWords = outW;
        payeeOwnWord = own;
        payeeShift = own ? 0 : SignalPacking.lastWordBits(numOutputs_, outputBits_);
        bytes memory words = _packKeys(vks, inW, outW + (own ? 1 : 0));
        _vkWords = words.length / 32;
        vkHash = keccak256(words);
        vkPointer = _store(words);
        // -rA, rC and r IC[0] for slices 1..k-1, sum r * alpha, and one per public signal.
        uint256 ecMuls = 3 * (k - 1) + 1 + (1 + inW) + 2 * (k - 2) + (outW + (own ? 1 : 0) + 1);
        // ecMul 6,000 + ecAdd 150 each (EIP-1108), the pairing, and the rest (measured ~20 k +
        // ~7 k per slice; SlicedAdapter.t.sol checks the floor covers a real verification).
        _perEntryGas = BASE_GAS + GAS_PER_SLICE * k + GAS_PER_VALUE * (numInputs_ + numOutputs_);
        minVerifyGas = Bn254.pairingGas(2 * k + 2) + 6_150 * ecMuls + _perEntryGas;
        _ecMulsPerEntry = ecMuls + 3;
    }

    /// @dev The keys' words in storage layout, after checking sizes and the shared setup.
    function _packKeys(uint256[][] memory vks, uint256 inW, uint256 outW) private pure returns (bytes memory words) {
        uint256 k = vks.length;
        uint256[] memory v0 = vks[0];
        words = abi.encodePacked(_slice(v0, 0, SHARED_WORDS));
        for (uint256 j; j < k; ++j) {
            uint256[] memory v = vks[j];
            uint256 expected = 14 + 2 * (_signalsOf(j, k, inW, outW) + 1);
            if (v.length != expected) revert InvalidVerificationKey(j, v.length, expected);
            for (uint256 t; t < SHARED_WORDS; ++t) {
                if (v[t] != v0[t]) revert SetupMismatch(j);
            }
            words = abi.encodePacked(words, _slice(v, SHARED_WORDS, v.length));
        }
    }

    function _slice(uint256[] memory v, uint256 from, uint256 to) private pure returns (uint256[] memory out) {
        out = new uint256[](to - from);
        for (uint256 i = from; i < to; ++i) {
            out[i - from] = v[i];
        }
    }

    /// @dev Deploys `words` as the runtime code 0x00 (STOP, never executable) ++ words. At most
    ///      24,576 bytes of code (EIP-170): about 75 slices of 2 public signals.
    function _store(bytes memory words) private returns (address ptr) {
        if (words.length + 1 > 24_576) revert VerificationKeyNotStored();
        bytes memory init = abi.encodePacked(hex"61", uint16(words.length + 1), hex"80600a3d393df300", words);
        assembly {
            ptr := create(0, add(init, 32), mload(init))
        }
        if (ptr == address(0)) revert VerificationKeyNotStored();
    }

    /// @dev Public signals of slice j of k.
    function _signalsOf(uint256 j, uint256 k, uint256 inW, uint256 outW) private pure returns (uint256) {
        if (j == 0) return 1 + inW;
        if (j < k - 1) return 2;
        return outW + 1;
    }

    // --- views -------------------------------------------------------------------------------

    /// @inheritdoc IInferenceVerifier
    function bindsPayee() external pure returns (bool) {
        return true;
    }

    /// @notice Number of public signals of slice `slice`.
    /// @param slice The slice index (0 .. k-1).
    /// @return The count (its key has one IC point more).
    function numSignals(uint256 slice) public view returns (uint256) {
        if (slice >= numSlices) revert NoSuchSlice(slice, numSlices);
        return _signalsOf(slice, numSlices, inputWords, outputWords + (payeeOwnWord ? 1 : 0));
    }

    /// @notice Gas `verifyBatch` needs for n requests (it reverts with
    ///         InsufficientVerificationGas below this): n*k + k + 2 pairings and the ecMuls.
    /// @param n Number of requests in the batch.
    /// @return The gas floor.
    function batchVerifyGas(uint256 n) public view returns (uint256) {
        uint256 k = numSlices;
        return Bn254.pairingGas(n * k + k + 2) + n * (6_150 * _ecMulsPerEntry + _perEntryGas);
    }

    /// @notice Slice `slice`'s verification key in the constructor's word layout.
    /// @param slice The slice index (0 .. k-1).
    /// @return vk alpha1, beta2, gamma2, delta2, IC[0..n].
    function verificationKey(uint256 slice) external view returns (uint256[] memory vk) {
        uint256[] memory all = _readKey();
        uint256 off = _offset(slice);
        uint256 n = 4 + 2 * (numSignals(slice) + 1);
        vk = new uint256[](SHARED_WORDS + n);
        for (uint256 t; t < SHARED_WORDS; ++t) {
            vk[t] = all[t];
        }
        for (uint256 t; t < n; ++t) {
            vk[SHARED_WORDS + t] = all[off + t];
        }
    }

    /// @notice The public signals each slice's proof is checked against, for (input, output,
    ///         payee) and the boundary commitments c_1..c_{k-1}.
    /// @param input Model input (fixed point).
    /// @param output Claimed model output (fixed point).
    /// @param payee The fee recipient.
    /// @param commitments c_1..c_{k-1}.
    /// @return signals Per slice, its public signals in snarkjs order.
    function sliceSignals(
        int256[] calldata input,
        int256[] calldata output,
        address payee,
        uint256[] calldata commitments
    ) external view returns (uint256[][] memory signals) {
        uint256 k = numSlices;
        if (commitments.length != k - 1) revert SliceCountMismatch(k - 1, commitments.length, k, k);
        Entry memory e;
        (e.inWords, e.outWords) = _pack(input, output, payee);
        e.commitments = commitments;
        signals = new uint256[][](k);
        for (uint256 j; j < k; ++j) {
            signals[j] = _signals(e, j, k);
        }
    }

    /// @dev Slice j's public signals (snarkjs order) for a request's words and commitments.
    function _signals(Entry memory e, uint256 j, uint256 k) private pure returns (uint256[] memory s) {
        uint256[] memory c = e.commitments;
        if (j == 0) {
            uint256[] memory w = e.inWords;
            s = new uint256[](1 + w.length);
            s[0] = c[0];
            for (uint256 i; i < w.length; ++i) {
                s[1 + i] = w[i];
            }
        } else if (j < k - 1) {
            s = new uint256[](2);
            (s[0], s[1]) = (c[j], c[j - 1]);
        } else {
            uint256[] memory w = e.outWords;
            s = new uint256[](w.length + 1);
            for (uint256 i; i < w.length; ++i) {
                s[i] = w[i];
            }
            s[w.length] = c[k - 2];
        }
    }

    // --- verification ------------------------------------------------------------------------

    /// @inheritdoc IInferenceVerifier
    /// @dev Reverts (custom errors) on a wrong size, an out-of-range value, a malformed proof
    ///      encoding, a wrong slice count, a non-canonical commitment or too little gas; false
    ///      when the proofs do not verify for these signals.
    function verify(int256[] calldata input, int256[] calldata output, address payee, bytes calldata proof)
        external
        view
        returns (bool)
    {
        uint256 required = minVerifyGas;
        if (gasleft() < required) revert InsufficientVerificationGas(required, gasleft());
        Entry memory e = _entry(input, output, payee, proof);
        bytes32 transcript = keccak256(abi.encode(vkHash, uint256(1), e.hash));
        uint256[] memory vk = _readKey();
        Acc memory acc = _newAcc(1);
        _accumulate(acc, vk, e, proof, transcript, 0);
        return _finish(acc, vk, 1);
    }

    /// @inheritdoc IBatchInferenceVerifier
    /// @dev n requests in one pairing check of n*k + k + 2 pairings (see the contract notes).
    function verifyBatch(
        int256[][] calldata inputs,
        int256[][] calldata outputs,
        address payee,
        bytes[] calldata proofs
    ) external view returns (bool) {
        uint256 n = proofs.length;
        if (n == 0 || inputs.length != n || outputs.length != n) {
            revert BatchLengthMismatch(inputs.length, outputs.length, n);
        }
        uint256 required = batchVerifyGas(n);
        if (gasleft() < required) revert InsufficientVerificationGas(required, gasleft());
        Entry[] memory es = new Entry[](n);
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            es[i] = _entry(inputs[i], outputs[i], payee, proofs[i]);
            hashes[i] = es[i].hash;
        }
        bytes32 transcript = keccak256(abi.encode(vkHash, n, hashes));
        uint256[] memory vk = _readKey();
        Acc memory acc = _newAcc(n);
        for (uint256 i; i < n; ++i) {
            _accumulate(acc, vk, es[i], proofs[i], transcript, i);
        }
        return _finish(acc, vk, n);
    }

    /// @dev Sizes, ranges and the proof encoding checked; the request's packed words.
    function _entry(int256[] calldata input, int256[] calldata output, address payee, bytes calldata proof)
        private
        view
        returns (Entry memory e)
    {
        if (input.length != numInputs || output.length != numOutputs) {
            revert SignalCountMismatch(numInputs, input.length, numOutputs, output.length);
        }
        (e.inWords, e.outWords) = _pack(input, output, payee);
        e.proofsAt = _checkEncoding(proof);
        uint256 nc = numSlices - 1;
        e.commitments = new uint256[](nc);
        assembly ("memory-safe") {
            calldatacopy(add(mload(add(e, 64)), 32), add(proof.offset, 96), shl(5, nc))
        }
        e.hash = keccak256(abi.encodePacked(e.inWords, e.outWords, proof));
    }

    /// @dev Input words and output words (with the payee), each value range-checked.
    function _pack(int256[] calldata input, int256[] calldata output, address payee)
        private
        view
        returns (uint256[] memory inW, uint256[] memory outW)
    {
        bool own = payeeOwnWord;
        uint256 ow = outputWords;
        inW = new uint256[](inputWords);
        outW = new uint256[](ow + (own ? 1 : 0));
        uint256 bad = SignalPacking.packInto(inW, 0, input, inputBits);
        if (bad < input.length) revert PackedInputOutOfRange(bad, input[bad]);
        bad = SignalPacking.packInto(outW, 0, output, outputBits);
        if (bad < output.length) revert PackedOutputOutOfRange(bad, output[bad]);
        // Above the value bits (or alone): the word stays below 2^253 < R, so it is unique.
        if (own) outW[ow] = uint256(uint160(payee));
        else outW[ow - 1] |= uint256(uint160(payee)) << payeeShift;
    }

    /// @dev Checks that `proof` is exactly abi.encode(uint256[k-1] as uint256[], uint256[8][k]),
    ///      every commitment < R; returns the byte offset of the first slice proof.
    function _checkEncoding(bytes calldata proof) private view returns (uint256 proofsAt) {
        uint256 len = proof.length;
        uint256 k = numSlices;
        // Head (2 offsets) and the commitments' length word, at the canonical offsets.
        if (len < 128 || _word(proof, 0) != 64) revert MalformedProof(len);
        uint256 nc = _word(proof, 64);
        if (nc > len / 32) revert MalformedProof(len);
        uint256 npAt = 96 + 32 * nc; // the proofs' length word
        if (_word(proof, 32) != npAt || len < npAt + 32) revert MalformedProof(len);
        uint256 np = _word(proof, npAt);
        if (nc != k - 1 || np != k) revert SliceCountMismatch(k - 1, nc, k, np);
        proofsAt = npAt + 32;
        if (len != proofsAt + 32 * PROOF_WORDS * k) revert MalformedProof(len);
        uint256 r = Bn254.R;
        uint256 q = Bn254.Q;
        uint256 bad = nc;
        uint256 offCurve;
        assembly ("memory-safe") {
            // First commitment >= R, if any (c_1 .. c_{k-1} from byte 96).
            let c := add(proof.offset, 96)
            for { let i := 0 } lt(i, nc) { i := add(i, 1) } {
                if iszero(lt(calldataload(add(c, shl(5, i))), r)) {
                    bad := i
                    break
                }
            }
            // Canonical coordinates only: the precompiles refuse points off the curve, this
            // refuses the same point written with an out-of-range coordinate.
            let w := add(proof.offset, proofsAt)
            for { let end := add(w, shl(8, k)) } lt(w, end) { w := add(w, 32) } {
                offCurve := or(offCurve, iszero(lt(calldataload(w), q)))
            }
        }
        if (bad < nc) revert NonCanonicalCommitment(bad, _word(proof, 96 + 32 * bad));
        if (offCurve != 0) revert MalformedProof(len);
    }

    function _word(bytes calldata b, uint256 pos) private pure returns (uint256 w) {
        assembly {
            w := calldataload(add(b.offset, pos))
        }
    }

    function _newAcc(uint256 n) private view returns (Acc memory acc) {
        uint256 k = numSlices;
        acc.pairing = new uint256[](6 * (n * k + k + 2));
        acc.c = new uint256[2][](k);
    }

    /// @dev Adds request `entry`'s k slices: pairs (-r A, B) at slots entry*k + j; r C into the
    ///      slice's C sum; r X_j into the X sum. r = 1 for the very first slice of the check.
    function _accumulate(
        Acc memory acc,
        uint256[] memory vk,
        Entry memory e,
        bytes calldata proof,
        bytes32 transcript,
        uint256 entry
    ) private view {
        uint256 k = numSlices;
        uint256 ic = SHARED_WORDS + 4; // slice j's IC in the key (after its delta)
        uint256 at;
        assembly {
            at := proof.offset
        }
        at += e.proofsAt;
        for (uint256 j; j < k; ++j) {
            uint256 r = (entry == 0 && j == 0) ? 1 : _challenge(transcript, entry, j);
            acc.rSum = addmod(acc.rSum, r, Bn254.R);
            uint256[] memory s = _signals(e, j, k);
            uint256 pt;
            assembly {
                pt := add(add(vk, 32), shl(5, ic)) // ic + 2 (s.length + 1) <= vk.length: fixed layout
            }
            if (!_addSlice(acc, entry * k + j, j, pt, at + 32 * PROOF_WORDS * j, r, s)) revert MalformedProof(0);
            ic += 2 * (s.length + 1) + 4;
        }
    }

    /// @dev One slice, r-scaled, into the sums (the hot loop, in assembly). False when a
    ///      precompile refused a point (off the curve). p: calldata position of the slice's 8
    ///      proof words; pt: memory position of the slice's IC[0] in the key.
    function _addSlice(Acc memory acc, uint256 slot, uint256 j, uint256 pt, uint256 p, uint256 r, uint256[] memory s)
        private
        view
        returns (bool ok)
    {
        assembly ("memory-safe") {
            // acc += t * (px, py): ecMul into scratch + 64, then ecAdd(acc, it) into acc.
            function mulAdd(accP, px, py, t, scratch) -> success {
                mstore(scratch, px)
                mstore(add(scratch, 32), py)
                mstore(add(scratch, 64), t)
                success := staticcall(10000, 7, scratch, 96, add(scratch, 64), 64)
                mcopy(scratch, accP, 64)
                success := and(success, staticcall(1000, 6, scratch, 128, accP, 64))
            }
            // acc += (px, py).
            function addTo(accP, px, py, scratch) -> success {
                mcopy(scratch, accP, 64)
                mstore(add(scratch, 64), px)
                mstore(add(scratch, 96), py)
                success := staticcall(1000, 6, scratch, 128, accP, 64)
            }
            let m := mload(0x40) // scratch, not allocated
            // Pair slot := (-r A, B); slot < the pair count of acc.pairing (_newAcc).
            {
                let dst := add(add(mload(acc), 32), mul(slot, 192))
                ok := 1
                switch r
                case 1 { calldatacopy(dst, p, 64) }
                default {
                    calldatacopy(m, p, 64)
                    mstore(add(m, 64), r)
                    ok := staticcall(10000, 7, m, 96, dst, 64)
                }
                let ay := mload(add(dst, 32))
                // Q - y (Q: the BN254 base field)
                if ay {
                    mstore(
                        add(dst, 32),
                        sub(21888242871839275222246405745257275088696311157297823662689037894645226208583, ay)
                    )
                }
                calldatacopy(add(dst, 64), add(p, 64), 128) // B: x_im, x_re, y_im, y_re
            }
            // c_j += r C; x += r IC[0] (an ecAdd alone when r = 1). acc.c is an array of pointers.
            let c := mload(add(add(mload(add(acc, 32)), 32), shl(5, j)))
            let x := mload(add(acc, 64))
            switch r
            case 1 {
                ok := and(ok, addTo(c, calldataload(add(p, 192)), calldataload(add(p, 224)), m))
                ok := and(ok, addTo(x, mload(pt), mload(add(pt, 32)), m))
            }
            default {
                ok := and(ok, mulAdd(c, calldataload(add(p, 192)), calldataload(add(p, 224)), r, m))
                ok := and(ok, mulAdd(x, mload(pt), mload(add(pt, 32)), r, m))
            }
            // x += sum_i (r s_i mod R) IC[i+1] (R: the BN254 scalar field); 0 adds nothing.
            let n := mload(s)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                pt := add(pt, 64)
                let t :=
                    mulmod(
                        r,
                        mload(add(s, shl(5, add(i, 1)))),
                        21888242871839275222246405745257275088548364400416034343698204186575808495617
                    )
                if t { ok := and(ok, mulAdd(x, mload(pt), mload(add(pt, 32)), t, m)) }
            }
        }
    }

    /// @dev r for request `entry`, slice j: a hash of the transcript, reduced mod R, never 0.
    function _challenge(bytes32 transcript, uint256 entry, uint256 j) private pure returns (uint256 r) {
        r = uint256(keccak256(abi.encode(transcript, entry, j))) % Bn254.R;
        if (r == 0) r = 1;
    }

    /// @dev Adds (sum r_j C_j, delta_j) per slice, (sum r alpha, beta), (sum r X, gamma) after the
    ///      n*k A/B pairs, and runs the pairing check with a gas floor.
    function _finish(Acc memory acc, uint256[] memory vk, uint256 n) private view returns (bool) {
        uint256 k = numSlices;
        uint256 base = n * k;
        uint256 off = SHARED_WORDS;
        for (uint256 j; j < k; ++j) {
            _putPair(acc.pairing, base + j, acc.c[j], vk, off);
            off += 4 + 2 * (numSignals(j) + 1);
        }
        uint256[2] memory alpha;
        (alpha[0], alpha[1]) = Bn254.mul(vk[0], vk[1], acc.rSum);
        _putPair(acc.pairing, base + k, alpha, vk, 2);
        _putPair(acc.pairing, base + k + 1, acc.x, vk, 6);
        uint256 g = Bn254.pairingGas(base + k + 2);
        uint256 required = g + g / 63 + 5_000;
        if (gasleft() < required) revert InsufficientVerificationGas(required, gasleft());
        return Bn254.pairing(acc.pairing);
    }

    /// @dev Pair slot `slot` := (g1, the G2 point at vk[g2At .. g2At + 4]).
    function _putPair(uint256[] memory pairing, uint256 slot, uint256[2] memory g1, uint256[] memory vk, uint256 g2At)
        private
        pure
    {
        assembly ("memory-safe") {
            // slot < the pair count of the array, g2At + 4 <= the key's length (fixed layout).
            let dst := add(add(pairing, 32), mul(slot, 192))
            mstore(dst, mload(g1))
            mstore(add(dst, 32), mload(add(g1, 32)))
            mcopy(add(dst, 64), add(add(vk, 32), shl(5, g2At)), 128)
        }
    }

    /// @dev Word offset of slice `slice`'s delta in the stored key.
    function _offset(uint256 slice) private view returns (uint256 off) {
        off = SHARED_WORDS;
        for (uint256 j; j < slice; ++j) {
            off += 4 + 2 * (numSignals(j) + 1);
        }
    }

    function _readKey() private view returns (uint256[] memory vk) {
        uint256 count = _vkWords;
        vk = new uint256[](count);
        address ptr = vkPointer;
        assembly {
            extcodecopy(ptr, add(vk, 32), 1, mul(count, 32))
        }
    }
}
