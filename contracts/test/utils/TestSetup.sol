// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ModelRegistry} from "../../ModelRegistry.sol";

/// @notice Setup provenance the tests register circuits with.
library TestSetup {
    /// @dev A made-up ptau hash, dev keys (every key in the tests comes from a local ceremony).
    function dev() internal pure returns (ModelRegistry.Setup memory) {
        return ModelRegistry.Setup({setupHash: keccak256("test ptau"), devKeys: true});
    }

    /// @dev The risk model's registry entry (8 inputs, 3 outputs, 12-bit values at scale 10),
    ///      which the real fixture proofs are for; the registry sets bindsPayee and the version.
    function riskModel(address verifier, bool batch, bytes32 circuitId, uint128 fee, uint32 verifyGas)
        internal
        pure
        returns (ModelRegistry.Model memory)
    {
        return ModelRegistry.Model({
            verifier: verifier,
            proofSystem: ModelRegistry.ProofSystem.Groth16,
            inputSize: 8,
            outputSize: 3,
            inputScale: 10,
            outputScale: 10,
            inputBits: 12,
            outputBits: 12,
            frozen: false,
            batchVerify: batch,
            bindsPayee: false,
            verifierVersion: 0,
            circuitId: circuitId,
            fee: fee,
            verifyGas: verifyGas
        });
    }
}
