"""What an unauthenticated peer can make the subnet's HTTP servers hold, over real sockets
against a real ``oracle miner`` process and a real circuit server:

* a 400 MB unsigned POST is answered 401 from the head alone; the miner's memory does not move
  and it stops reading (it used to buffer the whole body, 73 -> 875 MB, before answering);
* a signed head with an oversized body is refused 413 before the body is read (Content-Length)
  or at the limit (chunked); a body trickled too slowly gets 408;
* a request head trickled byte by byte, or never sent, is closed after the head deadline;
* connections beyond the cap are closed at once;
* the circuit server (validator side) enforces the same limits.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bittensor import http_auth

from oracle.circuits.catalog import CircuitCatalog
from oracle.http_limits import HttpLimits
from oracle.subnet import protocol as P
from oracle.subnet.auth import hotkey_of, load_or_create_wallet
from oracle.subnet.circuits import CircuitServer
from oracle.subnet.local import MinerProcess, start_local_miners, stop_local_miners
from tests.http_probe import MIB, check_connection_cap, check_head_deadlines, huge_upload, read_status, trickle_head

HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MAX_CONNECTIONS = 6
MAX_BODY = 256 * 1024


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("http-limits")
    models = base / "models"          # no circuit needed: nothing here is ever proven
    models.mkdir()
    validator = load_or_create_wallet("validator", base / "vw")
    miners = start_local_miners(
        1, models, hotkey_of(validator), base_dir=base / "m",
        extra_args=["--header-timeout", str(HEAD_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
                    "--max-connections", str(MAX_CONNECTIONS), "--max-body", str(MAX_BODY)])
    try:
        yield {"validator": validator, "miner": miners[0]}
    finally:
        stop_local_miners(miners)


def _signed_head(env: dict[str, Any]) -> dict[str, str]:
    """A well-formed, fresh head from the allowed validator (signed over some other body: the
    signature can only be checked once a body is read, which is what these tests prevent)."""
    miner: MinerProcess = env["miner"]
    return http_auth.sign(env["validator"], method="POST", path=P.PROVE_PATH, body=b"{}", receiver_ss58=miner.hotkey)


def _rejected(miner: MinerProcess, code: str) -> int:
    return int(miner.health()["rejected"].get(code, 0))


def test_huge_unsigned_post_is_refused_from_the_head_without_buffering(env: dict[str, Any]) -> None:
    miner: MinerProcess = env["miner"]
    before = _rejected(miner, "unsigned")
    r = huge_upload(miner.url + P.PROVE_PATH, miner.proc.pid, total=400 * MIB, answer_timeout=30)
    # The 401 is sent on the head alone and the connection closed: the client may see the 401
    # or, when the close reaches it mid-upload, a reset. Either way the upload was cut short.
    assert r.status in (401, None), r.summary()
    assert r.sent < 64 * MIB, r.summary()
    assert r.rss_peak - r.rss_before < 32 * MIB, r.summary()
    assert _rejected(miner, "unsigned") == before + 1


def test_signed_head_with_oversized_content_length_is_413_before_any_body(env: dict[str, Any]) -> None:
    miner: MinerProcess = env["miner"]
    before = _rejected(miner, "too_large")
    head = [f"POST {P.PROVE_PATH} HTTP/1.1", "Host: x", "Content-Type: application/json",
            f"Content-Length: {400 * MIB}", *(f"{k}: {v}" for k, v in _signed_head(env).items())]
    with socket.create_connection(("127.0.0.1", miner.port)) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        # Not one body byte sent: the answer must not wait for it.
        assert read_status(s, 5.0) == 413
    assert _rejected(miner, "too_large") == before + 1


def test_signed_chunked_body_is_cut_off_at_the_limit(env: dict[str, Any]) -> None:
    miner: MinerProcess = env["miner"]
    before = _rejected(miner, "too_large")
    r = huge_upload(miner.url + P.PROVE_PATH, miner.proc.pid, total=400 * MIB, chunked=True,
                    headers=_signed_head(env), answer_timeout=30)
    assert r.status in (413, None), r.summary()
    assert r.sent < 64 * MIB, r.summary()
    assert r.rss_peak - r.rss_before < 32 * MIB, r.summary()
    assert _rejected(miner, "too_large") == before + 1


def test_trickled_body_gets_408(env: dict[str, Any]) -> None:
    miner: MinerProcess = env["miner"]
    head = [f"POST {P.PROVE_PATH} HTTP/1.1", "Host: x", "Content-Length: 1000",
            *(f"{k}: {v}" for k, v in _signed_head(env).items())]
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", miner.port)) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"{")
        assert read_status(s, 10.0) == 408
    assert time.monotonic() - t0 < BODY_TIMEOUT + 3


def test_trickled_or_missing_request_head_is_closed(env: dict[str, Any]) -> None:
    miner: MinerProcess = env["miner"]
    check_head_deadlines("127.0.0.1", miner.port, P.HEALTH_PATH, HEAD_TIMEOUT)


def test_connections_beyond_the_cap_are_closed_at_once(env: dict[str, Any]) -> None:
    miner: MinerProcess = env["miner"]
    check_connection_cap("127.0.0.1", miner.port, MAX_CONNECTIONS, HEAD_TIMEOUT)
    assert miner.health()["status"] == "ok"        # and serving again once they are gone


def test_circuit_server_enforces_the_same_limits(risk_circuit: Path) -> None:
    limits = HttpLimits(header_timeout=HEAD_TIMEOUT, body_timeout=BODY_TIMEOUT, max_body=MAX_BODY)
    with CircuitServer(CircuitCatalog.scan(risk_circuit), limits=limits) as srv:
        url = srv.url + P.CIRCUITS_PATH + "/0x" + "00" * 32
        closed_after = trickle_head(url, every=0.1, give_up=10)
        assert closed_after is not None and closed_after < HEAD_TIMEOUT + 2, closed_after
        # A GET carrying a huge body: refused from its Content-Length, nothing read.
        with socket.create_connection((srv.host, srv.port)) as s:
            s.sendall(f"GET {P.CIRCUITS_PATH}/x HTTP/1.1\r\nHost: x\r\nContent-Length: {400 * MIB}\r\n\r\n".encode())
            assert read_status(s, 5) == 413
        # A chunked body the app never reads: answered, then the connection is closed rather
        # than drained for as long as the client keeps sending.
        import os

        r = huge_upload(url, os.getpid(), total=400 * MIB, chunked=True, answer_timeout=10)
        assert r.sent < 64 * MIB, r.summary()
        assert httpx.get(url, timeout=5).status_code == 404        # still serving


# ------------------------------------------------------------------ validator side: answers


class FloodingMiner:
    """A real HTTP server playing a miner that answers /prove with a huge body (streamed, or
    declared up front in Content-Length) or trickles its answer; counts the bytes it managed
    to hand to the validator's connection."""

    def __init__(self, mode: str, total: int = 200 * MIB) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import StreamingResponse
        from starlette.routing import Route

        self.mode, self.total, self.streamed = mode, total, 0

        async def flood() -> Any:
            import asyncio

            block = b" " * (64 * 1024)
            if self.mode == "trickle":
                while True:
                    self.streamed += 1
                    yield b" "
                    await asyncio.sleep(0.2)
            while self.streamed < self.total:
                self.streamed += len(block)
                yield block
                await asyncio.sleep(0)        # let a disconnect be noticed between chunks

        async def prove(_request: Request) -> StreamingResponse:
            headers = {"Content-Length": str(self.total)} if self.mode == "declared" else None
            return StreamingResponse(flood(), media_type="application/json", headers=headers)

        from oracle.subnet.server import ThreadedServer

        self.server = ThreadedServer(Starlette(routes=[Route(P.PROVE_PATH, prove, methods=["POST"])]),
                                     name=f"flooding-miner-{mode}")


@pytest.mark.parametrize("mode", ["streamed", "declared", "trickle"])
def test_validator_reads_answers_with_a_cap_and_a_deadline(risk_circuit: Path, tmp_path: Path, mode: str) -> None:
    from oracle.subnet.config import SubnetConfig
    from oracle.subnet.metagraph import LocalMetagraph, MinerInfo, write_local_metagraph
    from oracle.subnet.scoring import PRIOR
    from oracle.subnet.validator import SubnetError, SubnetProver

    circuit = CircuitCatalog.scan(risk_circuit).get(CircuitCatalog.scan(risk_circuit).ids()[0])
    assert circuit is not None
    validator = load_or_create_wallet("validator", tmp_path / "vw")
    bad_hotkey = hotkey_of(load_or_create_wallet("flooder", tmp_path / "vw"))
    fm = FloodingMiner(mode)
    with fm.server as srv:
        f = write_local_metagraph(tmp_path / "miners.json", [MinerInfo(hotkey=bad_hotkey, url=srv.url)])
        cfg = SubnetConfig(metagraph=f, k=1, exploration=0.0, miner_timeout=2.0)
        sp = SubnetProver(validator, LocalMetagraph(f), cfg)
        t0 = time.monotonic()
        try:
            with pytest.raises(SubnetError) as e:
                sp.prove(circuit, [1] * circuit.manifest.input_size, timeout=15)
        finally:
            sp.close()
        elapsed = time.monotonic() - t0
    st = sp.scores.snapshot()[bad_hotkey]
    if mode == "trickle":
        # One deadline for the whole answer (not per read): timed out at miner_timeout, scored.
        assert "timeout" in str(e.value) and elapsed < cfg.miner_timeout + 3, (elapsed, str(e.value))
        assert st.failures == 1 and st.score < PRIOR and st.invalid == 0
        return
    assert f"{cfg.max_answer_bytes}-byte limit" in str(e.value), str(e.value)
    assert "invalid" in str(e.value)
    assert st.invalid == 1 and st.score == 0.0                    # slashed like any lie
    # The validator stopped reading at the cap: the flood was cut off far short of its 200 MiB.
    assert fm.streamed < 32 * MIB, fm.streamed
    assert elapsed < 10, elapsed
