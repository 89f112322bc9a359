// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "./Test.sol";
import {TestHashVerifier, UnboundHashVerifier} from "./TestHashVerifier.sol";
import {TestSetup} from "./TestSetup.sol";
import {EthRejecter, RecordingConsumer, RevertingConsumer} from "./Mocks.sol";
import {InferenceOracle} from "../../InferenceOracle.sol";
import {ModelRegistry} from "../../ModelRegistry.sol";

/// @notice Drives the oracle for invariant tests: requests, valid and invalid fulfilments,
///         batches (with duplicates and bad proofs), refunds after time passes, withdrawals,
///         by several actors (one of which rejects ETH). Every fulfilment names a payee that is
///         usually NOT its sender (a relayer sending a proof made for someone else, as a copier
///         replaying a pending fulfilment would). One model's verifier cannot bind payees
///         (commit-reveal: the handler commits, or forgets to, before fulfilling), and one
///         model's verifier is upgraded now and then (its pending requests become unfulfillable
///         and refundable at once). Keeps ghost state the invariants read: InferenceFulfilled
///         events per request, whether a status ever went backwards, and per-account expected
///         credits (fees earned as payee, overpayments, refunds that could not be sent).
contract OracleHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 public constant MAX_UPGRADES = 3;

    InferenceOracle public immutable oracle;
    ModelRegistry public immutable registry;
    TestHashVerifier public immutable verifier;
    UnboundHashVerifier public immutable unboundVerifier;
    /// @notice models[0]: batchable, binds payees; [1]: plain, binds payees, upgraded by
    ///         `upgrade`; [2]: batchable, does not bind payees (commit-reveal).
    bytes32[] internal _models;
    address[] internal _actors;
    EthRejecter public immutable rejecter;
    RecordingConsumer public immutable goodConsumer;
    RevertingConsumer public immutable badConsumer;

    uint256[] internal _ids;
    mapping(uint256 id => uint256) public fulfilledEvents;
    mapping(uint256 id => InferenceOracle.Status) internal _seen;
    mapping(uint256 id => uint24) internal _versionAtRequest;
    mapping(uint256 id => bytes32) internal _modelOf;
    bool public statusRegressed;
    uint256 public maxFulfilledEvents;
    mapping(string action => uint256) public calls;

    // Ghost accounting: what each account must be able to withdraw (or has withdrawn).
    mapping(address account => uint256) public expectedCredits;
    mapping(address account => uint256) public withdrawn;
    /// @notice A fee went to someone other than the payee the fulfilment named.
    bool public feeToWrongAccount;
    /// @notice A request was fulfilled although its verifier had been retired.
    bool public fulfilledUnderRetiredVerifier;
    /// @notice A request was refunded before its deadline although its verifier was current.
    bool public refundedEarlyWhileCurrent;
    /// @notice A commit-reveal model's request was fulfilled without an earlier commitment.
    bool public fulfilledUncommitted;
    uint256 public upgrades;

    // Per-action expectation, checked in _end(): the payee the action's fulfilments name.
    address internal _payee;
    /// @dev Commitments the handler made (each in a block before any fulfilment it allows).
    mapping(bytes32 commitment => bool) internal _committed;

    constructor(
        InferenceOracle oracle_,
        ModelRegistry registry_,
        TestHashVerifier verifier_,
        UnboundHashVerifier unboundVerifier_,
        bytes32[] memory models_
    ) {
        oracle = oracle_;
        registry = registry_;
        verifier = verifier_;
        unboundVerifier = unboundVerifier_;
        _models = models_;
        rejecter = new EthRejecter(oracle_);
        goodConsumer = new RecordingConsumer();
        badConsumer = new RevertingConsumer();
        _actors.push(address(0xA1));
        _actors.push(address(0xA2));
        _actors.push(address(0xA3));
        _actors.push(address(rejecter));
    }

    receive() external payable {}

    // ------------------------------------------------------------------ views for invariants

    function ids() external view returns (uint256[] memory) {
        return _ids;
    }

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    function models() external view returns (bytes32[] memory) {
        return _models;
    }

    // ------------------------------------------------------------------ actions

    function request(
        uint256 actorSeed,
        uint256 modelSeed,
        uint256 extra,
        uint256 delaySeed,
        uint256 inputSeed,
        uint256 cbSeed
    ) external {
        _begin("request");
        address actor = _actor(actorSeed);
        bytes32 model = _models[modelSeed % _models.length];
        (address cb, uint32 gasLimit) = _callback(cbSeed);
        uint256 fee = oracle.quoteFee(model, gasLimit);
        uint256 value = fee + (extra % 3 == 0 ? extra % 1 ether : 0);
        uint64 deadline = uint64(block.timestamp + 30 + delaySeed % 3 days); // some outlive an upgrade
        int256[] memory input = _input(inputSeed);
        uint256 id;
        if (actor == address(rejecter)) {
            vm.deal(address(this), address(this).balance + value);
            id = rejecter.request{value: value}(model, input, deadline);
        } else {
            vm.deal(actor, actor.balance + value);
            vm.prank(actor);
            id = oracle.requestInference{value: value}(model, input, cb, gasLimit, deadline);
        }
        _ids.push(id);
        _versionAtRequest[id] = registry.getModel(model).verifierVersion;
        _modelOf[id] = model;
        expectedCredits[actor] += value - oracle.getRequest(id).fee;
        _end();
    }

    /// @dev `actorSeed` picks the sender, `payeeSeed` the payee the proof is made for (often
    ///      another actor). For a commit-reveal model, `validSeed` also decides whether the
    ///      fulfilment is committed (and a block passes) first.
    function fulfil(uint256 actorSeed, uint256 payeeSeed, uint256 idSeed, uint256 validSeed) external {
        if (_ids.length == 0) return;
        _begin("fulfil");
        // Prefer recent requests (older ones are likelier to be expired); 1 in 4 proofs is bad.
        uint256 id = _ids[_ids.length - 1 - idSeed % (_ids.length < 4 ? _ids.length : 4)];
        _payee = _actor(payeeSeed);
        (int256[] memory out, bytes memory proof) = _answer(id, _payee, validSeed % 4 != 0);
        if ((validSeed >> 8) % 4 != 0) _commit(id, out, _payee, proof);
        vm.roll(block.number + 1);
        vm.prank(_actor(actorSeed));
        try oracle.fulfill(id, out, _payee, proof) {
            ++calls["fulfil.ok"];
        } catch {}
        _end();
    }

    function fulfilBatch(
        uint256 actorSeed,
        uint256 payeeSeed,
        uint256 start,
        uint256 step,
        uint256 countSeed,
        uint256 badMask
    ) external {
        if (_ids.length == 0) return;
        _begin("fulfilBatch");
        _payee = _actor(payeeSeed);
        uint256 n = 1 + countSeed % 5;
        uint256[] memory batchIds = new uint256[](n);
        int256[][] memory outs = new int256[][](n);
        bytes[] memory proofs = new bytes[](n);
        // Half the batches: recent requests of one model (the batch verification path);
        // otherwise recent requests walking back by 0 (duplicates), 1 or 2.
        bool oneModel = (badMask >> 200) % 2 == 0;
        bytes32 model = _models[(badMask >> 201) % _models.length];
        uint256 j = _ids.length;
        for (uint256 i; i < n; ++i) {
            if (oneModel) {
                uint256 k = j;
                while (k > 0 && _modelOf[_ids[k - 1]] != model) --k;
                if (k > 0) j = k - 1; // else: repeat the last one found (a duplicate)
                batchIds[i] = _ids[j == _ids.length ? _ids.length - 1 : j];
            } else {
                uint256 back = (start % 6 + i * (step % 3)) % _ids.length;
                batchIds[i] = _ids[_ids.length - 1 - back];
            }
            (outs[i], proofs[i]) = _answer(batchIds[i], _payee, (badMask >> (2 * i)) & 3 != 0); // 1 in 4 bad
            if ((badMask >> (128 + i)) & 1 == 0) _commit(batchIds[i], outs[i], _payee, proofs[i]);
        }
        vm.roll(block.number + 1);
        vm.prank(_actor(actorSeed));
        try oracle.fulfillBatch(batchIds, outs, _payee, proofs) returns (uint256 done) {
            calls["fulfilBatch.fulfilled"] += done;
        } catch {}
        _end();
    }

    /// @dev Refund after time passes: warps past the chosen request's deadline when needed
    ///      (a request whose verifier was retired is refunded at once).
    function refund(uint256 actorSeed, uint256 idSeed, bool warpFirst) external {
        if (_ids.length == 0) return;
        _begin("refund");
        uint256 id = _ids[idSeed % _ids.length];
        InferenceOracle.RequestView memory r = oracle.getRequest(id);
        if (warpFirst && r.status == InferenceOracle.Status.Pending) {
            if (block.timestamp <= r.deadline) vm.warp(uint256(r.deadline) + 1);
        }
        bool current = registry.getModel(r.modelId).verifierVersion == _versionAtRequest[id]
            && !registry.getModel(r.modelId).frozen;
        bool early = block.timestamp <= r.deadline;
        vm.prank(_actor(actorSeed));
        try oracle.refund(id) {
            ++calls["refund.ok"];
            if (early) ++calls["refund.early"];
            if (early && current) refundedEarlyWhileCurrent = true;
            if (r.requester == address(rejecter)) expectedCredits[address(rejecter)] += r.fee;
        } catch {}
        _end();
    }

    function withdraw(uint256 actorSeed) external {
        _begin("withdraw");
        address actor = _actor(actorSeed);
        uint256 bal = oracle.balances(actor);
        vm.prank(actor);
        try oracle.withdraw() {
            ++calls["withdraw.ok"];
            withdrawn[actor] += bal;
        } catch {}
        _end();
    }

    function warp(uint256 secs) external {
        _begin("warp");
        vm.warp(block.timestamp + secs % 10 minutes);
        _end();
    }

    /// @dev Upgrades the verifier of models[1] (at most MAX_UPGRADES times per run, and only
    ///      when `seed` says so, so that most runs keep requests fulfillable): propose, wait the
    ///      delay, execute. Its pending requests become unfulfillable and refundable at once.
    function upgrade(uint256 seed) external {
        if (upgrades >= MAX_UPGRADES || seed % 8 != 0) return;
        _begin("upgrade");
        bytes32 model = _models[1];
        TestHashVerifier next = new TestHashVerifier(); // same proofs, new version
        registry.proposeVerifierUpgrade(model, address(next), keccak256(abi.encode(model, upgrades)), TestSetup.dev());
        vm.warp(block.timestamp + registry.UPGRADE_DELAY());
        registry.executeVerifierUpgrade(model);
        ++upgrades;
        _end();
    }

    // ------------------------------------------------------------------ internals

    function _actor(uint256 seed) internal view returns (address) {
        return _actors[seed % _actors.length];
    }

    function _callback(uint256 seed) internal view returns (address, uint32) {
        uint256 k = seed % 3;
        if (k == 1) return (address(goodConsumer), 300_000);
        if (k == 2) return (address(badConsumer), 50_000);
        return (address(0), 0);
    }

    function _input(uint256 seed) internal pure returns (int256[] memory v) {
        v = new int256[](3);
        for (uint256 i; i < 3; ++i) {
            v[i] = int256(uint256(keccak256(abi.encode(seed, i))) % 65_536) - 32_768;
        }
    }

    /// @dev A valid answer for `payee` under the request's model, or a bad proof.
    function _answer(uint256 id, address payee, bool valid)
        internal
        view
        returns (int256[] memory out, bytes memory proof)
    {
        out = new int256[](2);
        out[0] = int256(id);
        out[1] = -int256(id);
        if (!valid) return (out, bytes("bad proof"));
        InferenceOracle.RequestView memory r = oracle.getRequest(id);
        proof =
            r.modelId == _models[2] ? unboundVerifier.proofFor(r.input, out) : verifier.proofFor(r.input, out, payee);
    }

    /// @dev Commits (from a random-looking committer: anyone may); the caller rolls a block.
    function _commit(uint256 id, int256[] memory out, address payee, bytes memory proof) internal {
        bytes32 c = keccak256(abi.encode(id, out, payee, proof));
        vm.prank(address(0xC0FFEE));
        oracle.commitFulfillment(c);
        _committed[c] = true;
    }

    function _begin(string memory action) internal {
        ++calls[action];
        _payee = address(0);
        vm.recordLogs();
    }

    function _end() internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 t0 = InferenceOracle.InferenceFulfilled.selector;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(oracle) || logs[i].topics.length < 4 || logs[i].topics[0] != t0) continue;
            uint256 id = uint256(logs[i].topics[1]);
            address payee = address(uint160(uint256(logs[i].topics[3])));
            uint256 c = ++fulfilledEvents[id];
            if (c > maxFulfilledEvents) maxFulfilledEvents = c;
            if (payee != _payee) feeToWrongAccount = true;
            InferenceOracle.RequestView memory r = oracle.getRequest(id);
            expectedCredits[_payee] += r.fee;
            if (registry.getModel(r.modelId).verifierVersion != _versionAtRequest[id]) {
                fulfilledUnderRetiredVerifier = true;
            }
            if (r.modelId == _models[2]) {
                (int256[] memory out, bytes memory proof) = _answer(id, _payee, true);
                if (!_committed[keccak256(abi.encode(id, out, _payee, proof))]) fulfilledUncommitted = true;
            }
        }
        for (uint256 i; i < _ids.length; ++i) {
            uint256 id = _ids[i];
            InferenceOracle.Status prev = _seen[id];
            InferenceOracle.Status cur = oracle.requestStatus(id);
            bool terminal = prev == InferenceOracle.Status.Fulfilled || prev == InferenceOracle.Status.Refunded;
            if (
                (terminal && cur != prev)
                    || (prev == InferenceOracle.Status.Pending && cur == InferenceOracle.Status.None)
            ) {
                statusRegressed = true;
            }
            _seen[id] = cur;
        }
    }
}
