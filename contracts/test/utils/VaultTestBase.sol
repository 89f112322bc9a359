// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "./Test.sol";
import {TestHashVerifier} from "./TestHashVerifier.sol";
import {TestSetup} from "./TestSetup.sol";
import {ModelRegistry} from "../../ModelRegistry.sol";
import {InferenceOracle} from "../../InferenceOracle.sol";
import {LRTToken} from "../../lrt/LRTToken.sol";
import {LRTVault} from "../../LRTVault.sol";
import {RestakingStrategy} from "../../lrt/RestakingStrategy.sol";

/// @dev Extra cheatcodes the vault tests use, declared here (not in Test.sol) so the shared
///      test base stays untouched. Same cheatcode address as `Test.vm`.
interface VaultVm {
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter) external;
    function cool(address target) external;
    function prank(address sender, address origin) external;
}

/// @dev forge decodes calls to this address as console.log at -vv.
library VaultLog {
    address private constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    function log(string memory label, uint256 value) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string,uint256)", label, value));
        ok;
    }
}

/// @dev Deploys registry + oracle + hash verifier (as the risk model) + token + vault, funds
///      users with tokens and the vault with ETH, and offers request/fulfil helpers.
abstract contract VaultTestBase is Test {
    VaultVm internal constant vm2 = VaultVm(address(uint160(uint256(keccak256("hevm cheat code")))));

    bytes32 internal constant RISK_MODEL = keccak256("lrt-risk-v1");
    uint256 internal constant GAS_PRICE = 1 gwei;
    uint128 internal constant MODEL_FEE = 1e15;
    uint32 internal constant VERIFY_GAS = 250_000;
    uint8 internal constant SCALE = 7; // input and output scale: 1.0 == 128
    int256 internal constant ONE = int256(1) << SCALE;
    uint256 internal constant WAD = 1e18;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant USER_TOKENS = 1e30;

    bytes32 internal constant FULFILLED_TOPIC = keccak256("InferenceFulfilled(uint256,bytes32,int256[],address,bool)");

    ModelRegistry internal registry;
    InferenceOracle internal oracle;
    TestHashVerifier internal verifier;
    LRTToken internal token;
    LRTVault internal vault;
    RestakingStrategy[3] internal strat;

    address internal owner = address(this);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA401);
    address internal relayer = address(0xFEED);
    address internal stranger = address(0xBAD);

    function setUp() public virtual {
        registry = new ModelRegistry(owner);
        oracle = new InferenceOracle(registry, owner, GAS_PRICE);
        verifier = new TestHashVerifier();
        registry.register(RISK_MODEL, _model(address(verifier), 8, 3), TestSetup.dev());
        token = new LRTToken("Restaked ETH", "rstETH", owner);
        vault = new LRTVault(token, oracle, RISK_MODEL, owner);
        for (uint256 i; i < 3; ++i) {
            strat[i] = vault.strategies(i);
        }
        address[4] memory users = [alice, bob, carol, stranger];
        for (uint256 i; i < users.length; ++i) {
            token.mint(users[i], USER_TOKENS);
            vm.prank(users[i]);
            token.approve(address(vault), type(uint256).max);
        }
        vm.deal(address(vault), 10 ether);
        vm.deal(stranger, 10 ether);
        vm.label(address(vault), "vault");
        vm.label(address(oracle), "oracle");
        vm.label(address(token), "token");
        vm.label(relayer, "relayer");
        vm.warp(1_700_000_000);
    }

    // ------------------------------------------------------------------ builders

    function _model(address v, uint16 inputs, uint16 outputs) internal pure returns (ModelRegistry.Model memory) {
        return ModelRegistry.Model({
            verifier: v,
            proofSystem: ModelRegistry.ProofSystem.Groth16,
            inputSize: inputs,
            outputSize: outputs,
            inputScale: SCALE,
            outputScale: SCALE,
            inputBits: 16,
            outputBits: 32,
            frozen: false,
            batchVerify: true,
            bindsPayee: false, // set by the registry
            verifierVersion: 0, // set by the registry
            circuitId: keccak256(abi.encode(v, inputs, outputs)),
            fee: MODEL_FEE,
            verifyGas: VERIFY_GAS
        });
    }

    function _out(int256 a, int256 b, int256 c) internal pure returns (int256[] memory o) {
        o = new int256[](3);
        o[0] = a;
        o[1] = b;
        o[2] = c;
    }

    // ------------------------------------------------------------------ actions

    function _deposit(address who, uint256 amount) internal returns (uint256 shares) {
        vm.prank(who);
        shares = vault.deposit(amount);
    }

    function _withdraw(address who, uint256 shares) internal returns (uint256 assets) {
        vm.prank(who);
        assets = vault.withdraw(shares);
    }

    function _request() internal returns (uint256 id) {
        id = vault.requestRebalance();
    }

    /// @dev The test double's proof for `output` on request `id` (input read back from the
    ///      oracle), made for `relayer` as payee.
    function _proof(uint256 id, int256[] memory output) internal view returns (bytes memory) {
        return _proofFor(id, output, relayer);
    }

    /// @dev Same, made for `payee`.
    function _proofFor(uint256 id, int256[] memory output, address payee) internal view returns (bytes memory) {
        return verifier.proofFor(oracle.getRequest(id).input, output, payee);
    }

    /// @dev Submits as the relayer (and its payee); returns whether the consumer callback succeeded (from the
    ///      InferenceFulfilled event).
    function _submit(uint256 id, int256[] memory output, bytes memory proof) internal returns (bool) {
        vm.recordLogs();
        vm.prank(relayer);
        oracle.fulfill(id, output, relayer, proof);
        return _callbackResult(id);
    }

    /// @dev Fulfils `id` as the relayer with the input read back from the oracle.
    function _fulfil(uint256 id, int256[] memory output) internal returns (bool callbackSucceeded) {
        return _submit(id, output, _proof(id, output));
    }

    function _callbackResult(uint256 id) internal returns (bool) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (
                logs[i].emitter == address(oracle) && logs[i].topics.length > 1 && logs[i].topics[0] == FULFILLED_TOPIC
                    && uint256(logs[i].topics[1]) == id
            ) {
                (, bool ok) = abi.decode(logs[i].data, (int256[], bool));
                return ok;
            }
        }
        revert AssertionFailed("no InferenceFulfilled event");
    }

    /// @dev Warps to the end of the rebalance cooldown when it is still running (no-op before
    ///      the first request or once the interval has passed).
    function _waitCooldown() internal {
        uint256 last = vault.lastRequestAt();
        if (last == 0) return;
        uint256 next = last + vault.minRebalanceInterval();
        if (block.timestamp < next) vm.warp(next);
    }

    /// @dev Waits out the rebalance cooldown if needed, then requests and fulfils in one go.
    function _rebalance(int256 r0, int256 r1, int256 r2) internal returns (bool) {
        _waitCooldown();
        return _fulfil(_request(), _out(r0, r1, r2));
    }

    // ------------------------------------------------------------------ views

    function _targets() internal view returns (uint256[3] memory t) {
        for (uint256 i; i < 3; ++i) {
            t[i] = vault.targetBps(i);
        }
    }

    function _risks() internal view returns (uint256[3] memory r) {
        for (uint256 i; i < 3; ++i) {
            r[i] = vault.lastRisk(i);
        }
    }

    function _balances() internal view returns (uint256[3] memory b) {
        return vault.allocations();
    }

    function _idle() internal view returns (uint256) {
        return token.balanceOf(address(vault));
    }

    function _heldAssets() internal view returns (uint256 total) {
        total = token.balanceOf(address(vault));
        for (uint256 i; i < 3; ++i) {
            total += token.balanceOf(address(strat[i]));
        }
    }

    /// @dev Everything the oracle callback may change, hashed: equal hashes == state unchanged.
    function _vaultStateHash() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                _targets(),
                _risks(),
                _balances(),
                _idle(),
                vault.depositsPaused(),
                vault.pendingRequestId(),
                vault.pendingDeadline(),
                vault.lastRequestAt(),
                vault.withdrawnSinceRebalance(),
                vault.lastRebalanceAt(),
                vault.totalShares()
            )
        );
    }

    function _approxEq(uint256 a, uint256 b, uint256 tol, string memory m) internal pure {
        uint256 d = a > b ? a - b : b - a;
        if (d > tol) revert AssertionFailedUint(m, a, b);
    }
}
