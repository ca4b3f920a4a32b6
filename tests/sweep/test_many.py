"""``backtest.many.run_many``: K backtests in one pass equal K single backtests, bit for bit."""

from __future__ import annotations

import math

import pytest

from avmm.backtest.many import run_many
from avmm.backtest.runner import run_backtest
from avmm.config import load_config
from avmm.sweep.jobs import TIMING_KEYS
from tests.builders import REPO

BASE = REPO / "benchmarks" / "configs" / "bench_l1.toml"  # pinned: today's defaults written out
POINTS = [
    ["quoting.refresh_s=0.5", "backtest.maker_fee=0.0002"],
    ["quoting.refresh_s=2.0", "backtest.maker_fee=-0.0001"],
    ["quoting.refresh_s=1.0", "backtest.maker_fee=0.0", "backtest.markouts=false"],
    ["quoting.refresh_s=4.0", "backtest.maker_fee=0.0001", "quoting.levels=2"],
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from avmm.data.synth import write_synth

    path = tmp_path_factory.mktemp("many") / "s.parquet"
    write_synth(path, 6000, 5)
    return path


def same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k in TIMING_KEYS:
            continue
        x, y = a[k], b[k]
        if isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), k
        else:
            assert x == y, (k, x, y)


@pytest.mark.parametrize("threads", [1, 2])
def test_one_pass_equals_single_backtests(store, threads):
    cfgs = [load_config(BASE, sets) for sets in POINTS]
    singles = [run_backtest(store, c, backtest=c.backtest) for c in cfgs]
    assert all(r.summary["fills"] > 0 for r in singles)
    many = run_many(store, [(c, c.backtest) for c in cfgs], threads=threads)
    assert len(many) == len(cfgs)
    for one, m in zip(singles, many, strict=True):
        same(one.summary, m.summary)
        assert one.config_dict() == m.config_dict()
        assert (one.fills == m.fills).all() or one.fills.tobytes() == m.fills.tobytes()
        assert one.samples.tobytes() == m.samples.tobytes()


def test_one_pass_in_a_window_and_small_chunks(store):
    """A window and chunks of 1000 rows (the bridge between chunks runs K times)."""
    from avmm.data.store import read_meta

    meta = read_meta(store)
    lo = int(meta["start_ns"]) + (int(meta["end_ns"]) - int(meta["start_ns"])) // 3
    cfgs = [load_config(BASE, [*sets, "backtest.chunk_events=1000"]) for sets in POINTS[:2]]
    singles = [run_backtest(store, c, backtest=c.backtest, start_ns=lo) for c in cfgs]
    many = run_many(store, [(c, c.backtest) for c in cfgs], start_ns=lo)
    for one, m in zip(singles, many, strict=True):
        same(one.summary, m.summary)


def test_no_configs_no_work(store):
    assert run_many(store, []) == []
