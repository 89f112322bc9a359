// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Groth16ProofErrors} from "./Groth16ProofErrors.sol";

/// @title Bn254
/// @notice BN254 (alt_bn128) group operations through the EIP-196/197 precompiles, for batched
///         Groth16 checks. Points are affine (x, y); (0, 0) is the point at infinity.
/// @dev A precompile given an invalid point fails and burns the gas it was given, so each call
///      gets a bounded allowance (EIP-1108 prices with margin) and a failure reverts with
///      `MalformedProof(0)`: the only way to reach one is a proof point that is not on the curve.
library Bn254 {
    /// @dev Base field of BN254 (point coordinates).
    uint256 internal constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    /// @dev Scalar field of BN254 (public signals, scalars).
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @dev ecAdd costs 150 gas, ecMul 6,000 (EIP-1108); the allowances leave margin.
    uint256 internal constant ECADD_GAS = 1_000;
    uint256 internal constant ECMUL_GAS = 10_000;

    /// @dev (x1, y1) + (x2, y2).
    function add(uint256 x1, uint256 y1, uint256 x2, uint256 y2) internal view returns (uint256 rx, uint256 ry) {
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40) // scratch above the free memory pointer, not allocated
            mstore(m, x1)
            mstore(add(m, 32), y1)
            mstore(add(m, 64), x2)
            mstore(add(m, 96), y2)
            ok := staticcall(ECADD_GAS, 6, m, 128, m, 64)
            rx := mload(m)
            ry := mload(add(m, 32))
        }
        if (!ok) revert Groth16ProofErrors.MalformedProof(0);
    }

    /// @dev s * (x, y).
    function mul(uint256 x, uint256 y, uint256 s) internal view returns (uint256 rx, uint256 ry) {
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, x)
            mstore(add(m, 32), y)
            mstore(add(m, 64), s)
            ok := staticcall(ECMUL_GAS, 7, m, 96, m, 64)
            rx := mload(m)
            ry := mload(add(m, 32))
        }
        if (!ok) revert Groth16ProofErrors.MalformedProof(0);
    }

    /// @dev -y of a point's y coordinate (y < Q).
    function negY(uint256 y) internal pure returns (uint256) {
        return y == 0 ? 0 : Q - y;
    }

    /// @dev Gas the pairing precompile needs for `pairs` pairs (EIP-1108: 45,000 + 34,000 each).
    function pairingGas(uint256 pairs) internal pure returns (uint256) {
        return 45_000 + 34_000 * pairs;
    }

    /// @dev The pairing check over `words` (6 per pair: G1 x, y, then G2 x_im, x_re, y_im, y_re),
    ///      with exactly the gas it needs. False when the product is not 1 or an input is invalid
    ///      (a G2 point off the curve or outside the subgroup); the caller checks beforehand that
    ///      enough gas is left, so false never means "out of gas".
    function pairing(uint256[] memory words) internal view returns (bool) {
        uint256 len = words.length * 32;
        uint256 g = pairingGas(words.length / 6);
        bool ok;
        uint256 result;
        assembly ("memory-safe") {
            let out := mload(0x40)
            ok := staticcall(g, 8, add(words, 32), len, out, 32)
            result := mload(out)
        }
        return ok && result == 1;
    }
}
