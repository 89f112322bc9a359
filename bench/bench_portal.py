"""The portal in a real browser and on the server: page latency, "Verify in my browser" time,
form-to-proven time and the dashboard's event latency, against the same real environment as
bench/bench_gateway.py (anvil with the risk model registered, local miner processes, ``oracle
run``, ``oracle gateway serve``, a SQLite file).

    .venv/bin/python bench/bench_portal.py [--pages 50] [--verifies 10] [--submits 3] [--events 5]

- pages: ``--pages`` sequential GETs of each portal page (``/``, ``/models/{id}``,
  ``/inferences/{id}``, ``/dashboard``) and of the API read each one is built from, server time
  seen by one keep-alive client (the portal's pages read the API in-process, then render Jinja2);
- verify: in headless Chromium (Debian's, through Playwright) on an inference page, the time
  from the click to the verdict, as the page itself measures it (``performance.now()``): the
  first click also downloads snarkjs' browser bundle (~690 KB from the gateway) and the
  verification key; the next ``--verifies`` clicks reuse them (vk fetch + SHA-256 + signal
  rebuild + pairing check). A tampered proof's rejection is timed the same way;
- submit: ``--submits`` inferences submitted through the model page's form, from the click to
  the page showing the proven request (it polls the API every second and re-renders);
- events: ``--events`` off-chain submissions through the API while the dashboard is open, from
  the POST's answer to the dashboard showing one more request (the server reads the store every
  1 s and pushes a server-sent event on change).

Figures to stdout, progress to stderr. Everything shares this 2-core box (the load average is
printed).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from bench_gateway import environment, loadavg, pct  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

log = logging.getLogger("bench_portal")
TOTAL = "Object.values(window.dashboard.last.totals).reduce((a, b) => a + b, 0)"   # requests shown
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def line(what: str, xs: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    v = [x * scale for x in xs]
    return (f"{what:<48} n={len(v):<4} p50 {pct(v, 0.5):8.1f} {unit}  p95 {pct(v, 0.95):8.1f} {unit}  "
            f"max {max(v):8.1f} {unit}")


def timed_gets(client: httpx.Client, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        out.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise SystemExit(f"GET {path}: {r.status_code} {r.text[:300]}")
    return out


def wait_js(page: Page, expression: str, timeout: float = 120.0) -> None:
    """Polls ``expression`` (page.wait_for_function evaluates strings in the page, which the
    portal's Content-Security-Policy refuses)."""
    end = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {expression}")
        time.sleep(0.01)


def verify_ms(page: Page) -> tuple[float, str]:
    page.evaluate("document.getElementById('verify-result').removeAttribute('data-ms')")
    page.click("#verify-button")
    wait_js(page, "document.getElementById('verify-result').dataset.ms !== undefined")
    return float(page.evaluate("Number(document.getElementById('verify-result').dataset.ms)")), \
        str(page.inner_text("#verify-verdict"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=50, help="GETs per page")
    ap.add_argument("--verifies", type=int, default=10, help="warm in-browser verifications")
    ap.add_argument("--submits", type=int, default=3, help="inferences submitted through the form")
    ap.add_argument("--events", type=int, default=5, help="submissions timed to the dashboard")
    ap.add_argument("--miners", type=int, default=2)
    ap.add_argument("--dispatch", type=int, default=2)
    ap.add_argument("--db", default="sqlite")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "httpcore", "web3", "urllib3", "oracle"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    chromium = os.environ.get("ORACLE_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        raise SystemExit("needs Chromium: `apt-get install -y chromium` (make test installs it), or ORACLE_CHROMIUM")
    workdir = Path(tempfile.mkdtemp(prefix="bench-portal-"))
    print(f"machine: {os.cpu_count()} cores, load average at start {loadavg()}")
    try:
        with environment(a, workdir) as env, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            size = env.qm.input_size

            # ---- submit through the form, watch it get proven
            submit_s: list[float] = []
            iid = 0
            for k in range(a.submits):
                page.goto(f"{env.url}/models/{env.model_id}")
                page.fill("#input", ", ".join(f"{((k * 7 + i * 13) % 100) / 100:g}" for i in range(size)))
                page.fill("#api-key", env.key)
                t = time.perf_counter()
                page.click("#submit-button")
                page.wait_for_url("**/inferences/*")
                page.wait_for_selector("#verify-button")
                submit_s.append(time.perf_counter() - t)
                iid = int(page.url.rsplit("/", 1)[1])
            log.info("%d form submissions proven", len(submit_s))

            # ---- verify in the browser: cold (fresh page: bundle + vk), warm, tampered
            cold, warm = [], []
            for _ in range(3):
                page.goto(f"{env.url}/inferences/{iid}")
                ms, verdict = verify_ms(page)
                assert "Proof verified in your browser" in verdict, verdict
                cold.append(ms / 1000)
            for _ in range(a.verifies):
                ms, verdict = verify_ms(page)
                assert "Proof verified in your browser" in verdict, verdict
                warm.append(ms / 1000)
            box = page.locator("#proof-bytes")
            proof = box.input_value()
            box.fill(proof[:200] + ("1" if proof[200] != "1" else "2") + proof[201:])
            tampered = []
            for _ in range(a.verifies):
                ms, verdict = verify_ms(page)
                assert "REJECTED" in verdict, verdict
                tampered.append(ms / 1000)

            # ---- pages vs the API reads they are built from (server time, one keep-alive client)
            with httpx.Client(base_url=env.url, timeout=60) as c:
                rows = [
                    ("GET /  (catalog page)", "/"), ("  API GET /api/v1/models/{id}", f"/api/v1/models/{env.model_id}"),
                    ("GET /models/{id}", f"/models/{env.model_id}"),
                    ("GET /inferences/{id}", f"/inferences/{iid}"),
                    ("  API GET /api/v1/inferences/{id}", f"/api/v1/inferences/{iid}"),
                    ("GET /dashboard  (shell; data over SSE)", "/dashboard"),
                ]
                pages = [(what, timed_gets(c, path, a.pages)) for what, path in rows]

            # ---- dashboard: submission -> the page shows it
            page.goto(f"{env.url}/dashboard")
            wait_js(page, "window.dashboard && window.dashboard.snapshots >= 1")
            event_s = []
            with httpx.Client(base_url=env.url, timeout=60) as c:
                for k in range(a.events):
                    before = int(page.evaluate(TOTAL))
                    t = time.perf_counter()
                    r = c.post("/api/v1/inferences", headers={"Authorization": f"Bearer {env.key}"},
                               json={"model_id": env.model_id, "input_fixed": [k + i for i in range(size)]})
                    assert r.status_code == 202, r.text
                    t_answer = time.perf_counter()
                    wait_js(page, f"{TOTAL} > {before}")
                    event_s.append(time.perf_counter() - t_answer)
                    log.info("submission %d shown after %.2f s (POST took %.3f s)", k, event_s[-1], t_answer - t)
            browser.close()

        print(line("form submit -> page shows it proven", submit_s, "s", 1.0))
        print(line("verify in browser, first click (loads bundle)", cold))
        print(line("verify in browser, warm", warm))
        print(line("verify in browser, tampered -> refused", tampered))
        for what, xs in pages:
            print(line(what, xs))
        print(line("dashboard: submission -> shown (SSE, 1 s poll)", event_s))
        print(f"mean warm verification {statistics.mean(warm) * 1000:.1f} ms; load average at end {loadavg()}")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
