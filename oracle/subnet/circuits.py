"""Circuit folders for miners: the validator serves ``GET /circuits/{circuit_id}`` (a tar.gz of
the folder's manifest-listed files); a miner missing a circuit fetches it and uses it only if
sha256(verification key) equals the circuit id it asked for. A slice of a sliced model is
fetched by the slice's own circuit id: the model's manifest and quantized model plus that one
slice's folder, kept only if the slice's key hashes to its id and the model id is the hash over
the slice ids the manifest lists; slices fetched later join the same folder.

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
from oracle.http_limits import HttpLimits
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


SLICE_SHIPPED = ("model.zkey", "verification_key.json", "slice.json")   # what proving one slice needs


def pack_slice(model: Circuit, j: int) -> bytes:
    """tar.gz of what proving slice j of a sliced model needs: the model's manifest and
    quantized model, and the slice's folder (its proving and verification keys, slice.json)."""
    m = model.manifest
    assert m.slices is not None
    slice_dir = str(m.slices[j]["dir"])
    names = [MANIFEST_FILE, m.files["quantized"], *(f"{slice_dir}/{f}" for f in SLICE_SHIPPED)]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in names:
            tar.add(str((model.dir / name).resolve()), arcname=name, recursive=False)
    return buf.getvalue()


def find_slice(catalog: CircuitCatalog, slice_id: str) -> tuple[Circuit, int] | None:
    """The sliced model (all of whose slices are here) and index of the slice ``slice_id``."""
    for cid in catalog.ids():
        c = catalog.get(cid)
        if c is None or not c.manifest.slices:
            continue
        for j, s in enumerate(c.manifest.slices):
            if str(s["circuit_id"]).lower() == slice_id.lower() and j in c.manifest.held_slices(c.dir):
                return c, j
    return None


def unpack_slice(data: bytes, model_id: str, j: int, slice_id: str, dest: Path) -> Circuit:
    """Adds slice j of sliced model ``model_id`` to the folder ``dest`` (created if missing;
    slices already there are kept), after checking: the manifest's model id is ``model_id``
    and the hash over its slices' ids, its slice j is ``slice_id``, and that slice's key
    hashes to it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        m = Manifest.load(tmp)
        if m.circuit_id.lower() != model_id.lower():
            raise ManifestError(f"asked for a slice of model {model_id}, got model {m.circuit_id}")
        if not m.slices or j >= len(m.slices) or str(m.slices[j]["circuit_id"]).lower() != slice_id.lower():
            raise ManifestError(f"model {model_id} has no slice {j} with id {slice_id}")
        m.check_circuit_id(tmp)                  # model id = hash of slice ids; slice j's vk = its id
        if m.held_slices(tmp) != [j]:
            raise ManifestError(f"expected exactly slice {j}, got slices {m.held_slices(tmp)}")
        if not dest.exists():
            tmp.rename(dest)
        else:
            have = Manifest.load(dest)
            if have.circuit_id.lower() != model_id.lower():
                raise ManifestError(f"{dest} holds model {have.circuit_id}, not {model_id}")
            target = dest / str(m.slices[j]["dir"])
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            (tmp / str(m.slices[j]["dir"])).rename(target)
            shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, OSError, ManifestError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ManifestError(f"slice {j} of {model_id} from the validator refused: {e}") from e
    return Circuit(dir=dest, manifest=Manifest.load(dest))


def fetch_slice(validator_url: str, model_id: str, j: int, slice_id: str, dest_root: Path, *,
                timeout: float = 120.0) -> Circuit:
    """GET /circuits/{slice_id}: slice j of a sliced model, merged into ``dest_root/model_id``."""
    data = _download(f"{validator_url.rstrip('/')}{CIRCUITS_PATH}/{slice_id}", timeout)
    circuit = unpack_slice(data, model_id, j, slice_id, dest_root / model_id.lower())
    log.info("fetched slice %d (%s, %d bytes) of model %s from %s", j, slice_id[:10], len(data), model_id[:10],
             validator_url)
    return circuit


def _download(url: str, timeout: float) -> bytes:
    with httpx.Client(timeout=timeout) as client, client.stream("GET", url) as resp:
        if resp.status_code != 200:
            raise ManifestError(f"GET {url}: HTTP {resp.status_code}")
        chunks, size = [], 0
        for chunk in resp.iter_bytes():
            size += len(chunk)
            if size > MAX_CIRCUIT_BYTES:
                raise ManifestError(f"GET {url}: larger than {MAX_CIRCUIT_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


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
    data = _download(url, timeout)
    circuit = unpack_circuit(data, circuit_id, dest_root / circuit_id.lower())
    log.info("fetched circuit %s (%s, %d bytes) from %s", circuit_id, circuit.manifest.name, len(data),
             validator_url)
    return circuit


def circuit_app(catalog: CircuitCatalog) -> Starlette:
    cache: dict[str, bytes] = {}
    lock = threading.Lock()

    def get(request: Request) -> Response:
        cid = str(request.path_params["circuit_id"]).lower()
        if not CIRCUIT_ID_RE.match(cid):
            return JSONResponse({"error": "bad_request", "reason": "circuit id must be 0x + 64 hex"}, 400)
        circuit = catalog.get(cid)
        found = find_slice(catalog, cid) if circuit is None or circuit.manifest.slices else None
        if circuit is None and found is None:
            return JSONResponse({"error": "unknown_circuit", "reason": f"no circuit {cid} here"}, 404)
        if found is None and circuit is not None and circuit.manifest.slices:
            return JSONResponse({"error": "unknown_circuit", "reason": f"{cid} is a sliced model: fetch its "
                                 "slices by their circuit ids"}, 404)
        with lock:
            data = cache.get(cid)
            if data is None:
                if found is not None:
                    data = cache[cid] = pack_slice(*found)
                else:
                    assert circuit is not None
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
