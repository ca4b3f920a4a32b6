"""Paper trading against the backtest, on the emulator's replay of the real Binance captures: the
README's figures in "Paper trading".

    python benchmarks/paper_agreement.py [--data ../shared/data] [--span-s 120] [--speed 20] [--runs 3]
                                         [--venue V] [--json FILE]

For each capture (USD-M and spot BTCUSDT, 2024-08-08): its first ``--span-s`` seconds as a store;
``avmm backtest`` of them on the paper session's clock (``live.paper.venue_clock_events``); then
``--runs`` paper sessions in this process (``PaperSession``, the default config, the depth stream
the capture was recorded from) against ``avmm emulate --speed`` of the same store. Every call the
session makes on its ``Trader`` is logged, and the logged market events are replayed through a
fresh ``Trader`` healthy from the start (``trader.replay``): that isolates what real time changes
from what the input changes. Prints the fills of each.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = {
    "binance-um": ("usdm_btcusdt_20240808", "0ms"),
    "binance-spot": ("spot_btcusdt_20240808", "100ms"),
}
LOGGED = ("venue_quote", "venue_trade", "venue_depth", "core_quote", "core_trade", "core_depth")


def _store(name: str, data: Path, out: Path, span_s: float) -> Path | None:
    from avmm.data.convert import convert
    from avmm.data.store import read_events, read_meta, write_events

    src = data / "binance_ws_capture" / f"{name}.gz"
    if not src.exists():
        print(f"{src}: not found, left out", file=sys.stderr)
        return None
    full = out / f"{name}.parquet"
    if not full.exists():
        convert([src], full)
    meta = read_meta(full)
    keep = {k: meta[k] for k in ("symbol", "source", "tick_size", "lot_size", "market") if k in meta}
    ev = read_events(full)
    ev = ev[ev["local_ts"] < ev["local_ts"][0] + int(span_s * 1e9)]
    cut = out / f"{name}.{span_s:g}s.parquet"
    write_events(cut, [ev], keep)
    return cut


def _backtest(store: Path, out: Path) -> dict[str, Any]:
    from avmm.backtest.runner import run_backtest
    from avmm.config import load_config
    from avmm.data.store import read_events, read_meta, write_events
    from avmm.live.paper import venue_clock_events

    meta = read_meta(store)
    keep = {k: meta[k] for k in ("symbol", "source", "tick_size", "lot_size", "market") if k in meta}
    vc = out / (store.stem + ".venue_clock.parquet")
    write_events(vc, [venue_clock_events(read_events(store))], keep)
    return run_backtest([vc], load_config(None, [])).summary


def _paper(store: Path, venue: str, depth: str, speed: float, span_s: float) -> tuple[dict[str, Any], np.ndarray, Any]:
    """One paper session against the emulator; its summary, the market events it gave its
    ``Trader`` (``EVENT_DTYPE``: exchange time = the venue side's, local = the core's) and the
    strategy config."""
    from avmm.backtest.runner import _strategy_only, adapt_config
    from avmm.config import load_config
    from avmm.emulator import EmulatorProcess
    from avmm.emulator.process import new_loop
    from avmm.events import EVENT_DTYPE, QUOTE, TRADE
    from avmm.live.config import with_origin
    from avmm.live.paper import PaperSession, instrument
    from avmm.live.trader import Trader

    log: list[tuple[str, tuple[Any, ...]]] = []
    orig = {n: getattr(Trader, n) for n in LOGGED}

    def logged(n: str) -> Any:
        f = orig[n]

        def g(self: Trader, *a: Any) -> None:
            log.append((n, a))
            f(self, *a)

        return g

    cfg = load_config(None, [f"venue.depth_interval={depth}"])
    for n in LOGGED:
        setattr(Trader, n, logged(n))
    try:
        with EmulatorProcess([store, "--venue", venue, "--speed", str(speed)]) as emu:
            vcfg = with_origin(cfg.venue, emu.url, venue)

            async def main() -> tuple[dict[str, Any], Any]:
                info = await instrument(venue, "BTCUSDT", vcfg)
                strat = _strategy_only(adapt_config(cfg, info))
                s = PaperSession(venue, "BTCUSDT", strat, cfg.backtest, vcfg)
                return await s.run(span_s / speed + 3.0), strat

            loop = new_loop()
            try:
                summary, strat = loop.run_until_complete(main())
            finally:
                loop.close()
    finally:
        for n in LOGGED:
            setattr(Trader, n, orig[n])
    rows = np.zeros(sum(1 for n, _ in log if n.startswith("core_")), dtype=EVENT_DTYPE)
    i = 0
    venue_t = 0
    for n, a in log:
        if n.startswith("venue_"):
            venue_t = a[0]
            continue
        r = rows[i]
        r["exch_ts"], r["local_ts"] = venue_t, a[0]
        if n == "core_quote":
            r["kind"], r["px"], r["qty"], r["px2"], r["qty2"] = QUOTE, a[1], a[2], a[3], a[4]
        elif n == "core_trade":
            r["kind"], r["px"], r["qty"], r["side"] = TRADE, a[1], a[2], a[3]
        else:
            r["kind"], r["side"], r["px"], r["qty"] = a[1], a[2], a[3], a[4]
        i += 1
    return summary, rows, strat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / ".bench" / "paper")
    ap.add_argument("--span-s", type=float, default=120.0)
    ap.add_argument("--speed", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--venue", action="append", choices=list(CAPTURES), help="only this venue (repeatable)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    from avmm.config import load_config
    from avmm.live.trader import Trader, replay

    a.out.mkdir(parents=True, exist_ok=True)
    res = []
    for venue, (name, depth) in CAPTURES.items():
        if a.venue and venue not in a.venue:
            continue
        store = _store(name, a.data, a.out, a.span_s)
        if store is None:
            continue
        bt = _backtest(store, a.out)
        row: dict[str, Any] = {"venue": venue, "capture": name, "depth": depth, "backtest_fills": bt["fills"]}
        row["paper_fills"], row["replayed_fills"] = [], []
        for _ in range(a.runs):
            s, ev, strat = _paper(store, venue, depth, a.speed, a.span_s)
            meta = {"market": "spot" if venue == "binance-spot" else "perpetual", "symbol": "BTCUSDT"}
            again = replay(Trader(strat, load_config(None, []).backtest, meta=meta), ev)
            row["paper_fills"].append(s["fills"])
            row["replayed_fills"].append(again["fills"])
        pf = row["paper_fills"]
        rel = [100.0 * (f - bt["fills"]) / bt["fills"] for f in pf] if bt["fills"] else []
        row["paper_vs_backtest_pct"] = [round(x, 1) for x in rel]
        print(
            f"{venue} ({name}, {a.span_s:g} s at --speed {a.speed:g}, depth@{depth}): backtest {bt['fills']} fills; "
            f"paper {pf} ({', '.join(f'{x:+.1f} %' for x in rel)}); "
            f"the paper sessions' input replayed from the start: {row['replayed_fills']}"
        )
        res.append(row)
    if a.json is not None:
        a.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
