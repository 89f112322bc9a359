// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Owned} from "../utils/Owned.sol";

/// @title LRTToken
/// @notice A minimal ERC-20 liquid restaking token for tests and the local demo. The owner can
///         mint; on a real deployment the vault would wrap an existing LRT instead.
contract LRTToken is Owned {
    /// @notice Token name.
    string public name;
    /// @notice Token symbol.
    string public symbol;
    /// @notice Decimals of the token amounts (18).
    uint8 public constant decimals = 18;
    /// @notice Total minted.
    uint256 public totalSupply;
    /// @notice Balance per account.
    mapping(address account => uint256) public balanceOf;
    /// @notice What `spender` may transfer from `owner`.
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    /// @notice `account` holds `balance`, less than the `needed` amount.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice `spender` may move `allowance`, less than the `needed` amount.
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
    /// @notice Tokens cannot go to address(0).
    error InvalidReceiver(address receiver);

    /// @notice ERC-20 Transfer (from address(0) on a mint).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice ERC-20 Approval.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    /// @param initialOwner Account allowed to mint.
    constructor(string memory name_, string memory symbol_, address initialOwner) Owned(initialOwner) {
        name = name_;
        symbol = symbol_;
    }

    /// @notice Mints `amount` to `to` (owner only).
    /// @param to Receiver.
    /// @param amount Amount in wei units.
    function mint(address to, uint256 amount) external onlyOwner {
        if (to == address(0)) revert InvalidReceiver(to);
        totalSupply += amount;
        unchecked {
            balanceOf[to] += amount;
        }
        emit Transfer(address(0), to, amount);
    }

    /// @notice ERC-20 transfer.
    /// @param to Receiver.
    /// @param amount Amount.
    /// @return Always true (reverts on failure).
    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    /// @notice ERC-20 transferFrom.
    /// @param from Owner of the tokens.
    /// @param to Receiver.
    /// @param amount Amount.
    /// @return Always true (reverts on failure).
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(msg.sender, allowed, amount);
            unchecked {
                allowance[from][msg.sender] = allowed - amount;
            }
        }
        _transfer(from, to, amount);
        return true;
    }

    /// @notice ERC-20 approve.
    /// @param spender Spender.
    /// @param amount Allowance.
    /// @return Always true.
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function _transfer(address from, address to, uint256 amount) private {
        if (to == address(0)) revert InvalidReceiver(to);
        uint256 bal = balanceOf[from];
        if (bal < amount) revert InsufficientBalance(from, bal, amount);
        unchecked {
            balanceOf[from] = bal - amount;
            balanceOf[to] += amount;
        }
        emit Transfer(from, to, amount);
    }
}
