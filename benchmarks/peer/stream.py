"""The comparison stream of ``make bench-peer`` (``../shared/peer/README.md``): one synthetic BTC-like L1
session written twice, as an avmm event store and as hftbacktest's input, describing the same logical
events.

    python benchmarks/peer/stream.py                      # 1,000,000 events, seed 1, into .bench-peer/
    python benchmarks/peer/stream.py --events 20000 --dir /tmp/peer   # the same market for 4 h / 50

The model (deterministic in ``seed``):

* ``events`` logical events over ``duration_s`` seconds, Poisson arrivals; each is a trade with
  probability ``trade_frac``, else an L1 quote update; the first event is always a quote, stamped at
  ``START_NS`` (a whole second): hftbacktest's ``elapse`` grid starts at the first event, avmm's
  ``refresh_mode = "grid"`` runs on multiples of ``refresh_s`` since the epoch, so they coincide;
* on a quote update the best bid moves by -3..+3 ticks (``STEP_PROBS``, P(0) = 0.5) and the spread is
  redrawn (1 tick 85 %, 2 ticks 8 %, 3 ticks 7 %: mean 1.22 ticks); both level sizes are redrawn,
  log-normal with median ``size_median`` (sigma of the log ``size_log_sigma``), on the lot grid;
* a trade hits the displayed bid or lifts the displayed ask (aggressor side 1/2 each), its size
  exponential with mean ``trade_mean`` on the lot grid (at least one lot);
* local time = exchange time + ``latency_ms``.

The avmm store holds one QUOTE row per quote update and one TRADE row per trade. hftbacktest's rows
(``event_dtype``, every row both an exchange and a local event) write a side whose price changed as a
depth row at the new price followed by size 0 at the old price, a side whose price did not change as
one row with the new size, and the side moving away first (the ask when the bid rises, else the bid),
so the book never crosses; a trade is one row.

Files are cached under ``--dir`` (default ``.bench-peer/`` in the repo root) in a folder named by a
hash of the parameters and the seed: a rerun with the same parameters reuses them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

STREAM_VERSION = 2
REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO / ".bench-peer"
START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z

# best-bid step per quote update, ticks -3..+3 (P(0) = 0.5)
STEP_TICKS = np.arange(-3, 4)
STEP_PROBS = np.array([0.015, 0.045, 0.19, 0.5, 0.19, 0.045, 0.015])
# spread, ticks 1..3 (mean 1.22)
SPREAD_TICKS = np.array([1, 2, 3])
SPREAD_PROBS = np.array([0.85, 0.08, 0.07])

# hftbacktest's event format (hftbacktest.types: event_dtype and the flags), so this module needs
# no hftbacktest
HBT_EVENT_DTYPE = np.dtype(
    [
        ("ev", "u8"),
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("order_id", "u8"),
        ("ival", "i8"),
        ("fval", "f8"),
    ],
    align=True,
)
HBT_DEPTH_EVENT = 1
HBT_TRADE_EVENT = 2
HBT_EXCH_EVENT = 1 << 31
HBT_LOCAL_EVENT = 1 << 30
HBT_BUY_EVENT = 1 << 29
HBT_SELL_EVENT = 1 << 28


@dataclass(frozen=True)
class StreamParams:
    events: int = 1_000_000
    seed: int = 1
    duration_s: float = 4 * 3600.0
    trade_frac: float = 0.3
    price0: float = 30_000.0
    tick: float = 0.1
    lot: float = 0.001
    size_median: float = 1.5
    size_log_sigma: float = 0.7
    trade_mean: float = 0.05
    latency_ms: float = 1.0

    def key(self) -> str:
        """The cache key: a hash of the parameters, the step / spread tables and the version."""
        doc = {
            "v": STREAM_VERSION,
            "p": asdict(self),
            "steps": STEP_PROBS.tolist(),
            "spreads": SPREAD_PROBS.tolist(),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def inv_tick(self) -> int:
        return round(1.0 / self.tick)

    def inv_lot(self) -> int:
        return round(1.0 / self.lot)


def peer_params(events: int = 1_000_000, seed: int = 1) -> StreamParams:
    """The peer README's stream with ``events`` logical events at its rate (1M over 4 h): fewer events
    make a shorter session of the same market."""
    return StreamParams(events=events, seed=seed, duration_s=StreamParams.duration_s * events / 1_000_000)


@dataclass
class Logical:
    """The logical events, one entry each (quote fields hold the quote displayed at a trade)."""

    exch_ts: np.ndarray  # int64 ns
    is_trade: np.ndarray  # bool
    bid_t: np.ndarray  # int64 ticks: the displayed best bid after this event
    ask_t: np.ndarray
    bid_lots: np.ndarray  # int64 lots: the displayed sizes after this event
    ask_lots: np.ndarray
    trade_side: np.ndarray  # int8: +1 buyer-initiated (lifts the ask), -1 seller (hits the bid), 0 quote
    trade_lots: np.ndarray  # int64 lots (0 for quotes)

    def __len__(self) -> int:
        return len(self.exch_ts)


def check_params(p: StreamParams) -> None:
    """``ValueError`` naming the first parameter out of range."""
    if p.events < 1:
        raise ValueError(f"events must be >= 1, got {p.events}")
    for name in ("duration_s", "price0", "tick", "lot", "size_median", "trade_mean", "latency_ms"):
        v = getattr(p, name)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be positive, got {v}")
    if not 0.0 <= p.trade_frac < 1.0:
        raise ValueError(f"trade_frac must be in [0, 1), got {p.trade_frac}")
    for name, unit in (("tick", p.inv_tick()), ("lot", p.inv_lot())):
        if abs(1.0 / getattr(p, name) - unit) > 1e-9 * unit:
            raise ValueError(f"{name} must be 1/N for an integer N, got {getattr(p, name)}")


def generate(p: StreamParams) -> Logical:
    """The logical events of the stream ``p`` (deterministic in ``p``)."""
    check_params(p)
    n = int(p.events)
    g_dt, g_kind, g_step, g_spr, g_bsz, g_asz, g_side, g_tsz = (
        np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(int(p.seed)).spawn(8)
    )
    rate = n / p.duration_s
    dt_ns = np.maximum(np.rint(g_dt.standard_exponential(n) / rate * 1e9).astype(np.int64), 1)
    exch = START_NS + np.cumsum(dt_ns) - dt_ns[0]  # the first event at START_NS: the grids of both tools align
    is_trade = g_kind.random(n) < p.trade_frac
    is_trade[0] = False
    quote = ~is_trade
    nq = int(quote.sum())
    steps = g_step.choice(STEP_TICKS, size=nq, p=STEP_PROBS)
    steps[0] = 0
    q_bid = round(p.price0 * p.inv_tick()) + np.cumsum(steps)
    q_ask = q_bid + g_spr.choice(SPREAD_TICKS, size=nq, p=SPREAD_PROBS)
    mu = math.log(p.size_median * p.inv_lot())
    q_bsz = np.maximum(np.rint(np.exp(mu + p.size_log_sigma * g_bsz.standard_normal(nq))), 1).astype(np.int64)
    q_asz = np.maximum(np.rint(np.exp(mu + p.size_log_sigma * g_asz.standard_normal(nq))), 1).astype(np.int64)
    # the quote displayed at each event: the last quote update at or before it
    qidx = np.cumsum(quote) - 1
    side = np.where(g_side.random(n) < 0.5, 1, -1).astype(np.int8)
    tlots = np.maximum(np.rint(g_tsz.standard_exponential(n) * p.trade_mean * p.inv_lot()), 1).astype(np.int64)
    return Logical(
        exch_ts=exch,
        is_trade=is_trade,
        bid_t=q_bid[qidx],
        ask_t=q_ask[qidx],
        bid_lots=q_bsz[qidx],
        ask_lots=q_asz[qidx],
        trade_side=np.where(is_trade, side, 0).astype(np.int8),
        trade_lots=np.where(is_trade, tlots, 0),
    )


def trade_ticks(lg: Logical) -> np.ndarray:
    """A trade's price in ticks: the ask for a buyer, the bid for a seller (the quote's bid elsewhere)."""
    return np.where(lg.trade_side > 0, lg.ask_t, lg.bid_t)


def avmm_events(lg: Logical, p: StreamParams) -> np.ndarray:
    """The avmm rows (``avmm.events.EVENT_DTYPE``): one QUOTE per quote update, one TRADE per trade."""
    from avmm.events import EVENT_DTYPE, F_EXCH_TS, QUOTE, TRADE

    n = len(lg)
    it, il = p.inv_tick(), p.inv_lot()
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["exch_ts"] = lg.exch_ts
    ev["local_ts"] = lg.exch_ts + round(p.latency_ms * 1e6)
    ev["seq"] = np.arange(1, n + 1)
    t = lg.is_trade
    ev["kind"] = np.where(t, TRADE, QUOTE)
    ev["side"] = lg.trade_side
    ev["flags"] = F_EXCH_TS
    ev["level"] = -1
    ev["px"] = np.where(t, trade_ticks(lg), lg.bid_t) / it
    ev["qty"] = np.where(t, lg.trade_lots, lg.bid_lots) / il
    ev["px2"] = np.where(t, 0.0, lg.ask_t / it)
    ev["qty2"] = np.where(t, 0.0, lg.ask_lots / il)
    return ev


def hbt_events(lg: Logical, p: StreamParams) -> np.ndarray:
    """hftbacktest's rows (``event_dtype``) of the same logical events, in order (see the module doc)."""
    n = len(lg)
    it, il = p.inv_tick(), p.inv_lot()
    prev_bid = np.concatenate(([-1], lg.bid_t[:-1]))
    prev_ask = np.concatenate(([-1], lg.ask_t[:-1]))
    q = ~lg.is_trade
    # per event, four slots: first side (new price, old price at 0), second side (new, old at 0)
    ask_first = lg.bid_t > prev_bid
    ask_first[0] = False
    bid_moved = (lg.bid_t != prev_bid) & (prev_bid >= 0)
    ask_moved = (lg.ask_t != prev_ask) & (prev_ask >= 0)
    flags = HBT_EXCH_EVENT | HBT_LOCAL_EVENT
    bid_ev = HBT_DEPTH_EVENT | flags | HBT_BUY_EVENT
    ask_ev = HBT_DEPTH_EVENT | flags | HBT_SELL_EVENT
    # per side: (ev, new px, new qty, moved, old px)
    bid_side = (bid_ev, lg.bid_t, lg.bid_lots, bid_moved, prev_bid)
    ask_side = (ask_ev, lg.ask_t, lg.ask_lots, ask_moved, prev_ask)
    ev = np.zeros((n, 4), dtype=np.uint64)
    px_t = np.zeros((n, 4), dtype=np.int64)
    lots = np.zeros((n, 4), dtype=np.int64)
    keep = np.zeros((n, 4), dtype=bool)
    for sel, order in ((q & ~ask_first, (bid_side, ask_side)), (q & ask_first, (ask_side, bid_side))):
        for c0, (e, new_px, new_lots, moved, old_px) in zip((0, 2), order, strict=True):
            ev[sel, c0] = e
            px_t[sel, c0] = new_px[sel]
            lots[sel, c0] = new_lots[sel]
            keep[sel, c0] = True
            ev[sel, c0 + 1] = e  # the old price, size 0: after the new one
            px_t[sel, c0 + 1] = old_px[sel]
            keep[sel, c0 + 1] = moved[sel]
    t = lg.is_trade
    ev[t, 0] = HBT_TRADE_EVENT | flags | np.where(lg.trade_side[t] > 0, HBT_BUY_EVENT, HBT_SELL_EVENT).astype(np.uint64)
    px_t[t, 0] = trade_ticks(lg)[t]
    lots[t, 0] = lg.trade_lots[t]
    keep[t, 0] = True
    m = keep.ravel()
    rows = np.zeros(int(m.sum()), dtype=HBT_EVENT_DTYPE)
    rows["ev"] = ev.ravel()[m]
    ts = np.repeat(lg.exch_ts, 4)[m]
    rows["exch_ts"] = ts
    rows["local_ts"] = ts + round(p.latency_ms * 1e6)
    rows["px"] = px_t.ravel()[m] / it
    rows["qty"] = lots.ravel()[m] / il
    return rows


def store_meta(p: StreamParams) -> dict:
    return {
        "symbol": "PEER",
        "source": "bench-peer",
        "tick_size": p.tick,
        "lot_size": p.lot,
        "stream_version": STREAM_VERSION,
        "stream_params": asdict(p),
    }


def ensure(p: StreamParams, root: Path = DEFAULT_DIR) -> dict[str, Path]:
    """The stream's files (``store``: the avmm store, ``hbt``: hftbacktest's .npz, ``meta``: a JSON
    summary), generated into ``root/<key>/`` unless already there."""
    d = root / f"stream-{p.key()}"
    files = {"store": d / "store.parquet", "hbt": d / "hbt.npz", "meta": d / "meta.json"}
    if all(f.exists() for f in files.values()):
        return files
    from avmm.data.store import write_events

    lg = generate(p)
    tmp = root / f".tmp-{p.key()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write_events(tmp / "store.parquet", [avmm_events(lg, p)], store_meta(p))
        rows = hbt_events(lg, p)
        np.savez(tmp / "hbt.npz", data=rows)
        meta = {**store_meta(p), **stats(lg, p), "hbt_rows": len(rows)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(d, ignore_errors=True)
        tmp.rename(d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files


def stats(lg: Logical, p: StreamParams) -> dict:
    """The stream's statistics (the figures the peer README describes)."""
    q = ~lg.is_trade
    bid = lg.bid_t[q]
    spread = (lg.ask_t - lg.bid_t)[q]
    steps = np.diff(bid)
    mid_ticks = 0.5 * (lg.bid_t + lg.ask_t)[q]
    span_s = (int(lg.exch_ts[-1]) - int(lg.exch_ts[0])) / 1e9
    dmid = np.diff(mid_ticks) * p.tick
    return {
        "events": len(lg),
        "quotes": int(q.sum()),
        "trades": int(lg.is_trade.sum()),
        "span_s": span_s,
        "p_step0": float((steps == 0).mean()) if steps.size else math.nan,
        "max_abs_step_ticks": int(np.abs(steps).max(initial=0)),
        "p_spread1": float((spread == 1).mean()),
        "mean_spread_ticks": float(spread.mean()),
        "sigma_per_sqrt_s": math.sqrt(float((dmid * dmid).sum()) / span_s) if span_s > 0 else math.nan,
        "median_level_size": float(np.median(lg.bid_lots[q])) * p.lot,
        "mean_trade_size": float(lg.trade_lots[lg.is_trade].mean()) * p.lot if lg.is_trade.any() else math.nan,
        "p_buy_aggressor": float((lg.trade_side[lg.is_trade] > 0).mean()) if lg.is_trade.any() else math.nan,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=StreamParams.events)
    ap.add_argument("--seed", type=int, default=StreamParams.seed)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="cache folder (default: .bench-peer/)")
    args = ap.parse_args(argv)
    p = peer_params(args.events, args.seed)
    files = ensure(p, args.dir)
    print(json.dumps({k: str(v) for k, v in files.items()}))
    print(files["meta"].read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
