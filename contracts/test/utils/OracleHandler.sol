// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "./Test.sol";
import {TestHashVerifier} from "./TestHashVerifier.sol";
import {EthRejecter, RecordingConsumer, RevertingConsumer} from "./Mocks.sol";
import {InferenceOracle} from "../../InferenceOracle.sol";

/// @notice Drives the oracle for invariant tests: requests, valid and invalid fulfilments,
///         batches (with duplicates and bad proofs), refunds after time passes, withdrawals,
///         by several actors (one of which rejects ETH). Keeps ghost state the invariants read:
///         InferenceFulfilled events per request, and whether a status ever went backwards.
contract OracleHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    InferenceOracle public immutable oracle;
    TestHashVerifier public immutable verifier;
    bytes32[] internal _models;
    address[] internal _actors;
    EthRejecter public immutable rejecter;
    RecordingConsumer public immutable goodConsumer;
    RevertingConsumer public immutable badConsumer;

    uint256[] internal _ids;
    mapping(uint256 id => uint256) public fulfilledEvents;
    mapping(uint256 id => InferenceOracle.Status) internal _seen;
    bool public statusRegressed;
    uint256 public maxFulfilledEvents;
    mapping(string action => uint256) public calls;

    constructor(InferenceOracle oracle_, TestHashVerifier verifier_, bytes32[] memory models_) {
        oracle = oracle_;
        verifier = verifier_;
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

    // ------------------------------------------------------------------ actions

    function request(uint256 actorSeed, uint256 modelSeed, uint256 extra, uint256 delaySeed, uint256 inputSeed, uint256 cbSeed)
        external
    {
        _begin("request");
        address actor = _actor(actorSeed);
        bytes32 model = _models[modelSeed % _models.length];
        (address cb, uint32 gasLimit) = _callback(cbSeed);
        uint256 fee = oracle.quoteFee(model, gasLimit);
        uint256 value = fee + (extra % 3 == 0 ? extra % 1 ether : 0);
        uint64 deadline = uint64(block.timestamp + 30 + delaySeed % 2 hours);
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
        _end();
    }

    function fulfil(uint256 actorSeed, uint256 idSeed, uint256 validSeed) external {
        if (_ids.length == 0) return;
        _begin("fulfil");
        // Prefer recent requests (older ones are likelier to be expired); 1 in 4 proofs is bad.
        uint256 id = _ids[_ids.length - 1 - idSeed % (_ids.length < 4 ? _ids.length : 4)];
        (int256[] memory out, bytes memory proof) = _answer(id, validSeed % 4 != 0);
        vm.prank(_actor(actorSeed));
        try oracle.fulfill(id, out, proof) {
            ++calls["fulfil.ok"];
        } catch {}
        _end();
    }

    function fulfilBatch(uint256 actorSeed, uint256 start, uint256 step, uint256 countSeed, uint256 badMask)
        external
    {
        if (_ids.length == 0) return;
        _begin("fulfilBatch");
        uint256 n = 1 + countSeed % 5;
        uint256[] memory batchIds = new uint256[](n);
        int256[][] memory outs = new int256[][](n);
        bytes[] memory proofs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            // step 0 gives duplicates; (start + i * step) walks the list otherwise
            // recent requests, walking back by 0 (duplicates), 1 or 2
            uint256 back = (start % 6 + i * (step % 3)) % _ids.length;
            batchIds[i] = _ids[_ids.length - 1 - back];
            (outs[i], proofs[i]) = _answer(batchIds[i], (badMask >> (2 * i)) & 3 != 0); // 1 in 4 bad
        }
        vm.prank(_actor(actorSeed));
        try oracle.fulfillBatch(batchIds, outs, proofs) returns (uint256 done) {
            calls["fulfilBatch.fulfilled"] += done;
        } catch {}
        _end();
    }

    /// @dev Refund after time passes: warps past the chosen request's deadline when needed.
    function refund(uint256 actorSeed, uint256 idSeed, bool warpFirst) external {
        if (_ids.length == 0) return;
        _begin("refund");
        uint256 id = _ids[idSeed % _ids.length];
        if (warpFirst && oracle.requestStatus(id) == InferenceOracle.Status.Pending) {
            uint64 deadline = oracle.getRequest(id).deadline;
            if (block.timestamp <= deadline) vm.warp(uint256(deadline) + 1);
        }
        vm.prank(_actor(actorSeed));
        try oracle.refund(id) {
            ++calls["refund.ok"];
        } catch {}
        _end();
    }

    function withdraw(uint256 actorSeed) external {
        _begin("withdraw");
        address actor = _actor(actorSeed);
        vm.prank(actor);
        try oracle.withdraw() {
            ++calls["withdraw.ok"];
        } catch {}
        _end();
    }

    function warp(uint256 secs) external {
        _begin("warp");
        vm.warp(block.timestamp + secs % 10 minutes);
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

    function _answer(uint256 id, bool valid) internal view returns (int256[] memory out, bytes memory proof) {
        out = new int256[](2);
        out[0] = int256(id);
        out[1] = -int256(id);
        proof = valid ? verifier.proofFor(oracle.getRequest(id).input, out) : bytes("bad proof");
    }

    function _begin(string memory action) internal {
        ++calls[action];
        vm.recordLogs();
    }

    function _end() internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 t0 = InferenceOracle.InferenceFulfilled.selector;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(oracle) || logs[i].topics.length < 2 || logs[i].topics[0] != t0) continue;
            uint256 id = uint256(logs[i].topics[1]);
            uint256 c = ++fulfilledEvents[id];
            if (c > maxFulfilledEvents) maxFulfilledEvents = c;
        }
        for (uint256 i; i < _ids.length; ++i) {
            uint256 id = _ids[i];
            InferenceOracle.Status prev = _seen[id];
            InferenceOracle.Status cur = oracle.requestStatus(id);
            bool terminal = prev == InferenceOracle.Status.Fulfilled || prev == InferenceOracle.Status.Refunded;
            if ((terminal && cur != prev) || (prev == InferenceOracle.Status.Pending && cur == InferenceOracle.Status.None)) {
                statusRegressed = true;
            }
            _seen[id] = cur;
        }
    }
}
