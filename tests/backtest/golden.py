"""Golden backtests: the summaries, fills and samples of a few runs, as main computed them before
the core's risk limits existed (``tests/backtest/golden/off.json``). With every new limit off (the
default) the same runs must give the same figures, bit for bit (``test_golden.py``).

A change that is meant to move these figures regenerates the file (and says why in its commit):

    PYTHONPATH=src python -m tests.backtest.golden --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN = Path(__file__).parent / "golden" / "off.json"
TIMING = {"wall_s", "events_per_s", "wall_s_e2e", "events_per_s_e2e"}
SPOT_FILES = ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"]

# (name, data: "builtin" | "synth" | "binance_spot", --set overrides)
CASES: list[tuple[str, str, list[str]]] = [
    ("builtin-default", "builtin", []),
    ("synth-glft-amend-levels3", "synth", ['model.kind="glft"', "quoting.amend=true", "quoting.levels=3"]),
    (
        "synth-as-grid-spot-fees",
        "synth",
        ['model.kind="as"', 'quoting.refresh_mode="grid"', 'backtest.market="spot"', "backtest.taker_fee=0.0005"],
    ),
    ("binance-spot-default", "binance_spot", ["backtest.chunk_events=50000"]),
]


def synth_events() -> np.ndarray:
    from avmm.data.synth import generate

    return np.concatenate(list(generate(200_000, 11, quote_rate=200.0, trade_rate=50.0)))


def digest(a: np.ndarray) -> str:
    return hashlib.sha256(a.tobytes()).hexdigest()


def figures(res: Any) -> dict[str, Any]:
    """What the golden file keeps of a result: the summary without the wall-time figures (as JSON
    reads it back), the fills' and samples' bytes hashed."""
    s = {k: v for k, v in res.summary.items() if k not in TIMING}
    return {
        "summary": json.loads(json.dumps(s, default=str)),
        "n_fills": int(len(res.fills)),
        "fills_sha256": digest(res.fills),
        "n_samples": int(len(res.samples)),
        "samples_sha256": digest(res.samples),
    }


def run_case(data: str, sets: list[str], spot_store: Path | None) -> Any:
    from avmm.backtest.runner import run_backtest
    from avmm.backtest.session import default_session
    from avmm.config import load_config

    cfg = load_config(None, list(sets))
    if data == "builtin":
        return run_backtest(default_session(), cfg)
    if data == "synth":
        return run_backtest(synth_events(), cfg)
    assert spot_store is not None
    return run_backtest(spot_store, cfg)


def spot_store(shared: Path, folder: Path) -> Path | None:
    """The Binance spot capture converted into ``folder`` (None without the shared data)."""
    src = shared / "binance_ws_capture"
    if not src.is_dir():
        return None
    from avmm.data.convert import convert

    out = folder / "binance_spot.parquet"
    if not out.exists():
        convert([src / f for f in SPOT_FILES], out)
    return out


def main(argv: list[str]) -> int:
    import tempfile

    if argv != ["--write"]:
        print(__doc__)
        return 2
    from tests.builders import SHARED_DATA as shared

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = spot_store(shared, Path(tmp))
        for name, data, sets in CASES:
            if data == "binance_spot" and store is None:
                print(f"skipped {name}: no shared data at {shared}")
                continue
            out[name] = figures(run_case(data, sets, store))
            print(name, out[name]["summary"]["fills"], out[name]["summary"]["pnl_net"])
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
