"""Cross-chain on two anvil chains with different chain ids: one proof, verified on each chain
that needs it. Chain A is the session anvil (31337); chain B is a second anvil (31338).

- `oracle models register` with two --rpc/--registry pairs registers the same circuit on both;
- a request on A naming B is fulfilled on A and delivered on B by the service, B verifying the
  same proof with its own verifier; the consumer on B receives the proven output;
- B rejects a tampered proof; a request naming an unknown destination is rejected clearly;
- B down does not stop A, and B's deliveries resume when it is back.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract

from oracle.chain.anvil import DEV_KEYS, Anvil
from oracle.chain.client import Chain, ContractError
from oracle.chain.deploy import Deployment, deploy_all, deploy_cross_chain
from oracle.chain.structs import read_model
from oracle.circuits.quantize import QuantizedModel, quantized_forward
from oracle.cli import main as oracle_cli
from oracle.proving.groth16 import Groth16Backend
from oracle.service.config import ChainConfig, ProverConfig, RelayerSettings, ServiceConfig
from oracle.store.models import Delivery, DeliveryState, RelayerTx
from relayer.delivery import DeliveryJob, _Message, delivery_key
from tests.forwarder import deploy_forwarder
from tests.service_harness import RELAYER_KEY_INDEX, models_dir_with, running_service, wait_for

if TYPE_CHECKING:
    from oracle.service.app import ChainRuntime, OracleService

CHAIN_B = 31338
DST_GAS = 300_000
NO_CALLBACK = "0x" + "00" * 20


@pytest.fixture(scope="module")
def anvil_b() -> Iterator[Anvil]:
    with Anvil(chain_id=CHAIN_B) as node:
        yield node


@dataclass
class TwoChains:
    a: Chain
    b: Chain
    da: Deployment
    db: Deployment
    model_id: bytes
    inbox: Contract
    results: Contract
    consumer: Contract
    oracle_a: Contract
    oracle_b: Contract

    def request_to(self, x: list[int], dst: int = CHAIN_B, gas: int = DST_GAS) -> int:
        fee = int(self.oracle_a.functions.quoteFeeTo(self.model_id, gas).call())
        deadline = int(self.a.w3.eth.get_block("latest")["timestamp"]) + 3600
        self.a.transact(self.oracle_a.functions.requestInferenceTo(
            dst, self.consumer.address, self.model_id, x, gas, deadline), value=fee)
        return int(self.oracle_a.functions.nextRequestId().call()) - 1


def register_everywhere(circuit: Path, pairs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`oracle models register CIRCUIT --rpc A --registry RA --rpc B --registry RB`. The test
    circuits have development keys and chain B's id (31338) is not a development chain id, so
    registration on B needs the explicit override (refused without it: test_register_dev_keys)."""
    monkeypatch.setenv("ORACLE_PRIVATE_KEY", DEV_KEYS[0])
    args = ["models", "register", str(circuit), "--i-understand-dev-keys-are-forgeable"]
    for rpc, registry in pairs:
        args += ["--rpc", rpc, "--registry", registry]
    capsys.readouterr()
    assert oracle_cli(args) == 0
    return capsys.readouterr().out.split()


def setup_two_chains(a: Chain, b: Chain, circuit: Path, monkeypatch: pytest.MonkeyPatch,
                     capsys: pytest.CaptureFixture[str]) -> TwoChains:
    da, db = deploy_all(a), deploy_all(b)
    ids = register_everywhere(circuit, [(a.w3.provider.endpoint_uri, da.registry),  # type: ignore[attr-defined]
                                        (b.w3.provider.endpoint_uri, db.registry)], monkeypatch, capsys)  # type: ignore[attr-defined]
    assert len(ids) == 2 and ids[0] == ids[1], ids
    model_id = bytes.fromhex(ids[0][2:])
    x = deploy_cross_chain(b, db.registry)
    consumer = b.deploy("CommittedInputConsumer", x.inbox, model_id, b.account.address)  # type: ignore[union-attr]
    oracle_a = a.contract("InferenceOracle", da.oracle)
    a.transact(oracle_a.functions.setDestination(b.chain_id, True))
    return TwoChains(a=a, b=b, da=da, db=db, model_id=model_id, inbox=b.contract("CrossChainInbox", x.inbox),
                     results=b.contract("ProvenResults", x.proven_results),
                     consumer=b.contract("CommittedInputConsumer", consumer), oracle_a=oracle_a,
                     oracle_b=b.contract("InferenceOracle", db.oracle))


def two_chain_config(t: TwoChains, models: Path, db_url: str) -> ServiceConfig:
    return ServiceConfig(
        database_url=db_url,
        chains=[
            ChainConfig(name="A", rpc_url=t.a.w3.provider.endpoint_uri, oracle=t.da.oracle),  # type: ignore[attr-defined]
            ChainConfig(name="B", rpc_url=t.b.w3.provider.endpoint_uri, oracle=t.db.oracle,  # type: ignore[attr-defined]
                        inbox=t.inbox.address),
        ],
        prover=ProverConfig(models_dir=models, workers=2),
        relayer=RelayerSettings(stuck_after=5.0),
    )


def _input(k: int) -> list[int]:
    return [(k * 61 + 29 * i) % 1024 for i in range(8)]


# ---------------------------------------------------------------------------------------------


def test_models_register_same_circuit_on_every_chain(
    chain: Chain, anvil_b: Anvil, risk_circuit: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    b = Chain.connect(anvil_b.url, Account.from_key(DEV_KEYS[0]))
    assert chain.chain_id != b.chain_id
    da, db = deploy_all(chain), deploy_all(b)
    ids = register_everywhere(risk_circuit, [(chain.w3.provider.endpoint_uri, da.registry),  # type: ignore[attr-defined]
                                             (anvil_b.url, db.registry)], monkeypatch, capsys)
    assert ids[0] == ids[1]
    mid = bytes.fromhex(ids[0][2:])
    ma = read_model(chain.contract("ModelRegistry", da.registry), mid)
    mb = read_model(b.contract("ModelRegistry", db.registry), mid)
    assert ma.circuit_id == mb.circuit_id, "same circuit id on both chains"
    assert ma.circuit_id == ids[0], "model id defaults to the circuit id"
    assert ma.binds_payee and ma.batch_verify
    # Same proof system, sizes, scales, bits, flags, fee and gas: only the adapter's address may differ.
    assert replace(ma, verifier=mb.verifier) == mb


def test_request_on_a_delivered_on_b_with_the_same_proof(
    chain: Chain, anvil_b: Anvil, risk_circuit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    t = setup_two_chains(chain, Chain.connect(anvil_b.url, Account.from_key(DEV_KEYS[0])), risk_circuit,
                         monkeypatch, capsys)
    qm = QuantizedModel.load(risk_circuit / "quantized.json")
    xs = [_input(k) for k in range(3)]
    for x in xs:
        t.b.transact(t.consumer.functions.expect(x))
    cfg = two_chain_config(t, models_dir_with(tmp_path, risk_circuit), f"sqlite:///{tmp_path / 'oracle.db'}")
    with running_service(cfg) as svc:
        ids = [t.request_to(x) for x in xs]
        # B is a full chain of the service too: a plain request on B's own oracle is fulfilled.
        fee_b = int(t.oracle_b.functions.quoteFee(t.model_id, 0).call())
        deadline = int(t.b.w3.eth.get_block("latest")["timestamp"]) + 600
        t.b.transact(t.oracle_b.functions.requestInference(t.model_id, _input(9), NO_CALLBACK, 0, deadline),
                     value=fee_b)
        b_rid = int(t.oracle_b.functions.nextRequestId().call()) - 1
        wait_for(lambda: int(t.consumer.functions.accepted().call()) == len(xs), 120,
                 "the consumer on B to accept every delivered result")
        wait_for(lambda: int(t.oracle_b.functions.requestStatus(b_rid).call()) == 2, 60, "B's own request")
        wait_for(lambda: _delivery_states(svc) == {DeliveryState.DELIVERED.value}, 30, "the store to record deliveries")
        with svc.db.session() as s:
            deliveries = s.query(Delivery).all()
            assert sorted(d.request_id for d in deliveries) == sorted(ids)
            assert all(d.callback_succeeded for d in deliveries)
            assert all(d.dst_chain_id == CHAIN_B and d.consumer == t.consumer.address for d in deliveries)
            b_txs = [tx for tx in s.query(RelayerTx).all() if tx.chain_id == CHAIN_B and tx.status != "replaced"]
            stored = {d.request_id: d.request.proof for d in deliveries}
            proofs = {rid: (pr.output_ints, pr.payee, pr.calldata) for rid, pr in stored.items() if pr is not None}
    # Fulfilled once on A, delivered once on B, outputs = the numpy integer reference.
    for rid, x in zip(ids, xs, strict=True):
        assert int(t.oracle_a.functions.requestStatus(rid).call()) == 2
        assert [int(v) for v in t.consumer.functions.outputOf(x).call()] == quantized_forward(qm, x)
    evs = t.inbox.events.CrossChainDelivered().get_logs(from_block=0)
    assert sorted(int(e["args"]["requestId"]) for e in evs) == sorted(ids), "exactly once each"
    assert all(int(e["args"]["srcChainId"]) == chain.chain_id for e in evs)
    # B's deliveries and fulfilments share one nonce sequence without gaps.
    nonces = sorted(tx.nonce for tx in b_txs)
    assert nonces == list(range(nonces[0], nonces[0] + len(nonces)))
    assert {tx.kind for tx in b_txs} == {"deliver", "fulfill"}
    # The service proved for its relayer's payee (the default: its account).
    relayer_account = Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]).address
    assert {(payee or "").lower() for _, payee, _ in proofs.values()} == {relayer_account.lower()}
    # The same proof can be reused by anyone on B through ProvenResults (naming the payee it was made for).
    out, payee, proof = proofs[ids[0]]
    assert payee is not None
    t.b.transact(t.results.functions.submit(t.model_id, xs[0], out, to_checksum_address(payee), HexBytes(proof)),
                 gas=1_500_000)
    got, proven = t.results.functions.provenOutput(t.model_id, xs[0]).call()
    assert proven and [int(v) for v in got] == out


def _delivery_states(svc: object) -> set[str]:
    with svc.db.session() as s:  # type: ignore[attr-defined]
        return {d.state for d in s.query(Delivery).all()}


def test_deploy_cli_with_cross_chain_contracts(
    anvil_b: Anvil, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORACLE_PRIVATE_KEY", DEV_KEYS[0])
    capsys.readouterr()
    assert oracle_cli(["deploy", "--rpc", anvil_b.url, "--cross-chain"]) == 0
    out = json.loads(capsys.readouterr().out)
    b = Chain.connect(anvil_b.url)
    assert b.contract("CrossChainInbox", out["inbox"]).functions.registry().call() == out["registry"]
    assert b.contract("ProvenResults", out["proven_results"]).functions.registry().call() == out["registry"]


def test_b_rejects_tampered_proof_and_unknown_destination_is_clear(
    chain: Chain, anvil_b: Anvil, risk_circuit: Path, groth16_backend: Groth16Backend,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    t = setup_two_chains(chain, Chain.connect(anvil_b.url, Account.from_key(DEV_KEYS[0])), risk_circuit,
                         monkeypatch, capsys)
    x = _input(4)
    t.b.transact(t.consumer.functions.expect(x))
    payee = Account.from_key(DEV_KEYS[4]).address      # whoever fulfilled on A; no fee on B
    p = groth16_backend.prove(risk_circuit, x, payee)
    out, proof = list(p.output_fixed), bytearray(HexBytes(p.calldata))
    relayer = Chain(w3=t.b.w3, account=Account.from_key(DEV_KEYS[3]), artifacts=t.b.artifacts)
    inbox = relayer.contract("CrossChainInbox", t.inbox.address)

    def deliver(o: list[int], pr: bytes, rid: int = 1, to: str = payee, src_oracle: str = t.da.oracle) -> object:
        msg = (chain.chain_id, src_oracle, rid, t.model_id, t.consumer.address, DST_GAS, to)
        return relayer.transact(inbox.functions.deliver(msg, x, o, pr), gas=2_000_000)

    tampered = bytearray(proof)
    tampered[100] ^= 1
    with pytest.raises(ContractError, match=r"InvalidProof\(modelId="):
        deliver(out, bytes(tampered))
    bad_out = list(out)
    bad_out[0] += 1
    with pytest.raises(ContractError, match=r"InvalidProof\(modelId="):
        deliver(bad_out, bytes(proof))
    with pytest.raises(ContractError, match=r"InvalidProof\(modelId="):     # not the payee the proof names
        deliver(out, bytes(proof), to=relayer.account.address)  # type: ignore[union-attr]
    assert int(t.consumer.functions.accepted().call()) == 0
    deliver(out, bytes(proof))                           # the genuine proof goes through
    assert int(t.consumer.functions.accepted().call()) == 1
    with pytest.raises(ContractError, match=r"AlreadyDelivered\(srcChainId=31337"):
        deliver(out, bytes(proof))
    # The replay key is what the consumer sees: a made-up source oracle does not make it new.
    with pytest.raises(ContractError, match=r"AlreadyDelivered\(srcChainId=31337"):
        deliver(out, bytes(proof), src_oracle=relayer.account.address)  # type: ignore[union-attr]
    # A destination the source oracle does not know is refused up front, by name.
    with pytest.raises(ContractError, match=r"UnknownDestination\(chainId=999\)"):
        t.request_to(x, dst=999)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_b_down_does_not_stop_a_and_deliveries_resume(
    chain: Chain, risk_circuit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, state = _free_port(), tmp_path / "anvil-b-state.json"
    node_b = Anvil(port=port, chain_id=CHAIN_B, state_file=state).start()
    try:
        t = setup_two_chains(chain, Chain.connect(node_b.url, Account.from_key(DEV_KEYS[0])), risk_circuit,
                             monkeypatch, capsys)
        xs = [_input(10 + k) for k in range(4)]
        for x in xs:
            t.b.transact(t.consumer.functions.expect(x))
        cfg = two_chain_config(t, models_dir_with(tmp_path, risk_circuit), f"sqlite:///{tmp_path / 'oracle.db'}")
        fee = int(t.oracle_a.functions.quoteFee(t.model_id, 0).call())
        with running_service(cfg) as svc:
            first = t.request_to(xs[0])
            wait_for(lambda: int(t.consumer.functions.accepted().call()) == 1, 90, "a delivery before the outage")
            node_b.stop()                                  # SIGTERM: anvil dumps its state
            assert state.exists()
            down_at = time.monotonic()
            ids = [t.request_to(x) for x in xs[1:]]
            deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
            chain.transact(t.oracle_a.functions.requestInference(t.model_id, _input(99), NO_CALLBACK, 0, deadline),
                           value=fee)
            plain = int(t.oracle_a.functions.nextRequestId().call()) - 1
            # A goes on: every request made on A while B is down is fulfilled on A.
            wait_for(lambda: all(int(t.oracle_a.functions.requestStatus(i).call()) == 2 for i in [*ids, plain]),
                     90, "A's fulfilments while B is down")
            a_done_in = time.monotonic() - down_at
            with svc.db.session() as s:
                waiting = {d.request_id: d.state for d in s.query(Delivery).all()}
            assert all(waiting[i] == DeliveryState.WAITING.value for i in ids), waiting
            time.sleep(max(0.0, 8.0 - a_done_in))          # B stays down for at least ~8 s
            node_b = Anvil(port=port, chain_id=CHAIN_B, state_file=state).start()
            wait_for(lambda: int(t.consumer.functions.accepted().call()) == len(xs), 90,
                     "B's deliveries to resume after the outage")
            wait_for(lambda: _delivery_states(svc) == {DeliveryState.DELIVERED.value}, 30, "the store to catch up")
            # Every job, B's included, ran successfully again since (none left in back-off).
            wait_for(lambda: sum(b.failures for b in svc._backoff.values()) == 0, 30, "every job to recover")
        evs = t.inbox.events.CrossChainDelivered().get_logs(from_block=0)
        assert sorted(int(e["args"]["requestId"]) for e in evs) == sorted([first, *ids]), "exactly once each"
        qm = QuantizedModel.load(risk_circuit / "quantized.json")
        for x in xs:
            assert [int(v) for v in t.consumer.functions.outputOf(x).call()] == quantized_forward(qm, x)
    finally:
        node_b.stop()


@dataclass
class Stepped:
    """A two-chain service driven job by job, one cross-chain request on A already seen, and a
    third party on A (account 7) that no service uses."""

    t: TwoChains
    svc: OracleService
    rt_a: ChainRuntime
    rt_b: ChainRuntime
    delivery: DeliveryJob
    rid: int
    other: Chain
    other_address: str


@contextmanager
def stepped_service(chain: Chain, anvil_b: Anvil, circuit: Path, tmp_path: Path, x: list[int],
                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Stepped]:
    from oracle.service.app import OracleService

    t = setup_two_chains(chain, Chain.connect(anvil_b.url, Account.from_key(DEV_KEYS[0])), circuit,
                         monkeypatch, capsys)
    t.b.transact(t.consumer.functions.expect(x))
    rid = t.request_to(x)
    cfg = two_chain_config(t, models_dir_with(tmp_path, circuit), f"sqlite:///{tmp_path / 'oracle.db'}")
    svc = OracleService(cfg, account=Account.from_key(DEV_KEYS[RELAYER_KEY_INDEX]))
    try:
        rt_a, rt_b = svc.chains[chain.chain_id], svc.chains[CHAIN_B]
        assert rt_b.delivery is not None
        rt_a.listener.poll()
        other = Chain(w3=chain.w3, account=Account.from_key(DEV_KEYS[7]), artifacts=chain.artifacts)
        assert other.account is not None
        yield Stepped(t=t, svc=svc, rt_a=rt_a, rt_b=rt_b, delivery=rt_b.delivery, rid=rid, other=other,
                      other_address=other.account.address)
    finally:
        svc.stop()


def test_delivery_is_stored_before_broadcast_and_uses_another_relayers_proof(
    chain: Chain, anvil_b: Anvil, risk_circuit: Path, groth16_backend: Groth16Backend, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Jobs driven one by one: a third party fulfils on A before we prove anything, so the output
    and proof come from its fulfil calldata; the delivery tx is committed before its broadcast,
    a 'crash' before the broadcast loses nothing and sends nothing twice."""
    x = _input(42)
    with stepped_service(chain, anvil_b, risk_circuit, tmp_path, x, monkeypatch, capsys) as st:
        t, svc, rid, rt_b = st.t, st.svc, st.rid, st.rt_b
        p = groth16_backend.prove(risk_circuit, x, st.other_address)
        st.other.transact(st.other.contract("InferenceOracle", t.da.oracle).functions.fulfill(
            rid, list(p.output_fixed), st.other_address, HexBytes(p.calldata)), gas=1_500_000)
        st.rt_a.listener.poll()                            # sees the fulfilment by someone else
        # The delivery below goes through only if it names the payee the proof was made for
        # (account 7's, read from its fulfil calldata): B verifies the payee-bound proof.
        with svc.db.session() as s:
            d = s.query(Delivery).one()
            assert d.request.state == "fulfilled" and d.request.proof is None
            assert d.state == DeliveryState.WAITING.value
        sent: list[str] = []
        monkeypatch.setattr(rt_b.txs, "broadcast", lambda raw, h: sent.append(h))  # crash before broadcast
        assert st.delivery.submit_ready() == 1
        assert st.delivery.submit_ready() == 0             # idempotent: no second transaction
        with svc.db.session() as s:
            d = s.query(Delivery).one()
            txs = s.query(RelayerTx).filter(RelayerTx.chain_id == CHAIN_B).all()
            assert d.state == DeliveryState.SUBMITTED.value and len(txs) == 1 and txs[0].kind == "deliver"
            assert txs[0].id == d.tx_pk and sent == [txs[0].tx_hash]
        monkeypatch.undo()
        assert not t.inbox.functions.isDelivered(_key(t, rid, x)).call()   # never reached the node
        rt_b.txs.track()                               # unknown to the node: rebroadcast from the store
        wait_for(lambda: rt_b.txs.track() == 1, 10, "the receipt at confirmation depth")
        assert st.delivery.track() == 1
        with svc.db.session() as s:
            d = s.query(Delivery).one()
            assert d.state == DeliveryState.DELIVERED.value and d.callback_succeeded
        assert t.inbox.functions.isDelivered(_key(t, rid, x)).call()
        assert [int(v) for v in t.consumer.functions.outputOf(x).call()] == list(p.output_fixed)


def test_delivery_takes_the_proof_of_a_fulfilment_made_through_a_contract(
    chain: Chain, anvil_b: Anvil, risk_circuit: Path, groth16_backend: Groth16Backend, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A third party fulfils on A through a forwarding contract (its transaction goes to the
    forwarder, not the oracle): the delivery job still finds the entry, by tracing the
    transaction, and delivers its output, proof and payee on B (B verifies the payee-bound
    proof, so a wrong payee would not deliver)."""
    x = _input(43)
    with stepped_service(chain, anvil_b, risk_circuit, tmp_path, x, monkeypatch, capsys) as st:
        t, svc, rid = st.t, st.svc, st.rid
        fwd = deploy_forwarder(st.other)
        p = groth16_backend.prove(risk_circuit, x, st.other_address)
        data = t.oracle_a.encode_abi("fulfill", args=[rid, list(p.output_fixed), st.other_address,
                                                      HexBytes(p.calldata)])
        receipt = st.other.transact(fwd.functions.forward(t.da.oracle, HexBytes(data)), gas=1_500_000)
        assert receipt["to"] == fwd.address
        st.rt_a.listener.poll()
        with svc.db.session() as s:
            d = s.query(Delivery).one()
            assert d.request.state == "fulfilled" and d.request.proof is None
        assert st.delivery.submit_ready() == 1, "the proof is read from the traced fulfil call"
        wait_for(lambda: st.rt_b.txs.track() == 1, 10, "the receipt at confirmation depth")
        assert st.delivery.track() == 1
        with svc.db.session() as s:
            assert s.query(Delivery).one().state == DeliveryState.DELIVERED.value
        assert [int(v) for v in t.consumer.functions.outputOf(x).call()] == list(p.output_fixed)
        ev = t.inbox.events.CrossChainDelivered().get_logs(from_block=0)[-1]
        assert int(ev["args"]["requestId"]) == rid


def _key(t: TwoChains, rid: int, x: list[int]) -> bytes:
    onchain = bytes(t.inbox.functions.deliveryKey(t.a.chain_id, rid, t.model_id, x, t.consumer.address).call())
    # The delivery job computes the key locally for its "already delivered?" check.
    local = delivery_key(_Message(pk=0, src_chain_id=t.a.chain_id, src_oracle=t.da.oracle, request_id=rid,
                                  model_id=t.model_id, input=x, output=[], proof=b"", circuit_id=None,
                                  consumer=t.consumer.address, gas_limit=DST_GAS))
    assert local == onchain
    return onchain
