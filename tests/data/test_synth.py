"""Synthetic sessions (`avmm.data.synth`): deterministic bytes, chunk independence, the model's
statistics, the cached default session."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from avmm.data import store, synth
from avmm.events import BUY, QUOTE, SELL, TRADE


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_synth_deterministic_bytes(tmp_path):
    a, b, c = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    synth.write_synth(a, 20_000, 11)
    synth.write_synth(b, 20_000, 11)
    synth.write_synth(c, 20_000, 12)
    assert _sha(a) == _sha(b)
    assert _sha(a) != _sha(c)


def test_synth_independent_of_chunk_size():
    x = np.concatenate(list(synth.generate(25_000, 5, chunk=1_234)))
    y = np.concatenate(list(synth.generate(25_000, 5, chunk=1 << 20)))
    assert x.tobytes() == y.tobytes()


def test_synth_properties(tmp_path):
    p = tmp_path / "s.parquet"
    synth.write_synth(p, 200_000, 7, sigma=0.05, quote_rate=10.0, trade_rate=2.0, k=40.0)
    ev = store.read_events(p)
    meta = store.read_meta(p)
    assert meta["true_sigma"] == 0.05 and meta["true_A"] == 1.0 and meta["true_k"] == 40.0
    assert np.all(np.diff(ev["local_ts"]) >= 0)
    assert np.all(ev["local_ts"] >= ev["exch_ts"])
    q, t = ev[ev["kind"] == QUOTE], ev[ev["kind"] == TRADE]
    assert 0.1 < len(t) / len(ev) < 0.23  # 2 / 12 of events are trades
    assert np.all(q["px"] < q["px2"]) and np.all(q["qty"] > 0) and np.all(q["qty2"] > 0)
    ticks = np.concatenate([q["px"], q["px2"], t["px"]]) / 0.01
    assert np.allclose(ticks, np.rint(ticks), atol=1e-6)
    assert set(np.unique(t["side"])) == {BUY, SELL}
    # trades at or through the best prices of the last quote
    qi = np.flatnonzero(ev["kind"] == QUOTE)
    ti = np.flatnonzero(ev["kind"] == TRADE)
    last_q = qi[np.searchsorted(qi, ti) - 1][ti > qi[0]]
    tt = ev[ti[ti > qi[0]]]
    buy = tt["side"] == BUY
    assert np.all(tt["px"][buy] >= ev["px2"][last_q][buy] - 1e-9)
    assert np.all(tt["px"][~buy] <= ev["px"][last_q][~buy] + 1e-9)
    # arrival intensity of trades reaching depth d from the displayed mid ~ A exp(-k d)
    mids = (ev["px"][last_q] + ev["px2"][last_q]) / 2
    depth = np.where(buy, tt["px"] - mids, mids - tt["px"])
    T_all = (ev["exch_ts"][-1] - ev["exch_ts"][0]) / 1e9
    d = np.array([0.03, 0.05, 0.07])
    lam = np.array([(depth >= x).sum() for x in d]) / T_all / 2  # per side
    k_hat = -np.polyfit(d, np.log(lam), 1)[0]
    assert 30 < k_hat < 50
    # volatility: quadratic variation of quote mids over the session ~ sigma^2 T
    mid = (q["px"] + q["px2"]) / 2
    T = (q["exch_ts"][-1] - q["exch_ts"][0]) / 1e9
    sig_hat = np.sqrt(np.sum(np.diff(mid[::50]) ** 2) / T)
    assert 0.035 < sig_hat < 0.065
    # sizes vary
    assert len(np.unique(q["qty"])) > 10


def test_synth_rejects_bad_params():
    with pytest.raises(ValueError):
        next(synth.generate(10, 1, tick=0.0))
    with pytest.raises(TypeError):
        next(synth.generate(10, 1, nonsense=1))


def test_default_session_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AVMM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(synth, "DEFAULT_EVENTS", 5_000)
    p1 = synth.default_session_path()
    assert p1.exists() and p1.parent == tmp_path / "cache"
    m1 = p1.stat().st_mtime_ns
    p2 = synth.default_session_path()
    assert p2 == p1 and p2.stat().st_mtime_ns == m1
    assert store.read_meta(p1)["rows"] == 5_000
    assert not [f for f in p1.parent.iterdir() if f.name.endswith(".tmp")]
