"""Robust numeric columns and row checks.

``to_float`` / ``to_int`` turn string columns into numbers with a mask of the values that are not
numbers (one Arrow cast on the fast path, a per-row fallback only when the cast fails);
``check_price`` / ``check_size`` / ``check_quotes`` / ``check_timestamps`` return masks of bad
rows and count them by kind. Numbers at their limits never raise: an integer outside int64 (a
20-digit id) is not a number; ``scale_to_ns`` marks the times whose conversion to ns would overflow
int64 (instead of wrapping them into another century).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa

from avmm.data.issues import Counters

Column: TypeAlias = "pa.ChunkedArray | pa.Array"

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1


def _to_numeric(
    col: Column, arrow_type: pa.DataType, parse: Callable[[Any], Any], native: Callable[[pa.DataType], bool]
) -> tuple[np.ndarray, np.ndarray]:
    """Column -> (values of ``arrow_type``, non-numeric mask).

    A column of a ``native`` type is cast (nulls: 0, marked bad); a string column without nulls
    is cast in one go; else each value is ``parse``d, a ``TypeError`` / ``ValueError`` /
    ``OverflowError`` marking it bad (value 0).
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if native(col.type):
        bad = np.asarray(col.is_null(), dtype=bool)
        return col.cast(arrow_type).fill_null(parse(0)).to_numpy(zero_copy_only=False), bad
    try:
        if col.null_count == 0:
            return col.cast(arrow_type).to_numpy(zero_copy_only=False), np.zeros(len(col), bool)
    except pa.ArrowInvalid:
        pass
    out = np.zeros(len(col), dtype=arrow_type.to_pandas_dtype())
    bad = np.zeros(len(col), dtype=bool)
    for i, s in enumerate(col.to_pylist()):
        try:
            out[i] = parse(s)
        except (TypeError, ValueError, OverflowError):
            bad[i] = True
    return out, bad


def _is_number_type(t: pa.DataType) -> bool:
    return bool(pa.types.is_floating(t) or pa.types.is_integer(t))


def _is_integer_type(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t))


def _parse_int(s: Any) -> int:
    """``int(s)``, or a whole number written as a float (``"1.582e15"`` style), within int64 (else
    ``ValueError``)."""
    try:
        v = int(s)
    except (TypeError, ValueError):
        f = float(s)
        if np.isfinite(f) and abs(f) < 9.2e18:
            return int(f)
        raise ValueError(f"not an int64: {s!r}") from None
    if not I64_MIN <= v <= I64_MAX:
        raise ValueError(f"not an int64: {s!r}")
    return v


def to_float(col: Column) -> tuple[np.ndarray, np.ndarray]:
    """String column -> (float64 values, non-numeric mask). Fast path: one Arrow cast."""
    return _to_numeric(col, pa.float64(), float, _is_number_type)


def to_int(col: Column) -> tuple[np.ndarray, np.ndarray]:
    """String column -> (int64 values, non-numeric mask)."""
    return _to_numeric(col, pa.int64(), _parse_int, _is_integer_type)


def scale_to_ns(t: np.ndarray, ns_per_unit: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer times in some unit (``ns_per_unit`` ns each) -> (ns, overflow mask): a time whose ns
    value would not fit int64 (past the year 2262) is marked, and its ns value is 0 -- never a
    wrapped time."""
    over = np.abs(t) > I64_MAX // ns_per_unit
    if over.any():
        t = np.where(over, 0, t)
    return t * ns_per_unit, over


def check_price(px: np.ndarray, c: Counters, path: Path | str, lines: np.ndarray | None) -> np.ndarray:
    """Mask of bad prices (counted)."""
    nf = ~np.isfinite(px)
    npos = ~nf & (px <= 0)
    c.add_mask("non_finite_price", nf, path, lines)
    c.add_mask("non_positive_price", npos, path, lines)
    return nf | npos


def check_size(
    qty: np.ndarray, c: Counters, path: Path | str, lines: np.ndarray | None, allow_zero: bool = False
) -> np.ndarray:
    """Mask of bad sizes (counted): not finite, or not positive (negative when ``allow_zero``)."""
    nf = ~np.isfinite(qty)
    npos = ~nf & ((qty < 0) if allow_zero else (qty <= 0))
    c.add_mask("non_finite_size", nf, path, lines)
    c.add_mask("non_positive_size", npos, path, lines)
    return nf | npos


def check_quotes(
    ev: np.ndarray | Mapping[str, np.ndarray], c: Counters, path: Path | str, lines: np.ndarray | None
) -> np.ndarray:
    """Validate QUOTE rows in ``ev`` (bid px/qty, ask px2/qty2; an event array or a dict of those
    columns). Returns the bad mask."""
    bad = check_price(ev["px"], c, path, lines)
    bad |= check_price(ev["px2"], c, path, lines)
    bad |= check_size(ev["qty"], c, path, lines)
    bad |= check_size(ev["qty2"], c, path, lines)
    crossed = ~bad & (ev["px"] > ev["px2"])
    c.add_mask("crossed_book", crossed, path, lines)
    locked = ~bad & (ev["px"] == ev["px2"])
    c.add_mask("locked_book", locked, path, lines)
    return bad | crossed


def check_timestamps(ts: np.ndarray, c: Counters, path: Path | str, lines: np.ndarray | None) -> np.ndarray:
    """Mask of zero or negative timestamps (counted ``bad_timestamp``)."""
    bad = ts <= 0
    c.add_mask("bad_timestamp", bad, path, lines)
    return bad
