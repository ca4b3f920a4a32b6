"""``avmm paper``'s status: the rich panel (what a terminal shows), the JSON line, and which one a
console gets."""

from __future__ import annotations

import io
import json

from rich.console import Console

from avmm.cli.paper import _panel, _Status

FULL = {
    "t": 1.7e9, "venue_ns": 1_723_100_000_000_000_000, "symbol": "BTCUSDT", "healthy": True, "reason": "ok",
    "bid": 61832.3, "ask": 61832.4, "bid_qty": 0.635, "ask_qty": 3.067,
    "our_bids": [[61832.3, 0.001], [61831.9, 0.002]], "our_asks": [[61832.5, 0.001]],
    "position": -0.004, "pnl": -0.8542, "fees": 0.6923, "fills": 56, "orders": 123, "cancels": 52,
    "markout_1s_bps": -0.53, "markout_10s_bps": 0.4, "feed_lag_ms": 196.6, "clock_rate": 20.3,
    "frames": 7006, "reconnects": 2, "gaps": 3, "resyncs": 4, "stale_periods": 1, "halts": 5,
    "latency_us": {"feed": [16.67, 66.71], "venue": [13.35, 467.88], "core": [15.47, 49.61]},
    "journal_rows": 467, "recorded_lines": 7007, "uptime_s": 3.0,
}  # fmt: skip


def render(table: object) -> str:
    con = Console(file=io.StringIO(), width=120, record=True)
    con.print(table)
    return con.export_text()


def rows(text: str) -> dict[str, str]:
    """The panel's rows: label -> value (the table's two cells)."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│┃| ").split("│")]
        if len(cells) == 2 and cells[0]:
            out[cells[0]] = cells[1]
    return out


def test_the_panel_shows_the_rows_the_issue_lists():
    r = rows(render(_panel(FULL)))
    assert r["feed"] == "ok"
    assert r["book"] == "61,832.30 x 0.6350  |  61,832.40 x 3.0670"
    assert r["our bids"] == "61,832.30x0.001 61,831.90x0.002" and r["our asks"] == "61,832.50x0.001"
    assert r["position"] == "-0.004"
    assert r["PnL (net) / fees"] == "-0.8542 / 0.6923"
    assert r["fills / orders / cancels"] == "56 / 123 / 52"
    assert r["markout 1s / 10s, bp"] == "-0.53 / 0.40"
    assert r["feed lag (venue ms)"] == "196.6"
    assert r["frames / reconnects / gaps"] == "7,006 / 2 / 3"
    assert r["halts"] == "5"
    assert r["latency p50 / p99, µs"] == "feed 16.7 / 66.7  venue 13.3 / 467.9  core 15.5 / 49.6"


def test_a_panel_not_quoting_says_why_and_missing_figures_are_dashes():
    st = {**FULL, "healthy": False, "reason": "stale: depth", "bid": None, "ask": None, "our_bids": [], "our_asks": []}
    st.update(markout_1s_bps=None, markout_10s_bps=None, latency_us={"feed": None, "venue": None, "core": None})
    r = rows(render(_panel(st)))
    assert r["feed"] == "NOT QUOTING: stale: depth"
    assert r["book"].startswith("- x") and r["our bids"] == "-" and r["our asks"] == "-"
    assert r["markout 1s / 10s, bp"] == "- / -"
    assert r["latency p50 / p99, µs"] == "feed -  venue -  core -"
    assert rows(render(_panel({}))) == {"status": "connecting"}


def test_a_terminal_gets_the_live_panel():
    con = Console(file=io.StringIO(), force_terminal=True, width=120, record=True)
    s = _Status(False, None, console=con)
    s.start()
    assert s.live is not None
    s({**FULL, "healthy": False, "reason": "resync: gap after u=5"})
    s.live.refresh()
    s.stop()
    assert s.live is None
    assert "NOT QUOTING: resync: gap after u=5" in con.export_text()


def test_no_panel_off_a_terminal_and_json_lines_with_status_json(capsys):
    seen = []
    s = _Status(False, seen.append, console=Console(file=io.StringIO(), force_terminal=False))
    s.start()
    assert s.live is None
    s(FULL)
    assert seen == [FULL] and capsys.readouterr().out == ""  # the metrics get it, nothing printed
    s = _Status(True, None, console=Console(file=io.StringIO(), force_terminal=True))
    s.start()
    assert s.live is None  # JSON lines instead, even on a terminal
    s(FULL)
    s(FULL)
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x) for x in lines] == [FULL, FULL]
