"""The default config on every real sample: the README's table of "Defaults that fit any market".

    python benchmarks/defaults_table.py [--data ../shared/data] [--stores .bench/samples] [--json FILE]

Converts each sample folder of ``../shared/data`` once (into ``--stores``, reused afterwards), runs
``avmm backtest STORE`` with no config on each and on the built-in session, and prints a Markdown
table: fills (our bids / asks), the median distance of our quotes behind the touch against the
market's median spread (ticks), the spread captured and the 10 s markout (bp), net PnL, and the
largest |position| against ``risk.max_position``. A sample whose folder is missing is left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# name: (folder, files (None: every .csv / .gz of the folder), what it is)
SAMPLES = {
    "binance_spot": (
        "binance_ws_capture",
        ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"],
        "Binance spot BTCUSDT capture",
    ),
    "binance_usdm_0718": (
        "binance_ws_capture",
        ["usdm_btcusdt_20240718.gz", "usdm_btcusdt_20240719.gz"],
        "Binance USD-M BTCUSDT capture, 07-18/19",
    ),
    "binance_usdm_0808": ("binance_ws_capture", ["usdm_btcusdt_20240808.gz"], "Binance USD-M BTCUSDT capture, 08-08"),
    "tardis": ("tardis_binance-futures_btcusdt_2020-02-22", None, "tardis.dev Binance futures quotes + trades"),
    "lobster": ("lobster_amzn_2012-06-21_level1", None, "LOBSTER AMZN level 1"),
}


def _store(name: str, data: Path, stores: Path) -> Path | None:
    from avmm.data.convert import convert

    folder, files, _ = SAMPLES[name]
    src = data / folder
    if not src.is_dir():
        return None
    out = stores / f"{name}.parquet"
    if not out.exists():
        sources = (
            sorted(p for p in src.iterdir() if p.suffix in (".csv", ".gz"))
            if files is None
            else [src / f for f in files]
        )
        stores.mkdir(parents=True, exist_ok=True)
        convert(sources, out)
    return out


def sample_stores(data: Path, stores: Path) -> list[tuple[str, list[Path]]]:
    """(what it is, [store]) for every sample found (converted once), then the built-in session."""
    from avmm.backtest.session import default_session

    out = []
    for name in SAMPLES:
        store = _store(name, data, stores)
        if store is None:
            print(f"{name}: {data / SAMPLES[name][0]} not found, left out", file=sys.stderr)
            continue
        out.append((SAMPLES[name][2], [store]))
    out.append(("built-in synthetic session", [default_session()]))
    return out


def _row(what: str, s: dict, limit: float) -> dict:
    return {
        "data": what,
        "fills": s["fills"],
        "fills_bid": s["fills_bid"],
        "fills_ask": s["fills_ask"],
        "quote_distance_ticks": s["quote_distance_ticks"],
        "market_spread_ticks": s["market_spread_ticks"],
        "spread_captured_bps": s["spread_captured_bps"],
        "markout_10s_bps": s["markout_10s"],
        "pnl_net": s["pnl_net"],
        "max_abs_position": s["max_abs_position"],
        "max_position": limit,
    }


def _f(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--stores", type=Path, default=ROOT / ".bench" / "samples")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    from avmm.backtest.runner import run_backtest
    from avmm.config import load_config
    from avmm.core.config import max_position_of

    cfg = load_config(None, [])
    rows = []
    for what, data in sample_stores(a.data, a.stores):
        r = run_backtest(data, cfg)
        rows.append(_row(what, r.summary, max_position_of(r.config)))

    print(
        "| data | fills (our bids / asks) | quotes behind the touch / market spread, ticks (median) "
        "| spread captured, bp | markout 10 s, bp | net PnL | max \\|position\\| / limit |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for w in rows:
        print(
            f"| {w['data']} | {w['fills']:,} ({w['fills_bid']:,} / {w['fills_ask']:,}) "
            f"| {_f(w['quote_distance_ticks'], 'g')} / {_f(w['market_spread_ticks'], 'g')} "
            f"| {_f(w['spread_captured_bps'], '.2f')} | {_f(w['markout_10s_bps'], '.2f')} "
            f"| {w['pnl_net']:.4g} | {w['max_abs_position']:g} / {w['max_position']:g} |"
        )
    if a.json is not None:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
