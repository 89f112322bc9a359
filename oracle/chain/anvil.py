"""A local anvil node as a managed subprocess (demo, tests, benchmarks)."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlparse

from oracle.errors import OracleError
from oracle.paths import foundry_bin

log = logging.getLogger(__name__)

# anvil's well-known development accounts (mnemonic "test test ... junk"). Public knowledge:
# anyone can sign with them, so they are used by default only against an anvil node on this
# machine (``local_anvil_problem``), never against a chain merely because its id is 31337.
DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)
# Chain ids anvil uses for development; an anvil node started with another id (say a fork
# keeping mainnet's) is treated as not a dev chain: its dev key is not a default there.
LOCAL_CHAIN_IDS = frozenset({31337})

_LISTENING = re.compile(r"Listening on ([\d.]+):(\d+)")


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is this machine's loopback: 127.0.0.0/8, ::1 (or an IPv4-mapped
    loopback), or ``localhost`` when every address it resolves to is loopback."""
    try:
        host = (urlparse(url).hostname or "").strip("[]")
    except ValueError:
        return False
    if not host:
        return False
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if host.lower().rstrip(".") != "localhost":
            return False  # any other name may point anywhere
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        addresses = [ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos]
    return bool(addresses) and all(_loopback(a) for a in addresses)


def _loopback(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped.is_loopback
    return a.is_loopback


def _rpc(rpc_url: str, method: str, timeout: float) -> str:
    """One JSON-RPC call over HTTP whose result is a string."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    req = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    # No proxy: an http_proxy from the environment would let a proxy answer for "127.0.0.1".
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as resp:
        answer = json.loads(resp.read(1 << 16))
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, str):
        raise ValueError(f"no {method} from {rpc_url}: {answer!r}"[:300])
    return result


def client_version(rpc_url: str, timeout: float = 5.0) -> str:
    """``web3_clientVersion`` of the node at ``rpc_url`` (HTTP JSON-RPC)."""
    return _rpc(rpc_url, "web3_clientVersion", timeout)


def local_anvil_problem(rpc_url: str | None, timeout: float = 5.0) -> str | None:
    """None when ``rpc_url`` is an anvil dev chain on this machine (loopback URL AND the node
    says it is anvil AND its chain id is a dev id), else why not. The id alone proves nothing
    (anyone can run a chain with id 31337), a loopback URL can be a tunnel to a real node, and
    anvil reached over the network is someone else's node."""
    if not rpc_url:
        return "no RPC URL to check"
    if urlparse(rpc_url).scheme not in ("http", "https"):
        return f"{rpc_url} is not an http(s) URL"
    if not is_loopback_url(rpc_url):
        return f"{rpc_url} is not a loopback address"
    try:
        version = client_version(rpc_url, timeout)
        chain_id = int(_rpc(rpc_url, "eth_chainId", timeout), 16)
    except (OSError, ValueError) as e:
        return f"cannot read web3_clientVersion/eth_chainId from {rpc_url}: {e}"
    if not version.lower().startswith("anvil/"):
        return f"the node at {rpc_url} is {version!r}, not anvil"
    if chain_id not in LOCAL_CHAIN_IDS:
        return f"the anvil node at {rpc_url} runs chain id {chain_id}, not a dev chain id {sorted(LOCAL_CHAIN_IDS)}"
    return None


class AnvilError(OracleError):
    """A local anvil node did not start (a development tool: neither bad input nor worth a retry)."""


class Anvil:
    """Starts anvil on a free (or given) port; stops it on exit. Output goes to the log."""

    def __init__(
        self,
        *,
        port: int = 0,
        chain_id: int = 31337,
        block_time: float | None = None,
        state_file: Path | None = None,
        extra_args: Sequence[str] = (),
        accounts: int = 10,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host   # the address anvil listens on ("0.0.0.0": every interface)
        self.port = port
        self.chain_id = chain_id
        self.block_time = block_time
        self.state_file = state_file
        self.extra_args = list(extra_args)
        self.accounts = accounts
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Anvil:
        args = [
            str(foundry_bin("anvil")), "--host", self.host, "--port", str(self.port),
            "--chain-id", str(self.chain_id), "--accounts", str(self.accounts),
            "--balance", "1000000",
        ]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        if self.state_file is not None:
            # --state loads the file if present and dumps to it on exit.
            args += ["--state", str(self.state_file)]
        args += self.extra_args
        self._proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = _LISTENING.search(line)
            if m:
                self.port = int(m.group(2))
                threading.Thread(target=self._drain, daemon=True).start()
                log.info("anvil listening on %s (chain id %d)", self.url, self.chain_id)
                return self
        self.stop()
        raise AnvilError("anvil did not start: " + "".join(lines[-20:]))

    def _drain(self) -> None:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        for line in proc.stdout:
            log.debug("anvil: %s", line.rstrip())

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait (anvil dumps --state on a clean exit)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
