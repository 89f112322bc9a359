// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Owned} from "./utils/Owned.sol";
import {IInferenceVerifier} from "./Verifier.sol";

/// @title ModelRegistry
/// @notice modelId -> verifier, proof system, input/output sizes and fixed-point scales, signed
///         value ranges, circuit id and fee. A modelId is never silently re-pointed: a new
///         verifier needs an evented upgrade that waits `UPGRADE_DELAY`, and a verifier that
///         was ever replaced is retired for good (risc0's router rule: no silent reuse).
contract ModelRegistry is Owned {
    enum ProofSystem {
        None,
        Groth16,
        Halo2
    }

    /// @notice A registered model. Values are signed fixed-point integers: a real x travels as
    ///         round(x * 2**scale) and must lie in [-(2**(bits-1)), 2**(bits-1) - 1].
    struct Model {
        address verifier; // an IInferenceVerifier (adapter in front of the generated verifier)
        ProofSystem proofSystem;
        uint16 inputSize;
        uint16 outputSize;
        uint8 inputScale;
        uint8 outputScale;
        uint16 inputBits;
        uint16 outputBits;
        bool frozen;
        bool batchVerify; // verifier also implements IBatchInferenceVerifier
        bool bindsPayee; // set by the registry from the verifier (a value passed in is ignored)
        uint24 verifierVersion; // set by the registry: 1 at registration, +1 per upgrade
        bytes32 circuitId; // sha256 of the verification key
        uint128 fee; // base fee in wei, on top of callback gas
        uint32 verifyGas; // gas to budget for one verification
    }

    struct PendingUpgrade {
        address verifier;
        bytes32 circuitId;
        uint64 readyAt;
    }

    /// @notice Where a circuit's keys come from, for integrators and auditors.
    struct Setup {
        bytes32 setupHash; // sha256 of the powers-of-tau / SRS file the keys were made from
        bool devKeys; // keys from a local, UNSAFE ceremony: whoever ran it can forge proofs
    }

    /// @notice Delay between proposing and executing a verifier upgrade.
    uint64 public constant UPGRADE_DELAY = 2 days;
    /// @notice Most input + output values a model may have.
    uint16 public constant MAX_SIGNALS = 1024;

    mapping(bytes32 modelId => Model) private _models;
    /// @notice The proposed verifier upgrade per model (all zero when none).
    mapping(bytes32 modelId => PendingUpgrade) public pendingUpgrades;
    /// @notice Verifiers that were replaced or belong to a frozen model; never accepted again.
    mapping(address verifier => bool) public retiredVerifiers;
    /// @notice Setup provenance per circuit id (recorded at registration and upgrade proposal).
    mapping(bytes32 circuitId => Setup) public setups;
    bytes32[] private _modelIds;

    /// @notice The model id is taken (ids are never reused).
    error ModelAlreadyRegistered(bytes32 modelId);
    /// @notice No model under this id.
    error UnknownModel(bytes32 modelId);
    /// @notice The model is frozen for good.
    error ModelIsFrozen(bytes32 modelId);
    /// @notice A field of the model description is not acceptable; `reason` names it.
    error InvalidModelConfig(string reason);
    /// @notice The verifier was replaced or frozen once and can never be used again.
    error VerifierRetired(address verifier);
    /// @notice No verifier upgrade was proposed for the model.
    error NoUpgradePending(bytes32 modelId);
    /// @notice The upgrade delay has not passed yet.
    error UpgradeNotReady(bytes32 modelId, uint64 readyAt);

    /// @notice A model was registered.
    event ModelRegistered(
        bytes32 indexed modelId,
        address indexed verifier,
        ProofSystem proofSystem,
        bytes32 circuitId,
        uint16 inputSize,
        uint16 outputSize
    );
    /// @notice A model was frozen for good; its verifier is retired.
    event ModelFrozen(bytes32 indexed modelId);
    /// @notice Batch verification was enabled or disabled for a model.
    event BatchVerifyChanged(bytes32 indexed modelId, bool enabled);
    /// @notice A model's base fee or verification gas budget was set (also at registration).
    event ModelFeeChanged(bytes32 indexed modelId, uint128 fee, uint32 verifyGas);
    /// @notice A verifier upgrade was proposed; it can be executed from `readyAt`.
    event VerifierUpgradeProposed(bytes32 indexed modelId, address indexed verifier, bytes32 circuitId, uint64 readyAt);
    /// @notice A proposed verifier upgrade was dropped.
    event VerifierUpgradeCancelled(bytes32 indexed modelId, address indexed verifier);
    /// @notice A model's verifier was replaced; the old one is retired.
    event VerifierUpgraded(
        bytes32 indexed modelId, address indexed oldVerifier, address indexed newVerifier, bytes32 circuitId
    );
    /// @notice The setup provenance of a circuit (sha256 of its ptau/SRS file, dev-keys flag).
    event SetupRecorded(bytes32 indexed circuitId, bytes32 setupHash, bool devKeys);

    constructor(address initialOwner) Owned(initialOwner) {}

    /// @notice Registers a new model. The modelId must never have been used.
    /// @param modelId The identifier integrators use (the CLI derives it from the circuit id).
    /// @param model The model description; `frozen` must be false; `bindsPayee` and
    ///        `verifierVersion` are set here (from the verifier, and 1).
    /// @param setup Where the circuit's keys come from (recorded under its circuit id).
    function register(bytes32 modelId, Model calldata model, Setup calldata setup) external onlyOwner {
        if (_models[modelId].proofSystem != ProofSystem.None) revert ModelAlreadyRegistered(modelId);
        _validate(model);
        if (model.frozen) revert InvalidModelConfig("cannot register frozen");
        Model storage m = _models[modelId];
        _models[modelId] = model;
        m.bindsPayee = IInferenceVerifier(model.verifier).bindsPayee();
        m.verifierVersion = 1;
        _modelIds.push(modelId);
        _recordSetup(model.circuitId, setup);
        emit ModelRegistered(
            modelId, model.verifier, model.proofSystem, model.circuitId, model.inputSize, model.outputSize
        );
        emit ModelFeeChanged(modelId, model.fee, model.verifyGas);
    }

    /// @notice Freezes a model for good: no new requests, and its verifier is retired, so its
    ///         pending requests can no longer be fulfilled (their requesters get refunds at once).
    /// @param modelId The model to freeze.
    function freeze(bytes32 modelId) external onlyOwner {
        Model storage m = _existing(modelId);
        if (m.frozen) revert ModelIsFrozen(modelId);
        m.frozen = true;
        retiredVerifiers[m.verifier] = true;
        _dropPendingUpgrade(modelId);
        emit ModelFrozen(modelId);
    }

    /// @notice Changes a model's base fee and verification gas budget.
    /// @param modelId The model.
    /// @param fee New base fee in wei.
    /// @param verifyGas New gas budget for one verification.
    function setFee(bytes32 modelId, uint128 fee, uint32 verifyGas) external onlyOwner {
        Model storage m = _existing(modelId);
        if (verifyGas == 0) revert InvalidModelConfig("verifyGas is zero");
        m.fee = fee;
        m.verifyGas = verifyGas;
        emit ModelFeeChanged(modelId, fee, verifyGas);
    }

    /// @notice Proposes a new verifier (e.g. a fixed circuit) for a model; it can be executed
    ///         after `UPGRADE_DELAY`, giving integrators time to react.
    /// @param modelId The model.
    /// @param verifier The new verifier adapter.
    /// @param circuitId The new circuit id (sha256 of the new verification key).
    /// @param setup Where the new circuit's keys come from.
    function proposeVerifierUpgrade(bytes32 modelId, address verifier, bytes32 circuitId, Setup calldata setup)
        external
        onlyOwner
    {
        Model storage m = _existing(modelId);
        if (m.frozen) revert ModelIsFrozen(modelId);
        if (verifier == address(0) || verifier.code.length == 0) revert InvalidModelConfig("verifier has no code");
        if (retiredVerifiers[verifier] || verifier == m.verifier) revert VerifierRetired(verifier);
        if (circuitId == bytes32(0)) revert InvalidModelConfig("circuitId");
        uint64 readyAt = uint64(block.timestamp) + UPGRADE_DELAY;
        _dropPendingUpgrade(modelId); // a new proposal replaces (and cancels) the old one
        pendingUpgrades[modelId] = PendingUpgrade(verifier, circuitId, readyAt);
        _recordSetup(circuitId, setup);
        emit VerifierUpgradeProposed(modelId, verifier, circuitId, readyAt);
    }

    /// @notice Cancels a pending verifier upgrade.
    /// @param modelId The model.
    function cancelVerifierUpgrade(bytes32 modelId) external onlyOwner {
        PendingUpgrade memory p = pendingUpgrades[modelId];
        if (p.verifier == address(0)) revert NoUpgradePending(modelId);
        delete pendingUpgrades[modelId];
        emit VerifierUpgradeCancelled(modelId, p.verifier);
    }

    /// @notice Executes a proposed upgrade once its delay has passed; the old verifier is retired
    ///         and the version bumped, so requests made before can no longer be fulfilled (they
    ///         were made under the old circuit) and are refundable at once.
    /// @param modelId The model.
    function executeVerifierUpgrade(bytes32 modelId) external onlyOwner {
        Model storage m = _existing(modelId);
        PendingUpgrade memory p = pendingUpgrades[modelId];
        if (p.verifier == address(0)) revert NoUpgradePending(modelId);
        if (block.timestamp < p.readyAt) revert UpgradeNotReady(modelId, p.readyAt);
        if (retiredVerifiers[p.verifier]) revert VerifierRetired(p.verifier);
        address old = m.verifier;
        retiredVerifiers[old] = true;
        m.verifier = p.verifier;
        m.circuitId = p.circuitId;
        // A new verifier may not support batches: fall back to one-by-one until re-declared.
        m.batchVerify = false;
        m.bindsPayee = IInferenceVerifier(p.verifier).bindsPayee();
        ++m.verifierVersion;
        delete pendingUpgrades[modelId];
        emit VerifierUpgraded(modelId, old, p.verifier, p.circuitId);
    }

    /// @notice Declares whether the model's verifier also implements IBatchInferenceVerifier
    ///         (e.g. after an upgrade, which resets it). A wrong `true` is harmless: the oracle
    ///         falls back to one-by-one verification when a batch check fails.
    /// @param modelId The model.
    /// @param enabled Whether fulfillBatch may verify this model's proofs together.
    function setBatchVerify(bytes32 modelId, bool enabled) external onlyOwner {
        Model storage m = _existing(modelId);
        m.batchVerify = enabled;
        emit BatchVerifyChanged(modelId, enabled);
    }

    /// @notice The registered model.
    /// @param modelId The model.
    /// @return The model; reverts with UnknownModel when absent.
    function getModel(bytes32 modelId) external view returns (Model memory) {
        return _existing(modelId);
    }

    /// @notice Whether a model is registered.
    /// @param modelId The model.
    /// @return True when registered (frozen or not).
    function isRegistered(bytes32 modelId) external view returns (bool) {
        return _models[modelId].proofSystem != ProofSystem.None;
    }

    /// @notice All registered model ids, in registration order.
    /// @return The ids.
    function modelIds() external view returns (bytes32[] memory) {
        return _modelIds;
    }

    /// @dev Write-once per circuit: keys are what they are, so a later (say, cancelled) proposal
    ///      or a second model on the same circuit can never relabel dev keys as production ones.
    function _recordSetup(bytes32 circuitId, Setup calldata setup) private {
        if (setup.setupHash == bytes32(0)) revert InvalidModelConfig("setupHash");
        Setup memory known = setups[circuitId];
        if (known.setupHash != bytes32(0)) {
            if (known.setupHash != setup.setupHash || known.devKeys != setup.devKeys) {
                revert InvalidModelConfig("setup differs from the one recorded for this circuit");
            }
            return;
        }
        setups[circuitId] = setup;
        emit SetupRecorded(circuitId, setup.setupHash, setup.devKeys);
    }

    function _dropPendingUpgrade(bytes32 modelId) private {
        address pending = pendingUpgrades[modelId].verifier;
        if (pending != address(0)) {
            delete pendingUpgrades[modelId];
            emit VerifierUpgradeCancelled(modelId, pending);
        }
    }

    function _existing(bytes32 modelId) private view returns (Model storage m) {
        m = _models[modelId];
        if (m.proofSystem == ProofSystem.None) revert UnknownModel(modelId);
    }

    function _validate(Model calldata model) private view {
        if (model.proofSystem == ProofSystem.None) revert InvalidModelConfig("proof system");
        if (model.verifier == address(0) || model.verifier.code.length == 0) {
            revert InvalidModelConfig("verifier has no code");
        }
        if (retiredVerifiers[model.verifier]) revert VerifierRetired(model.verifier);
        if (model.inputSize == 0 || model.outputSize == 0) revert InvalidModelConfig("empty input or output");
        if (uint256(model.inputSize) + model.outputSize > MAX_SIGNALS) revert InvalidModelConfig("too many signals");
        // 253 bits keeps every value below r/2, so the field encoding is injective.
        if (model.inputBits < 2 || model.inputBits > 253) revert InvalidModelConfig("inputBits");
        if (model.outputBits < 2 || model.outputBits > 253) revert InvalidModelConfig("outputBits");
        if (model.circuitId == bytes32(0)) revert InvalidModelConfig("circuitId");
        if (model.verifyGas == 0) revert InvalidModelConfig("verifyGas is zero");
    }
}
