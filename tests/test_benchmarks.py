"""The benchmark scripts stay runnable (no figures asserted: speed is never a test): the backtest
bench with its pinned configs, a store written once and reused."""

from __future__ import annotations

import importlib.util
import json

import pytest

from avmm.config import load_config
from tests.builders import REPO

CONFIGS = REPO / "benchmarks" / "configs"


def _bench():
    spec = importlib.util.spec_from_file_location("backtest_bench", REPO / "benchmarks" / "backtest_bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pinned_configs_load_and_differ_only_in_levels():
    l1 = load_config(CONFIGS / "bench_l1.toml", []).model_dump()
    l5 = load_config(CONFIGS / "bench_l5.toml", []).model_dump()
    assert l1["quoting"].pop("levels") == 1 and l5["quoting"].pop("levels") == 5
    assert l1 == l5


def test_backtest_bench_writes_its_store_once_then_reuses_it(tmp_path, capsys):
    bench = _bench()
    st, out = tmp_path / "b" / "s.parquet", tmp_path / "o.json"
    args = ["--events", "20000", "--store", str(st), "--json", str(out), "--repeat", "2"]
    assert bench.main(args) == 0
    d = json.loads(out.read_text())
    assert d["events"] == 20_000 and d["runs"] == 2 and len(d["each_run"]) == 2
    assert d["config"].endswith("bench_l1.toml")
    for key in ("loop_ns_per_event", "events_per_s", "events_per_s_e2e"):
        assert d[key] > 0
    mtime = st.stat().st_mtime_ns
    assert bench.main([*args[:4], "--config", str(CONFIGS / "bench_l5.toml")]) == 0
    assert st.stat().st_mtime_ns == mtime  # reused, not written again
    assert "(reused)" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not the bench store of these arguments"):
        bench.main(["--events", "30000", "--store", str(st)])
