"""A FAKE JSON-RPC node for the dev-key tests: on loopback, it answers chain id 31337 but says
it is Geth, as a local mainnet fork or an SSH tunnel to a real node would. Only the three
methods a "is this a local dev chain?" check asks are answered."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest


class _NotAnvil(BaseHTTPRequestHandler):
    """A JSON-RPC node on loopback that claims chain id 31337 but is another client."""

    calls: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(req["method"])
        results = {"eth_chainId": "0x7a69", "net_version": "31337",
                   "web3_clientVersion": "Geth/v1.14.11-stable/linux-amd64/go1.22.1"}
        if req["method"] in results:
            body = {"jsonrpc": "2.0", "id": req["id"], "result": results[req["method"]]}
        else:
            body = {"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "not here"}}
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def not_anvil() -> Iterator[tuple[str, list[str]]]:
    calls: list[str] = []
    handler = type("Handler", (_NotAnvil,), {"calls": calls})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()
