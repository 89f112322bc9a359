// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Owned} from "./utils/Owned.sol";
import {ReentrancyGuardTransient} from "./utils/ReentrancyGuardTransient.sol";
import {LRTToken} from "./lrt/LRTToken.sol";
import {RestakingStrategy} from "./lrt/RestakingStrategy.sol";
import {InferenceOracle} from "./InferenceOracle.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {IInferenceConsumer} from "./IInferenceConsumer.sol";

/// @title LRTVault
/// @notice A liquid-restaking vault that acts only on proof-backed risk scores. Deposits mint
///         shares; assets are spread over restaking strategies. `requestRebalance` encodes the
///         vault's own on-chain state as the risk model's 8 features and asks the oracle; when
///         the proven scores arrive, allocations move away from risky strategies and deposits
///         pause while any risk is above the pause threshold. Withdrawals always work.
/// @dev Features (fractions in [0, 1] at the model's input scale), in order:
///      f0..f2 share of assets in strategy 0..2; f3..f5 loss ratio of strategy 0..2
///      (`RestakingStrategy.lossRatioWad`: max of the current shortfall and the compounded
///      lifetime slashing loss, so it stays up after the strategy is drained);
///      f6 idle share; f7 withdrawal pressure (assets withdrawn since the last rebalance over
///      total assets, capped at 1). Outputs: one risk score in [0, 1] per strategy.
///      Rebalance requests are rate-limited (`minRebalanceInterval`) because each one spends
///      the vault's ETH on an oracle fee that whoever fulfils it collects.
contract LRTVault is Owned, ReentrancyGuardTransient, IInferenceConsumer {
    /// @notice Number of restaking strategies (and of risk-model outputs).
    uint256 public constant NUM_STRATEGIES = 3;
    /// @notice Number of risk-model inputs.
    uint256 public constant NUM_FEATURES = 8;
    uint256 private constant WAD = 1e18;
    uint256 private constant BPS = 10_000;
    /// @dev Virtual shares/assets (as OpenZeppelin's ERC4626 offset) defeat the first-depositor
    ///      inflation attack.
    uint256 private constant VIRTUAL_SHARES = 1e3;
    uint256 private constant VIRTUAL_ASSETS = 1;
    /// @notice Smallest callback gas limit `setParameters` accepts.
    uint32 public constant MIN_CALLBACK_GAS = 100_000;
    /// @notice Margin on top of the oracle's minimum deadline delay for `requestTtl`, so a
    ///         request can still be mined a little late and be accepted.
    uint64 public constant TTL_MARGIN = 30;
    /// @notice Largest `minRebalanceInterval` the owner may set (rebalancing must stay possible).
    uint64 public constant MAX_REBALANCE_INTERVAL = 1 days;

    /// @notice The restaked token the vault holds.
    LRTToken public immutable asset;
    /// @notice The inference oracle; the only caller of `onInferenceResult`.
    InferenceOracle public immutable oracle;
    /// @notice The risk model rebalances ask for (bytes32(0) until set).
    bytes32 public riskModelId;
    /// @notice The restaking strategies, deployed by the constructor.
    RestakingStrategy[NUM_STRATEGIES] public strategies;

    /// @notice Vault shares per account.
    mapping(address account => uint256) public sharesOf;
    /// @notice Sum of all shares.
    uint256 public totalShares;
    /// @notice Target allocation per strategy in basis points of invested assets.
    uint256[NUM_STRATEGIES] public targetBps;
    /// @notice Share of assets kept idle for withdrawals, in basis points.
    uint256 public idleBufferBps = 1_000;
    /// @notice Deposits pause when any risk score reaches this (1e18 = 1.0).
    uint256 public pauseThresholdWad = 0.8e18;
    /// @notice A strategy whose risk reaches this gets no allocation.
    uint256 public exitThresholdWad = 0.6e18;
    /// @notice Gas the oracle gives `onInferenceResult` (see `setParameters`).
    uint32 public callbackGasLimit = 600_000;
    /// @notice Seconds from a rebalance request to its deadline (see `setParameters`).
    uint64 public requestTtl = 1 hours;
    /// @notice Seconds that must pass between two rebalance requests (0 = no limit).
    uint64 public minRebalanceInterval = 10 minutes;
    /// @notice Whether deposits are paused (set from proven risk scores).
    bool public depositsPaused;

    /// @notice The pending rebalance request (0 when none).
    uint256 public pendingRequestId;
    /// @notice Deadline of the pending rebalance request.
    uint64 public pendingDeadline;
    /// @notice Timestamp of the last rebalance request (0 = never).
    uint64 public lastRequestAt;
    /// @notice Assets withdrawn since the last proven rebalance (the withdrawal-pressure feature).
    uint256 public withdrawnSinceRebalance;
    /// @notice Timestamp of the last proven rebalance (0 = never).
    uint256 public lastRebalanceAt;
    /// @notice Last proven risk scores (1e18 = 1.0), one per strategy.
    uint256[NUM_STRATEGIES] public lastRisk;

    /// @notice Deposits are paused (a proven risk score reached the pause threshold).
    error DepositsArePaused();
    /// @notice A zero amount, or a deposit too small to mint one share.
    error ZeroAmount();
    /// @notice The caller holds fewer shares than it wants to burn.
    error InsufficientShares(uint256 have, uint256 want);
    /// @notice A rebalance request is pending until its deadline.
    error RebalancePending(uint256 requestId, uint64 deadline);
    /// @notice Only the oracle may deliver results.
    error NotOracle(address caller);
    /// @notice The result is not for the pending rebalance request.
    error UnexpectedRequest(uint256 requestId, uint256 pendingRequestId);
    /// @notice The result is not from the vault's risk model.
    error UnexpectedModel(bytes32 modelId);
    /// @notice The result does not hold one score per strategy.
    error BadOutputLength(uint256 got);
    /// @notice The vault's ETH balance cannot pay the oracle fee.
    error InsufficientFeeBalance(uint256 needed, uint256 available);
    /// @notice The exit threshold is above the pause threshold, or the pause threshold above 1.0.
    error InvalidThresholds(uint256 exitWad, uint256 pauseWad);
    /// @notice The idle buffer is above 5000 basis points.
    error InvalidBuffer(uint256 bps);
    /// @notice The model does not take NUM_FEATURES inputs and give NUM_STRATEGIES outputs.
    error ModelShapeMismatch(uint256 inputs, uint256 outputs);
    /// @notice The model's input format cannot carry 1.0 (inputScale + 2 > inputBits).
    error ModelScaleMismatch(uint8 inputScale, uint16 inputBits);
    /// @notice No risk model is set yet (`setRiskModel`).
    error RiskModelNotSet();
    /// @notice Less than `minRebalanceInterval` has passed since the last rebalance request.
    error RebalanceTooSoon(uint256 nextAllowedAt);
    /// @notice The callback gas limit is outside [min, max] (MIN_CALLBACK_GAS, oracle.MAX_CALLBACK_GAS()).
    error InvalidCallbackGasLimit(uint32 gasLimit, uint32 min, uint32 max);
    /// @notice The request TTL is outside [min, max] (the oracle's deadline window, with TTL_MARGIN).
    error InvalidRequestTtl(uint64 ttl, uint64 min, uint64 max);
    /// @notice The interval is above MAX_REBALANCE_INTERVAL.
    error InvalidRebalanceInterval(uint64 interval, uint64 max);

    /// @notice `account` deposited `assets` and received `shares`.
    event Deposit(address indexed account, uint256 assets, uint256 shares);
    /// @notice `account` burned `shares` for `assets`.
    event Withdraw(address indexed account, uint256 assets, uint256 shares);
    /// @notice A risk assessment of `features` was requested from the oracle, paying `fee`.
    event RebalanceRequested(uint256 indexed requestId, int256[] features, uint256 fee);
    /// @notice Proven risk scores arrived, one per strategy (1e18 = 1.0).
    event RiskAssessed(uint256 indexed requestId, uint256[NUM_STRATEGIES] riskWad);
    /// @notice New target allocations, in basis points of invested assets per strategy.
    event AllocationsUpdated(uint256[NUM_STRATEGIES] targetBps);
    /// @notice Deposits were paused or unpaused.
    event DepositsPausedSet(bool paused);
    /// @notice The owner changed the risk parameters.
    event ParametersChanged(
        uint256 idleBufferBps,
        uint256 exitThresholdWad,
        uint256 pauseThresholdWad,
        uint32 callbackGasLimit,
        uint64 requestTtl
    );
    /// @notice The owner pointed the vault at another risk model.
    event RiskModelChanged(bytes32 modelId);
    /// @notice The owner changed the minimum time between rebalance requests.
    event MinRebalanceIntervalChanged(uint64 interval);

    /// @param asset_ The restaked token.
    /// @param oracle_ The inference oracle; the only caller of `onInferenceResult`.
    /// @param riskModelId_ The registered risk model (checked as in `setRiskModel`), or
    ///        bytes32(0) to set it later with `setRiskModel`.
    /// @param initialOwner Owner of the parameters.
    constructor(LRTToken asset_, InferenceOracle oracle_, bytes32 riskModelId_, address initialOwner)
        Owned(initialOwner)
    {
        asset = asset_;
        oracle = oracle_;
        if (riskModelId_ != bytes32(0)) _checkModel(riskModelId_);
        riskModelId = riskModelId_;
        for (uint256 i; i < NUM_STRATEGIES; ++i) {
            strategies[i] = new RestakingStrategy(asset_, address(this), _label(i), initialOwner);
            targetBps[i] = BPS / NUM_STRATEGIES;
        }
        targetBps[0] += BPS - (BPS / NUM_STRATEGIES) * NUM_STRATEGIES;
    }

    /// @notice Accepts ETH for oracle fees (and oracle refunds of expired requests).
    receive() external payable {}

    // ------------------------------------------------------------------ users

    /// @notice Deposits `assets` tokens (approved beforehand) and mints shares.
    /// @param assets Amount of tokens.
    /// @return shares Shares minted.
    function deposit(uint256 assets) external nonReentrant returns (uint256 shares) {
        if (depositsPaused) revert DepositsArePaused();
        if (assets == 0) revert ZeroAmount();
        shares = (assets * (totalShares + VIRTUAL_SHARES)) / (totalAssets() + VIRTUAL_ASSETS);
        if (shares == 0) revert ZeroAmount();
        sharesOf[msg.sender] += shares;
        totalShares += shares;
        emit Deposit(msg.sender, assets, shares);
        asset.transferFrom(msg.sender, address(this), assets);
        _allocateIdle();
    }

    /// @notice Burns `shares` and returns their assets. Works even while deposits are paused.
    /// @param shares Shares to burn.
    /// @return assets Tokens sent.
    function withdraw(uint256 shares) external nonReentrant returns (uint256 assets) {
        if (shares == 0) revert ZeroAmount();
        uint256 have = sharesOf[msg.sender];
        if (have < shares) revert InsufficientShares(have, shares);
        assets = (shares * (totalAssets() + VIRTUAL_ASSETS)) / (totalShares + VIRTUAL_SHARES);
        sharesOf[msg.sender] = have - shares;
        totalShares -= shares;
        withdrawnSinceRebalance += assets;
        emit Withdraw(msg.sender, assets, shares);
        _pay(msg.sender, assets);
    }

    // ------------------------------------------------------------------ oracle

    /// @notice Asks the oracle for a proven risk assessment of the vault's current state. The
    ///         fee comes from the vault's ETH balance (send ETH with the call or beforehand).
    ///         Only one request may be pending; an expired one can be replaced. Requests are at
    ///         least `minRebalanceInterval` seconds apart (from the last request), so looping
    ///         request -> fulfil cannot drain the vault's ETH into fulfillers' fees.
    /// @return requestId The oracle request id.
    function requestRebalance() external payable nonReentrant returns (uint256 requestId) {
        if (pendingRequestId != 0 && block.timestamp <= pendingDeadline) {
            revert RebalancePending(pendingRequestId, pendingDeadline);
        }
        uint64 last = lastRequestAt;
        if (last != 0) {
            uint256 nextAllowedAt = uint256(last) + minRebalanceInterval;
            if (block.timestamp < nextAllowedAt) revert RebalanceTooSoon(nextAllowedAt);
        }
        if (riskModelId == bytes32(0)) revert RiskModelNotSet();
        int256[] memory features = currentFeatures();
        uint256 fee = oracle.quoteFee(riskModelId, callbackGasLimit);
        if (address(this).balance < fee) revert InsufficientFeeBalance(fee, address(this).balance);
        uint64 deadline = uint64(block.timestamp) + requestTtl;
        requestId =
            oracle.requestInference{value: fee}(riskModelId, features, address(this), callbackGasLimit, deadline);
        pendingRequestId = requestId;
        pendingDeadline = deadline;
        lastRequestAt = uint64(block.timestamp);
        emit RebalanceRequested(requestId, features, fee);
    }

    /// @inheritdoc IInferenceConsumer
    function onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata output) external nonReentrant {
        if (msg.sender != address(oracle)) revert NotOracle(msg.sender);
        if (requestId == 0 || requestId != pendingRequestId) revert UnexpectedRequest(requestId, pendingRequestId);
        if (modelId != riskModelId) revert UnexpectedModel(modelId);
        if (output.length != NUM_STRATEGIES) revert BadOutputLength(output.length);
        pendingRequestId = 0;
        pendingDeadline = 0;

        uint8 outScale = oracle.getModel(modelId).outputScale;
        uint256[NUM_STRATEGIES] memory risk;
        uint256 maxRisk;
        for (uint256 i; i < NUM_STRATEGIES; ++i) {
            risk[i] = _toWad(output[i], outScale);
            if (risk[i] > maxRisk) maxRisk = risk[i];
        }
        lastRisk = risk;
        emit RiskAssessed(requestId, risk);

        _setTargets(risk);
        bool pause = maxRisk >= pauseThresholdWad;
        if (pause != depositsPaused) {
            depositsPaused = pause;
            emit DepositsPausedSet(pause);
        }
        withdrawnSinceRebalance = 0;
        lastRebalanceAt = block.timestamp;
        _rebalance();
    }

    // ------------------------------------------------------------------ owner

    /// @notice Sets the vault's risk parameters.
    /// @param idleBufferBps_ Idle share in basis points (at most 5000).
    /// @param exitThresholdWad_ Risk at which a strategy gets no allocation.
    /// @param pauseThresholdWad_ Risk at which deposits pause (>= exit threshold).
    /// @param callbackGasLimit_ Gas for `onInferenceResult`, in
    ///        [MIN_CALLBACK_GAS, oracle.MAX_CALLBACK_GAS()].
    /// @param requestTtl_ Seconds before a rebalance request expires, in
    ///        [oracle.MIN_DEADLINE_DELAY() + TTL_MARGIN, oracle.MAX_DEADLINE_DELAY()].
    function setParameters(
        uint256 idleBufferBps_,
        uint256 exitThresholdWad_,
        uint256 pauseThresholdWad_,
        uint32 callbackGasLimit_,
        uint64 requestTtl_
    ) external onlyOwner {
        if (idleBufferBps_ > BPS / 2) revert InvalidBuffer(idleBufferBps_);
        if (exitThresholdWad_ > pauseThresholdWad_ || pauseThresholdWad_ > WAD) {
            revert InvalidThresholds(exitThresholdWad_, pauseThresholdWad_);
        }
        uint32 maxGas = oracle.MAX_CALLBACK_GAS();
        if (callbackGasLimit_ < MIN_CALLBACK_GAS || callbackGasLimit_ > maxGas) {
            revert InvalidCallbackGasLimit(callbackGasLimit_, MIN_CALLBACK_GAS, maxGas);
        }
        uint64 minTtl = oracle.MIN_DEADLINE_DELAY() + TTL_MARGIN;
        uint64 maxTtl = oracle.MAX_DEADLINE_DELAY();
        if (requestTtl_ < minTtl || requestTtl_ > maxTtl) revert InvalidRequestTtl(requestTtl_, minTtl, maxTtl);
        idleBufferBps = idleBufferBps_;
        exitThresholdWad = exitThresholdWad_;
        pauseThresholdWad = pauseThresholdWad_;
        callbackGasLimit = callbackGasLimit_;
        requestTtl = requestTtl_;
        emit ParametersChanged(idleBufferBps_, exitThresholdWad_, pauseThresholdWad_, callbackGasLimit_, requestTtl_);
    }

    /// @notice Sets the minimum time between two rebalance requests (0 disables the limit).
    /// @param interval Seconds, at most MAX_REBALANCE_INTERVAL.
    function setMinRebalanceInterval(uint64 interval) external onlyOwner {
        if (interval > MAX_REBALANCE_INTERVAL) revert InvalidRebalanceInterval(interval, MAX_REBALANCE_INTERVAL);
        minRebalanceInterval = interval;
        emit MinRebalanceIntervalChanged(interval);
    }

    /// @notice Points the vault at another registered risk model: 8 inputs, 3 outputs, and an
    ///         input format that can carry 1.0 (features are fractions in [0, 1]).
    /// @param modelId The model.
    function setRiskModel(bytes32 modelId) external onlyOwner {
        _checkModel(modelId);
        riskModelId = modelId;
        pendingRequestId = 0;
        pendingDeadline = 0;
        emit RiskModelChanged(modelId);
    }

    // ------------------------------------------------------------------ views

    /// @notice Idle tokens plus every strategy's balance.
    /// @return total The vault's assets.
    function totalAssets() public view returns (uint256 total) {
        total = asset.balanceOf(address(this));
        for (uint256 i; i < NUM_STRATEGIES; ++i) {
            total += strategies[i].balance();
        }
    }

    /// @notice Assets a holder's shares are worth now.
    /// @param account The holder.
    /// @return The assets.
    function assetsOf(address account) external view returns (uint256) {
        return (sharesOf[account] * (totalAssets() + VIRTUAL_ASSETS)) / (totalShares + VIRTUAL_SHARES);
    }

    /// @notice Current balance of every strategy.
    /// @return balances The balances, by strategy index.
    function allocations() external view returns (uint256[NUM_STRATEGIES] memory balances) {
        for (uint256 i; i < NUM_STRATEGIES; ++i) {
            balances[i] = strategies[i].balance();
        }
    }

    /// @notice Order in which withdrawals beyond the idle balance draw on strategies: by last
    ///         proven risk, riskiest first; equal risks by ascending index.
    /// @return order Strategy indices.
    function withdrawalOrder() public view returns (uint256[NUM_STRATEGIES] memory order) {
        uint256[NUM_STRATEGIES] memory risk = lastRisk;
        // Insertion sort, stable: an element moves ahead only past strictly lower risks.
        for (uint256 i; i < NUM_STRATEGIES; ++i) {
            uint256 j = i;
            while (j != 0 && risk[order[j - 1]] < risk[i]) {
                order[j] = order[j - 1];
                --j;
            }
            order[j] = i;
        }
    }

    /// @notice The risk model's input for the vault's current state (see the contract doc).
    /// @return features 8 fixed-point values at the model's input scale.
    function currentFeatures() public view returns (int256[] memory features) {
        uint8 scale = oracle.getModel(riskModelId).inputScale;
        features = new int256[](NUM_FEATURES);
        uint256 total = totalAssets();
        if (total == 0) return features;
        for (uint256 i; i < NUM_STRATEGIES; ++i) {
            features[i] = _fromWad((strategies[i].balance() * WAD) / total, scale);
            features[3 + i] = _fromWad(strategies[i].lossRatioWad(), scale);
        }
        features[6] = _fromWad((asset.balanceOf(address(this)) * WAD) / total, scale);
        uint256 pressure = (withdrawnSinceRebalance * WAD) / total;
        features[7] = _fromWad(pressure > WAD ? WAD : pressure, scale);
    }

    // ------------------------------------------------------------------ internals

    /// @dev Reverts unless `modelId` is registered (UnknownModel from the registry) with the
    ///      vault's shape and an input format in which 1.0 fits:
    ///      2**inputScale <= 2**(inputBits - 1) - 1, i.e. inputScale + 2 <= inputBits.
    function _checkModel(bytes32 modelId) private view {
        ModelRegistry.Model memory m = oracle.getModel(modelId);
        if (m.inputSize != NUM_FEATURES || m.outputSize != NUM_STRATEGIES) {
            revert ModelShapeMismatch(m.inputSize, m.outputSize);
        }
        if (uint256(m.inputScale) + 2 > m.inputBits) revert ModelScaleMismatch(m.inputScale, m.inputBits);
    }

    /// @dev Weight ∝ (1 - risk); strategies at or above the exit threshold get nothing.
    function _setTargets(uint256[NUM_STRATEGIES] memory risk) private {
        uint256[NUM_STRATEGIES] memory w;
        uint256 sum;
        for (uint256 i; i < NUM_STRATEGIES; ++i) {
            if (risk[i] < exitThresholdWad) w[i] = WAD - risk[i];
            sum += w[i];
        }
        uint256[NUM_STRATEGIES] memory bps;
        if (sum != 0) {
            uint256 assigned;
            for (uint256 i; i < NUM_STRATEGIES; ++i) {
                bps[i] = (w[i] * BPS) / sum;
                assigned += bps[i];
            }
            // Rounding dust goes to the safest strategy.
            uint256 best;
            for (uint256 i = 1; i < NUM_STRATEGIES; ++i) {
                if (w[i] > w[best]) best = i;
            }
            bps[best] += BPS - assigned;
        }
        targetBps = bps;
        emit AllocationsUpdated(bps);
    }

    /// @dev Moves funds so each strategy holds its target share of invested assets: first
    ///      pulls the excess out of over-allocated strategies, then tops up the others.
    function _rebalance() private {
        uint256 total = totalAssets();
        uint256 invest = (total * (BPS - idleBufferBps)) / BPS;
        uint256[NUM_STRATEGIES] memory target;
        for (uint256 i; i < NUM_STRATEGIES; ++i) {
            target[i] = (invest * targetBps[i]) / BPS;
            uint256 bal = strategies[i].balance();
            if (bal > target[i]) strategies[i].withdraw(address(this), bal - target[i]);
        }
        for (uint256 i; i < NUM_STRATEGIES; ++i) {
            uint256 bal = strategies[i].balance();
            if (bal < target[i]) _invest(i, target[i] - bal);
        }
    }

    /// @dev Puts idle funds above the buffer to work along the current targets.
    function _allocateIdle() private {
        uint256 total = totalAssets();
        uint256 idle = asset.balanceOf(address(this));
        uint256 buffer = (total * idleBufferBps) / BPS;
        if (idle <= buffer) return;
        uint256 spare = idle - buffer;
        for (uint256 i; i < NUM_STRATEGIES; ++i) {
            uint256 amount = (spare * targetBps[i]) / BPS;
            if (amount != 0) _invest(i, amount);
        }
    }

    function _invest(uint256 i, uint256 amount) private {
        uint256 idle = asset.balanceOf(address(this));
        if (amount > idle) amount = idle;
        if (amount == 0) return;
        asset.transfer(address(strategies[i]), amount);
        strategies[i].recordDeposit(amount);
    }

    /// @dev Pays from idle first, then from strategies riskiest first (`lastRisk` descending,
    ///      ties by index), so the safest strategy is touched last. A withdrawal never waits
    ///      for the oracle and never fails because of risk scores or the pause (stale or zero
    ///      scores only change the order).
    function _pay(address to, uint256 amount) private {
        uint256 idle = asset.balanceOf(address(this));
        uint256 fromIdle = amount < idle ? amount : idle;
        if (fromIdle != 0) asset.transfer(to, fromIdle);
        uint256 rest = amount - fromIdle;
        if (rest == 0) return;
        uint256[NUM_STRATEGIES] memory order = withdrawalOrder();
        for (uint256 k; k < NUM_STRATEGIES && rest != 0; ++k) {
            RestakingStrategy s = strategies[order[k]];
            uint256 bal = s.balance();
            uint256 take = rest < bal ? rest : bal;
            if (take != 0) {
                s.withdraw(to, take);
                rest -= take;
            }
        }
    }

    function _fromWad(uint256 wad, uint8 scale) private pure returns (int256) {
        return int256((wad << scale) / WAD);
    }

    /// @dev Fixed-point risk to 1e18 units, clamped to [0, 1]. Values >= 1.0 clamp before the
    ///      multiplication: the registry allows outputs up to 253 bits, and v * WAD would
    ///      overflow (and revert the callback) for v >= ~2**196.
    function _toWad(int256 v, uint8 scale) private pure returns (uint256) {
        if (v <= 0) return 0;
        if (uint256(v) >= uint256(1) << scale) return WAD;
        return (uint256(v) * WAD) >> scale;
    }

    function _label(uint256 i) private pure returns (string memory) {
        if (i == 0) return "strategy-0";
        if (i == 1) return "strategy-1";
        return "strategy-2";
    }
}
