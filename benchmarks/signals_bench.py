"""What the built-in signals cost: VAMP and book imbalance on against no signal, in the backtest loop
(ns per event, JIT compilation excluded) and on ``Engine.on_quote`` (p50 / p99 ns per call).

    python benchmarks/signals_bench.py --store .bench/bench-10M-seed1.parquet   # make bench-signals

The loop runs the pinned config ``benchmarks/configs/bench_l1.toml`` on the bench store (written
once by ``make bench-backtest``'s script if missing), with and without ``[signals.vamp] weight =
0.5`` and ``[signals.imbalance] weight = 0.5``, alternated ``--repeat`` times; each figure is the
median. The ``Engine`` figures time each ``on_quote`` of ``--quotes`` quotes from the same store
(the first pass warms up; Python's clock calls are in both figures alike, so the difference is the
signals' cost).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "configs" / "bench_l1.toml"
ON = ["signals.vamp.weight=0.5", "signals.imbalance.weight=0.5"]


def _store(path: Path) -> None:
    if not path.exists():
        subprocess.run(
            [sys.executable, str(HERE / "backtest_bench.py"), "--store", str(path), "--repeat", "1"], check=True
        )


def loop_ns(store: Path, sets: list[str]) -> tuple[float, dict]:
    from avmm.backtest.runner import run_backtest
    from avmm.config import load_config

    s = run_backtest(store, load_config(str(CONFIG), sets)).summary
    return s["wall_s"] * 1e9 / s["events"], s


def engine_ns(store: Path, sets: list[str], quotes: int) -> tuple[float, float]:
    from avmm.config import load_config
    from avmm.core.engine import Engine
    from avmm.data.store import iter_events
    from avmm.events import QUOTE

    ev = next(iter(iter_events(store)))
    ev = ev[ev["kind"] == QUOTE][:quotes]
    cfg = load_config(str(CONFIG), sets)
    e = Engine(cfg)
    on_quote, clock = e.on_quote, time.perf_counter_ns
    rows = list(
        zip(
            ev["local_ts"].tolist(),
            ev["px"].tolist(),
            ev["qty"].tolist(),
            ev["px2"].tolist(),
            ev["qty2"].tolist(),
            strict=True,
        )
    )
    dt = np.empty(len(rows), dtype=np.int64)
    for _ in range(2):  # the first pass warms up
        e = Engine(cfg)
        on_quote = e.on_quote
        for i, (t, b, bq, a, aq) in enumerate(rows):
            t0 = clock()
            on_quote(t, b, bq, a, aq)
            dt[i] = clock() - t0
    return float(np.percentile(dt, 50)), float(np.percentile(dt, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=Path(".bench/bench-10M-seed1.parquet"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quotes", type=int, default=200_000)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    _store(a.store)
    loop_ns(a.store, [])  # compile both loops before timing
    loop_ns(a.store, ON)
    off, on = [], []
    for i in range(a.repeat):
        x, _ = loop_ns(a.store, [])
        y, s = loop_ns(a.store, ON)
        off.append(x)
        on.append(y)
        print(f"run {i + 1}: loop {x:.1f} ns/event without a signal, {y:.1f} with VAMP + imbalance", flush=True)
    e_off = engine_ns(a.store, [], a.quotes)
    e_on = engine_ns(a.store, ON, a.quotes)
    out = {
        "events": s["events"],
        "loop_ns_per_event_off": statistics.median(off),
        "loop_ns_per_event_on": statistics.median(on),
        "loop_ns_added": statistics.median(on) - statistics.median(off),
        "engine_on_quote_p50_ns_off": e_off[0],
        "engine_on_quote_p50_ns_on": e_on[0],
        "engine_on_quote_p50_ns_added": e_on[0] - e_off[0],
        "engine_on_quote_p99_ns_off": e_off[1],
        "engine_on_quote_p99_ns_on": e_on[1],
        "quotes_timed": a.quotes,
    }
    print(
        f"backtest loop ({s['events']:,} events, median of {a.repeat}): {out['loop_ns_per_event_off']:.1f} ns/event "
        f"-> {out['loop_ns_per_event_on']:.1f} with VAMP + imbalance (+{out['loop_ns_added']:.1f} ns)"
    )
    print(
        f"Engine.on_quote p50 ({a.quotes:,} quotes): {e_off[0]:.0f} ns -> {e_on[0]:.0f} ns "
        f"(+{out['engine_on_quote_p50_ns_added']:.0f} ns); p99 {e_off[1]:.0f} -> {e_on[1]:.0f} ns"
    )
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
