// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @dev The cheatcodes our tests use (forge-std is not available offline).
interface Vm {
    function prank(address) external;
    function startPrank(address) external;
    function stopPrank() external;
    function deal(address, uint256) external;
    function warp(uint256) external;
    function roll(uint256) external;
    function assume(bool) external pure;
    function expectRevert(bytes calldata) external;
    function expectRevert(bytes4) external;
    function expectRevert() external;
    function expectEmit(bool, bool, bool, bool) external;
    function expectEmit() external;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
    function label(address, string calldata) external;
    function readFile(string calldata) external view returns (string memory);
    function projectRoot() external view returns (string memory);
    function parseJsonBytes(string calldata, string calldata) external pure returns (bytes memory);
    function parseJsonIntArray(string calldata, string calldata) external pure returns (int256[] memory);
    function parseJsonUintArray(string calldata, string calldata) external pure returns (uint256[] memory);
    function addr(uint256) external pure returns (address);
    function snapshotState() external returns (uint256);
    function revertToState(uint256) external returns (bool);
    function etch(address, bytes calldata) external;
    // Added for the oracle suite (exact forge signatures).
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter) external;
    function expectCall(address callee, bytes calldata data) external;
    function expectCall(address callee, bytes calldata data, uint64 count) external;
    function cool(address target) external;
    // Added for the payee / verifier-pinning suite (exact forge signatures).
    function record() external;
    function accesses(address target) external returns (bytes32[] memory reads, bytes32[] memory writes);
    function parseJsonAddress(string calldata, string calldata) external pure returns (address);
    function parseJsonUint(string calldata, string calldata) external pure returns (uint256);

    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }
}

/// @dev Invariant-test configuration cheat (selectors of the target contract to fuzz).
struct FuzzSelector {
    address addr;
    bytes4[] selectors;
}

/// @title Test
/// @notice A minimal test base: assertions that report values, and the cheatcode handle.
abstract contract Test {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    bool public IS_TEST = true;

    address[] private _targetContracts;
    FuzzSelector[] private _targetSelectors;

    error AssertionFailed(string message);
    error AssertionFailedUint(string message, uint256 left, uint256 right);
    error AssertionFailedInt(string message, int256 left, int256 right);
    error AssertionFailedAddress(string message, address left, address right);
    error AssertionFailedBytes32(string message, bytes32 left, bytes32 right);
    error AssertionFailedBytes(string message, bytes left, bytes right);

    /// @dev DSTest-style log events: forge prints them with -vv.
    event log_named_uint(string key, uint256 val);

    function assertTrue(bool c, string memory m) internal pure {
        if (!c) revert AssertionFailed(m);
    }

    function assertTrue(bool c) internal pure {
        assertTrue(c, "expected true");
    }

    function assertFalse(bool c, string memory m) internal pure {
        if (c) revert AssertionFailed(m);
    }

    function assertEq(uint256 a, uint256 b, string memory m) internal pure {
        if (a != b) revert AssertionFailedUint(m, a, b);
    }

    function assertEq(uint256 a, uint256 b) internal pure {
        assertEq(a, b, "uint not equal");
    }

    function assertEq(int256 a, int256 b, string memory m) internal pure {
        if (a != b) revert AssertionFailedInt(m, a, b);
    }

    function assertEq(address a, address b, string memory m) internal pure {
        if (a != b) revert AssertionFailedAddress(m, a, b);
    }

    function assertEq(bytes32 a, bytes32 b, string memory m) internal pure {
        if (a != b) revert AssertionFailedBytes32(m, a, b);
    }

    function assertEq(bool a, bool b, string memory m) internal pure {
        if (a != b) revert AssertionFailed(m);
    }

    function assertEq(bytes memory a, bytes memory b, string memory m) internal pure {
        if (keccak256(a) != keccak256(b)) revert AssertionFailedBytes(m, a, b);
    }

    function assertEq(int256[] memory a, int256[] memory b, string memory m) internal pure {
        if (a.length != b.length) revert AssertionFailedUint(string.concat(m, ": length"), a.length, b.length);
        for (uint256 i; i < a.length; ++i) {
            if (a[i] != b[i]) revert AssertionFailedInt(m, a[i], b[i]);
        }
    }

    function assertLe(uint256 a, uint256 b, string memory m) internal pure {
        if (a > b) revert AssertionFailedUint(m, a, b);
    }

    function assertGe(uint256 a, uint256 b, string memory m) internal pure {
        if (a < b) revert AssertionFailedUint(m, a, b);
    }

    function assertLt(uint256 a, uint256 b, string memory m) internal pure {
        if (a >= b) revert AssertionFailedUint(m, a, b);
    }

    function assertGt(uint256 a, uint256 b, string memory m) internal pure {
        if (a <= b) revert AssertionFailedUint(m, a, b);
    }

    /// @dev Clamp a fuzzed value into [lo, hi] without discarding runs.
    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        if (hi < lo) revert AssertionFailed("bound: hi < lo");
        if (x >= lo && x <= hi) return x;
        uint256 size = hi - lo + 1;
        return lo + (x % size);
    }

    /// @dev Clamp a fuzzed signed value into [lo, hi] (order-preserving map to uint256 and back).
    function boundInt(int256 x, int256 lo, int256 hi) internal pure returns (int256) {
        uint256 flip = uint256(1) << 255;
        uint256 r = bound(uint256(x) ^ flip, uint256(lo) ^ flip, uint256(hi) ^ flip);
        return int256(r ^ flip);
    }

    // Invariant-testing hooks read by forge.
    function targetContract(address a) internal {
        _targetContracts.push(a);
    }

    function targetContracts() public view returns (address[] memory) {
        return _targetContracts;
    }

    function targetSelector(FuzzSelector memory s) internal {
        _targetSelectors.push(s);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetSelectors;
    }
}
