"""Summary figures from what the loop recorded: equity samples, the fill log, the loop's counters.

Definitions (PnL in quote currency for linear contracts, in base currency for inverse ones):

* ``pnl_net`` -- cash + position marked to the mid at the end, fees included; ``pnl_gross`` =
  ``pnl_net`` + fees (fees are negative for net rebates); ``unrealized`` = position x (mid - average
  entry); ``realized`` = ``pnl_net`` - ``unrealized``;
* ``return`` -- ``pnl_net`` / capital, capital = ``backtest.initial_cash`` or, when 0,
  ``risk.max_position`` x the first mid (the notional of a full position);
* ``sharpe`` / ``sortino`` -- from the net PnL sampled every ``equity_interval_s`` of exchange time:
  per-interval returns r = dPnL / capital, mean(r) / std(r) (Sortino: / sqrt(mean(min(r, 0)^2))),
  annualised by sqrt(365 days / interval);
* ``max_drawdown`` -- largest fall of the sampled net PnL from its running peak (peak starts at 0);
  ``return_over_max_dd`` = ``pnl_net`` / ``max_drawdown``;
* ``fill_ratio`` -- filled quantity / quantity sent in new orders and amends;
* ``spread_captured_bps`` -- volume-weighted side x (mid at fill - fill price) / fill price, in bp;
* ``markout_{h}`` -- volume-weighted side x (mid h seconds after the fill - fill price) / fill
  price, in bp (negative = adverse selection);
* inventory -- time-weighted mean and std of the position over the session, and max |position|;
* ``session_s`` -- from the first to the last event, without the gaps (pauses in the data longer
  than ``backtest.gap_s``: ``gaps`` of them, ``gaps_s`` in all).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from avmm.backtest.state import MARKOUT_S, NH
from avmm.jit import NJIT

SECONDS_PER_YEAR = 365.0 * 86400.0


@njit(**NJIT)
def _fill_sums(
    side: np.ndarray, px: np.ndarray, qty: np.ndarray, mid: np.ndarray, mo: np.ndarray, acc: np.ndarray
) -> None:
    """One pass over a batch of fills, in fill order, into the running sums ``acc``: [0] quantity,
    [1] spread captured relative to the price x quantity, [2] in price units x quantity, [3] fills of
    our bids, then per markout horizon the relative markout x quantity ([4:4+NH]) and the quantity
    with a markout ([4+NH:4+2NH])."""
    nh = mo.shape[1]
    for i in range(px.shape[0]):
        sd = float(side[i])
        p = px[i]
        q = qty[i]
        acc[0] += q
        acc[1] += sd * (mid[i] - p) / p * q
        acc[2] += sd * (mid[i] - p) * q
        if sd > 0:
            acc[3] += 1.0
        for j in range(nh):
            m = mo[i, j]
            if not math.isnan(m):
                acc[4 + j] += sd * (m - p) / p * q
                acc[4 + nh + j] += q


class FillStats:
    """Streaming aggregates over fill batches, plus the first ``keep`` fills for the report."""

    def __init__(self, keep: int = 200_000):
        self.keep = keep
        self.kept: list[np.ndarray] = []
        self.n_kept = 0
        self.n = 0
        self.acc = np.zeros(4 + 2 * NH)  # running sums (``_fill_sums``), in fill order

    def add(self, f: np.ndarray) -> None:
        if f.size == 0:
            return
        if self.n_kept < self.keep:
            part = f[: self.keep - self.n_kept].copy()
            self.kept.append(part)
            self.n_kept += part.size
        self.n += f.size
        _fill_sums(f["side"], f["px"], f["qty"], f["mid"], f["mo"], self.acc)

    @property
    def qty(self) -> float:
        return float(self.acc[0])

    @property
    def spread_num(self) -> float:
        return float(self.acc[1])

    @property
    def spread_quote(self) -> float:
        return float(self.acc[2])

    @property
    def n_bid(self) -> int:
        return int(self.acc[3])

    @property
    def n_ask(self) -> int:
        return self.n - self.n_bid

    def fills(self) -> np.ndarray:
        from avmm.backtest.state import FILL_DTYPE

        return np.concatenate(self.kept) if self.kept else np.zeros(0, dtype=FILL_DTYPE)

    def markouts_bps(self) -> np.ndarray:
        num, den = self.acc[4 : 4 + NH], self.acc[4 + NH :]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den * 1e4, np.nan)


def _f(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def drawdown(pnl: np.ndarray) -> float:
    if pnl.size == 0:
        return 0.0
    peak = np.maximum.accumulate(np.concatenate(([0.0], pnl)))
    return float((peak[1:] - pnl).max(initial=0.0))


def ratios(pnl: np.ndarray, capital: float, interval_s: float) -> tuple[float | None, float | None]:
    if pnl.size < 3 or not capital > 0:
        return None, None
    r = np.diff(np.concatenate(([0.0], pnl))) / capital
    ann = math.sqrt(SECONDS_PER_YEAR / interval_s)
    sd = r.std()
    sharpe = r.mean() / sd * ann if sd > 0 else None
    down = math.sqrt(float((np.minimum(r, 0.0) ** 2).mean()))
    sortino = r.mean() / down * ann if down > 0 else None
    return (_f(sharpe) if sharpe is not None else None), (_f(sortino) if sortino is not None else None)


@njit(**NJIT)
def _distances(
    bid: np.ndarray,
    ask: np.ndarray,
    our_bid: np.ndarray,
    our_ask: np.ndarray,
    tick: float,
    d: np.ndarray,
    sp: np.ndarray,
) -> tuple[int, int, int]:
    """One pass over the samples: our quotes' distances behind the touch in ticks into ``d`` (finite
    ones only), the market's spreads in ticks into ``sp``; returns (len of d, len of sp, samples with
    both sides quoted)."""
    nd = 0
    ns = 0
    both = 0
    for i in range(bid.shape[0]):
        b = bid[i]
        a = ask[i]
        if not (math.isfinite(b) and math.isfinite(a)):
            continue
        sp[ns] = (a - b) / tick
        ns += 1
        x = (b - our_bid[i]) / tick
        y = (our_ask[i] - a) / tick
        fx = math.isfinite(x)
        fy = math.isfinite(y)
        if fx:
            d[nd] = x
            nd += 1
        if fy:
            d[nd] = y
            nd += 1
        if fx and fy:
            both += 1
    return nd, ns, both


def quote_distance(samples: np.ndarray, tick: float) -> tuple[float | None, float | None, float]:
    """From the equity samples: the median distance of our best quotes from our side's best price,
    in ticks (both sides pooled; a side without a quote left out), the market's median spread in
    ticks, and the fraction of samples with both sides quoted."""
    if samples.size == 0 or tick <= 0:
        return None, None, 0.0
    n = samples.size
    d, sp = np.empty(2 * n), np.empty(n)
    nd, ns, both = _distances(samples["bid"], samples["ask"], samples["our_bid"], samples["our_ask"], tick, d, sp)
    if ns == 0:
        return None, None, 0.0
    dist = float(np.median(d[:nd])) if nd else None
    return dist, float(np.median(sp[:ns])), both / ns


def summarize(
    bs: np.record,
    samples: np.ndarray,
    fs: FillStats,
    *,
    tick: float,
    capital: float,
    interval_s: float,
    inverse: bool,
    csize: float,
    wall_s: float,
) -> dict:
    b = bs
    mid = float(b["mid"])
    pos = float(b["pos"])
    fees = float(b["fees"])
    if np.isfinite(mid):
        pnl_net = float(b["cash"] - pos * csize / mid) if inverse else float(b["cash"] + pos * mid * csize)
    else:
        pnl_net = float(b["cash"])
    if pos != 0.0 and np.isfinite(mid):
        unreal = (
            pos * csize * (float(b["avg_inv"]) - 1.0 / mid) if inverse else pos * (mid - float(b["avg_px"])) * csize
        )
    else:
        unreal = 0.0
    pnl = samples["pnl"] if samples.size else np.zeros(0)
    mdd = drawdown(pnl)
    sharpe, sortino = ratios(pnl, capital, interval_s)
    t_first, t_last = int(b["t_first"]), int(b["t_last"])
    gaps_ns = int(b["gap_total"])
    dur = max(t_last - t_first - gaps_ns, 0) if t_first >= 0 else 0
    tw_mean = float(b["tw_pos"]) / dur if dur > 0 else 0.0
    tw_var = float(b["tw_pos2"]) / dur - tw_mean * tw_mean if dur > 0 else 0.0
    mo = fs.markouts_bps()
    events = int(b["n_events"])
    placed = float(b["placed_qty"])
    dist, spread_ticks, both = quote_distance(samples, tick)
    out = {
        "events": events,
        "quotes": int(b["n_quotes"]),
        "trades": int(b["n_trades"]),
        "depth_rows": int(b["n_depth"]),
        "session_s": dur / 1e9,
        "gaps": int(b["n_gaps"]),
        "gaps_s": gaps_ns / 1e9,
        "wall_s": wall_s,
        "events_per_s": events / wall_s if wall_s > 0 else None,
        "currency": "base" if inverse else "quote",
        "pnl_net": pnl_net,
        "pnl_gross": pnl_net + fees,
        "fees": fees,
        "realized": pnl_net - unreal,
        "unrealized": unreal,
        "capital": capital,
        "return": pnl_net / capital if capital > 0 else None,
        "sharpe": sharpe,
        "sortino": sortino,
        "equity_interval_s": interval_s,
        "max_drawdown": mdd,
        "return_over_max_dd": pnl_net / mdd if mdd > 0 else None,
        "fills": int(b["n_fills"]),
        "maker_fills": int(b["n_maker_fills"]),
        "taker_fills": int(b["n_taker_fills"]),
        "fills_bid": fs.n_bid,
        "fills_ask": fs.n_ask,
        "fill_qty": float(b["fill_qty"]),
        "maker_volume": float(b["maker_volume"]),
        "taker_volume": float(b["taker_volume"]),
        "orders": int(b["n_orders"]),
        "cancels": int(b["n_cancels"]),
        "amends": int(b["n_amends"]),
        "rejects_post_only": int(b["n_rej_post_only"]),
        "rejects_risk": int(b["n_rej_risk"]),
        "rejects_other": int(b["n_rej_other"]),
        "fill_ratio": float(b["fill_qty"]) / placed if placed > 0 else None,
        "spread_captured_bps": fs.spread_num / fs.qty * 1e4 if fs.qty > 0 else None,
        "spread_captured": fs.spread_quote / fs.qty if fs.qty > 0 else None,
        "quote_distance_ticks": dist,
        "market_spread_ticks": spread_ticks,
        "quoted_both_fraction": both,
        "markout_1s": _f(mo[list(MARKOUT_S).index(1.0)]),
        "markout_10s": _f(mo[list(MARKOUT_S).index(10.0)]),
        "markout_60s": _f(mo[list(MARKOUT_S).index(60.0)]),
        "markout_curve_bps": {f"{h:g}": _f(v) for h, v in zip(MARKOUT_S, mo, strict=True)},
        "position": pos,
        "inventory_mean": tw_mean,
        "inventory_std": math.sqrt(tw_var) if tw_var > 0 else 0.0,
        "max_abs_position": float(b["max_abs_pos"]),
        "timer_calls": int(b["n_timer"]),
        "overflows": int(b["n_overflow"]),
        "bad_exch_ts": int(b["n_bad_exch_ts"]),
        "bad_depth_rows": int(b["n_bad_depth"]),
    }
    return out
