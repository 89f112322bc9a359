"""Index arithmetic for sliding windows (Conv, AveragePool, MaxPool), in O(output x kernel).

A window layout is, per output position, the flat spatial index of every kernel position in the
input, or -1 where the kernel sits on padding. Convolutions and pools become sparse matrices (or
candidate lists) built from these indices directly: never a basis image per input pixel, never a
dense matrix.

Sizes follow ONNX: out = floor((n + pad_head + pad_tail - dil * (k - 1) - 1) / stride) + 1,
with ceil instead of floor under ``ceil_mode``, dropping a last window that would start past the
input and its head padding. ``auto_pad`` SAME_UPPER / SAME_LOWER / VALID is resolved to pads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from oracle.circuits.pending import Sparse
from oracle.errors import BackendError

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Window:
    out: list[int]        # output spatial sizes
    idx: I64              # (n_out, n_kernel): flat input spatial index, -1 on padding
    counted: NDArray[np.bool_]   # (n_out, n_kernel): inside [start, min(start+k, n+pad_tail))


def _attr_ints(attrs: dict[str, Any], key: str, default: list[int]) -> list[int]:
    return [int(v) for v in attrs.get(key, default)]


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def window(node: str, op: str, in_sizes: list[int], kernel: list[int], attrs: dict[str, Any]) -> Window:
    """The window layout of a Conv / pool node over spatial input sizes ``in_sizes``."""
    nd = len(in_sizes)
    if len(kernel) != nd:
        raise BackendError(f"node {node!r} ({op}): kernel {kernel} does not match {nd} spatial dims")
    strides = _attr_ints(attrs, "strides", [1] * nd)
    dil = _attr_ints(attrs, "dilations", [1] * nd)
    pads = _attr_ints(attrs, "pads", [0] * (2 * nd))
    ceil_mode = bool(int(attrs.get("ceil_mode", 0)))
    auto = _text(attrs.get("auto_pad", "NOTSET"))
    if min(strides, default=1) < 1 or min(dil, default=1) < 1 or min(pads, default=0) < 0:
        raise BackendError(f"node {node!r} ({op}): strides/dilations must be >= 1 and pads >= 0")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
        for d in range(nd):
            o = -(-in_sizes[d] // strides[d])
            total = max((o - 1) * strides[d] + dil[d] * (kernel[d] - 1) + 1 - in_sizes[d], 0)
            small, big = total // 2, total - total // 2
            pads[d], pads[nd + d] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    elif auto != "NOTSET":
        raise BackendError(f"node {node!r} ({op}): auto_pad {auto!r} is not supported")
    axes = [_axis(node, op, in_sizes[d], kernel[d], strides[d], dil[d], pads[d], pads[nd + d], ceil_mode)
            for d in range(nd)]
    return _combine(axes, in_sizes)


def _axis(node: str, op: str, n: int, k: int, s: int, d: int, p0: int, p1: int,
          ceil_mode: bool) -> tuple[I64, NDArray[np.bool_]]:
    span = d * (k - 1) + 1
    room = n + p0 + p1 - span
    if room < 0:
        raise BackendError(f"node {node!r} ({op}): kernel {k} (dilation {d}) larger than input {n} + pads")
    out = (-(-room // s) if ceil_mode else room // s) + 1
    if ceil_mode and (out - 1) * s >= n + p0:
        out -= 1
    raw = np.arange(out, dtype=np.int64)[:, None] * s - p0 + np.arange(k, dtype=np.int64)[None, :] * d
    idx = np.where((raw >= 0) & (raw < n), raw, -1)
    return idx, raw < n + p1


def _combine(axes: list[tuple[I64, NDArray[np.bool_]]], in_sizes: list[int]) -> Window:
    nd = len(axes)
    mult = [int(np.prod(in_sizes[d + 1:])) for d in range(nd)]
    flat = np.zeros([1] * (2 * nd), dtype=np.int64)
    bad = np.zeros([1] * (2 * nd), dtype=bool)
    counted = np.ones([1] * (2 * nd), dtype=bool)
    for d, (idx, cnt) in enumerate(axes):
        shape = [1] * (2 * nd)
        shape[d], shape[nd + d] = idx.shape
        a = idx.reshape(shape)
        flat = flat + a * mult[d]
        bad = bad | (a < 0)
        counted = counted & cnt.reshape(shape)
    out = [idx.shape[0] for idx, _ in axes]
    n_out, n_k = int(np.prod(out)), int(np.prod([idx.shape[1] for idx, _ in axes]))
    full = (*out, *[idx.shape[1] for idx, _ in axes])
    flat_idx = np.where(bad, -1, flat)
    return Window(out, np.broadcast_to(flat_idx, full).reshape(n_out, n_k),
                  np.broadcast_to(counted, full).reshape(n_out, n_k))


def conv_matrix(node: str, in_shape: list[int], w: F64, attrs: dict[str, Any]) -> tuple[Sparse, list[int]]:
    """The sparse (out x in) matrix of a convolution over one (C, *spatial) image, built from
    the window indices: one entry per multiply-add (zero weights and padding dropped)."""
    c, spatial = in_shape[0], in_shape[1:]
    group = int(attrs.get("group", 1))
    o, cg = w.shape[0], w.shape[1]
    if group < 1 or c % group or o % group or c // group != cg:
        raise BackendError(f"node {node!r} (Conv): {c} input channels, weights {list(w.shape)}, group {group}")
    kernel = list(w.shape[2:])
    if "kernel_shape" in attrs and [int(v) for v in attrs["kernel_shape"]] != kernel:
        raise BackendError(f"node {node!r} (Conv): kernel_shape {attrs['kernel_shape']} != weights {kernel}")
    win = window(node, "Conv", spatial, kernel, attrs)
    n_in, n_out = int(np.prod(spatial)), int(np.prod(win.out))
    og = o // group
    wk = w.reshape(o, cg, 1, -1)                                            # (O, cg, 1, K)
    in_ch = (np.arange(o) // og)[:, None] * cg + np.arange(cg)[None, :]    # (O, cg)
    full = (o, cg, n_out, wk.shape[3])
    live = np.broadcast_to((win.idx >= 0)[None, None] & (wk != 0), full)
    rows = np.broadcast_to(np.arange(o, dtype=np.int64)[:, None, None, None] * n_out
                           + np.arange(n_out, dtype=np.int64)[None, None, :, None], full)[live]
    cols = np.broadcast_to(in_ch[:, :, None, None] * n_in + win.idx[None, None], full)[live]
    data = np.broadcast_to(wk, full)[live]
    m = sp.csr_array((data.astype(np.float64), (rows, cols)), shape=(o * n_out, c * n_in))
    return m, [o, *win.out]
