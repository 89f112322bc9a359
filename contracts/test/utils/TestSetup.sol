// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ModelRegistry} from "../../ModelRegistry.sol";

/// @notice Setup provenance the tests register circuits with.
library TestSetup {
    /// @dev A made-up ptau hash, dev keys (every key in the tests comes from a local ceremony).
    function dev() internal pure returns (ModelRegistry.Setup memory) {
        return ModelRegistry.Setup({setupHash: keccak256("test ptau"), devKeys: true});
    }
}
