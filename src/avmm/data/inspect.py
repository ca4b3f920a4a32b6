"""Statistics of an event store (``avmm data inspect``), computed in one streaming pass.

``inspect_store(path, gap_s=1.0) -> dict`` with the keys ``quotes``, ``trades``, ``depth_updates``,
``snapshots`` (snapshot rows), ``clears``, ``events``, ``start_ns``, ``end_ns``, ``duration_s``,
``tick_size`` / ``lot_size`` (inferred from the data) and ``meta_tick_size`` / ``meta_lot_size``,
``spread`` (quote spread statistics in price and ticks), ``crossed_quotes``, ``locked_quotes``,
``time_gaps`` (gaps between consecutive events longer than ``gap_s``: count, largest),
``seq_gaps`` (rows flagged ``F_SEQ_GAP``), ``reordered`` (rows flagged ``F_REORDERED``),
``exch_clock`` (rows with an exchange stamp; the local - exchange offset: quantiles, extremes, rows
further apart than the backtest uses), ``unsorted_rows`` / ``first_unsorted_row`` (rows stamped
before the previous row: the backtest refuses such a store), ``warnings`` (one line each: rows out
of order, a clock offset above ``clock_offset_s``), ``counters`` (the conversion counters stored in
the metadata) and ``meta``.
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any

import numpy as np

from avmm.data.store import EventColumns, GridInference, StoreReader
from avmm.events import CLEAR, DEPTH, F_EXCH_TS, F_REORDERED, F_SEQ_GAP, QUOTE, SNAPSHOT, TRADE

SAMPLE_CAP = 1_000_000
CLOCK_OFFSET_S = 1.0  # |median local - exchange| above this is flagged
# rows whose exchange stamp is further than this from the local one are taken at their local time by
# the backtest (``avmm.backtest.loop.MAX_CLOCK_SKEW_NS``; the data layer does not import the backtest)
MAX_CLOCK_SKEW_NS = 600 * 1_000_000_000


class _Spreads:
    """Quote spreads: count, sum, extremes, a bounded sample for the quantiles; crossed / locked."""

    def __init__(self) -> None:
        self.n = 0
        self.sum = 0.0
        self.min, self.max = np.inf, -np.inf
        self.sample: list[np.ndarray] = []
        self.taken = 0
        self.crossed = self.locked = 0

    def add(self, kind: np.ndarray, px: np.ndarray, px2: np.ndarray) -> None:
        q = kind == QUOTE
        if not q.any():
            return
        sp = px2[q] - px[q]
        self.crossed += int(np.count_nonzero(sp < 0))
        self.locked += int(np.count_nonzero(sp == 0))
        self.n += len(sp)
        self.sum += float(sp.sum())
        self.min = min(self.min, float(sp.min()))
        self.max = max(self.max, float(sp.max()))
        if self.taken < SAMPLE_CAP:
            take = sp[: SAMPLE_CAP - self.taken]
            self.sample.append(take)
            self.taken += len(take)

    def result(self, tick: float | None) -> dict[str, Any] | None:
        if not self.n:
            return None
        s = np.concatenate(self.sample)
        t = tick or 1.0
        return {
            "count": self.n,
            "mean": self.sum / self.n,
            "min": self.min,
            "median": float(np.median(s)),
            "p99": float(np.quantile(s, 0.99)),
            "max": self.max,
            "mean_ticks": self.sum / self.n / t,
            "median_ticks": float(np.median(s)) / t,
        }


class _Clock:
    """local_ts - exch_ts over the rows with an exchange stamp: extremes (every row), quantiles (a
    bounded sample), rows further apart than the backtest uses."""

    def __init__(self) -> None:
        self.rows = 0
        self.min: int | None = None
        self.max: int | None = None
        self.far = 0
        self.sample: list[np.ndarray] = []
        self.taken = 0

    def add(self, flags: np.ndarray, lt: np.ndarray, et: np.ndarray) -> None:
        ex = (flags & F_EXCH_TS) != 0
        k = int(np.count_nonzero(ex))
        if not k:
            return
        self.rows += k
        off = lt[ex] - et[ex]
        lo, hi = int(off.min()), int(off.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        self.far += int(np.count_nonzero((off > MAX_CLOCK_SKEW_NS) | (off < -MAX_CLOCK_SKEW_NS)))
        if self.taken < SAMPLE_CAP:
            part = off[: SAMPLE_CAP - self.taken]
            self.sample.append(part)
            self.taken += len(part)

    def result(self, threshold_s: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "local_minus_exch_ms": None,
            "threshold_s": threshold_s,
            "rows_beyond_backtest_skew": self.far,
        }
        if self.sample and self.min is not None and self.max is not None:
            lat = np.concatenate(self.sample) / 1e6
            out["local_minus_exch_ms"] = {
                "min": self.min / 1e6,
                "p1": float(np.quantile(lat, 0.01)),
                "median": float(np.median(lat)),
                "p99": float(np.quantile(lat, 0.99)),
                "max": self.max / 1e6,
            }
        return out


def inspect_store(
    path: Path | str, gap_s: float = 1.0, chunk_events: int = 1 << 20, clock_offset_s: float = CLOCK_OFFSET_S
) -> dict[str, Any]:
    """The statistics of the store ``path`` (see the module docstring), in one pass."""
    reader = StoreReader(path, chunk_events=chunk_events, check_order=False)
    meta = reader.meta
    counts = np.zeros(256, dtype=np.int64)
    start: int | None = None
    end: int | None = None
    last_ts = None
    grid = GridInference()
    spreads = _Spreads()
    gap_ns = int(min(gap_s * 1e9, 2.0**62))  # (any --gap-s: 1e308 s is just no gap at all)
    n_gaps = 0
    top_gaps: list[tuple[int, int]] = []  # min-heap of (gap_ns, at_ns)
    seq_gaps = reordered = 0
    clock = _Clock()
    unsorted = 0
    first_unsorted: int | None = None
    row = 0
    for arrays in reader:
        cols = EventColumns(*arrays)
        n = len(cols.local_ts)
        if n == 0:
            continue
        kind = cols.kind
        counts += np.bincount(kind, minlength=256)
        lt = cols.local_ts
        if start is None:
            start = int(lt[0])
        end = int(lt[-1])
        # gaps
        d = np.diff(lt, prepend=lt[0] if last_ts is None else last_ts)
        back = np.count_nonzero(d < 0)
        if back:
            unsorted += int(back)
            if first_unsorted is None:
                first_unsorted = row + int(np.flatnonzero(d < 0)[0])
        row += n
        big = np.flatnonzero(d > gap_ns)
        n_gaps += len(big)
        for i in big[np.argsort(d[big])[-5:]]:
            item = (int(d[i]), int(lt[i] - d[i]))
            if len(top_gaps) < 5:
                heapq.heappush(top_gaps, item)
            else:
                heapq.heappushpop(top_gaps, item)
        last_ts = int(lt[-1])
        # grids
        grid.add(kind, cols.px, cols.qty, cols.px2, cols.qty2)
        # spreads
        spreads.add(kind, cols.px, cols.px2)
        fl = cols.flags
        seq_gaps += int(np.count_nonzero(fl & F_SEQ_GAP))
        reordered += int(np.count_nonzero(fl & F_REORDERED))
        clock.add(fl, lt, cols.exch_ts)

    tick = grid.tick()
    out: dict = {
        "file": str(path),
        "symbol": meta.get("symbol"),
        "source": meta.get("source"),
        "market": meta.get("market"),
        "events": int(counts.sum()),
        "quotes": int(counts[QUOTE]),
        "trades": int(counts[TRADE]),
        "depth_updates": int(counts[DEPTH]),
        "snapshots": int(counts[SNAPSHOT]),
        "clears": int(counts[CLEAR]),
        "start_ns": start,
        "end_ns": end,
        "duration_s": (end - start) / 1e9 if start is not None and end is not None else 0.0,
        "tick_size": tick,
        "lot_size": grid.lot(),
        "meta_tick_size": meta.get("tick_size"),
        "meta_lot_size": meta.get("lot_size"),
        "crossed_quotes": spreads.crossed,
        "locked_quotes": spreads.locked,
        "unsorted_rows": unsorted,
        "first_unsorted_row": first_unsorted,
        "time_gaps": {
            "threshold_s": gap_s,
            "count": n_gaps,
            "largest": [{"gap_s": g / 1e9, "after_ns": a} for g, a in sorted(top_gaps, reverse=True)],
        },
        "seq_gaps": seq_gaps,
        "reordered": reordered,
        "counters": meta.get("counters", {}),
        "meta": meta,
    }
    out["spread"] = spreads.result(tick)
    out["exch_clock"] = clock.result(clock_offset_s)
    out["warnings"] = _warnings(out)
    return out


def _warnings(r: dict[str, Any]) -> list[str]:
    """One line per problem a backtest of this store would meet."""
    w = []
    if r["unsorted_rows"]:
        w.append(
            f"{r['unsorted_rows']:,} rows stamped before the previous row (the first at row index "
            f"{r['first_unsorted_row']:,}): not sorted by local_ts, the backtest refuses this store"
        )
    ec = r["exch_clock"]
    q = ec["local_minus_exch_ms"]
    if q is not None and abs(q["median"]) > ec["threshold_s"] * 1e3:
        w.append(
            f"local - exchange clock offset: median {q['median'] / 1e3:,.3f} s (over {ec['threshold_s']:g} s; "
            f"min {q['min'] / 1e3:,.3f} s, max {q['max'] / 1e3:,.3f} s): a local clock or time zone off?"
        )
    if ec["rows_beyond_backtest_skew"]:
        w.append(
            f"{ec['rows_beyond_backtest_skew']:,} rows with exchange and local times more than "
            f"{MAX_CLOCK_SKEW_NS // 1_000_000_000} s apart: the backtest takes them at their local time"
        )
    return w


def format_report(r: dict[str, Any]) -> list[str]:
    """Human-readable lines for ``inspect_store``'s result."""
    import datetime as dt

    def ts(ns: int | None) -> str:
        if ns is None:
            return "-"
        try:
            return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
        except (OverflowError, OSError, ValueError):
            return f"{ns} ns"

    lines = [
        f"{r['file']}  symbol {r['symbol']}  source {r['source']}  market {r.get('market') or 'unknown'}",
        f"  span      {ts(r['start_ns'])} -> {ts(r['end_ns'])}  ({r['duration_s']:,.3f} s)",
        f"  events    {r['events']:,}: quotes {r['quotes']:,}, trades {r['trades']:,}, depth updates "
        f"{r['depth_updates']:,}, snapshot rows {r['snapshots']:,}, clears {r['clears']:,}",
        f"  grid      tick {r['tick_size']}  lot {r['lot_size']}  (inferred; metadata: tick "
        f"{r['meta_tick_size']}, lot {r['meta_lot_size']})",
    ]
    sp = r.get("spread")
    if sp:
        lines.append(
            f"  spread    mean {sp['mean']:.6g} ({sp['mean_ticks']:.2f} ticks)  median {sp['median']:.6g}"
            f"  p99 {sp['p99']:.6g}  min {sp['min']:.6g}  max {sp['max']:.6g}"
        )
    lines.append(f"  book      crossed quotes {r['crossed_quotes']:,}  locked quotes {r['locked_quotes']:,}")
    tg = r["time_gaps"]
    big = ", ".join(f"{g['gap_s']:.3f} s at {ts(g['after_ns'])}" for g in tg["largest"][:3])
    lines.append(f"  gaps      {tg['count']:,} gaps > {tg['threshold_s']:g} s" + (f"; largest: {big}" if big else ""))
    lines.append(f"  sequence  gaps {r['seq_gaps']:,}  reordered rows {r['reordered']:,}")
    ec = r["exch_clock"]
    if ec["rows"]:
        q = ec["local_minus_exch_ms"]
        lines.append(
            f"  clocks    {ec['rows']:,} rows with exchange time; local - exchange: min {q['min']:.3f} ms, "
            f"p1 {q['p1']:.3f} ms, median {q['median']:.3f} ms, p99 {q['p99']:.3f} ms, max {q['max']:.3f} ms"
        )
    lines.append(
        f"  order     {r['unsorted_rows']:,} rows out of local_ts order"
        + (f" (the first at row index {r['first_unsorted_row']:,})" if r["unsorted_rows"] else "")
    )
    if r["counters"]:
        lines.append("  convert   " + ", ".join(f"{k} {_count(v)}" for k, v in sorted(r["counters"].items())))
    lines += [f"  WARNING   {w}" for w in r.get("warnings", [])]
    return lines


def _count(v: object) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)
