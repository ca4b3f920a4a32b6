"""Sweep throughput: a 16-point ``avmm sweep`` (``quoting.refresh_s`` 0.5 / 1 / 2 / 4 x
``backtest.maker_fee`` 2 / 1 / 0 / -1 bp) against 16 sequential ``avmm backtest`` runs of the same
points, each a fresh process (start-up, reading and the run: what a user's shell loop costs), in
config x events per second of wall time; the figures of both are checked equal (timing aside). The
load average after the run is reported: on a shared machine other work takes cores from the sweep.

    python benchmarks/sweep_bench.py --json bench_sweep.json                      # the store in .bench/
    python benchmarks/sweep_bench.py --store .bench/synth-10M.parquet --events 10000000

The store is ``avmm data synth --events N`` (the command's defaults otherwise), written once and
reused. The strategy and exchange model come from the pinned ``benchmarks/configs/bench_l1.toml``.
The sweep runs with its defaults (a local pool on all cores, the points spread over one pass per
worker).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "configs" / "bench_l1.toml"
REFRESH_S = (0.5, 1.0, 2.0, 4.0)
MAKER_FEE = (0.0002, 0.0001, 0.0, -0.0001)  # 2 / 1 / 0 / -1 bp (fractions of the notional)
TIMING = ("wall_s", "events_per_s", "wall_s_e2e", "events_per_s_e2e")


def _avmm(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "avmm", *map(str, args)]


def _store(path: Path, events: int) -> None:
    """``avmm data synth --events N -o path`` once; an existing store of another size is refused."""
    if path.exists():
        from avmm.data.store import read_meta

        rows = int(read_meta(path).get("rows", -1))
        if rows != events:
            raise SystemExit(f"{path}: {rows} events, not {events}; remove it or give another --store")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(_avmm("data", "synth", "--events", events, "-o", path), check=True, stdout=subprocess.DEVNULL)


def _timed(cmd: list[str]) -> float:
    """Wall seconds of ``cmd``."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _same(a: dict, b: dict) -> bool:
    for k, x in a.items():
        if k in TIMING or not isinstance(x, int | float):
            continue
        y = b.get(k)
        if isinstance(x, float) and math.isnan(x):
            if not (isinstance(y, float) and math.isnan(y)):
                return False
        elif x != y:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--store", type=Path, default=None, help="the store (default .bench/synth-<N>.parquet)")
    ap.add_argument("--workers", type=int, default=None, help="avmm sweep --workers (default: all cores)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    store = args.store or Path(".bench") / f"synth-{args.events // 1_000_000}M.parquet"
    _store(store, args.events)
    points = [(r, f) for r in REFRESH_S for f in MAKER_FEE]
    subprocess.run(_avmm("backtest", "--no-progress"), check=True, stdout=subprocess.DEVNULL)  # the numba cache warm
    with tempfile.TemporaryDirectory() as tmp:
        seq_s, singles = 0.0, {}
        for r, f in points:
            out = Path(tmp) / f"bt-{r}-{f}.json"
            sets = ["--set", f"quoting.refresh_s={r}", "--set", f"backtest.maker_fee={f}"]
            seq_s += _timed(_avmm("backtest", store, "-c", CONFIG, *sets, "--json", out, "--no-progress"))
            singles[(r, f)] = json.loads(out.read_text())
        sw_out = Path(tmp) / "sweep.json"
        grid = ["--grid", "quoting.refresh_s=" + ",".join(map(str, REFRESH_S))]
        grid += ["--grid", "backtest.maker_fee=" + ",".join(map(str, MAKER_FEE))]
        workers = ["--workers", str(args.workers)] if args.workers else []
        sweep_s = _timed(_avmm("sweep", store, "-c", CONFIG, *grid, *workers, "--json", sw_out, "--no-progress"))
        doc = json.loads(sw_out.read_text())
    equal = len(doc["points"]) == len(points) and all(
        _same(singles[(p["keys"]["quoting.refresh_s"], p["keys"]["backtest.maker_fee"])], p["figures"])
        for p in doc["points"]
    )
    work = len(points) * args.events
    res = {
        "events": args.events,
        "points": len(points),
        "store": str(store),
        "config": str(CONFIG.relative_to(HERE.parent)),
        "sequential_backtests_s": round(seq_s, 3),
        "sweep_s": round(sweep_s, 3),
        "sequential_config_events_per_s": round(work / seq_s),
        "sweep_config_events_per_s": round(work / sweep_s),
        "ratio": round(seq_s / sweep_s, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "figures_equal": equal,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(res, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
