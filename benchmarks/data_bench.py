"""Speed benchmark of the market-data layer (issue 3).

Measures, each in a fresh child process (so peak RSS is per phase):

* ``csv_convert``   -- ``avmm.data.convert.convert`` on a large synthetic tardis-format CSV
                       (quotes + trades files, generated here in a temp dir), at two sizes to show
                       that peak memory does not grow with the input;
* ``csv_gz_convert``-- the same CSVs gzip-compressed;
* ``ws_convert``    -- the real Binance websocket samples in ../shared/data (if present);
* ``samples_convert``-- the tardis and LOBSTER samples (if present);
* ``read_columns``  -- ``store.iter_columns`` over the converted store (and a synth store);
* ``read_events``   -- ``store.iter_events`` over the same;
* ``synth``         -- ``synth.write_synth``.

Usage::

    .venv/bin/python benchmarks/data_bench.py [--rows 5000000] [--json out.json]

Prints one line per phase: events, seconds, events/s and peak RSS (MiB) of the child process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _peak_mib() -> float:
    """Peak RSS of this process (VmHWM: per address space, so not inherited from the parent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------- CSV generation
def make_csvs(dirpath: Path, rows: int, gz: bool = False) -> list[Path]:
    """A tardis-format quotes file and trades file with ``rows`` rows in total (5:1), streamed."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from avmm.data.synth import generate
    from avmm.events import QUOTE, TRADE

    suffix = ".csv.gz" if gz else ".csv"
    qp = dirpath / f"bench_quotes_{rows}{suffix}"
    tp = dirpath / f"bench_trades_{rows}{suffix}"
    if qp.exists() and tp.exists():
        return [qp, tp]
    qschema = pa.schema(
        [
            ("exchange", pa.string()),
            ("symbol", pa.string()),
            ("timestamp", pa.int64()),
            ("local_timestamp", pa.int64()),
            ("ask_amount", pa.float64()),
            ("ask_price", pa.float64()),
            ("bid_price", pa.float64()),
            ("bid_amount", pa.float64()),
        ]
    )
    tschema = pa.schema(
        [
            ("exchange", pa.string()),
            ("symbol", pa.string()),
            ("timestamp", pa.int64()),
            ("local_timestamp", pa.int64()),
            ("id", pa.int64()),
            ("side", pa.string()),
            ("price", pa.float64()),
            ("amount", pa.float64()),
        ]
    )
    comp = "gzip" if gz else None
    with pa.output_stream(str(qp), compression=comp) as qf, pa.output_stream(str(tp), compression=comp) as tf:
        opts = pacsv.WriteOptions(quoting_style="none")
        qw = pacsv.CSVWriter(qf, qschema, write_options=opts)
        tw = pacsv.CSVWriter(tf, tschema, write_options=opts)
        for ev in generate(rows, 1, chunk=1 << 20, quote_rate=10.0, trade_rate=2.0):
            q = ev[ev["kind"] == QUOTE]
            t = ev[ev["kind"] == TRADE]
            n, m = len(q), len(t)
            qw.write_table(
                pa.table(
                    {
                        "exchange": pa.array(["binance-futures"] * n),
                        "symbol": pa.array(["BTCUSDT"] * n),
                        "timestamp": q["exch_ts"] // 1000,
                        "local_timestamp": q["local_ts"] // 1000,
                        "ask_amount": q["qty2"],
                        "ask_price": q["px2"],
                        "bid_price": q["px"],
                        "bid_amount": q["qty"],
                    },
                    schema=qschema,
                )
            )
            tw.write_table(
                pa.table(
                    {
                        "exchange": pa.array(["binance-futures"] * m),
                        "symbol": pa.array(["BTCUSDT"] * m),
                        "timestamp": t["exch_ts"] // 1000,
                        "local_timestamp": t["local_ts"] // 1000,
                        "id": t["seq"],
                        "side": np.where(t["side"] > 0, "buy", "sell"),
                        "price": t["px"],
                        "amount": t["qty"],
                    },
                    schema=tschema,
                )
            )
        qw.close()
        tw.close()
    return [qp, tp]


# ---------------------------------------------------------------- phases (run in a child)
def phase(name: str, args: dict) -> dict:
    if name == "convert":
        from avmm.data.convert import convert

        srcs = [Path(p) for p in args["sources"]]
        t = time.perf_counter()
        s = convert(srcs, Path(args["out"]))
        dt = time.perf_counter() - t
        return {"events": s.rows, "seconds": dt, "bytes_in": s.bytes_in}
    if name in ("read_columns", "read_events"):
        from avmm.data import store

        it = store.iter_columns if name == "read_columns" else store.iter_events
        best = None
        n = 0
        for _ in range(3):
            t = time.perf_counter()
            n = 0
            acc = 0.0
            for ch in it(args["path"], 1 << 20):
                if name == "read_columns":
                    n += len(ch.local_ts)
                    acc += ch.px[-1]  # touch the data
                else:
                    n += len(ch)
                    acc += ch["px"][-1]
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        return {"events": n, "seconds": best}
    if name == "synth":
        from avmm.data.synth import write_synth

        t = time.perf_counter()
        n = write_synth(args["out"], args["events"], 7)
        return {"events": n, "seconds": time.perf_counter() - t}
    raise SystemExit(f"unknown phase {name}")


def run_child(name: str, **args) -> dict:
    cmd = [sys.executable, __file__, "--child", name, json.dumps(args)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{r.stderr}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["events_per_s"] = res["events"] / res["seconds"] if res["seconds"] > 0 else 0.0
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000, help="rows of the large synthetic CSV")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--keep", type=Path, default=None, help="work dir to keep (default: a temp dir)")
    a = ap.parse_args()
    if a.child:
        res = phase(a.child[0], json.loads(a.child[1]))
        res["peak_rss_mib"] = _peak_mib()
        print(json.dumps(res))
        return

    results: dict[str, dict] = {}

    def show(key: str, r: dict) -> None:
        results[key] = r
        print(
            f"{key:<28} {r['events']:>12,} ev  {r['seconds']:8.3f} s  {r['events_per_s'] / 1e6:8.2f} M ev/s"
            f"  peak RSS {r['peak_rss_mib']:7.1f} MiB",
            flush=True,
        )

    ctx = tempfile.TemporaryDirectory(prefix="avmm-data-bench-") if a.keep is None else None
    work = Path(ctx.name) if ctx else a.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        small = max(a.rows // 5, 1000)
        for rows in (small, a.rows):
            srcs = make_csvs(work, rows)
            show(
                f"csv_convert[{rows:,}]",
                run_child("convert", sources=[str(p) for p in srcs], out=str(work / f"csv_{rows}.parquet")),
            )
        srcs = make_csvs(work, a.rows, gz=True)
        show(
            f"csv_gz_convert[{a.rows:,}]",
            run_child("convert", sources=[str(p) for p in srcs], out=str(work / "csv_gz.parquet")),
        )
        if DATA.is_dir():
            ws = DATA / "binance_ws_capture"
            groups = {
                "ws_convert[spot]": sorted(ws.glob("spot_*.gz")),
                "ws_convert[usdm]": sorted(ws.glob("usdm_*.gz")),
            }
            for key, fs in groups.items():
                # usdm files are two separate windows: convert them in one go anyway (merged)
                show(key, run_child("convert", sources=[str(p) for p in fs[:2]], out=str(work / "ws.parquet")))
            show(
                "samples_convert[tardis]",
                run_child(
                    "convert",
                    sources=[str(DATA / "tardis_binance-futures_btcusdt_2020-02-22")],
                    out=str(work / "td.parquet"),
                ),
            )
            show(
                "samples_convert[lobster]",
                run_child(
                    "convert", sources=[str(DATA / "lobster_amzn_2012-06-21_level1")], out=str(work / "lob.parquet")
                ),
            )
        show(f"synth[{a.rows:,}]", run_child("synth", out=str(work / "synth.parquet"), events=a.rows))
        for label, path in (("csv store", work / f"csv_{a.rows}.parquet"), ("synth store", work / "synth.parquet")):
            show(f"read_columns[{label}]", run_child("read_columns", path=str(path)))
            show(f"read_events[{label}]", run_child("read_events", path=str(path)))
    finally:
        if ctx:
            ctx.cleanup()
    if a.json:
        a.json.write_text(json.dumps({"rows": a.rows, "results": results}, indent=2))
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
