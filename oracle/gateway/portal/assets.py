"""The browser libraries the portal serves itself (never from a CDN), from the npm packages
pinned in package.json / package-lock.json and installed at the repository root by
``make setup`` (``npm ci``): snarkjs' browser bundle (in-page proof verification) and uPlot
(the dashboard's plots)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oracle.errors import UserError
from oracle.paths import NODE_MODULES


class AssetsMissing(UserError):
    """A pinned npm package the portal serves is not installed."""


@dataclass(frozen=True)
class Asset:
    url_name: str          # served at /portal/vendor/<url_name>
    package: str           # npm package (package.json)
    path: str              # file inside the package
    media_type: str


VENDOR: tuple[Asset, ...] = (
    Asset("snarkjs.min.js", "snarkjs", "build/snarkjs.min.js", "text/javascript"),
    Asset("uPlot.iife.min.js", "uplot", "dist/uPlot.iife.min.js", "text/javascript"),
    Asset("uPlot.min.css", "uplot", "dist/uPlot.min.css", "text/css"),
)


def vendor_files(node_modules: Path = NODE_MODULES) -> dict[str, tuple[Path, str]]:
    """url name -> (file, media type) for every vendored asset; AssetsMissing names what to run."""
    found: dict[str, tuple[Path, str]] = {}
    missing: list[str] = []
    for a in VENDOR:
        f = node_modules / a.package / a.path
        if f.is_file():
            found[a.url_name] = (f, a.media_type)
        else:
            missing.append(f"{a.package} ({f})")
    if missing:
        raise AssetsMissing(
            "the gateway portal serves pinned npm packages that are not installed: " + ", ".join(missing)
            + f"; run `make setup` (npm ci) at the repository root so {node_modules} holds them"
        )
    return found
