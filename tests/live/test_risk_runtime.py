"""The paper runtime and the core's risk limits: a halt (a loss limit, the kill switch) shows in the
status (``reason``, ``healthy``, the ``risk_*`` counters, the panel) and in the journal; resume; the
feed-lag rule (``risk.max_feed_lag_ms``, the runtime's: the core sees one clock); the UTC day's PnL
carried from the previous journal into the next session's core."""

from __future__ import annotations

import json
import sqlite3
import time

import numpy as np
import pytest

from avmm.backtest.config import BacktestConfig
from avmm.backtest.state import SAMPLE_DTYPE
from avmm.core.config import StrategyConfig
from avmm.core.state import DAY_NS
from avmm.data.synth import generate
from avmm.live.journal import Journal, journal_day_pnl
from avmm.live.trader import Trader, replay

MS = 1_000_000
T = 1_700_000_000_000_000_000
QUOTES_AT_ONCE = {"model": {"sigma": 0.05, "A": 10.0, "k": 40.0}}


def _events(path) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT ts, kind, text FROM events ORDER BY seq").fetchall()
    finally:
        con.close()


def _actions(path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute("SELECT kind FROM actions ORDER BY seq")]
    finally:
        con.close()


def test_a_loss_halt_is_journaled_at_the_cores_time(tmp_path):
    ev = next(generate(20_000, 3))  # the defaults lose ~0.2 over these
    cfg = StrategyConfig.model_validate({"risk": {"max_loss": 0.1}})
    j = Journal(tmp_path / "j.db", {})
    tr = Trader(cfg, BacktestConfig(), journal=j)
    s = replay(tr, ev)
    j.close()
    assert s["risk_halted"] and s["risk_reason"] == "halted: max_loss"
    risk = [e for e in _events(tmp_path / "j.db") if e[1] == "risk"]
    assert len(risk) == 1
    ts, _, text = risk[0]
    assert ts == int(tr.engine.state["limit_ns"][0]) and text.startswith("halted: max_loss (pnl -0.1")


@pytest.fixture
def session(tmp_path):
    pytest.importorskip("picows")
    pytest.importorskip("aiohttp")
    from avmm.live.config import VenueConfig
    from avmm.live.paper import PaperSession

    cfg = StrategyConfig.model_validate({**QUOTES_AT_ONCE, "risk": {"max_feed_lag_ms": 100}})
    j = Journal(tmp_path / "s.db", {})
    s = PaperSession(
        "binance-um", "BTCUSDT", cfg, BacktestConfig(), VenueConfig(), journal=j, day_pnl=(T // DAY_NS, -2.5)
    )
    s.totals.started = time.monotonic()
    s.trader.set_health(T, True, "ok")
    yield s
    j.close()


def _quote(s, t: int, lag_ms: float = 0.0) -> None:
    """A stamped quote (USD-M) that arrives ``lag_ms`` after its stamp on the venue's clock."""
    wall = time.time_ns()
    s.clock.anchor(t + round(lag_ms * MS), wall)
    s.on_quote(t, wall, 100.0, 1.0, 100.02, 1.0)
    s.trader.tick(t + 5 * MS)  # the orders at the venue (1 ms), the acks back


def test_kill_and_resume_show_in_the_status_the_panel_and_the_journal(session, tmp_path):
    from rich.console import Console

    from avmm.cli.paper import METRIC_KEYS, _panel

    s = session
    assert s.trader.engine.params["day_pnl0"][0] == -2.5  # carried in
    assert s.trader.engine.params["day_pnl_day"][0] == T // DAY_NS
    _quote(s, T)
    st = s.status()
    assert st["healthy"] and st["reason"] == "ok" and st["our_bids"] and not st["risk_halted"]
    assert set(METRIC_KEYS) <= set(st)
    s.trader.kill(T + 6 * MS, flatten=True)  # no position: nothing to flatten
    s.trader.tick(T + 10 * MS)
    st = s.status()
    assert not st["healthy"] and st["reason"] == "halted: kill" and st["risk_halts"] == 1
    assert st["risk_flatten_orders"] == 0
    assert st["our_bids"] == [] and st["our_asks"] == []
    _quote(s, T + 20 * MS)
    st = s.status()
    assert st["reason"] == "halted: kill" and st["our_bids"] == []
    con = Console(width=120, record=True)
    con.print(_panel(st))
    assert "halted: kill (halts 1)" in con.export_text()
    s.trader.resume(T + 30 * MS)
    _quote(s, T + 40 * MS)
    st = s.status()
    assert st["healthy"] and st["reason"] == "ok" and st["our_bids"] and st["risk_halts"] == 1
    s.journal.close()
    risk = [(ts, text) for ts, kind, text in _events(tmp_path / "s.db") if kind == "risk"]
    assert [text.split(" (")[0] for _, text in risk] == ["halted: kill", "resumed"]
    assert risk[0][0] == T + 6 * MS and risk[-1][0] == T + 30 * MS
    con = sqlite3.connect(tmp_path / "s.db")
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    con.close()
    assert json.loads(meta[f"day_pnl0.{s.journal.session}"]) == {"day": T // DAY_NS, "pnl": -2.5}


def test_a_feed_lagging_the_venue_cancels_everything_until_it_is_under_half(session, tmp_path):
    s = session
    _quote(s, T, lag_ms=5)
    assert s.status()["our_bids"]
    _quote(s, T + 10 * MS, lag_ms=150)  # > 100 ms
    st = s.status()
    assert not st["healthy"] and st["reason"] == "feed lag > 100 ms" and st["lag_periods"] == 1
    assert st["our_bids"] == [] and st["our_asks"] == []
    _quote(s, T + 20 * MS, lag_ms=60)  # under the limit, not under half: still out
    assert s.status()["our_bids"] == [] and not s.status()["healthy"]
    _quote(s, T + 30 * MS, lag_ms=40)
    st = s.status()
    assert st["healthy"] and st["our_bids"] and st["lag_periods"] == 1
    s.journal.close()
    health = [text for _, kind, text in _events(tmp_path / "s.db") if kind == "health"]
    assert health[-2:] == ["feed lag 150.0 ms > max_feed_lag_ms", "feed lag 40.0 ms: back under half"]


def test_the_days_pnl_is_read_back_from_the_journal(tmp_path):
    day = T // DAY_NS
    midnight = (day + 1) * DAY_NS

    def journal(name: str, day_pnl0: dict | None, rows: list[tuple[int, float]]):
        j = Journal(tmp_path / name, {})
        if day_pnl0 is not None:
            j.put_meta(f"day_pnl0.{j.session}", json.dumps(day_pnl0))
        smp = np.zeros(len(rows), dtype=SAMPLE_DTYPE)
        smp["ts"], smp["pnl"] = [r[0] for r in rows], [r[1] for r in rows]
        j.samples(smp)
        j.close()
        return tmp_path / name

    rows = [(T + i * 10**9, -0.1 * i) for i in range(5)]
    assert journal_day_pnl(journal("a.db", {"day": day, "pnl": -2.5}, rows)) == (day, pytest.approx(-2.9))
    assert journal_day_pnl(journal("b.db", {"day": day - 1, "pnl": -2.5}, rows)) == (day, pytest.approx(-0.4))
    assert journal_day_pnl(journal("c.db", None, rows)) == (day, pytest.approx(-0.4))
    # across midnight: the new day's PnL counts from the last sample before it
    rows2 = [
        (midnight - 2 * 10**9, -1.0),
        (midnight - 10**9, -1.5),
        (midnight + 10**9, -1.7),
        (midnight + 5 * 10**9, -2.0),
    ]
    assert journal_day_pnl(journal("d.db", {"day": day, "pnl": -2.5}, rows2)) == (day + 1, pytest.approx(-0.5))
    assert journal_day_pnl(journal("e.db", None, [])) is None
    (tmp_path / "f.db").write_text("not a journal")
    assert journal_day_pnl(tmp_path / "f.db") is None


def test_the_cli_reads_the_previous_journal_and_notes_it(tmp_path, capsys):
    from avmm.cli.paper import _day_pnl

    day = T // DAY_NS
    j = Journal(tmp_path / "p.db", {})
    smp = np.zeros(1, dtype=SAMPLE_DTYPE)
    smp["ts"], smp["pnl"] = T, -0.75
    j.samples(smp)
    j.close()
    assert _day_pnl(tmp_path / "p.db") == (day, pytest.approx(-0.75))
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"avmm: note: --journal {tmp_path / 'p.db'}: the PnL of 2023-11-14 (UTC) so far -0.75, from its last session"
    ]
    assert _day_pnl(tmp_path / "none.db") is None and _day_pnl(None) is None


def test_the_days_pnl_adds_up_the_sessions_of_a_resumed_journal(tmp_path):
    day = T // DAY_NS
    path = tmp_path / "r.db"

    def session(carry: float | None, rows: list[tuple[int, float]], resume: bool) -> None:
        j = Journal(path, {}, resume=resume)
        if carry is not None:
            j.put_meta(f"day_pnl0.{j.session}", json.dumps({"day": day, "pnl": carry}))
        smp = np.zeros(len(rows), dtype=SAMPLE_DTYPE)
        smp["ts"], smp["pnl"] = [r[0] for r in rows], [r[1] for r in rows]
        j.samples(smp)
        j.close()

    session(-1.0, [(T, 0.0), (T + 10**9, -0.3)], False)
    assert journal_day_pnl(path) == (day, pytest.approx(-1.3))
    session(-1.3, [(T + 10 * 10**9, 0.0), (T + 11 * 10**9, -0.2)], True)  # the carry: what the file said
    assert journal_day_pnl(path) == (day, pytest.approx(-1.5))
    session(None, [(T + 20 * 10**9, 0.0), (T + 21 * 10**9, 0.5)], True)  # no carry record: added on
    assert journal_day_pnl(path) == (day, pytest.approx(-1.0))
