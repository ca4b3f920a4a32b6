"""The stores of one calibration: checked, put in time order, cut to the window, read in chunks.

Calibration sits on the backtester's layer and cannot import it, so it plans its stores from the
data layer directly, with the backtester's rules: stores given out of order are read in time order
(with a note), stores that overlap in time stop with one line naming both, stores outside the
window ``[start_ns, end_ns)`` are dropped (none left: one line naming the window and the data's
span). Reading goes through ``avmm.data.store.StoreReader``: one row group at a time, chunks of at
most ``chunk_events`` rows, nulls and ``local_ts`` order checked -- memory is bounded by the chunk,
not by the data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avmm.data.store import StoreReader, read_meta
from avmm.errors import UserError

COLUMNS = ("local_ts", "kind", "px", "qty", "px2", "qty2", "side")


def fmt_ns(ns: int) -> str:
    """``ns`` since the epoch as ISO-8601 UTC to the millisecond (the integer when out of range)."""
    try:
        d = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ns} ns"
    return f"{d:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000 // 1_000_000:03d}Z"


@dataclass
class Stores:
    """The stores to read, in time order, and what their metadata says."""

    paths: list[Path]
    metas: list[dict[str, Any]]
    start_ns: int  # the first time read: the window's start or the first store's
    end_ns: int  # the last time read: the window's end or the last store's (inclusive)
    window: tuple[int | None, int | None]
    notes: list[str] = field(default_factory=list)

    @property
    def tick(self) -> float:
        return float(self.metas[0]["tick_size"])

    @property
    def lot(self) -> float | None:
        lot = self.metas[0].get("lot_size")
        return float(lot) if lot else None

    @property
    def symbol(self) -> str | None:
        s = self.metas[0].get("symbol")
        return str(s) if s else None

    def chunks(self, chunk_events: int = 1 << 20) -> Iterator[list[np.ndarray]]:
        """The ``COLUMNS`` of every row in the window, store after store, in chunks."""
        last: int | None = None
        lo, hi = self.window
        for pth in self.paths:
            reader = StoreReader(pth, COLUMNS, chunk_events, start_ns=lo, end_ns=hi, after_ns=last, memory_map=False)
            yield from reader
            last = reader.last_ts if reader.last_ts is not None else last


def _span(m: dict[str, Any]) -> tuple[int, int] | None:
    if m.get("rows") and m.get("start_ns") is not None and m.get("end_ns") is not None:
        return int(m["start_ns"]), int(m["end_ns"])
    return None


def plan(paths: list[Path], start_ns: int | None = None, end_ns: int | None = None) -> Stores:
    """Check the stores and put them in time order (see the module docstring).

    Raises
    ------
    UserError
        No store, a store missing or not an event store, two stores that overlap in time, stores
        of different tick sizes, an empty window or a window without data.
    """
    if not paths:
        raise UserError("no store given: avmm calibrate STORE... (event stores from 'avmm data convert')")
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise UserError(f"the window [{fmt_ns(start_ns)}, {fmt_ns(end_ns)}) is empty: its start is not before its end")
    given = [Path(p) for p in paths]
    for p in given:
        if not p.exists():
            raise UserError(f"{p}: no such file")
    metas = [read_meta(p) for p in given]
    spans = [_span(m) for m in metas]
    order = sorted((i for i in range(len(given)) if spans[i] is not None), key=lambda i: spans[i][0])  # type: ignore[index]
    notes = []
    if order != sorted(order):
        notes.append("stores given out of time order; read in time order: " + ", ".join(str(given[i]) for i in order))
    for a, b in zip(order, order[1:], strict=False):
        sa, sb = spans[a], spans[b]
        assert sa is not None and sb is not None
        if sb[0] < sa[1]:
            raise UserError(
                f"{given[a]} and {given[b]} overlap in time ({fmt_ns(sa[0])} to {fmt_ns(sa[1])} and "
                f"{fmt_ns(sb[0])} to {fmt_ns(sb[1])}); give stores that follow one another"
            )
    inside = [i for i in order if _overlaps(spans[i], start_ns, end_ns)]
    if not inside:
        raise UserError(_no_data(spans, start_ns, end_ns))
    ticks = {float(metas[i]["tick_size"]) for i in inside if metas[i].get("tick_size")}
    if not ticks:
        raise UserError(f"{given[inside[0]]}: no tick_size in the store's metadata; convert it again with avmm")
    if len(ticks) > 1:
        raise UserError(
            "the stores have different tick sizes ("
            + ", ".join(f"{given[i]}: {metas[i].get('tick_size')}" for i in inside)
            + "); calibrate one market at a time"
        )
    first = spans[inside[0]]
    last = spans[inside[-1]]
    assert first is not None and last is not None
    lo = first[0] if start_ns is None else max(first[0], start_ns)
    hi = last[1] if end_ns is None else min(last[1], end_ns - 1)
    return Stores([given[i] for i in inside], [metas[i] for i in inside], lo, hi, (start_ns, end_ns), notes)


def _overlaps(sp: tuple[int, int] | None, start_ns: int | None, end_ns: int | None) -> bool:
    return sp is not None and (start_ns is None or sp[1] >= start_ns) and (end_ns is None or sp[0] < end_ns)


def _no_data(spans: list[tuple[int, int] | None], start_ns: int | None, end_ns: int | None) -> str:
    known = [s for s in spans if s is not None]
    lo = "-inf" if start_ns is None else fmt_ns(start_ns)
    hi = "+inf" if end_ns is None else fmt_ns(end_ns)
    if not known:
        return f"no data in the window [{lo}, {hi}): the stores are empty"
    have = f"{fmt_ns(min(s[0] for s in known))} to {fmt_ns(max(s[1] for s in known))}"
    return f"no data in the window [{lo}, {hi}): the data spans {have}"
