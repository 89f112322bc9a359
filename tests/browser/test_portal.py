"""The portal in a real browser: find a model, submit an input through the form, watch it get
proven, verify the proof in the page, see a tampered proof refused; an on-chain request's page;
the dashboard updating live while requests are processed. Screenshots: build/screenshots/."""

from __future__ import annotations

import random
import re
import time

import httpx
from playwright.sync_api import Page, expect

from oracle.chain.client import Chain
from oracle.circuits.manifest import Manifest
from oracle.circuits.quantize import QuantizedModel, quantized_forward
from tests.browser.conftest import Stack, screenshot, screenshot_dir, wait_js
from tests.conftest import account_chain

NO_CALLBACK = "0x" + "00" * 20
PROVE_TIMEOUT_MS = 120_000


def _reference(stack: Stack, x_fixed: list[int]) -> list[int]:
    qm = QuantizedModel.load(stack.circuit / "quantized.json")
    return quantized_forward(qm, x_fixed)


def _request_onchain(stack: Stack, user: Chain, x: list[int]) -> int:
    o = user.contract("InferenceOracle", stack.deployment.oracle)
    mid = bytes.fromhex(stack.model_id[2:])
    fee = int(o.functions.quoteFee(mid, 0).call())
    deadline = int(user.w3.eth.get_block("latest")["timestamp"]) + 900
    user.transact(o.functions.requestInference(mid, x, NO_CALLBACK, 0, deadline), value=fee)
    return int(o.functions.nextRequestId().call()) - 1


def test_find_submit_prove_verify_and_tamper(page: Page, stack: Stack) -> None:
    m = Manifest.load(stack.circuit)
    home = page.goto(stack.url + "/")
    # the whole flow below runs under the portal's Content-Security-Policy (own scripts only)
    assert home is not None and "script-src 'self' 'wasm-unsafe-eval'" in home.headers["content-security-policy"]
    card = page.locator("article.model", has_text="risk")
    expect(card).to_have_count(1)
    expect(card).to_contain_text(m.circuit_id)
    expect(card.locator("table.deployments")).to_contain_text("anvil")
    screenshot(page, "catalog")

    # the fee quote follows the callback gas asked for: the oracle contract's own quoteFee
    page.fill("input[name=callback_gas]", "500000")
    page.click("text=Quote fees")
    expect(page).to_have_url(re.compile(r"callback_gas=500000"))
    oracle = stack.chain.contract("InferenceOracle", stack.deployment.oracle)
    fee = int(oracle.functions.quoteFee(bytes.fromhex(stack.model_id[2:]), 500_000).call())
    table = page.locator("article.model table.deployments")
    expect(table).to_contain_text("Fee (500,000 callback gas)")
    expect(table).to_contain_text(f"({fee:,} wei)")

    # search and filter run on the page
    page.fill("#q", "no-such-model")
    expect(card).to_be_hidden()
    expect(page.locator("#no-match")).to_be_visible()
    page.fill("#q", m.circuit_id[2:12])
    expect(card).to_be_visible()
    page.check("#ceremony-only")                 # the test circuit has development keys
    expect(card).to_be_hidden()
    page.uncheck("#ceremony-only")
    expect(card).to_be_visible()

    card.locator("a.button", has_text="Try it").click()
    expect(page).to_have_url(re.compile(r"/models/0x[0-9a-f]{64}$"))
    expect(page.locator("h1")).to_contain_text("risk")

    # a wrong key is refused with the API's reason, and nothing is created
    rng = random.Random(5)
    x = [round(rng.uniform(0, 1), 3) for _ in range(m.input_size)]
    page.fill("#input", ", ".join(str(v) for v in x))
    page.fill("#api-key", "not-a-key")
    page.click("#submit-button")
    expect(page.locator("#submit-status")).to_contain_text("refused (401)")
    # too few values: refused in the page
    page.fill("#input", "0.5, 0.5")
    page.fill("#api-key", stack.api_key)
    page.click("#submit-button")
    expect(page.locator("#submit-status")).to_contain_text(f"this model takes {m.input_size} values, you gave 2")

    page.fill("#input", ", ".join(str(v) for v in x))
    screenshot(page, "model")
    page.click("#submit-button")
    expect(page).to_have_url(re.compile(r"/inferences/\d+$"))
    iid = int(page.url.rsplit("/", 1)[1])

    # the page follows the request until the proof is there (it reloads itself on each change)
    expect(page.locator("#verify-button")).to_be_visible(timeout=PROVE_TIMEOUT_MS)
    view = stack.get(f"/api/v1/inferences/{iid}").json()
    x_fixed = [round(v * 2**m.input_scale) for v in x]
    assert view["input_fixed"] == x_fixed
    want = _reference(stack, x_fixed)
    assert view["output_fixed"] == want
    outputs = page.locator("table.values tr.out td:nth-child(3)")
    expect(outputs).to_have_text([str(v) for v in want])
    expect(page.locator("#history")).to_contain_text("proven")

    page.click("#verify-button")
    verdict = page.locator("#verify-verdict")
    expect(verdict).to_contain_text("Proof verified in your browser", timeout=60_000)
    expect(page.locator("ul.checks li.bad")).to_have_count(0)
    expect(page.locator("ul.checks")).to_contain_text("verification key = circuit id (catalog)")
    # ... and the id the chain's ModelRegistry holds for the model (read by the gateway)
    registry = f"verification key = circuit id (registry on anvil ({stack.chain.chain_id}))"
    expect(page.locator("ul.checks li.ok")).to_contain_text([f"{registry}: sha256 of the key {m.circuit_id}"])
    screenshot(page, "inference-verified")
    page.locator("#proof").screenshot(path=str(screenshot_dir() / "proof-verified-card.png"))

    # one hex digit of the proof changed: refused, and the page says which check failed
    box = page.locator("#proof-bytes")
    proof = box.input_value()
    i = 2 + 64 * 6 + 10                      # inside c.x
    box.fill(proof[:i] + ("1" if proof[i] != "1" else "2") + proof[i + 1:])
    page.click("#verify-button")
    expect(verdict).to_contain_text("Proof REJECTED in your browser", timeout=60_000)
    expect(verdict).to_contain_text("Groth16 pairing check")
    expect(page.locator("ul.checks li.ok")).to_contain_text(["verification key = circuit id (catalog)"])
    screenshot(page, "inference-tampered")

    box.fill(proof[:-2])                     # a byte short
    page.click("#verify-button")
    expect(verdict).to_contain_text("proof bytes")
    box.fill(proof)                          # restored: verifies again
    page.click("#verify-button")
    expect(verdict).to_contain_text("Proof verified in your browser")


def test_dashboard_live_and_onchain_request_page(page: Page, stack: Stack) -> None:
    page.goto(stack.url + "/dashboard")
    wait_js(page, "window.dashboard && window.dashboard.snapshots >= 1")
    before = page.evaluate("window.dashboard.last.totals.fulfilled || 0")
    updates = page.evaluate("window.dashboard.snapshots")

    # requests arrive while the page is open: on chain (3 accounts) and off-chain (the API)
    m = Manifest.load(stack.circuit)
    rng = random.Random(9)
    xs = [[rng.randint(0, 1 << m.input_scale) for _ in range(m.input_size)] for _ in range(3)]
    rids = [_request_onchain(stack, account_chain(stack.chain, 1 + k), x) for k, x in enumerate(xs)]
    for _ in range(2):
        body = {"model_id": stack.model_id, "input_fixed": [rng.randint(0, 1000) for _ in range(m.input_size)]}
        r = httpx.post(stack.url + "/api/v1/inferences", timeout=30, json=body,
                       headers={"Authorization": f"Bearer {stack.api_key}"})
        assert r.status_code == 202, r.text

    # counts and plots change without a reload
    wait_js(page, f"(window.dashboard.last.totals.fulfilled || 0) >= {before + 5}", PROVE_TIMEOUT_MS / 1000)
    assert page.evaluate("window.dashboard.snapshots") > updates
    expect(page.locator('#state-counts .count[data-state="fulfilled"] b')).to_have_text(re.compile(r"\d+"))
    n_latency = page.evaluate("window.dashboard.plots['plot-latency'].data[0].length")
    n_proofs = page.evaluate("window.dashboard.plots['plot-proving'].data[0].length")
    assert n_latency >= 5 and n_proofs >= 5
    wait_js(page, "window.dashboard.plots['plot-gas'].data[0].length >= 1")
    expect(page.locator("#relayers tbody")).to_contain_text(str(stack.chain.chain_id))
    expect(page.locator("#relayers tbody")).to_contain_text("ETH")
    # k = 1: the validator may not have asked both miners yet; whoever proved is scored
    wait_js(page, "window.dashboard.last.miners.length >= 1", 30)
    expect(page.locator("#miners tbody tr").first).to_contain_text(re.compile(r"\d\.\d{3}"))
    time.sleep(1.5)                     # let uPlot draw the last points before the picture
    screenshot(page, "dashboard")
    # One full column per miner, whether one or several are scored (with one, a range taken
    # from uPlot's (min, max) put the bars at the edge as slivers): the page's own plot, fed
    # its current data and then a single miner's.
    for data in ("p.data", "[[0, 1], [0.5, 0.6], [0.3, 0.2]]", "[[0], [0.5], [0.3]]"):
        # uPlot commits new scales in a microtask after setData: read them a macrotask later
        n, lo, hi = page.evaluate(f"(async () => {{ const p = window.dashboard.plots['plot-miners']; p.setData({data});"
                                  " await new Promise((r) => setTimeout(r, 0));"
                                  " return [p.data[0].length, p.scales.x.min, p.scales.x.max]; })()")
        assert (lo, hi) == (-0.5, n - 0.5), (data, n, lo, hi)

    # an on-chain request's page: fulfilment transaction and gas, and the proof verifies here
    rid = rids[0]
    page.goto(f"{stack.url}/requests/{stack.chain.chain_id}/{rid}")
    expect(page.locator("header .badge")).to_have_text("fulfilled", timeout=PROVE_TIMEOUT_MS)
    expect(page.locator("#proof")).to_contain_text("gas")
    expect(page.locator("table.values tr.out td:nth-child(3)")).to_have_text([str(v) for v in _reference(stack, xs[0])])
    page.click("#verify-button")
    expect(page.locator("#verify-verdict")).to_contain_text("Proof verified in your browser", timeout=60_000)
    screenshot(page, "request-onchain")


def test_unknown_pages_say_why(page: Page, stack: Stack) -> None:
    page.goto(stack.url + "/inferences/12345")
    expect(page.locator("h1")).to_contain_text("404")
    expect(page.locator("#error-message")).to_have_text("no off-chain inference 12345")

    # a request page opened before the oracle has read the request shows it once it has
    m = Manifest.load(stack.circuit)
    o = stack.chain.contract("InferenceOracle", stack.deployment.oracle)
    rid = int(o.functions.nextRequestId().call())
    page.goto(f"{stack.url}/requests/{stack.chain.chain_id}/{rid}")
    expect(page.locator("#follow")).to_be_visible()
    assert _request_onchain(stack, account_chain(stack.chain, 4), [1] * m.input_size) == rid
    expect(page.locator("h1")).to_have_text(f"Request {rid} on chain {stack.chain.chain_id}", timeout=60_000)
    page.goto(stack.url + "/models/0x" + "ab" * 32)
    expect(page.locator("h1")).to_contain_text("404")
