"""What a signal does on the real samples: the README's table in "Signals".

    python benchmarks/signals_table.py [--data ../shared/data] [--stores .bench/samples] [--json FILE]

On every sample of ``benchmarks/defaults_table.py`` (converted once into ``--stores``) and the
built-in session, ``avmm backtest STORE`` with the default config, then with the README's user
signal (``examples/signals/imbalance.py``, ``params = [0.5]``), then with the built-in VAMP over 5
levels (``signals.vamp.weight = 1``, ``levels = 5``: the depth rows where the data has them) and
trade flow (``signals.flow.weight = 1``): fills, fill ratio, the 1 s and 10 s markouts, the spread
captured and net PnL.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from defaults_table import ROOT, _f, sample_stores  # noqa: E402

VARIANTS = {
    "plain A-S": [],
    "user imbalance.py": [
        f"signals.file={Path(__file__).resolve().parent.parent / 'examples' / 'signals' / 'imbalance.py'}",
        "signals.params=[0.5]",
    ],
    "VAMP 5 levels": ["signals.vamp.weight=1", "signals.vamp.levels=5"],
    "trade flow": ["signals.flow.weight=1"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--stores", type=Path, default=ROOT / ".bench" / "samples")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    from avmm.backtest.runner import run_backtest
    from avmm.config import load_config

    stores = sample_stores(a.data, a.stores)
    rows = []
    print(
        "| data | signal | fills | fill ratio | markout 1 s / 10 s, bp | spread captured, bp | net PnL |\n"
        "| --- | --- | --- | --- | --- | --- | --- |"
    )
    for what, data in stores:
        for label, sets in VARIANTS.items():
            s = run_backtest(data, load_config(None, sets)).summary
            row = {"data": what, "signal": label, **{k: s[k] for k in ("fills", "fill_ratio", "pnl_net")}}
            row |= {k: s[k] for k in ("markout_1s", "markout_10s", "spread_captured_bps")}
            rows.append(row)
            print(
                f"| {what} | {label} | {s['fills']:,} | {_f(s['fill_ratio'], '.2%')} "
                f"| {_f(s['markout_1s'], '.2f')} / {_f(s['markout_10s'], '.2f')} "
                f"| {_f(s['spread_captured_bps'], '.2f')} | {s['pnl_net']:.4g} |",
                flush=True,
            )
    if a.json is not None:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
