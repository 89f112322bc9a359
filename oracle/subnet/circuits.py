"""Circuit folders for miners: the validator serves ``GET /circuits/{circuit_id}`` (a tar.gz of
the folder's manifest-listed files); a miner missing a circuit fetches it and uses it only if
sha256(verification key) equals the circuit id it asked for.

The artifacts are public (proving and verification keys), so the endpoint needs no auth; what
matters is that a miner never proves with a folder that is not the circuit it was asked for.
A tampered proving key could only produce proofs that fail verification.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oracle.circuits.catalog import Circuit, CircuitCatalog
from oracle.circuits.manifest import MANIFEST_FILE, Manifest, ManifestError
from oracle.subnet.http_limits import HttpLimits
from oracle.subnet.protocol import CIRCUITS_PATH
from oracle.subnet.server import ThreadedServer

log = logging.getLogger(__name__)

CIRCUIT_ID_RE = re.compile(r"^0x[0-9a-f]{64}$")
MAX_CIRCUIT_BYTES = 2 << 30         # refuse absurd downloads (EZKL pk files are ~hundreds of MB)


def pack_circuit(circuit: Circuit) -> bytes:
    """tar.gz of the manifest and the files it names (nothing else from the folder)."""
    names = sorted({MANIFEST_FILE, *circuit.manifest.files.values()})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in names:
            # resolve(): a models folder may hold symlinks; ship the real bytes.
            tar.add(str((circuit.dir / name).resolve()), arcname=name, recursive=False)
    return buf.getvalue()


def unpack_circuit(data: bytes, circuit_id: str, dest: Path) -> Circuit:
    """Extracts into ``dest`` (replaced atomically) after checking sha256(vk) == circuit_id."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")       # no absolute paths, no .., no devices
        m = Manifest.load(tmp)
        m.check_circuit_id(tmp)                      # the vk on disk hashes to the manifest's id
        if m.circuit_id.lower() != circuit_id.lower():
            raise ManifestError(f"asked for circuit {circuit_id}, got {m.circuit_id}")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    except (tarfile.TarError, OSError, ManifestError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ManifestError(f"circuit {circuit_id} from the validator refused: {e}") from e
    return Circuit(dir=dest, manifest=Manifest.load(dest))


def fetch_circuit(validator_url: str, circuit_id: str, dest_root: Path, *, timeout: float = 120.0) -> Circuit:
    url = f"{validator_url.rstrip('/')}{CIRCUITS_PATH}/{circuit_id}"
    with httpx.Client(timeout=timeout) as client, client.stream("GET", url) as resp:
        if resp.status_code != 200:
            raise ManifestError(f"GET {url}: HTTP {resp.status_code}")
        chunks, size = [], 0
        for chunk in resp.iter_bytes():
            size += len(chunk)
            if size > MAX_CIRCUIT_BYTES:
                raise ManifestError(f"GET {url}: larger than {MAX_CIRCUIT_BYTES} bytes")
            chunks.append(chunk)
    circuit = unpack_circuit(b"".join(chunks), circuit_id, dest_root / circuit_id.lower())
    log.info("fetched circuit %s (%s, %d bytes) from %s", circuit_id, circuit.manifest.name, size, validator_url)
    return circuit


def circuit_app(catalog: CircuitCatalog) -> Starlette:
    cache: dict[str, bytes] = {}
    lock = threading.Lock()

    def get(request: Request) -> Response:
        cid = str(request.path_params["circuit_id"]).lower()
        if not CIRCUIT_ID_RE.match(cid):
            return JSONResponse({"error": "bad_request", "reason": "circuit id must be 0x + 64 hex"}, 400)
        circuit = catalog.get(cid)
        if circuit is None:
            return JSONResponse({"error": "unknown_circuit", "reason": f"no circuit {cid} here"}, 404)
        with lock:
            data = cache.get(cid)
            if data is None:
                data = cache[cid] = pack_circuit(circuit)
        return Response(data, media_type="application/gzip",
                        headers={"Content-Disposition": f'attachment; filename="{cid}.tar.gz"'})

    # A sync endpoint: starlette runs it in its thread pool (packing reads files).
    return Starlette(routes=[Route(CIRCUITS_PATH + "/{circuit_id}", get, methods=["GET"])])


class CircuitServer(ThreadedServer):
    """The validator's tiny circuit server, in a thread of the oracle process."""

    def __init__(self, catalog: CircuitCatalog, host: str = "127.0.0.1", port: int = 0,
                 limits: HttpLimits | None = None) -> None:
        super().__init__(circuit_app(catalog), host=host, port=port, name="circuit-server", limits=limits)
