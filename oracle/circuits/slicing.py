"""Cutting a quantized model into slices at layer boundaries (sliced models, docs/sliced-models.md).

Slice j of k computes layers [cuts[j], cuts[j+1]) with cuts[0] = 0 and cuts[k] = the layer
count. Values are numbered by *base*, as ``QLayer.terms`` reads them: base 0 is the model input,
base i + 1 the output of layer i. A cut at layer c carries every base b <= c that some layer at
or after c still reads (a residual-like step can read an older base), so the boundary activation
is the concatenation of those bases, in base order. Its signed bit width comes from the
quantizer's worst-case bounds (the input's bit width for base 0), so producer and consumer agree
on the packing without any new scale: both sides read the same integers.

This module knows nothing of circuits: the cost of a layer and of a boundary are given by the
caller (the Groth16 lowering), and cut points balance them.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from oracle.circuits.packing import n_words
from oracle.circuits.quantize import QuantizedModel, signed_bits
from oracle.errors import UserError


class SlicingError(UserError):
    """Cut points that do not describe a slicing of the model, or a target no slicing meets."""


@dataclass(frozen=True)
class Boundary:
    """Boundary j (1..k-1): what slice j-1 hands to slice j, committed as c_j."""

    index: int
    layer: int                         # the cut: layers before it are upstream
    bases: tuple[int, ...]             # carried bases, ascending
    sizes: tuple[int, ...]             # values per carried base
    bits: int                          # signed bit width of every value of the boundary

    @property
    def n_values(self) -> int:
        return sum(self.sizes)

    @property
    def n_words(self) -> int:
        return n_words(self.n_values, self.bits)

    def offsets(self) -> dict[int, int]:
        """Where each carried base starts inside the boundary vector."""
        out, at = {}, 0
        for b, n in zip(self.bases, self.sizes, strict=True):
            out[b] = at
            at += n
        return out


def check_cuts(qm: QuantizedModel, cuts: Sequence[int]) -> list[int]:
    """``cuts`` as [0, c_1, .., L]: strictly increasing, inside the model, at least 2 slices."""
    c = [int(v) for v in cuts]
    n_layers = len(qm.layers)
    if len(c) < 3 or c[0] != 0 or c[-1] != n_layers or any(b <= a for a, b in itertools.pairwise(c)):
        raise SlicingError(f"cut points {c} are not 0 < c_1 < .. < {n_layers} (at least 2 slices of a "
                           f"{n_layers}-layer model)")
    return c


def base_size(qm: QuantizedModel, base: int) -> int:
    return qm.input_size if base == 0 else qm.layers[base - 1].size


def base_bounds(qm: QuantizedModel, base: int) -> tuple[int, int]:
    """Worst-case (lo, hi) over every value of a base."""
    if base == 0:
        return qm.input_range()
    ly = qm.layers[base - 1]
    return min(ly.out_lo), max(ly.out_hi)


def boundary(qm: QuantizedModel, cuts: Sequence[int], j: int) -> Boundary:
    """Boundary j (1 <= j < k) of the slicing ``cuts``."""
    c = check_cuts(qm, cuts)
    if not 1 <= j < len(c) - 1:
        raise SlicingError(f"boundary {j} does not exist with {len(c) - 1} slices")
    return boundary_at(qm, c[j], j)


def boundary_at(qm: QuantizedModel, cut: int, j: int) -> Boundary:
    """The boundary numbered ``j`` at layer ``cut`` (0 < cut < layer count)."""
    if not 0 < cut < len(qm.layers):
        raise SlicingError(f"a cut at layer {cut} is not inside the {len(qm.layers)}-layer model")
    read_later = {b for ly in qm.layers[cut:] for b in ly.terms}
    bases = tuple(sorted(b for b in read_later if b <= cut))
    lo = min(base_bounds(qm, b)[0] for b in bases)
    hi = max(base_bounds(qm, b)[1] for b in bases)
    # A base-0 boundary keeps the input's own width (its range check is the input's).
    bits = max(signed_bits(min(lo, 0), max(hi, 0)), qm.input_bits if 0 in bases else 1)
    return Boundary(j, cut, bases, tuple(base_size(qm, b) for b in bases), bits)


def model_id(circuit_ids: Sequence[str]) -> str:
    """The sliced model's id: sha256 over its slices' circuit ids (32 bytes each) in order."""
    try:
        raw = b"".join(bytes.fromhex(cid.removeprefix("0x")) for cid in circuit_ids)
    except ValueError as e:
        raise SlicingError(f"circuit ids {list(circuit_ids)} are not hex") from e
    if len(raw) != 32 * len(circuit_ids) or len(circuit_ids) < 2:
        raise SlicingError("a sliced model id covers at least 2 circuit ids of 32 bytes")
    return "0x" + hashlib.sha256(raw).hexdigest()


# -- choosing cut points -----------------------------------------------------------------------
SliceCost = Callable[[int, int], int]      # (first layer, end layer) -> constraints of that slice


def balanced_cuts(n_layers: int, k: int, cost: SliceCost) -> tuple[list[int], int]:
    """The cuts into ``k`` slices minimising the largest slice's cost, and that cost (dynamic
    programming over cut positions: the model's layer count is small)."""
    if not 2 <= k <= n_layers:
        raise SlicingError(f"cannot cut {n_layers} layers into {k} slices (2..{n_layers})")
    inf = math.inf
    # best[m][e]: the smallest max-cost of cutting layers [0, e) into m slices; arg for the path.
    best = [[inf] * (n_layers + 1) for _ in range(k + 1)]
    arg = [[0] * (n_layers + 1) for _ in range(k + 1)]
    best[0][0] = 0
    for m in range(1, k + 1):
        for e in range(m, n_layers + 1):
            for a in range(m - 1, e):
                if best[m - 1][a] == inf:
                    continue
                v = max(best[m - 1][a], cost(a, e))
                if v < best[m][e]:
                    best[m][e], arg[m][e] = v, a
    cuts = [n_layers]
    for m in range(k, 0, -1):
        cuts.append(arg[m][cuts[-1]])
    return cuts[::-1], int(best[k][n_layers])


def cuts_for_target(n_layers: int, cost: SliceCost, max_cost: int) -> tuple[list[int], int]:
    """The fewest slices (at least 2) whose every slice costs at most ``max_cost``."""
    for k in range(2, n_layers + 1):
        cuts, worst = balanced_cuts(n_layers, k, cost)
        if worst <= max_cost:
            return cuts, worst
    single = max(cost(i, i + 1) for i in range(n_layers))
    raise SlicingError(f"no slicing at layer boundaries keeps every slice within {max_cost} constraints: "
                       f"the costliest single layer alone needs {single} (split that layer, or raise the target)")
