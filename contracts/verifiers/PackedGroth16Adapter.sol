// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceVerifier} from "../Verifier.sol";
import {SnarkjsVerifierAbi} from "./SnarkjsVerifierAbi.sol";
import {VerifierAdapterBase} from "./VerifierAdapterBase.sol";
import {SignalPacking} from "./SignalPacking.sol";

/// @title PackedGroth16Adapter
/// @notice Calls a snarkjs-generated verifier whose circuit takes its public values PACKED:
///         several small signed values per BN254 field element, so a model with 8 inputs and 3
///         outputs of 12 bits has 2 public signals instead of 11 (each signal costs the verifier
///         an ecMul + ecAdd, ~6-7 k gas).
/// @dev Encoding (oracle/circuits/packing.py, the circuit generator and this contract agree):
///      a value v of b signed bits becomes u = v + 2^(b-1) in [0, 2^b); a word holds up to
///      k = floor(253 / b) of them, little-endian by index: word = sum_i u_i * 2^(b*i). Inputs
///      and outputs are packed separately (b = inputBits, outputBits); public signals are
///      [output words..., (payee word,) input words...]. The circuit decomposes every word into exactly k*b
///      bits. The adapter builds the words itself from the request's input and the claimed
///      output, refusing any value outside its bit width: packing is injective only on in-range
///      values (an out-of-range value would carry into its neighbour), so a proof for another
///      input or output can never verify.
///      Payee (oracle/circuits/payee.py): the 160-bit fee recipient sits in the spare high bits of
///      the last output word (payee << (values in that word * outputBits)) when they fit under
///      253 bits, so it costs no extra signal; otherwise it is a signal of its own right after the
///      output words. The circuit decomposes it into bits, so a proof names exactly one payee.
///      Proof encoding: abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c), 256 bytes.
contract PackedGroth16Adapter is VerifierAdapterBase {
    /// @notice Fixed part of the verification gas floor (`minVerifyGas`).
    /// @dev Execution gas of a snarkjs verifyProof is ~190 k + ~7 k per public signal (docs/toolchain.md).
    uint256 public constant BASE_GAS = 230_000;
    /// @notice Gas added to the verification gas floor per public signal.
    uint256 public constant GAS_PER_SIGNAL = 8_000;
    /// @notice Length of an encoded proof: abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c).
    uint256 public constant PROOF_LENGTH = 256;
    /// @notice Bits per word: below log2 of the BN254 scalar field order (~253.6), so every word is
    ///         a canonical field element.
    uint256 public constant WORD_BITS = 253;

    /// @notice Signed bit width of each input / output value.
    uint256 public immutable inputBits;
    /// @notice Signed bit width of each output value.
    uint256 public immutable outputBits;
    /// @notice Values per word: floor(253 / bits).
    uint256 public immutable perWordIn;
    /// @notice Output values per word: floor(253 / outputBits).
    uint256 public immutable perWordOut;
    /// @notice Public signals: output words, (the payee word when it has no room,) then input words.
    uint256 public immutable inputWords;
    /// @notice Number of output words.
    uint256 public immutable outputWords;
    /// @notice Bits of the payee in a packed word.
    uint256 public constant PAYEE_BITS = 160;
    /// @notice Bit offset of the payee in the last output word; 0 when it has a word of its own.
    uint256 public immutable payeeShift;
    /// @notice True when the payee is a public signal of its own (no room in the last output word).
    bool public immutable payeeOwnWord;
    /// @notice `verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[n])`, n = input words + output
    ///         words (+ 1 when the payee has a word of its own).
    bytes4 public immutable selector;

    /// @notice The proof bytes (or a point in them) are not a valid Groth16 proof encoding.
    error MalformedProof(uint256 length);
    /// @notice A bit width of 0 or more than 253 cannot be packed.
    error InvalidPackingBits(uint256 bits);
    /// @notice input[index] is outside [-2^(inputBits-1), 2^(inputBits-1)).
    error PackedInputOutOfRange(uint256 index, int256 value);
    /// @notice output[index] is outside [-2^(outputBits-1), 2^(outputBits-1)).
    error PackedOutputOutOfRange(uint256 index, int256 value);

    /// @param verifier_ The snarkjs-generated verifier of the packed circuit.
    /// @param numInputs_ Model input size (values, not words).
    /// @param numOutputs_ Model output size (values, not words).
    /// @param inputBits_ Signed bit width of each input (manifest input_bits).
    /// @param outputBits_ Signed bit width of each output (manifest output_bits).
    constructor(address verifier_, uint256 numInputs_, uint256 numOutputs_, uint256 inputBits_, uint256 outputBits_)
        VerifierAdapterBase(
            verifier_,
            numInputs_,
            numOutputs_,
            BASE_GAS + GAS_PER_SIGNAL * _signals(numInputs_, numOutputs_, inputBits_, outputBits_)
        )
    {
        inputBits = inputBits_;
        outputBits = outputBits_;
        perWordIn = WORD_BITS / inputBits_;
        perWordOut = WORD_BITS / outputBits_;
        inputWords = _words(numInputs_, inputBits_);
        outputWords = _words(numOutputs_, outputBits_);
        uint256 shift = _lastOutputWordBits(numOutputs_, outputBits_);
        payeeOwnWord = shift + PAYEE_BITS > WORD_BITS;
        payeeShift = payeeOwnWord ? 0 : shift;
        selector = SnarkjsVerifierAbi.verifyProofSelector(_signals(numInputs_, numOutputs_, inputBits_, outputBits_));
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
        uint256[] memory words = _checkedSignals(input, output, payee, proof);
        return _call(abi.encodePacked(selector, proof, words));
    }

    /// @notice The public signals the verifier is called with for (input, output, payee).
    /// @param input Model input (fixed point).
    /// @param output Claimed model output (fixed point).
    /// @param payee The fee recipient.
    /// @return words [output words..., (payee word,) input words...].
    function packSignals(int256[] calldata input, int256[] calldata output, address payee)
        external
        view
        returns (uint256[] memory words)
    {
        _checkSizes(input, output);
        return _pack(input, output, payee);
    }

    /// @dev Sizes, proof length and value ranges checked; the packed public signals.
    function _checkedSignals(int256[] calldata input, int256[] calldata output, address payee, bytes calldata proof)
        internal
        view
        returns (uint256[] memory)
    {
        _checkSizes(input, output);
        if (proof.length != PROOF_LENGTH) revert MalformedProof(proof.length);
        return _pack(input, output, payee);
    }

    function _pack(int256[] calldata input, int256[] calldata output, address payee)
        private
        view
        returns (uint256[] memory words)
    {
        bool own = payeeOwnWord;
        uint256 outWords = outputWords;
        words = new uint256[](outWords + (own ? 1 : 0) + inputWords);
        uint256 bad = SignalPacking.packInto(words, 0, output, outputBits);
        if (bad < output.length) revert PackedOutputOutOfRange(bad, output[bad]);
        // Above the value bits (or alone): the word stays below 2^253 < r, so it is unique.
        if (own) words[outWords] = uint256(uint160(payee));
        else words[outWords - 1] |= uint256(uint160(payee)) << payeeShift;
        bad = SignalPacking.packInto(words, own ? outWords + 1 : outWords, input, inputBits);
        if (bad < input.length) revert PackedInputOutOfRange(bad, input[bad]);
    }

    /// @dev Public signals: value words plus a payee word when the last output word has no room.
    function _signals(uint256 nIn, uint256 nOut, uint256 inBits, uint256 outBits) internal pure returns (uint256) {
        uint256 n = _words(nIn, inBits) + _words(nOut, outBits);
        return SignalPacking.payeeOwnWord(nOut, outBits) ? n + 1 : n;
    }

    /// @dev Bits used by the values of the last output word.
    function _lastOutputWordBits(uint256 nOut, uint256 outBits) internal pure returns (uint256) {
        return SignalPacking.lastWordBits(nOut, outBits);
    }

    /// @dev Words needed for n values of `bits` bits; reverts on an unpackable width (also used
    ///      in constructor base arguments, where immutables cannot be read yet).
    function _words(uint256 n, uint256 bits) internal pure returns (uint256) {
        return SignalPacking.words(n, bits);
    }
}
