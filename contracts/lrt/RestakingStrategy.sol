// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Owned} from "../utils/Owned.sol";
import {LRTToken} from "./LRTToken.sol";

/// @title RestakingStrategy
/// @notice A restaking position the vault allocates to. It tracks the principal the vault put
///         in and its slashing history; a slashing event (simulated by the owner in tests and
///         the demo) burns part of the balance. `lossRatioWad` is what the risk model reads.
contract RestakingStrategy is Owned {
    uint256 private constant WAD = 1e18;

    /// @notice The restaked token.
    LRTToken public immutable token;
    /// @notice The only account that may move funds.
    address public immutable vault;
    /// @notice Human-readable name (e.g. the operator set).
    string public label;
    /// @notice Tokens the vault deposited and has not withdrawn.
    uint256 public principal;
    /// @notice Cumulative tokens lost to slashing over the strategy's life (never decreases).
    uint256 public totalSlashed;
    /// @notice Compounded fraction of capital lost to slashing over the strategy's life, in
    ///         1e18 units: 1 - prod_k (1 - amount_k / balanceBefore_k) over every slashing event
    ///         k. It is what one token held through every event would have lost, so deposits,
    ///         withdrawals, donations and emptying the strategy never lower it. In [0, 1e18];
    ///         reaches 1e18 after a 100% slash. Never decreases.
    uint256 public lifetimeLossWad;

    address private constant SLASH_SINK = address(0xdead);

    /// @notice Only the vault may move funds.
    error NotVault(address caller);
    /// @notice The slashed share is 0 or above 10000 basis points.
    error InvalidSlash(uint256 bps);

    /// @notice The vault recorded a deposit of `amount`; `principal` is the new principal.
    event Deposited(uint256 amount, uint256 principal);
    /// @notice `amount` was sent to `to`; `principal` is the new principal.
    event Withdrawn(address indexed to, uint256 amount, uint256 principal);
    /// @notice A (simulated) slashing event burned `amount`, `bps` of the balance.
    event Slashed(uint256 amount, uint256 bps);

    /// @param token_ The restaked token.
    /// @param vault_ The only account that may move funds.
    /// @param label_ Human-readable name (e.g. the operator set).
    /// @param initialOwner Account allowed to simulate slashing.
    constructor(LRTToken token_, address vault_, string memory label_, address initialOwner) Owned(initialOwner) {
        token = token_;
        vault = vault_;
        label = label_;
    }

    /// @notice Records tokens the vault has just transferred in.
    /// @param amount Amount transferred.
    function recordDeposit(uint256 amount) external {
        if (msg.sender != vault) revert NotVault(msg.sender);
        principal += amount;
        emit Deposited(amount, principal);
    }

    /// @notice Sends `amount` back to `to` (vault only). Losses come out of principal first.
    /// @param to Receiver (the vault or a withdrawing user).
    /// @param amount Amount.
    function withdraw(address to, uint256 amount) external {
        if (msg.sender != vault) revert NotVault(msg.sender);
        // Principal shrinks in proportion, so the loss ratio survives partial withdrawals.
        uint256 bal = token.balanceOf(address(this));
        uint256 p = principal;
        principal = bal == 0 ? 0 : p - (p * amount) / bal;
        emit Withdrawn(to, amount, principal);
        token.transfer(to, amount);
    }

    /// @notice Simulates a slashing event that burns `bps` basis points of the balance and
    ///         records it in `totalSlashed` and `lifetimeLossWad`. Slashing an empty strategy
    ///         loses nothing and records nothing.
    /// @param bps Share of the balance slashed (1 to 10000).
    function slash(uint256 bps) external onlyOwner {
        if (bps == 0 || bps > 10_000) revert InvalidSlash(bps);
        uint256 bal = token.balanceOf(address(this));
        uint256 amount = (bal * bps) / 10_000;
        if (amount != 0) {
            totalSlashed += amount;
            // amount <= bal, so the result stays <= WAD (exactly WAD for a full slash).
            uint256 lost = lifetimeLossWad;
            lifetimeLossWad = lost + ((WAD - lost) * amount) / bal;
        }
        emit Slashed(amount, bps);
        token.transfer(SLASH_SINK, amount);
    }

    /// @notice Current token balance.
    /// @return The balance.
    function balance() external view returns (uint256) {
        return token.balanceOf(address(this));
    }

    /// @notice The strategy's loss ratio, the risk model's "loss of strategy i" feature:
    ///         max(shortfallWad(), lifetimeLossWad), in 1e18 units, always in [0, 1e18].
    ///         The lifetime term keeps a slashing event visible after the strategy was drained
    ///         (principal 0) or refilled; the shortfall term covers any loss of balance that
    ///         was not recorded as a slash.
    /// @return The loss ratio.
    function lossRatioWad() external view returns (uint256) {
        uint256 shortfall = shortfallWad();
        uint256 lifetime = lifetimeLossWad;
        return shortfall > lifetime ? shortfall : lifetime;
    }

    /// @notice Current shortfall: 1 - balance / principal in 1e18 units, 0 when the principal
    ///         is 0 or covered (gains never count as negative loss). In [0, 1e18].
    /// @return The shortfall ratio.
    function shortfallWad() public view returns (uint256) {
        uint256 p = principal;
        uint256 bal = token.balanceOf(address(this));
        if (p == 0 || bal >= p) return 0;
        return ((p - bal) * WAD) / p;
    }
}
