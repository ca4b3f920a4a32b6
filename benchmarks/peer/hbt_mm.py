"""hftbacktest's side of ``make bench-peer``: the A-S market maker of ``../shared/peer/README.md`` ("The
strategy") on hftbacktest 2.4.4, over the .npz that ``stream.py`` writes. Runs in its own virtualenv
(``.venv-peer``, made by ``bench_peer.py``); needs hftbacktest and numpy, not avmm.

    .venv-peer/bin/python benchmarks/peer/hbt_mm.py .bench-peer/stream-<key>/hbt.npz

Prints one JSON line: fills (per side), orders, cancels, post-only rejects, gross and net PnL, the
loop's wall seconds and logical events per second. A warm-up run on the first rows compiles the
strategy first: the timed run excludes the JIT. ``--dump FILE.npz`` also writes the quote of every
grid step (time, best bid / ask, targets, position, variance) and every fill, for a side-by-side
comparison (``compare.py``).

The strategy, in ticks: every ``step_ms`` (``elapse``) the variance S = w S + dmid^2, T = w T + dt,
w = exp(-dt / decay_s), var = S / T; q = position / order_qty; r = mid - q gamma var tau;
half = gamma var tau / 2 + ln(1 + gamma / kappa) / gamma; bid = min(floor(r - half), best bid),
ask = max(ceil(r + half), best ask); one GTX order of ``order_qty`` a side (none on the side that
would take |q| past ``q_max``), cancelled and replaced when its target price changes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import numpy as np
from numba import njit

# floor / ceil to the tick with the tolerance avmm's ladder uses (a target a hair below a tick counts
# as on it)
EPS_TICKS = 1e-7


@njit
def market_maker(hbt, step_ns, gamma, kappa, tau_s, decay_s, q_max, order_qty, rec, rec_ts, fills, fills_ts, counts):  # noqa: C901
    """The loop. ``rec`` (n, 7) float64: one row per grid step (its time in ``rec_ts``); ``fills`` (m, 3)
    float64: side, price (ticks), order id of each fill seen (its exchange time in ``fills_ts``);
    ``counts`` int64: see ``COUNTS``."""
    tick = hbt.depth(0).tick_size
    S = 0.0
    T = 0.0
    prev_mid = 0.0
    prev_ts = -1
    next_id = 1
    n_rec = 0
    c_log = math.log(1.0 + gamma / kappa) / gamma
    while hbt.elapse(step_ns) == 0:
        depth = hbt.depth(0)
        bb = depth.best_bid_tick
        ba = depth.best_ask_tick
        ts = hbt.current_timestamp
        if not (math.isfinite(depth.best_bid) and math.isfinite(depth.best_ask)) or ba <= bb:
            continue
        mid = 0.5 * (bb + ba)
        if prev_ts >= 0:
            dt = (ts - prev_ts) * 1e-9
            w = math.exp(-dt / decay_s)
            d = mid - prev_mid
            S = w * S + d * d
            T = w * T + dt
        prev_ts = ts
        prev_mid = mid
        if T <= 0.0:
            continue
        var = S / T
        pos = hbt.position(0)
        q = pos / order_qty
        r = mid - q * gamma * var * tau_s
        half = 0.5 * gamma * var * tau_s + c_log
        bid_t = min(math.floor(r - half + EPS_TICKS), bb)
        ask_t = max(math.ceil(r + half - EPS_TICKS), ba)
        want_bid = q < q_max - 0.5
        want_ask = q > -q_max + 0.5
        have_bid = False
        have_ask = False
        values = hbt.orders(0).values()
        while values.has_next():
            o = values.get()
            buy = o.side == 1
            st = o.status
            if st == 3:  # FILLED
                counts[0 if buy else 1] += 1
                nf = counts[0] + counts[1] - 1
                if nf < fills.shape[0]:
                    fills_ts[nf] = o.exch_timestamp
                    fills[nf, 0] = 1.0 if buy else -1.0
                    fills[nf, 1] = o.price_tick
                    fills[nf, 2] = o.order_id
                continue
            if st == 2:  # EXPIRED: a GTX order that would have crossed
                counts[4] += 1
                continue
            if st != 1:  # CANCELED (or anything but NEW)
                continue
            if buy:
                if want_bid and o.price_tick == bid_t and not have_bid:
                    have_bid = True
                elif o.cancellable:
                    hbt.cancel(0, o.order_id, False)
                    counts[3] += 1
            else:
                if want_ask and o.price_tick == ask_t and not have_ask:
                    have_ask = True
                elif o.cancellable:
                    hbt.cancel(0, o.order_id, False)
                    counts[3] += 1
        hbt.clear_inactive_orders(0)
        if want_bid and not have_bid:
            hbt.submit_buy_order(0, next_id, bid_t * tick, order_qty, 1, 0, False)  # GTX, LIMIT
            next_id += 1
            counts[2] += 1
        if want_ask and not have_ask:
            hbt.submit_sell_order(0, next_id, ask_t * tick, order_qty, 1, 0, False)
            next_id += 1
            counts[2] += 1
        if n_rec < rec.shape[0]:
            row = rec[n_rec]
            rec_ts[n_rec] = ts
            row[0] = bb
            row[1] = ba
            row[2] = float(bid_t) if want_bid else np.nan
            row[3] = float(ask_t) if want_ask else np.nan
            row[4] = pos
            row[5] = var
            row[6] = r
            n_rec += 1
    counts[5] = n_rec
    return 0


COUNTS = ("bid_fills", "ask_fills", "orders", "cancels", "rejects_post_only", "grid_steps")


def build(data: np.ndarray, args: argparse.Namespace) -> Any:  # hftbacktest's jitclass
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (
        BacktestAsset()
        .data(data)
        .linear_asset(1.0)
        .constant_order_latency(round(args.entry_ms * 1e6), round(args.response_ms * 1e6))
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(args.maker_fee, args.taker_fee)
        .tick_size(args.tick)
        .lot_size(args.lot)
        .last_trades_capacity(0)
    )
    return HashMapMarketDepthBacktest([asset])


def run(data: np.ndarray, args: argparse.Namespace) -> tuple[dict, np.ndarray]:
    hbt = build(data, args)
    span_s = (int(data["exch_ts"][-1]) - int(data["exch_ts"][0])) / 1e9
    rec = np.full((int(span_s / (args.step_ms * 1e-3)) + 16, 7), np.nan)
    rec_ts = np.zeros(len(rec), dtype=np.int64)
    fills = np.full((len(rec), 3), np.nan)
    fills_ts = np.zeros(len(rec), dtype=np.int64)
    counts = np.zeros(len(COUNTS), dtype=np.int64)
    t0 = time.perf_counter()
    market_maker(
        hbt,
        round(args.step_ms * 1e6),
        args.gamma,
        args.kappa,
        args.tau_s,
        args.decay_s,
        args.q_max,
        args.order_qty,
        rec,
        rec_ts,
        fills,
        fills_ts,
        counts,
    )
    wall = time.perf_counter() - t0
    sv = hbt.state_values(0)
    depth = hbt.depth(0)
    mid = 0.5 * (depth.best_bid + depth.best_ask)
    gross = sv.balance + sv.position * mid
    out = {
        "fills": int(sv.num_trades),
        **{k: int(v) for k, v in zip(COUNTS, counts, strict=True)},
        "fill_qty": float(sv.trading_volume),
        "position": float(sv.position),
        "fees": float(sv.fee),
        "pnl_gross": float(gross),
        "pnl_net": float(gross - sv.fee),
        "wall_s": wall,
    }
    hbt.close()
    nf = counts[0] + counts[1]
    return out, (rec_ts[: counts[5]], rec[: counts[5]]), (fills_ts[:nf], fills[:nf])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("npz", help="hftbacktest rows (stream.py's hbt.npz)")
    ap.add_argument("--tick", type=float, default=0.1)
    ap.add_argument("--lot", type=float, default=0.001)
    ap.add_argument("--step-ms", type=float, default=100.0, help="elapse() step, ms")
    ap.add_argument("--gamma", type=float, default=0.05, help="per tick")
    ap.add_argument("--kappa", type=float, default=1.0, help="per tick")
    ap.add_argument("--tau-s", type=float, default=1.0)
    ap.add_argument("--decay-s", type=float, default=30.0, help="variance decay time, w = exp(-dt / decay_s)")
    ap.add_argument("--q-max", type=float, default=20.0, help="|q| limit, in order_qty units")
    ap.add_argument("--order-qty", type=float, default=0.01)
    ap.add_argument("--entry-ms", type=float, default=1.0)
    ap.add_argument("--response-ms", type=float, default=1.0)
    ap.add_argument("--maker-fee", type=float, default=-0.00005)
    ap.add_argument("--taker-fee", type=float, default=0.0007)
    ap.add_argument("--warmup-rows", type=int, default=50_000, help="rows of the JIT warm-up run (0: none)")
    ap.add_argument("--dump", default=None, help="write each grid step's quote to this .npz")
    args = ap.parse_args(argv)

    import hftbacktest

    data = np.load(args.npz)["data"]
    if args.warmup_rows > 0:
        run(data[: args.warmup_rows].copy(), args)
    out, rec, fills = run(data, args)
    logical = int(np.count_nonzero(np.diff(data["exch_ts"]))) + 1
    out["events"] = logical
    out["rows"] = len(data)
    out["events_per_s"] = logical / out["wall_s"] if out["wall_s"] > 0 else None
    out["rows_per_s"] = len(data) / out["wall_s"] if out["wall_s"] > 0 else None
    out["version"] = hftbacktest.__version__
    if args.dump:
        cols = ("best_bid_t", "best_ask_t", "bid_t", "ask_t", "pos", "var_ticks2", "r_t")
        fcols = ("fill_side", "fill_px_t", "fill_oid")
        np.savez(
            args.dump,
            ts=rec[0],
            **{c: rec[1][:, i] for i, c in enumerate(cols)},
            fill_exch_ts=fills[0],
            **{c: fills[1][:, i] for i, c in enumerate(fcols)},
        )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
