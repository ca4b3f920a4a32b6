"""Backtest throughput and memory: events/s of the compiled loop (excluding JIT compilation) and
peak RSS, on a synthetic store this script writes into a temporary directory.

    python benchmarks/backtest_bench.py                        # 10M events
    python benchmarks/backtest_bench.py --events 100000000     # the memory demo (~6.4 GB store)

The store is L1 quotes + trades (800 quotes/s, 200 trades/s, tick 0.01, lot 0.001); the strategy is
the default config (A-S rolling horizon, one level a side, estimators on) with the full order
simulation (1 ms entry / response latency, probabilistic queue). The store is written by a child
process so its memory does not count in the backtest's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_now() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--chunk", type=int, default=1_000_000, help="backtest.chunk_events")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs (the best is reported)")
    ap.add_argument("--dir", type=Path, default=None, help="where to write the store (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--set", action="append", default=[], help='config override, e.g. backtest.queue_model="risk-averse"'
    )
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        store = Path(d) / "bench.parquet"
        t0 = time.perf_counter()
        code = (
            "import sys; from avmm.data.synth import write_synth; "
            f"write_synth(sys.argv[1], {args.events}, {args.seed}, quote_rate=800.0, trade_rate=200.0)"
        )
        subprocess.run([sys.executable, "-c", code, str(store)], check=True)
        gen_s = time.perf_counter() - t0
        size = store.stat().st_size
        print(f"store: {args.events:,} events, {size / 1e9:.2f} GB, written in {gen_s:.1f} s", file=sys.stderr)

        from avmm.backtest.runner import run_backtest, warm_up
        from avmm.config import load_config

        t0 = time.perf_counter()
        warm_up()  # JIT compile (or load from the on-disk cache): not timed below
        compile_s = time.perf_counter() - t0
        rss_before = _rss_now()
        cfg = load_config(None, [f"backtest.chunk_events={args.chunk}", *args.set])
        best = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = run_backtest(store, cfg)
            total_s = time.perf_counter() - t0
            s = res.summary
            if best is None or s["wall_s"] < best[0]["wall_s"]:
                best = (s, total_s)
        s, total_s = best
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out = {
            "events": s["events"],
            "chunk_events": args.chunk,
            "loop_wall_s": s["wall_s"],
            "events_per_s": s["events_per_s"],
            "total_wall_s": total_s,
            "events_per_s_incl_io": s["events"] / total_s,
            "compile_or_cache_load_s": compile_s,
            "peak_rss_bytes": peak,
            "rss_before_run_bytes": rss_before,
            "store_bytes": size,
            "fills": s["fills"],
            "orders": s["orders"],
            "cancels": s["cancels"],
            "machine": {
                "python": platform.python_version(),
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
            },
        }
    for k, v in out.items():
        print(
            f"{k:26s} {v:,.3f}" if isinstance(v, float) else f"{k:26s} {v:,}" if isinstance(v, int) else f"{k:26s} {v}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
