"""The KZG SRS a circuit's keys come from (a ceremony file, or a local development SRS that is
generated once and cached), and the proving and verification keys made from it."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from oracle.errors import BackendError
from oracle.paths import CACHE_DIR
from oracle.proving.ezkl.runtime import EZKL_LOCK

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Srs:
    source: Path      # the ceremony file, or the cached development SRS
    dev_keys: bool    # True: a local, unsafe SRS (whoever generated it can forge proofs)


def dev_srs(logrows: int, cache_dir: Path | None = None) -> Path:
    """A local KZG SRS for 2^logrows, generated once and cached. UNSAFE: development only."""
    import ezkl

    d = Path(cache_dir or CACHE_DIR) / "srs"
    path = d / f"kzg-dev-{logrows}.srs"
    log.warning(
        "EZKL keys will come from a LOCAL, UNSAFE SRS (%s): whoever generated it can forge "
        "proofs. DEVELOPMENT ONLY; pass a ceremony SRS file (setup_file) for production.", path)
    if path.is_file():
        return path
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".kzg-dev-{logrows}.{os.getpid()}.{threading.get_ident()}.tmp"
    t0 = time.monotonic()
    with EZKL_LOCK:
        ezkl.gen_srs(str(tmp), logrows)
    tmp.replace(path)     # atomic: concurrent builders never see a partial file
    log.info("generated dev SRS 2^%d in %.1f s -> %s", logrows, time.monotonic() - t0, path)
    return path


def place_srs(setup_file: Path | None, logrows: int, cache_dir: Path | None, dest: Path) -> Srs:
    """Puts the SRS into the circuit folder (a hard link when possible): the ceremony file
    ``setup_file``, or without one the development SRS."""
    if setup_file is None:
        srs = Srs(dev_srs(logrows, cache_dir), dev_keys=True)
    else:
        srs = Srs(Path(setup_file), dev_keys=False)
        if not srs.source.is_file():
            raise BackendError(f"{srs.source}: no such SRS file")
    _link_or_copy(srs.source, dest)
    return srs


def make_keys(onnx_path: Path, paths: dict[str, Path], srs: Srs, logrows: int) -> None:
    """The proving and verification keys of the compiled circuit, from the folder's SRS."""
    import ezkl

    with EZKL_LOCK:
        try:
            ezkl.setup(str(paths["compiled"]), str(paths["vk"]), str(paths["pk"]), srs_path=str(paths["srs"]),
                       witness_path=None, disable_selector_compression=False)
        except RuntimeError as e:
            hint = "" if srs.dev_keys else f" (is {srs.source} a KZG SRS of at least 2^{logrows}?)"
            raise BackendError(f"{onnx_path}: EZKL setup failed ({e}){hint}") from e


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
