"""The project's packages import one way: down.

Layers, lowest first (read from the code; a unit is ``oracle.<name>`` or a top-level package)::

    0  oracle.errors, oracle.paths      the error root and kinds; where files live
    1  oracle.circuits                  ONNX graph, quantization, manifest, packing, payee
       oracle.store                     SQL models, migrations, repository functions
       oracle.http_limits               what a peer can make our HTTP servers hold (uvicorn)
    2  oracle.proving                   one backend per proof system (over circuits)
       oracle.chain                     web3 client, contracts, keys, registration, decoding
    3  oracle.dispatch                  requests -> proofs (store + backends)
       oracle.audit                     re-verifies a fulfilment (chain + backends)
       listeners, relayer               chain -> store, store -> chain
    4  oracle.subnet                    miners and the validator (a dispatch Prover)
       oracle.gateway                   HTTP API and portal (store, chains, dispatch's resolver)
    5  oracle.service                   wires listeners, dispatcher, relayer (``oracle run``)
       oracle.commands                  compile / prove / verify on circuit folders
    6  oracle.cli                       the command line

A module may import its own unit and units of a LOWER layer only: units of one layer stay
independent of each other (the backends know nothing of the chain, and the other way round).
Imports inside functions and under ``TYPE_CHECKING`` count too: they are dependencies all the
same. A new unit must be given a layer here before it can be imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("oracle", "listeners", "relayer")

LAYERS: dict[str, int] = {
    "oracle.errors": 0, "oracle.paths": 0, "oracle.signals": 0,
    "oracle.circuits": 1, "oracle.store": 1, "oracle.http_limits": 1,
    "oracle.proving": 2, "oracle.chain": 2,
    "oracle.dispatch": 3, "oracle.audit": 3, "listeners": 3, "relayer": 3,
    "oracle.subnet": 4, "oracle.gateway": 4,
    "oracle.service": 5, "oracle.commands": 5,
    "oracle.cli": 6,
}


def unit_of(module: str) -> str | None:
    """``oracle.proving.groth16.pool`` -> ``oracle.proving``; ``relayer.fees`` -> ``relayer``;
    None for anything outside the checked packages (or the bare ``oracle`` package)."""
    parts = module.split(".")
    if parts[0] not in CHECKED:
        return None
    if parts[0] == "oracle":
        return ".".join(parts[:2]) if len(parts) > 1 else None
    return parts[0]


def module_name(path: Path, root: Path) -> tuple[str, str]:
    """(module, the package its relative imports start from)."""
    rel = path.relative_to(root).with_suffix("").parts
    if rel[-1] == "__init__":
        return ".".join(rel[:-1]), ".".join(rel[:-1])
    return ".".join(rel), ".".join(rel[:-1])


def imported_modules(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``tree`` (a module of ``package``), relative
    imports resolved."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            mod = ".".join([*base, node.module] if node.module else base)
            if mod in CHECKED:    # `from oracle import errors` imports the unit oracle.errors
                out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, mod))
    return out


def violations(root: Path = ROOT) -> list[str]:
    found: list[str] = []
    for pkg in CHECKED:
        for path in sorted((root / pkg).rglob("*.py")):
            this, package = module_name(path, root)
            src = unit_of(this)
            if src is None:
                continue
            if src not in LAYERS:
                found.append(f"{path.relative_to(root)}: unit {src} has no layer (add it to LAYERS)")
                continue
            for line, mod in imported_modules(ast.parse(path.read_text(), str(path)), package):
                dst = unit_of(mod)
                if dst is None or dst == src:
                    continue
                if dst not in LAYERS:
                    found.append(f"{path.relative_to(root)}:{line}: imports {mod}, whose unit has no layer")
                elif LAYERS[dst] >= LAYERS[src]:
                    found.append(f"{path.relative_to(root)}:{line}: {src} (layer {LAYERS[src]}) imports "
                                 f"{mod} (layer {LAYERS[dst]}): imports must point to a lower layer")
    return found


def test_imports_point_down() -> None:
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an upward import, a same-layer import and an unknown unit are found;
    a relative import is resolved before it is judged."""
    (tmp_path / "oracle" / "circuits").mkdir(parents=True)
    (tmp_path / "oracle" / "chain").mkdir()
    (tmp_path / "oracle" / "newthing").mkdir()
    (tmp_path / "oracle" / "circuits" / "a.py").write_text(
        "def f():\n    from oracle.proving.base import BackendError\n")
    (tmp_path / "oracle" / "chain" / "b.py").write_text("from ..proving import registry\n")
    (tmp_path / "oracle" / "newthing" / "c.py").write_text("import os\n")
    for pkg in ("listeners", "relayer"):
        (tmp_path / pkg).mkdir()
    found = violations(tmp_path)
    assert any(v.startswith("oracle/circuits/a.py:2: oracle.circuits (layer 1) imports oracle.proving.base")
               for v in found), found
    assert any(v.startswith("oracle/chain/b.py:1: oracle.chain (layer 2) imports oracle.proving (layer 2)")
               for v in found), found
    assert any("unit oracle.newthing has no layer" in v for v in found), found
    assert len(found) == 3, found
