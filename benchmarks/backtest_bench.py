"""Backtest throughput and memory: the compiled loop's ns per event and events/s (JIT compilation
excluded), events/s end to end (Parquet reading included), and peak RSS, on a synthetic store.

    python benchmarks/backtest_bench.py                                   # 10M events, a fresh store in a temp dir
    python benchmarks/backtest_bench.py --store .bench/bench-10M.parquet  # the store written once, then reused
    python benchmarks/backtest_bench.py --config benchmarks/configs/bench_l5.toml   # 5 levels a side
    python benchmarks/backtest_bench.py --events 100000000                # the memory demo (~7.2 GB store)

The store is L1 quotes + trades (800 quotes/s, 200 trades/s, tick 0.01, lot 0.001). The strategy and
exchange model come from a pinned config (``--config``, default ``benchmarks/configs/bench_l1.toml``:
the defaults written out in full -- A-S rolling horizon, one level a side, estimators on, 1 ms
entry / response latency, probabilistic queue), so a later change of a default does not move the
figures. The store is written by a child process so its memory does not count in the backtest's
peak RSS. Each of ``--repeat`` runs is reported, then the median and the best of each figure (on a
shared machine, take several runs and look at the spread).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "configs" / "bench_l1.toml"
QUOTE_RATE, TRADE_RATE = 800.0, 200.0


def _rss_now() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _write_store(path: Path, events: int, seed: int) -> float:
    """Write the bench store in a child process; the seconds it took."""
    t0 = time.perf_counter()
    code = (
        "import sys; from avmm.data.synth import write_synth; "
        f"write_synth(sys.argv[1], {events}, {seed}, quote_rate={QUOTE_RATE}, trade_rate={TRADE_RATE})"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    return time.perf_counter() - t0


def _check_store(path: Path, events: int, seed: int) -> None:
    """An existing ``--store`` must be the store these arguments would write."""
    from avmm.data.store import read_meta
    from avmm.data.synth import SYNTH_VERSION

    m = read_meta(path)
    want = {
        "source": "synth",
        "synth_version": SYNTH_VERSION,
        "events": events,
        "seed": seed,
        "quote_rate": QUOTE_RATE,
        "trade_rate": TRADE_RATE,
    }
    got = {k: m.get(k) for k in want}
    if got != want:
        sys.exit(f"backtest_bench: {path} is not the bench store of these arguments ({got} != {want}); remove it")


def _store(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    """The store to run (written if missing) and a line saying where it came from."""
    if args.store is None:
        path = tmp / "bench.parquet"
    else:
        path = args.store
        if path.exists():
            _check_store(path, args.events, args.seed)
            return path, f"store: {path} (reused), {path.stat().st_size / 1e9:.2f} GB"
        path.parent.mkdir(parents=True, exist_ok=True)
    dt = _write_store(path, args.events, args.seed)
    return path, f"store: {path}, {args.events:,} events, {path.stat().st_size / 1e9:.2f} GB, written in {dt:.1f} s"


def _run(store: Path, cfg_path: Path, sets: list[str], repeat: int) -> tuple[list[dict], dict, float, int]:
    from avmm.backtest.runner import run_backtest, warm_up
    from avmm.config import load_config

    t0 = time.perf_counter()
    warm_up()  # JIT compile (or load from the on-disk cache): not timed below
    compile_s = time.perf_counter() - t0
    rss_before = _rss_now()
    cfg = load_config(cfg_path, sets)
    runs = []
    s: dict = {}
    for i in range(repeat):
        t0 = time.perf_counter()
        s = run_backtest(store, cfg).summary
        total_s = time.perf_counter() - t0
        run = {
            "loop_ns_per_event": 1e9 * s["wall_s"] / s["events"],
            "events_per_s": s["events_per_s"],
            "events_per_s_e2e": s["events_per_s_e2e"],
            "loop_wall_s": s["wall_s"],
            "e2e_wall_s": s["wall_s_e2e"],
            "total_wall_s": total_s,
        }
        runs.append(run)
        print(
            f"run {i + 1}/{repeat}: loop {run['loop_ns_per_event']:6.1f} ns/event, {s['events_per_s'] / 1e6:6.2f} M "
            f"events/s; end to end {s['events_per_s_e2e'] / 1e6:6.2f} M events/s ({s['wall_s_e2e']:.3f} s)",
            file=sys.stderr,
            flush=True,
        )
    return runs, s, compile_s, rss_before


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--store", type=Path, default=None, help="the bench store: reused if it exists, else written there once"
    )
    ap.add_argument("--dir", type=Path, default=None, help="where to write a fresh store (default: a temp dir)")
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the pinned config (TOML)")
    ap.add_argument("--chunk", type=int, default=None, help="backtest.chunk_events (default: the config's)")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs (each reported; then median and best)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--set", action="append", default=[], help='config override, e.g. backtest.queue_model="risk-averse"'
    )
    args = ap.parse_args(argv)
    sets = [*([f"backtest.chunk_events={args.chunk}"] if args.chunk else []), *args.set]

    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        store, note = _store(args, Path(d))
        print(note, file=sys.stderr)
        size = store.stat().st_size
        runs, s, compile_s, rss_before = _run(store, args.config, sets, args.repeat)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    out = {
        "events": s["events"],
        "config": str(args.config),
        "set": sets,
        "runs": len(runs),
        "loop_ns_per_event": med("loop_ns_per_event"),
        "events_per_s": med("events_per_s"),
        "events_per_s_e2e": med("events_per_s_e2e"),
        "best_loop_ns_per_event": min(r["loop_ns_per_event"] for r in runs),
        "best_events_per_s": max(r["events_per_s"] for r in runs),
        "best_events_per_s_e2e": max(r["events_per_s_e2e"] for r in runs),
        "compile_or_cache_load_s": compile_s,
        "peak_rss_bytes": peak,
        "rss_before_run_bytes": rss_before,
        "store_bytes": size,
        "fills": s["fills"],
        "orders": s["orders"],
        "cancels": s["cancels"],
        "each_run": runs,
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
        },
    }
    print(f"median of {len(runs)} run(s) (best in brackets):")
    for key, best in (
        ("loop_ns_per_event", "best_loop_ns_per_event"),
        ("events_per_s", "best_events_per_s"),
        ("events_per_s_e2e", "best_events_per_s_e2e"),
    ):
        print(f"  {key:26s} {out[key]:,.1f}  ({out[best]:,.1f})")
    for k, v in out.items():
        if k in ("each_run", "runs") or k.startswith(("best_", "loop_ns", "events_per")):
            continue
        print(
            f"{k:28s} {v:,.3f}" if isinstance(v, float) else f"{k:28s} {v:,}" if isinstance(v, int) else f"{k:28s} {v}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
