"""Where avmm and hftbacktest differ on the bench-peer work: a diagnostic on a short stream.

    python benchmarks/peer/compare.py --events 100000 [--set quoting.touch="improve" ...]

Runs both tools on the same stream (hftbacktest with ``hbt_mm.py --dump``, avmm through the library
with ``avmm_peer.toml``) and prints:

1. the counts of each (fills per side, orders, cancels, post-only rejects);
2. the quote rule: at every hftbacktest grid step, avmm's core (``Engine.targets``) given the same best
   prices, position and sigma, against hftbacktest's target prices -- equal when the formulas,
   the rounding and the touch rule agree;
3. the variance: avmm's estimator fed the stream as its backtest feeds it (quotes, and the timer on
   the 100 ms grid) against hftbacktest's S / T at the same grid times;
4. the fills: matched by exchange time, side and price; how many only one tool has, and the first
   few of each.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_peer  # noqa: E402
import stream  # noqa: E402


def quote_check(cfg: Any, d: dict, tick: float) -> dict:
    """avmm's target prices on hftbacktest's inputs at each grid step, against hftbacktest's."""
    from avmm.core.engine import Engine

    eng = Engine(cfg)
    p, s = eng.params, eng.state
    s["has_book"] = 1
    s["t0_ns"] = 0
    n = len(d["ts"])
    diff_b = diff_a = 0
    first: list[dict] = []
    for i in range(n):
        var = d["var_ticks2"][i]
        if not np.isfinite(var) or var <= 0:
            continue
        bb, ba = d["best_bid_t"][i], d["best_ask_t"][i]
        p["sigma"] = np.sqrt(var) * tick
        s["bid"], s["ask"] = bb / round(1 / tick), ba / round(1 / tick)
        s["mid"] = 0.5 * (s["bid"][0] + s["ask"][0])
        s["micro"] = s["mid"]
        s["pos"] = d["pos"][i]
        eng.targets(int(d["ts"][i]))
        lad = eng.ladder()
        ab = round(lad["bids"][0][0] / tick) if lad["bids"] else np.nan
        aa = round(lad["asks"][0][0] / tick) if lad["asks"] else np.nan
        hb, ha = d["bid_t"][i], d["ask_t"][i]
        db = not (ab == hb or (np.isnan(ab) and np.isnan(hb)))
        da = not (aa == ha or (np.isnan(aa) and np.isnan(ha)))
        diff_b += db
        diff_a += da
        if (db or da) and len(first) < 5:
            first.append(
                {"ts": int(d["ts"][i]), "best": (bb, ba), "pos": d["pos"][i], "hbt": (hb, ha), "avmm": (ab, aa)}
            )
    return {"grid_steps": n, "bid_targets_differ": diff_b, "ask_targets_differ": diff_a, "first": first}


def sigma_check(cfg: Any, store: Path, d: dict, tick: float, timer_ns: int) -> dict:
    """avmm's variance (price^2/s) fed the store as the backtest feeds it, at hftbacktest's grid times."""
    from avmm.core.engine import Engine
    from avmm.data.store import read_events
    from avmm.events import QUOTE

    eng = Engine(cfg)
    ev = read_events(store)
    grid = d["ts"].astype(np.int64)
    out = np.full(len(grid), np.nan)
    gi = 0
    next_timer = (int(ev["local_ts"][0]) // timer_ns + 1) * timer_ns
    for kind, ts, px, qty, px2, qty2 in ev[["kind", "local_ts", "px", "qty", "px2", "qty2"]].tolist():
        while next_timer <= ts:
            eng.on_timer(next_timer)
            while gi < len(grid) and grid[gi] <= next_timer:
                if grid[gi] == next_timer:
                    out[gi] = float(eng.state["vol_var"][0])
                gi += 1
            next_timer += timer_ns
        if kind == QUOTE:
            eng.on_quote(ts, px, qty, px2, qty2)
    h = d["var_ticks2"] * tick * tick
    ok = np.isfinite(out) & np.isfinite(h) & (h > 0)
    rel = np.abs(out[ok] / h[ok] - 1.0)
    return {
        "compared": int(ok.sum()),
        "median_rel_diff": float(np.median(rel)) if rel.size else None,
        "p99_rel_diff": float(np.quantile(rel, 0.99)) if rel.size else None,
        "mean_var_avmm": float(out[ok].mean()) if rel.size else None,
        "mean_var_hbt": float(h[ok].mean()) if rel.size else None,
    }


def fill_kinds(ev: np.ndarray, ts: np.ndarray, side: np.ndarray, px_t: np.ndarray, tick: float) -> dict:
    """Fills by what triggered them (the stream's event at the fill's exchange time): a quote that
    crossed the order, a trade through its price, a trade at its price (the queue ahead exhausted)."""
    from avmm.events import TRADE

    idx = np.searchsorted(ev["exch_ts"], ts)
    idx = np.minimum(idx, len(ev) - 1)
    hit = ev["exch_ts"][idx] == ts
    k = ev["kind"][idx]
    tpx = np.rint(ev["px"][idx] / tick)
    trade = hit & (k == TRADE)
    at = trade & (tpx == px_t)
    return {
        "by_quote": int((hit & (k != TRADE)).sum()),
        "trade_through": int((trade & ~at).sum()),
        "trade_at_price": int(at.sum()),
        "unmatched": int((~hit).sum()),
    }


def fill_check(res_fills: np.ndarray, d: dict, tick: float, ev: np.ndarray) -> dict:
    a = {(int(t), int(sd), round(px / tick)) for t, sd, px in res_fills[["ts", "side", "px"]].tolist()}
    h = {
        (int(t), int(sd), int(px)) for t, sd, px in zip(d["fill_exch_ts"], d["fill_side"], d["fill_px_t"], strict=True)
    }
    only_a, only_h = sorted(a - h), sorted(h - a)
    lot_order = float(np.max(res_fills["qty"])) if len(res_fills) else 0.0
    return {
        "kinds_avmm": fill_kinds(ev, res_fills["ts"], res_fills["side"], np.rint(res_fills["px"] / tick), tick),
        "kinds_hbt": fill_kinds(ev, d["fill_exch_ts"].astype(np.int64), d["fill_side"], d["fill_px_t"], tick),
        "avmm_partial_fills": int((res_fills["qty"] < lot_order - 1e-12).sum()),
        "avmm_fill_qty": float(res_fills["qty"].sum()),
        "avmm": len(a),
        "hftbacktest": len(h),
        "common": len(a & h),
        "only_avmm": len(only_a),
        "only_hftbacktest": len(only_h),
        "only_avmm_per_side": {"bid": sum(1 for x in only_a if x[1] > 0), "ask": sum(1 for x in only_a if x[1] < 0)},
        "only_hbt_per_side": {"bid": sum(1 for x in only_h if x[1] > 0), "ask": sum(1 for x in only_h if x[1] < 0)},
        "first_only_avmm": only_a[:5],
        "first_only_hbt": only_h[:5],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=stream.DEFAULT_DIR)
    ap.add_argument("--venv", type=Path, default=bench_peer.REPO / ".venv-peer")
    ap.add_argument("--config", type=Path, default=bench_peer.CONFIG)
    ap.add_argument("--set", action="append", default=[], help="avmm config override (repeatable)")
    args = ap.parse_args(argv)

    from avmm.backtest.runner import run_backtest
    from avmm.config import load_config

    py = bench_peer.ensure_venv(args.venv)
    p = stream.peer_params(args.events, args.seed)
    files = stream.ensure(p, args.dir)
    with tempfile.TemporaryDirectory() as t:
        dump = Path(t) / "hbt.npz"
        out = subprocess.run(
            [str(py), str(HERE / "hbt_mm.py"), str(files["hbt"]), "--dump", str(dump), "--warmup-rows", "0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        hbt = json.loads(out.splitlines()[-1])
        z = np.load(dump)
        d = {k: z[k] for k in z.files}
    cfg = load_config(args.config, args.set)
    res = run_backtest(files["store"], cfg)
    s = res.summary
    fs = res.fills
    print("counts        avmm / hftbacktest")
    print(f"  fills       {s['fills']:,} / {hbt['fills']:,}  ({s['fills'] / hbt['fills']:.3f}x)")
    print(
        f"  per side    bid {int((fs['side'] > 0).sum()):,} ask {int((fs['side'] < 0).sum()):,} / "
        f"bid {hbt['bid_fills']:,} ask {hbt['ask_fills']:,}"
    )
    print(f"  orders      {s['orders']:,} / {hbt['orders']:,}  ({s['orders'] / hbt['orders']:.3f}x)")
    print(f"  cancels     {s['cancels']:,} / {hbt['cancels']:,}")
    print(f"  rejects     {s['rejects_post_only']:,} / {hbt['rejects_post_only']:,} (post-only)")
    print(f"  gross / net {s['pnl_gross']:.2f} / {s['pnl_net']:.2f}  vs  {hbt['pnl_gross']:.2f} / {hbt['pnl_net']:.2f}")
    strat = res.config
    print("quote rule    ", json.dumps(quote_check(strat, d, p.tick), default=str))
    timer_ns = round(cfg.backtest.timer_s * 1e9)
    print("variance      ", json.dumps(sigma_check(strat, files["store"], d, p.tick, timer_ns)))
    from avmm.data.store import read_events

    ev = read_events(files["store"])
    print("fills         ", json.dumps(fill_check(fs, d, p.tick, ev)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
