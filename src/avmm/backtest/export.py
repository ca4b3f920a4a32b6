"""Backtest records to files: every fill (streamed as the run goes) and the equity curve, as
Parquet or CSV by the file's suffix.

* ``FillWriter(path, fmt)`` -- ``write(fills)`` with each batch the loop completes (``FILL_DTYPE``),
  ``close()`` at the end: memory is one buffer of ``FLUSH_ROWS`` rows, whatever the number of fills;
* ``write_samples(path, samples, fmt)`` -- the equity / inventory samples (``SAMPLE_DTYPE``);
* ``export_format(path, flag)`` -- ``"parquet"`` or ``"csv"`` from the suffix (one line otherwise).

The callers write to a temporary path (``avmm.outputs.atomic_output``): the format comes from the
final name, not from the temporary one.

Columns: fills ``ts_ns, oid, side (+1 buy / -1 sell), maker (1 / 0), px, qty, fee, mid (at the
fill), pos (after it), mid_<h>s`` (the mid ``h`` seconds later, for each markout horizon; empty /
NaN when the data ended first); samples ``ts_ns, mid, bid, ask, our_bid, our_ask, pos, pnl, fees``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from avmm.backtest.state import FILL_DTYPE, MARKOUT_S, SAMPLE_DTYPE
from avmm.errors import UserError

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
FLUSH_ROWS = 1 << 16

FILL_COLUMNS = ("ts", "oid", "side", "maker", "px", "qty", "fee", "mid", "pos")
MARKOUT_NAMES = tuple(f"mid_{h:g}s" for h in MARKOUT_S)


def export_format(path: Path | str, flag: str) -> str:
    """``"parquet"`` or ``"csv"`` for ``path``'s suffix (``.parquet`` / ``.pq`` / ``.csv``)."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UserError(f"{flag} {path}: expected a .parquet or .csv file")
    return fmt


def _name(c: str) -> str:
    return "ts_ns" if c == "ts" else c


def fills_table(f: np.ndarray) -> pa.Table:
    """A batch of ``FILL_DTYPE`` fills as an Arrow table (the markouts one column per horizon)."""
    arrays = [pa.array(np.ascontiguousarray(f[c])) for c in FILL_COLUMNS]
    mo = np.asarray(f["mo"]).reshape(len(f), len(MARKOUT_S))
    arrays += [pa.array(np.ascontiguousarray(mo[:, j])) for j in range(len(MARKOUT_S))]
    return pa.Table.from_arrays(arrays, names=[_name(c) for c in FILL_COLUMNS] + list(MARKOUT_NAMES))


def samples_table(s: np.ndarray) -> pa.Table:
    names = SAMPLE_DTYPE.names or ()
    return pa.Table.from_arrays([pa.array(np.ascontiguousarray(s[c])) for c in names], names=[_name(c) for c in names])


class _TableWriter:
    """Arrow tables of one schema appended to a Parquet or CSV file."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema) -> None:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self.w: Any = pq.ParquetWriter(str(path), schema)
        else:
            import pyarrow.csv as pacsv

            self.w = pacsv.CSVWriter(str(path), schema)

    def write(self, t: pa.Table) -> None:
        self.w.write_table(t)

    def close(self) -> None:
        self.w.close()


class FillWriter:
    """Every fill to ``path`` as the run goes (``write`` copies the batch: the loop reuses it)."""

    def __init__(self, path: Path | str, fmt: str) -> None:
        self.path = Path(path)
        self.rows = 0
        self.buf: list[np.ndarray] = []
        self.nbuf = 0
        self.w = _TableWriter(self.path, fmt, fills_table(np.zeros(0, dtype=FILL_DTYPE)).schema)

    def write(self, fills: np.ndarray) -> None:
        if fills.size == 0:
            return
        self.buf.append(fills.copy())
        self.nbuf += fills.size
        self.rows += fills.size
        if self.nbuf >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.w.write(fills_table(np.concatenate(self.buf)))
            self.buf, self.nbuf = [], 0

    def close(self) -> None:
        self.flush()
        self.w.close()


def write_samples(path: Path | str, samples: np.ndarray, fmt: str) -> int:
    """The equity / inventory samples to ``path``; returns the row count."""
    t = samples_table(samples)
    w = _TableWriter(Path(path), fmt, t.schema)
    try:
        w.write(t)
    finally:
        w.close()
    return t.num_rows
