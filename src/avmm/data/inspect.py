"""Statistics of an event store (``avmm data inspect``), computed in one streaming pass.

``inspect_store(path, gap_s=1.0) -> dict`` with the keys ``quotes``, ``trades``, ``depth_updates``,
``snapshots`` (snapshot rows), ``clears``, ``events``, ``start_ns``, ``end_ns``, ``duration_s``,
``tick_size`` / ``lot_size`` (inferred from the data) and ``meta_tick_size`` / ``meta_lot_size``,
``spread`` (quote spread statistics in price and ticks), ``crossed_quotes``, ``locked_quotes``,
``time_gaps`` (gaps between consecutive events longer than ``gap_s``: count, largest),
``seq_gaps`` (rows flagged ``F_SEQ_GAP``), ``reordered`` (rows flagged ``F_REORDERED``),
``exch_clock`` (rows with an exchange stamp, and the local - exchange latency quantiles),
``counters`` (the conversion counters stored in the metadata) and ``meta``.
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any

import numpy as np

from avmm.data.store import GridInference, iter_columns, read_meta
from avmm.events import CLEAR, DEPTH, F_EXCH_TS, F_REORDERED, F_SEQ_GAP, QUOTE, SNAPSHOT, TRADE

SAMPLE_CAP = 1_000_000


def inspect_store(path: Path | str, gap_s: float = 1.0, chunk_events: int = 1 << 20) -> dict[str, Any]:
    """The statistics of the store ``path`` (see the module docstring), in one pass."""
    meta = read_meta(path)
    counts = np.zeros(256, dtype=np.int64)
    start: int | None = None
    end: int | None = None
    last_ts = None
    grid = GridInference()
    sp_n = 0
    sp_sum = 0.0
    sp_min, sp_max = np.inf, -np.inf
    sp_sample: list[np.ndarray] = []
    sp_taken = 0
    crossed = locked = 0
    gap_ns = int(gap_s * 1e9)
    n_gaps = 0
    top_gaps: list[tuple[int, int]] = []  # min-heap of (gap_ns, at_ns)
    seq_gaps = reordered = 0
    exch_rows = 0
    lat_sample: list[np.ndarray] = []
    lat_taken = 0
    unsorted = 0
    for cols in iter_columns(path, chunk_events):
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
        unsorted += int(np.count_nonzero(d < 0))
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
        q = kind == QUOTE
        if q.any():
            bid, ask = cols.px[q], cols.px2[q]
            sp = ask - bid
            crossed += int(np.count_nonzero(sp < 0))
            locked += int(np.count_nonzero(sp == 0))
            sp_n += len(sp)
            sp_sum += float(sp.sum())
            sp_min = min(sp_min, float(sp.min()))
            sp_max = max(sp_max, float(sp.max()))
            if sp_taken < SAMPLE_CAP:
                take = sp[: SAMPLE_CAP - sp_taken]
                sp_sample.append(take)
                sp_taken += len(take)
        fl = cols.flags
        seq_gaps += int(np.count_nonzero(fl & F_SEQ_GAP))
        reordered += int(np.count_nonzero(fl & F_REORDERED))
        ex = (fl & F_EXCH_TS) != 0
        exch_rows += int(np.count_nonzero(ex))
        if lat_taken < SAMPLE_CAP and ex.any():
            lat = (lt[ex] - cols.exch_ts[ex])[: SAMPLE_CAP - lat_taken]
            lat_sample.append(lat)
            lat_taken += len(lat)

    tick = grid.tick()
    out: dict = {
        "file": str(path),
        "symbol": meta.get("symbol"),
        "source": meta.get("source"),
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
        "crossed_quotes": crossed,
        "locked_quotes": locked,
        "unsorted_rows": unsorted,
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
    if sp_n:
        s = np.concatenate(sp_sample)
        t = tick or 1.0
        out["spread"] = {
            "count": sp_n,
            "mean": sp_sum / sp_n,
            "min": sp_min,
            "median": float(np.median(s)),
            "p99": float(np.quantile(s, 0.99)),
            "max": sp_max,
            "mean_ticks": sp_sum / sp_n / t,
            "median_ticks": float(np.median(s)) / t,
        }
    else:
        out["spread"] = None
    if lat_sample:
        lat = np.concatenate(lat_sample) / 1e6
        out["exch_clock"] = {
            "rows": exch_rows,
            "local_minus_exch_ms": {
                "p1": float(np.quantile(lat, 0.01)),
                "median": float(np.median(lat)),
                "p99": float(np.quantile(lat, 0.99)),
            },
        }
    else:
        out["exch_clock"] = {"rows": 0, "local_minus_exch_ms": None}
    return out


def format_report(r: dict[str, Any]) -> list[str]:
    """Human-readable lines for ``inspect_store``'s result."""
    import datetime as dt

    def ts(ns: int | None) -> str:
        if ns is None:
            return "-"
        return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"

    lines = [
        f"{r['file']}  symbol {r['symbol']}  source {r['source']}",
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
            f"  clocks    {ec['rows']:,} rows with exchange time; local - exchange: p1 {q['p1']:.3f} ms, "
            f"median {q['median']:.3f} ms, p99 {q['p99']:.3f} ms"
        )
    if r["counters"]:
        lines.append("  convert   " + ", ".join(f"{k} {v:,}" for k, v in sorted(r["counters"].items())))
    return lines
