"""`make demo`: the whole system on one machine, end to end, on embedded defaults.

Starts a local anvil chain (1 s blocks), deploys the protocol, compiles and registers the
reference risk model (Groth16), starts three miners (separate processes with Bittensor hotkeys,
signed HTTP) and the oracle service as their validator (its own process), then:
  1. LRTVault asks for a proven risk assessment of its own state and re-weights;
  2. a restaking strategy gets slashed; the vault asks again and moves money away from it;
  3. plain accounts request inferences;
  4. a request made on chain A is answered on chain B (a second anvil, another chain id): the
     oracle fulfils it on A and delivers the same proof to B's CrossChainInbox;
  5. with --with-lenet (``make demo`` passes it): the LeNet-class CNN of models/lenet (1x28x28
     digits, ~29 k constraints) is compiled, registered next to the risk model and asked to
     classify held-out digit images; the proven logits are checked against the integer reference.
     Its circuit needs a 2^15 ceremony: when no cached one fits, the demo builds it first (about
     30 min on a 2-core box, once, cached in .cache/ptau) and shows its progress;
  6. with --with-sliced (``--with-lenet`` implies it): scripts/demo_sliced.py, a model too large
     for one circuit (models/deep-mlp, 65.8 k rows > 2^16) cut into 8 slices that share ONE
     2^14 ceremony (served by the 2^15 file step 5 builds, so no second ceremony; its compile
     took ~20 min on this loaded box, once, cached), registered behind a SlicedGroth16Adapter,
     proven slice-parallel by 4 miners, fulfilled, checked against the integer reference and
     audited slice by slice; it prints latency, slice miners, fulfil gas and the audit;
then submits an inference off-chain through the gateway's HTTP API (no wallet: an API key made
with ``oracle gateway key create``) and checks it end to end (reference output, the proof by
/api/v1/verify off-chain and by the chain's adapter, the vk's hash). The oracle process serves the
gateway (``--api``): its URL (portal ``/``, dashboard ``/dashboard``, API docs ``/docs``) is printed
before the requests start, so the dashboard shows them as they are processed; ``--serve`` keeps
it up after the demo until Ctrl-C. It prints each request's journey and a summary. Everything it
starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from demo_gateway import listen_address, offchain_round, print_urls, wait_gateway  # noqa: E402
from eth_account import Account  # noqa: E402
from web3.logs import DISCARD  # noqa: E402

from oracle.chain.anvil import DEV_KEYS, Anvil  # noqa: E402
from oracle.chain.client import Chain  # noqa: E402
from oracle.chain.deploy import DEFAULT_GAS_PRICE_WEI, deploy_all, deploy_cross_chain  # noqa: E402
from oracle.chain.registration import register_circuit  # noqa: E402
from oracle.circuits.quantize import QuantizedModel, load_calibration, quantize_onnx, quantized_forward  # noqa: E402
from oracle.proving.groth16 import Groth16Backend, estimate  # noqa: E402
from oracle.proving.groth16.cache import compile_cached  # noqa: E402
from oracle.store import repo  # noqa: E402
from oracle.store.db import Database  # noqa: E402

ETH = 10**18
RELAYER_KEY = DEV_KEYS[5]
RELAYER_ADDRESS = Account.from_key(RELAYER_KEY).address
NO_CALLBACK = "0x" + "00" * 20
CHAIN_B = 31338
LENET = ROOT / "models" / "lenet"
log = logging.getLogger("demo")


@dataclass
class Journey:
    label: str
    request_id: int
    request_tx: str
    requested_at: float
    block: int
    fulfil_tx: str = ""
    fulfil_gas: int = 0
    callback_ok: bool | None = None
    output: list[int] | None = None
    latency: float = 0.0
    prove_ms: float = 0.0
    payee: str = ""                # credited with the fee: the payee the proof names


def banner(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 74 - len(text)), flush=True)


class Demo:
    def __init__(self, workdir: Path, plain_requests: int, lenet_digits: int = 0, api: str = "127.0.0.1:8000",
                 serve: bool = False) -> None:
        self.workdir = workdir
        self.api = api
        self.serve = serve
        self.plain_requests = plain_requests
        self.lenet_digits = lenet_digits
        self.lenet: Path | None = None
        self.journeys: list[Journey] = []

    def run(self) -> int:
        self.workdir.mkdir(parents=True, exist_ok=True)
        banner("compile the risk model (ONNX -> Circom -> Groth16 keys; cached)")
        backend = Groth16Backend(pool_size=1)
        try:
            t = time.perf_counter()
            self.circuit = compile_cached(backend, ROOT / "models/risk/model.onnx",
                                          ROOT / "models/risk/calibration.json",
                                          ROOT / ".cache/demo-circuits/risk-groth16")
            print(f"circuit folder {self.circuit} ready in {time.perf_counter() - t:.1f} s")
            if self.lenet_digits:
                self._compile_lenet(backend)
        finally:
            backend.close()
        self.qm = QuantizedModel.load(self.circuit / "quantized.json")
        # Chain B mines on demand: its set-up adds well under a second to the demo.
        with Anvil(block_time=1) as node, Anvil(chain_id=CHAIN_B) as node_b:
            print(f"anvil on {node.url} (1 s blocks); chain B (id {CHAIN_B}) on {node_b.url}")
            self.node_b = node_b
            return self._on_chain(node)

    def _compile_lenet(self, backend: Groth16Backend) -> None:
        banner("compile the LeNet-class CNN (models/lenet: ONNX -> R1CS -> Groth16 keys; cached)")
        qm = quantize_onnx(LENET / "model.onnx", load_calibration(LENET / "calibration.json", 784))
        plan, _ = estimate.plan_compile(qm, "direct")
        print(f"{plan.multiply_adds:,} multiply-adds -> {plan.constraints:,} constraints: needs a 2^{plan.power} "
              f"ceremony; {'cached: ' + plan.ptau_file if plan.ptau_cached else 'none cached'}")
        if not plan.ptau_cached:
            print(f"building the local 2^{plan.power} ceremony once (expected ~{plan.seconds['ceremony'] / 60:.0f} "
                  "min on a 2-core box; cached in .cache/ptau for every later run); progress below. "
                  "Run scripts/demo.py without --with-lenet to skip the CNN.", flush=True)
        # The ceremony and the setup report their progress at INFO: show it for this compile.
        loud = [logging.getLogger(n) for n in ("oracle.proving.groth16.progress", "oracle.proving.groth16.ptau")]
        for lg in loud:
            lg.setLevel(logging.INFO)
        t = time.perf_counter()
        try:
            self.lenet = compile_cached(backend, LENET / "model.onnx", LENET / "calibration.json",
                                        ROOT / ".cache/demo-circuits/lenet-groth16")
        finally:
            for lg in loud:
                lg.setLevel(logging.NOTSET)
        self.lenet_qm = QuantizedModel.load(self.lenet / "quantized.json")
        print(f"circuit folder {self.lenet} ready in {time.perf_counter() - t:.1f} s "
              f"(compile estimate without ceremony: ~{plan.seconds['total'] - plan.seconds['ceremony']:.0f} s)")

    def _setup_chain_b(self) -> None:
        """Chain B: its own registry, oracle, verifier and inbox; the same circuit registered under
        the same model id; a consumer that accepts results only for inputs it committed to."""
        b = Chain.connect(self.node_b.url, Account.from_key(DEV_KEYS[0]))
        me = b.account.address  # type: ignore[union-attr]
        registry = b.deploy("ModelRegistry", me)
        self.oracle_b = b.deploy("InferenceOracle", registry, me, DEFAULT_GAS_PRICE_WEI)
        # The demo's keys come from a local ceremony (dev keys): B's chain id (31338) is not a
        # development id, so registering there takes the explicit override (refused otherwise).
        reg = register_circuit(b, registry, self.circuit, rpc_url=self.node_b.url, allow_dev_keys_on_public_chain=True)
        assert reg.model_id == "0x" + self.model_id.hex(), "same model id on both chains"
        x = deploy_cross_chain(b, registry)
        consumer = b.deploy("CommittedInputConsumer", x.inbox, self.model_id, me)
        self.b, self.inbox = b, b.contract("CrossChainInbox", x.inbox)
        self.results = b.contract("ProvenResults", x.proven_results)
        self.consumer = b.contract("CommittedInputConsumer", consumer)
        self.chain.transact(self.oracle.functions.setDestination(CHAIN_B, True))
        print(f"chain B: registry {registry}, inbox {x.inbox}, consumer {consumer}; "
              f"A's oracle accepts destination {CHAIN_B}")

    def _on_chain(self, node: Anvil) -> int:
        owner = Chain.connect(node.url, Account.from_key(DEV_KEYS[0]))
        banner("deploy registry, oracle, LRT token, LRTVault; register the model")
        d = deploy_all(owner)
        reg = register_circuit(owner, d.registry, self.circuit, rpc_url=node.url)  # local anvil: dev keys allowed
        print(f"registry {d.registry}\noracle   {d.oracle}\ntoken    {d.token}\nvault    {d.vault}")
        print(f"model id {reg.model_id} (Groth16, verifier {reg.verifier}, adapter {reg.adapter})")
        self.chain, self.d, self.model_id = owner, d, bytes.fromhex(reg.model_id[2:])
        self.oracle = owner.contract("InferenceOracle", d.oracle)
        self.vault = owner.contract("LRTVault", d.vault)
        token = owner.contract("LRTToken", d.token)
        owner.transact(self.vault.functions.setRiskModel(self.model_id))
        # The demo rebalances twice in a row; production keeps the 10-minute anti-drain cooldown.
        owner.transact(self.vault.functions.setMinRebalanceInterval(0))
        me = owner.account.address  # type: ignore[union-attr]
        for i, amount in ((0, 600), (1, 300), (2, 100)):
            user = Chain(w3=owner.w3, account=Account.from_key(DEV_KEYS[i]), artifacts=owner.artifacts)
            owner.transact(token.functions.mint(user.account.address, amount * ETH))  # type: ignore[union-attr]
            t = user.contract("LRTToken", d.token)
            user.transact(t.functions.approve(d.vault, amount * ETH))
            user.transact(user.contract("LRTVault", d.vault).functions.deposit(amount * ETH))
        owner.w3.eth.wait_for_transaction_receipt(
            owner.w3.eth.send_transaction({"from": me, "to": d.vault, "value": 2 * ETH}))
        print(f"vault holds {self._assets():.1f} rstETH from 3 depositors; allocations {self._alloc()}")
        self._setup_chain_b()
        if self.lenet is not None:
            lreg = register_circuit(owner, d.registry, self.lenet, rpc_url=node.url)
            self.lenet_id = bytes.fromhex(lreg.model_id[2:])
            print(f"LeNet model id {lreg.model_id} (verifier {lreg.verifier}, adapter {lreg.adapter}, "
                  f"{self.lenet_qm.input_size} inputs of {self.lenet_qm.input_bits} bits, 10 logits)")

        db_url = f"sqlite:///{self.workdir / 'oracle.db'}"
        for f in self.workdir.glob("oracle.db*"):
            f.unlink()
        models = self.workdir / "models"
        models.mkdir(exist_ok=True)
        link = models / "risk-groth16"
        if not link.exists():
            link.symlink_to(self.circuit.resolve(), target_is_directory=True)
        lenet_link = models / "lenet-groth16"
        if self.lenet is not None and not lenet_link.exists():
            lenet_link.symlink_to(self.lenet.resolve(), target_is_directory=True)
        elif self.lenet is None and lenet_link.is_symlink():
            lenet_link.unlink()      # a previous --with-lenet run: serve only what is registered
        banner("start 3 miners (Bittensor hotkeys, signed HTTP) and the oracle service as their validator")
        from oracle.subnet.auth import hotkey_of, load_or_create_wallet
        from oracle.subnet.local import start_local_miners, stop_local_miners

        subnet_dir = self.workdir / "subnet"
        wallet_dir = subnet_dir / "wallets"
        validator = load_or_create_wallet("validator", wallet_dir)
        miners = start_local_miners(3, models, hotkey_of(validator), base_dir=subnet_dir, workers=2)
        for m in miners:
            print(f"miner {m.hotkey[:12]}.. on {m.url} (pid {m.proc.pid})")
        config = self.workdir / "oracle.toml"
        miner_timeout = 60.0 if self.lenet else 20.0     # a CNN proof takes seconds on a loaded box
        config.write_text(
            f'[database]\nurl = "{db_url}"\n\n[prover]\nmodels_dir = "{models}"\nworkers = 4\n\n'
            f'[subnet]\nmetagraph = "{subnet_dir / "miners.json"}"\nwallet_name = "validator"\n'
            f'wallet_path = "{wallet_dir}"\nk = 2\nminer_timeout = {miner_timeout}\nhedge_delay = 2.0\n\n'
            f'[[chains]]\nname = "A"\nrpc_url = "{node.url}"\noracle = "{d.oracle}"\nconfirmations = 1\n\n'
            f'[[chains]]\nname = "B"\nrpc_url = "{self.node_b.url}"\noracle = "{self.oracle_b}"\n'
            f'inbox = "{self.inbox.address}"\nconfirmations = 1\n'
        )
        log_file = (self.workdir / "oracle.log").open("w")
        env = dict(os.environ, ORACLE_PRIVATE_KEY=RELAYER_KEY)
        proc = subprocess.Popen(
            [sys.executable, "-m", "oracle.cli", "run", "--config", str(config), "--api", self.api],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )
        print(f"oracle pid {proc.pid} (validator {hotkey_of(validator)[:12]}..), "
              f"relayer {Account.from_key(RELAYER_KEY).address}, log {log_file.name}")
        try:
            self._wait_ready(proc, self.workdir / "oracle.log")
            self.gateway = f"http://{self.api}"
            wait_gateway(self.gateway)
            print_urls(self.gateway)
            rc = self._scenario(db_url)
            self._miner_scores(db_url)
            if self.serve:
                print(f"\nserving until Ctrl-C: the requests above are on {self.gateway}/dashboard", flush=True)
                try:
                    while proc.poll() is None:
                        time.sleep(1)
                except KeyboardInterrupt:
                    pass
            return rc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log_file.close()
            print(f"oracle stopped (exit {proc.returncode})")
            stop_local_miners(miners)
            print("miners stopped")

    @staticmethod
    def _miner_scores(db_url: str) -> None:
        db = Database(db_url, run_migrations=False)
        with db.session() as s:
            rows = repo.miner_scores(s)
            print("miner scores (EMA of verified proofs, latency, size):")
            for r in rows:
                print(f"  {r.hotkey[:12]}..  score {r.score:.3f}  ok {r.successes}  failed {r.failures}  "
                      f"invalid {r.invalid}  latency ema {r.latency_ema * 1000:.0f} ms")
        db.dispose()

    @staticmethod
    def _wait_ready(proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise SystemExit(f"the oracle exited with {proc.returncode}; see {log_path}")
            if "oracle service started" in log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise SystemExit(f"the oracle did not start within {timeout:.0f} s; see {log_path}")

    # ------------------------------------------------------------------ the story

    def _scenario(self, db_url: str) -> int:
        banner("1. the vault asks for a proven risk assessment of its own state")
        self._vault_round("rebalance #1")
        banner("2. strategy 1 is slashed (20 %); the vault asks again")
        s1 = self.chain.contract("RestakingStrategy", self.vault.functions.strategies(1).call())
        self.chain.transact(s1.functions.slash(2000))
        print(f"strategy 1 loss ratio now {int(s1.functions.lossRatioWad().call()) / 1e18:.2f}")
        self._vault_round("rebalance #2")
        banner(f"3. {self.plain_requests} plain accounts request inferences")
        self._plain_round()
        banner(f"4. a request on chain A (id {self.chain.chain_id}) answered on chain B (id {CHAIN_B})")
        delivered = self._cross_chain_round()
        if self.lenet is not None:
            banner(f"5. {self.lenet_digits} held-out digit images classified by the LeNet-class CNN, proven")
            self._lenet_round()
        banner(f"{6 if self.lenet is not None else 5}. an off-chain inference through the gateway's API "
               "(an API key, no wallet, never relayed)")
        offchain_ok = offchain_round(self.gateway, db_url, "0x" + self.model_id.hex(), self.qm,
                                     self._random_vault_state(random.Random(13)))
        print_urls(self.gateway)
        self._summary(db_url)
        return 0 if delivered and offchain_ok and all(j.output is not None for j in self.journeys) else 1

    def _cross_chain_round(self, timeout: float = 60.0) -> bool:
        x = self._random_vault_state(random.Random(4))
        self.b.transact(self.consumer.functions.expect(x))
        fee = int(self.oracle.functions.quoteFeeTo(self.model_id, 300_000).call())
        deadline = int(self.chain.w3.eth.get_block("latest")["timestamp"]) + 600
        r = self.chain.transact(self.oracle.functions.requestInferenceTo(
            CHAIN_B, self.consumer.address, self.model_id, x, 300_000, deadline), value=fee)
        print(f"consumer on B committed to input {x}; requestInferenceTo(B) on A, fee {fee / 1e9:,.0f} gwei "
              f"(source fulfilment + delivery)")
        j = self._journey("cross-chain A -> B", r)
        self._wait([j])
        print(f"fulfilled on A: tx {j.fulfil_tx[:18]}..  gas {j.fulfil_gas:,}  output {j.output}  "
              f"{j.latency:.1f} s after inclusion")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            evs = [e for e in self.inbox.events.CrossChainDelivered().get_logs(from_block=0)
                   if int(e["args"]["requestId"]) == j.request_id]
            if evs:
                break
            time.sleep(0.3)
        else:
            print(f"!! not delivered on B within {timeout:.0f} s")
            return False
        ev = evs[0]
        rc = self.b.w3.eth.get_transaction_receipt(ev["transactionHash"])
        got = [int(v) for v in self.consumer.functions.outputOf(x).call()]
        ref = quantized_forward(self.qm, x)
        print(f"delivered on B: tx {'0x' + bytes(ev['transactionHash']).hex()[:16]}..  gas {int(rc['gasUsed']):,} "
              f"(B verified the same proof with its own verifier)  callback "
              f"{'ok' if ev['args']['callbackSucceeded'] else 'FAILED'}")
        print(f"consumer on B stored {got} {'== numpy reference' if got == ref else '!= reference ' + str(ref)}")
        # Anyone can now record the same proof in B's ProvenResults for every protocol on B to read.
        # It names the payee the proof was made for (the proof is bound to it).
        tx = self.b.w3.eth.get_transaction(ev["transactionHash"])
        _, args = self.inbox.decode_function_input(tx["input"])
        self.b.transact(self.results.functions.submit(self.model_id, x, args["output"], args["message"]["payee"],
                                                      args["proof"]), gas=1_500_000)
        out, proven = self.results.functions.provenOutput(self.model_id, x).call()
        print(f"ProvenResults on B: provenOutput(model, input) = {[int(v) for v in out]}, proven={proven}")
        return bool(ev["args"]["callbackSucceeded"]) and got == ref and bool(proven)

    def _lenet_round(self) -> None:
        sys.path.insert(0, str(LENET))
        from train import data  # models/lenet/train.py: the held-out split it reports accuracy on

        _, x_test, _, y_test = data()
        qm = self.lenet_qm
        idx = random.Random(11).sample(range(len(y_test)), self.lenet_digits)
        fee = int(self.oracle.functions.quoteFee(self.lenet_id, 0).call())
        deadline = int(self.chain.w3.eth.get_block("latest")["timestamp"]) + 600
        user = Chain(w3=self.chain.w3, account=Account.from_key(DEV_KEYS[3]), artifacts=self.chain.artifacts)
        o = user.contract("InferenceOracle", self.d.oracle)
        pending: list[tuple[Journey, list[int], int]] = []
        for i in idx:
            x = [int(v) for v in (x_test[i].reshape(-1) * (1 << qm.input_scale)).round()]
            r = user.transact(o.functions.requestInference(self.lenet_id, x, NO_CALLBACK, 0, deadline), value=fee)
            pending.append((self._journey(f"digit #{i} (label {y_test[i]})", r), x, int(y_test[i])))
            print(f"requested digit #{i}: 784 pixels, request gas {int(r['gasUsed']):,}")
        self._wait([j for j, _, _ in pending], timeout=300.0)
        ok = right = 0
        for j, x, label in pending:
            ref = quantized_forward(qm, x)
            match = j.output == ref
            ok += match
            out = j.output or []
            digit = max(range(len(out)), key=out.__getitem__) if out else None
            right += digit == label
            print(f"request {j.request_id:>3} {j.label}: proven digit {'-' if digit is None else digit} "
                  f"{'== numpy reference' if match else '!= reference ' + str(ref)}  gas {j.fulfil_gas:,}  "
                  f"{j.latency:.1f} s")
        print(f"{ok}/{len(pending)} proven logits equal the integer reference bit for bit; "
              f"{right}/{len(pending)} digits classified right")

    def _vault_round(self, label: str) -> None:
        before = self._alloc()
        feats = [int(v) for v in self.vault.functions.currentFeatures().call()]
        scale = 1 << self.qm.input_scale
        print("features " + ", ".join(f"{v / scale:.2f}" for v in feats))
        r = self.chain.transact(self.vault.functions.requestRebalance())
        j = self._journey(label, r)
        self._wait([j])
        after = self._alloc()
        risks = [int(self.vault.functions.lastRisk(i).call()) / 1e18 for i in range(3)]
        out_scale = 1 << self.qm.output_scale
        print(f"{label}: request {j.request_id} tx {j.request_tx[:18]}..  fulfil tx {j.fulfil_tx[:18]}.. "
              f"gas {j.fulfil_gas:,}  callback {'ok' if j.callback_ok else 'FAILED'}  "
              f"inclusion->callback {j.latency:.1f} s")
        print(f"  proven risk scores {[round(v / out_scale, 3) for v in (j.output or [])]} "
              f"(numpy reference {[round(v / out_scale, 3) for v in quantized_forward(self.qm, feats)]})")
        print(f"  vault risks stored {[round(r, 3) for r in risks]}  "
              f"deposits paused: {self.vault.functions.depositsPaused().call()}")
        print(f"  allocations before {before}\n  allocations after  {after}")

    def _plain_round(self) -> None:
        rng = random.Random(2026)
        fee = int(self.oracle.functions.quoteFee(self.model_id, 0).call())
        deadline = int(self.chain.w3.eth.get_block("latest")["timestamp"]) + 600
        pending: list[tuple[Journey, list[int]]] = []
        for k in range(self.plain_requests):
            user = Chain(w3=self.chain.w3, account=Account.from_key(DEV_KEYS[6 + k % 4]),
                         artifacts=self.chain.artifacts)
            o = user.contract("InferenceOracle", self.d.oracle)
            x = self._random_vault_state(rng)
            r = user.transact(o.functions.requestInference(self.model_id, x, NO_CALLBACK, 0, deadline), value=fee)
            pending.append((self._journey(f"account {user.account.address[:10]}", r), x))  # type: ignore[union-attr]
        self._wait([j for j, _ in pending])
        ok = 0
        for j, x in pending:
            ref = quantized_forward(self.qm, x)
            match = j.output == ref
            ok += match
            print(f"request {j.request_id:>3} {j.label}: output {j.output} "
                  f"{'== numpy reference' if match else '!= reference ' + str(ref)}  "
                  f"gas {j.fulfil_gas:,}  {j.latency:.1f} s")
        print(f"{ok}/{len(pending)} outputs equal the numpy integer reference bit for bit")

    def _random_vault_state(self, rng: random.Random) -> list[int]:
        """Features of a plausible vault: shares summing to <= 1, mostly small losses."""
        w = [rng.random() for _ in range(4)]
        shares = [v / sum(w) for v in w]  # three strategies + idle
        losses = [rng.choice([0.0, 0.0, rng.uniform(0, 0.1), rng.uniform(0.1, 0.4)]) for _ in range(3)]
        feats = [*shares[:3], *losses, shares[3], rng.uniform(0, 0.2)]
        one = 1 << self.qm.input_scale
        return [round(f * one) for f in feats]

    def _journey(self, label: str, receipt: object) -> Journey:
        r = receipt  # a TxReceipt
        ev = self.oracle.events.InferenceRequested().process_receipt(r, errors=DISCARD)[0]
        blk = self.chain.w3.eth.get_block(r["blockNumber"])  # type: ignore[index]
        j = Journey(label=label, request_id=int(ev["args"]["requestId"]),
                    request_tx="0x" + bytes(r["transactionHash"]).hex(),  # type: ignore[index]
                    requested_at=float(blk["timestamp"]), block=int(r["blockNumber"]))  # type: ignore[index]
        self.journeys.append(j)
        return j

    def _wait(self, js: list[Journey], timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        todo = {j.request_id: j for j in js}
        from_block = min(j.block for j in js)
        while todo and time.monotonic() < end:
            for e in self.oracle.events.InferenceFulfilled().get_logs(from_block=from_block):
                j = todo.pop(int(e["args"]["requestId"]), None)
                if j is None:
                    continue
                rc = self.chain.w3.eth.get_transaction_receipt(e["transactionHash"])
                blk = self.chain.w3.eth.get_block(e["blockNumber"])
                j.fulfil_tx = "0x" + bytes(e["transactionHash"]).hex()
                j.fulfil_gas = int(rc["gasUsed"])
                j.callback_ok = bool(e["args"]["callbackSucceeded"])
                j.output = [int(v) for v in e["args"]["output"]]
                j.payee = str(e["args"]["payee"])
                j.latency = float(blk["timestamp"]) - j.requested_at
            time.sleep(0.3)
        if todo:
            print(f"!! not fulfilled within {timeout:.0f} s: requests {sorted(todo)}")

    def _summary(self, db_url: str) -> None:
        banner("summary")
        db = Database(db_url, run_migrations=False)
        with db.session() as s:
            rows = repo.all_requests(s)
            proving = {r.request_id: (r.proof.prove_seconds if r.proof else 0.0) for r in rows}
            states = [r.state for r in rows]
        db.dispose()
        done = [j for j in self.journeys if j.output is not None]
        lat = sorted(j.latency for j in done)
        print(f"requests {len(self.journeys)}, fulfilled {len(done)}, store states {sorted(set(states))}")
        if lat:
            p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
            print(f"inclusion -> callback latency (block timestamps, 1 s blocks): p50 {statistics.median(lat):.1f} s, "
                  f"p95 {p95:.1f} s")
        pt = [v * 1000 for v in proving.values() if v]
        if pt:
            print(f"proving time per request: median {statistics.median(pt):.0f} ms "
                  "(Groth16, as reported with the winning miner's proof)")
        print(f"fulfilment gas: median {statistics.median([j.fulfil_gas for j in done]):,.0f}")
        print(f"fees credited to {sorted({j.payee for j in done})} (the payee every proof names: the relayer's "
              f"by default), {int(self.oracle.functions.balances(RELAYER_ADDRESS).call()) / 1e9:,.0f} gwei in all")

    def _alloc(self) -> list[str]:
        return [f"{int(v) / ETH:.1f}" for v in self.vault.functions.allocations().call()]

    def _assets(self) -> float:
        return int(self.vault.functions.totalAssets().call()) / ETH


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=8, help="plain-account requests")
    ap.add_argument("--workdir", type=Path, default=ROOT / "build" / "demo")
    ap.add_argument("--with-lenet", action="store_true",
                    help="also compile, register and query the LeNet-class CNN (models/lenet); builds its 2^15 "
                         "ceremony first when none is cached (~30 min here, once)")
    ap.add_argument("--digits", type=int, default=3, help="digit images the CNN classifies (with --with-lenet)")
    ap.add_argument("--api", metavar="HOST:PORT", default=None,
                    help="where the oracle process serves the gateway (default 127.0.0.1:8000, or a free port when "
                         "8000 is taken)")
    ap.add_argument("--serve", action="store_true", help="keep the oracle and its gateway up after the demo until "
                                                         "Ctrl-C (to browse the portal and the dashboard)")
    ap.add_argument("--with-sliced", action="store_true",
                    help="also run scripts/demo_sliced.py (a model too large for one circuit, proven slice-parallel); "
                         "implied by --with-lenet")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rc = Demo(a.workdir, a.requests, a.digits if a.with_lenet else 0, a.api or listen_address(), a.serve).run()
    if (a.with_sliced or a.with_lenet) and not a.serve:
        step = 7 if a.with_lenet else 6          # after the gateway step (6 with the CNN, else 5)
        banner(f"{step}. a model too large for one circuit, sliced and proven across miners (scripts/demo_sliced.py)")
        sliced = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_sliced.py"), "--digits", str(a.digits),
                                 "--workdir", str(a.workdir / "sliced")], cwd=ROOT)
        rc = rc or sliced.returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())
