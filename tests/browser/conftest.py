"""Real-browser tests of the gateway portal: Debian's chromium driven by Playwright (sync API;
Playwright's own browser download is never used), against a real ``oracle run --api`` process
on a free port, with a real anvil chain, the registered risk model (the cached test circuit of
tests/conftest.py, no new ceremony), real local miners and a real SQLite store.

Chromium is found at $ORACLE_CHROMIUM, else ``chromium`` on PATH (``make test`` installs it);
without it these tests FAIL with the reason: they are never silently skipped.
Screenshots go to build/screenshots/ (gitignored)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from oracle.chain.anvil import DEV_KEYS, Anvil
from oracle.chain.client import Chain
from oracle.chain.deploy import Deployment, deploy_all
from oracle.chain.registration import register_circuit
from oracle.subnet.auth import hotkey_of, load_or_create_wallet
from oracle.subnet.local import MinerProcess, start_local_miners, stop_local_miners

ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOTS = ROOT / "build" / "screenshots"
RELAYER_KEY = DEV_KEYS[5]
# Flags that keep Chromium off the network it cannot reach here (it retries background
# fetches otherwise) and working as root in a container.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: real-browser tests of the portal (system chromium + Playwright)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def chromium_path() -> str:
    path = os.environ.get("ORACLE_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("tests/browser need Chromium: `make test` installs Debian's chromium (as root), or "
                    "`apt-get install -y chromium`, or set ORACLE_CHROMIUM=/path/to/chrome", pytrace=False)
    return path


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context; the test fails on any uncaught page error or console error."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def console(msg: ConsoleMessage) -> None:
        # An HTTP error status the test provokes (401, 404) is logged by Chromium as
        # "Failed to load resource"; a script error is not that.
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            problems.append(f"console error: {msg.text}")
    pg.on("console", console)
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()
    assert not problems, problems


def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def screenshot(page: Page, name: str) -> Path:
    out = screenshot_dir() / f"{name}.png"
    page.screenshot(path=str(out), full_page=True)
    return out


def wait_js(page: Page, expression: str, timeout: float = 60.0) -> Any:
    """Polls ``expression`` until truthy. Not ``page.wait_for_function``: that evaluates a string
    inside the page, which the portal's Content-Security-Policy (no 'unsafe-eval') refuses."""
    end = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {expression}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    url: str                  # the gateway
    api_key: str
    db_url: str
    model_id: str
    circuit: Path
    chain: Chain
    deployment: Deployment
    miners: list[MinerProcess]
    log: Path

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kw)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def _oracle_cli(*args: str, env: dict[str, str] | None = None) -> str:
    res = subprocess.run([sys.executable, "-m", "oracle.cli", *args], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=120)
    assert res.returncode == 0, f"oracle {' '.join(args)}: {res.stdout}{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def stack(anvil: Anvil, chain: Chain, risk_circuit: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """anvil + a fresh deployment with the risk model registered, two local miners, and the oracle
    service with its gateway (``oracle run --api``) as a separate process."""
    work = tmp_path_factory.mktemp("portal")
    d = deploy_all(chain)
    reg = register_circuit(chain, d.registry, risk_circuit, rpc_url=anvil.url)
    models = work / "models"
    models.mkdir()
    (models / "risk-groth16").symlink_to(risk_circuit.resolve(), target_is_directory=True)
    db_url = f"sqlite:///{work / 'oracle.db'}"

    subnet = work / "subnet"
    validator = load_or_create_wallet("validator", subnet / "wallets")
    miners = start_local_miners(2, models, hotkey_of(validator), base_dir=subnet, workers=1)
    port = free_port()
    config = work / "oracle.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n\n[prover]\nmodels_dir = "{models}"\nworkers = 2\n\n'
        f'[subnet]\nmetagraph = "{subnet / "miners.json"}"\nwallet_name = "validator"\n'
        f'wallet_path = "{subnet / "wallets"}"\nk = 1\nminer_timeout = 20.0\nhedge_delay = 3.0\n\n'
        f'[[chains]]\nname = "anvil"\nrpc_url = "{anvil.url}"\noracle = "{d.oracle}"\nconfirmations = 1\n'
    )
    log = work / "oracle.log"
    env = dict(os.environ, ORACLE_PRIVATE_KEY=RELAYER_KEY)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "oracle.cli", "run", "--config", str(config),
                                 "--api", f"127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log)
        # The key is printed alone on stdout (logs go to stderr).
        key = _oracle_cli("gateway", "key", "create", "browser-test", "--db", db_url).strip()
        yield Stack(url=url, api_key=key, db_url=db_url, model_id=reg.model_id, circuit=risk_circuit,
                    chain=chain, deployment=d, miners=miners, log=log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stop_local_miners(miners)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"oracle run --api exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the gateway at {url} was not ready within {timeout:.0f} s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]
