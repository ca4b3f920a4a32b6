"""Robust numeric columns and row checks.

``to_float`` / ``to_int`` turn string columns into numbers with a mask of the values that are not
numbers (one Arrow cast on the fast path, a per-row fallback only when the cast fails);
``check_price`` / ``check_size`` / ``check_quotes`` / ``check_timestamps`` return masks of bad
rows and count them by kind.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from avmm.data.issues import Counters


def to_float(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """String column -> (float64 values, non-numeric mask). Fast path: one Arrow cast."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        bad = np.asarray(col.is_null(), dtype=bool)
        return col.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False), bad
    try:
        if col.null_count == 0:
            return col.cast(pa.float64()).to_numpy(zero_copy_only=False), np.zeros(len(col), bool)
    except pa.ArrowInvalid:
        pass
    out = np.zeros(len(col), dtype=np.float64)
    bad = np.zeros(len(col), dtype=bool)
    for i, s in enumerate(col.to_pylist()):
        try:
            out[i] = float(s)
        except (TypeError, ValueError):
            bad[i] = True
    return out, bad


def to_int(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """String column -> (int64 values, non-numeric mask)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_integer(col.type):
        bad = np.asarray(col.is_null(), dtype=bool)
        return col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), bad
    try:
        if col.null_count == 0:
            return col.cast(pa.int64()).to_numpy(zero_copy_only=False), np.zeros(len(col), bool)
    except pa.ArrowInvalid:
        pass
    out = np.zeros(len(col), dtype=np.int64)
    bad = np.zeros(len(col), dtype=bool)
    for i, s in enumerate(col.to_pylist()):
        try:
            out[i] = int(s)
        except (TypeError, ValueError):
            try:  # "1.582e15" style
                f = float(s)
                if np.isfinite(f) and abs(f) < 9.2e18:
                    out[i] = int(f)
                else:
                    bad[i] = True
            except (TypeError, ValueError):
                bad[i] = True
    return out, bad


def check_price(px: np.ndarray, c: Counters, path, lines) -> np.ndarray:
    """Mask of bad prices (counted)."""
    nf = ~np.isfinite(px)
    npos = ~nf & (px <= 0)
    c.add_mask("non_finite_price", nf, path, lines)
    c.add_mask("non_positive_price", npos, path, lines)
    return nf | npos


def check_size(qty: np.ndarray, c: Counters, path, lines, allow_zero: bool = False) -> np.ndarray:
    nf = ~np.isfinite(qty)
    npos = ~nf & ((qty < 0) if allow_zero else (qty <= 0))
    c.add_mask("non_finite_size", nf, path, lines)
    c.add_mask("non_positive_size", npos, path, lines)
    return nf | npos


def check_quotes(ev: np.ndarray, c: Counters, path, lines) -> np.ndarray:
    """Validate QUOTE rows in ``ev`` (bid px/qty, ask px2/qty2). Returns the bad mask."""
    bad = check_price(ev["px"], c, path, lines)
    bad |= check_price(ev["px2"], c, path, lines)
    bad |= check_size(ev["qty"], c, path, lines)
    bad |= check_size(ev["qty2"], c, path, lines)
    crossed = ~bad & (ev["px"] > ev["px2"])
    c.add_mask("crossed_book", crossed, path, lines)
    locked = ~bad & (ev["px"] == ev["px2"])
    c.add_mask("locked_book", locked, path, lines)
    return bad | crossed


def check_timestamps(ts: np.ndarray, c: Counters, path, lines) -> np.ndarray:
    bad = ts <= 0
    c.add_mask("bad_timestamp", bad, path, lines)
    return bad
