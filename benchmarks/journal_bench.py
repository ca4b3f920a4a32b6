"""What journaling costs the hot path: ns per append and the paper runtime's ns per event.

    python benchmarks/journal_bench.py [--events 200000] [--repeat 5] [--micro 200] [--runs 3] [--span-s 60]
                                      [--speed 10] [--data ../shared/data] [--json FILE]

* ``response``: ``Journal.response`` (one venue answer), ``answer``: ``Journal.answer`` (an ack, a
  reject, a cancel: what the ``Trader`` calls), ``actions``: ``Journal.actions`` of the two places a
  requote sends, ``fill_seen``: the trade-id check of a new fill -- each the best of ``--micro``
  runs of 2,000 calls (the best: this machine is shared), the writer thread running and caught up
  between runs;
* ``kernel_loop``: the log write itself, appended from compiled code (no Python call);
* ``replay``: ``live.trader.replay`` of ``--events`` synthetic events through a ``Trader`` with no
  journal and with one: ns per event, the difference is the journal's share (a saturated loop: the
  writer thread's SQLite work competes for the GIL and the second core);
* ``paper``: ``PaperSession`` against the emulator replaying the first ``--span-s`` of the USD-M
  capture at ``--speed``, ``--runs`` sessions without and with a journal, alternated: the sessions'
  sampled stage latencies (``venue``: the exchange model and the responses, journaled; ``core``: the
  strategy and its actions, journaled), the median over the runs of each p50 / p99 (us).

Run with another tree first on ``PYTHONPATH`` to measure its journal (the queue of tuples before
the intent log): the same calls, the ones it lacks left out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CALLS = 2_000


def _drain(j: Any) -> None:
    words = getattr(j, "_words", None)
    while True:
        if words is not None:
            from avmm.live.intents import H_COPIED, H_HEAD

            if words[H_COPIED] == words[H_HEAD] and j.q.empty():
                return
        elif j.q.empty():
            return
        time.sleep(0.001)


def _best(j: Any, fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        _drain(j)
        t0 = time.perf_counter_ns()
        fn(CALLS)
        best = min(best, (time.perf_counter_ns() - t0) / CALLS)
    return best


def appends(tmp: Path, repeat: int) -> dict[str, float]:
    from avmm.core.state import ACTION_DTYPE
    from avmm.live.journal import Journal

    j = Journal(tmp / "bench.db", {"bench": True})
    a = np.zeros(2, dtype=ACTION_DTYPE)
    a["kind"], a["side"], a["oid"], a["px"], a["qty"] = 1, [1, -1], [1, 2], [99.5, 100.5], 0.01

    def response(n: int) -> None:
        r = j.response
        for i in range(n):
            r(1_700_000_000_000_000_000 + i, 11, i, 0, 0.0, 0.0, 0.0)

    def actions(n: int) -> None:
        act = j.actions
        for i in range(n):
            act(1_700_000_000_000_000_000 + i, a, 2)

    out = {"response_ns": _best(j, response, repeat), "actions2_ns": _best(j, actions, repeat)}
    if hasattr(j, "answer"):

        def answer(n: int) -> None:
            r = j.answer
            for i in range(n):
                r(1_700_000_000_000_000_000 + i, 11, i)

        out["answer_ns"] = _best(j, answer, repeat)
    if hasattr(j, "fill_seen"):
        base = [0]

        def fill_seen(n: int) -> None:
            seen, b = j.fill_seen, base[0]
            for i in range(b, b + n):
                seen(i)
            base[0] = b + n

        out["fill_seen_ns"] = _best(j, fill_seen, repeat)
        out["trade_ids_held"] = len(j.trade_ids)
    j.close()
    with contextlib.suppress(ImportError):  # (a tree without the intent log)
        out["kernel_loop_ns"] = _kernel_loop(tmp)
    return out


def _kernel_loop(tmp: Path) -> float:
    """ns per record appended from compiled code, the copying counter moved along (no writer)."""
    from numba import njit

    from avmm.live.intents import H_COPIED, H_HEAD, IntentLog, log_append

    @njit(cache=False)
    def loop(addr: int, words: Any, n: int) -> int:  # pragma: no cover (compiled)
        s = 0
        for i in range(n):
            s = log_append(addr, i, 11, 0, i, 1, 100.0, 0.01, 0.0, 0, 0, 0)
            words[H_COPIED] = words[H_HEAD]
        return s

    log = IntentLog.create(tmp / "loop.log", 1 << 16, 1, 1, 0)
    loop(log.addr, log.words, 10)
    n = 2_000_000
    t0 = time.perf_counter_ns()
    loop(log.addr, log.words, n)
    return (time.perf_counter_ns() - t0) / n


def replay_cost(tmp: Path, events: int, repeat: int) -> dict[str, float]:
    from avmm.backtest.config import BacktestConfig
    from avmm.core.config import StrategyConfig
    from avmm.data.synth import generate
    from avmm.live.journal import Journal
    from avmm.live.trader import Trader, replay

    ev = next(generate(events, 7))
    cfg, bt = StrategyConfig(), BacktestConfig()
    res: dict[str, float] = {}
    for name in ("none", "journal"):
        best = float("inf")
        for k in range(repeat):
            j = Journal(tmp / f"replay{k}.db", {"bench": True}) if name == "journal" else None
            tr = Trader(cfg, bt, journal=j, meta={"market": "spot"})
            t0 = time.perf_counter_ns()
            s = replay(tr, ev)
            best = min(best, (time.perf_counter_ns() - t0) / events)
            if j is not None:
                j.close()
                res["journal_rows"] = j.rows
            res["fills"] = s["fills"]
        res[f"replay_{name}_ns_per_event"] = best
    res["journal_ns_per_event"] = res["replay_journal_ns_per_event"] - res["replay_none_ns_per_event"]
    return res


def paper_cost(tmp: Path, data: Path, span_s: float, speed: float, runs: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from avmm.backtest.runner import _strategy_only, adapt_config
    from avmm.config import load_config
    from avmm.emulator import EmulatorProcess
    from avmm.emulator.process import new_loop
    from avmm.live.config import with_origin
    from avmm.live.journal import Journal
    from avmm.live.paper import PaperSession, instrument
    from paper_agreement import _store  # type: ignore[import-not-found]

    store = _store("usdm_btcusdt_20240808", data, tmp, span_s)
    if store is None:
        return {}
    venue = "binance-um"
    cfg = load_config(None, ["venue.depth_interval=0ms"])
    lat: dict[str, list[list[float]]] = {}
    for k in range(2 * runs):
        name = "journal" if k % 2 else "none"
        with EmulatorProcess([store, "--venue", venue, "--speed", str(speed)]) as emu:
            vcfg = with_origin(cfg.venue, emu.url, venue)

            async def main(name: str = name, k: int = k, vcfg: Any = vcfg) -> Any:
                info = await instrument(venue, "BTCUSDT", vcfg)
                strat = _strategy_only(adapt_config(cfg, info))
                j = Journal(tmp / f"paper{k}.db", {"bench": True}) if name == "journal" else None
                s = PaperSession(venue, "BTCUSDT", strat, cfg.backtest, vcfg, journal=j)
                try:
                    await s.run(span_s / speed + 3.0)
                finally:
                    if j is not None:
                        j.close()
                return s.latencies()

            loop = new_loop()
            try:
                stages = loop.run_until_complete(main())
            finally:
                loop.close()
        for stage, q in stages.items():
            if q is not None:
                lat.setdefault(f"paper_{name}_{stage}_p50_us", []).append(q[0])
                lat.setdefault(f"paper_{name}_{stage}_p99_us", []).append(q[1])
    return {k: float(np.median(v)) for k, v in sorted(lat.items())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5, help="replays of --events (the best kept)")
    ap.add_argument("--micro", type=int, default=200, help="runs of 2,000 calls (the best kept)")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--span-s", type=float, default=60.0, help="of the USD-M capture, for the paper sessions")
    ap.add_argument("--speed", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3, help="paper sessions without and with a journal (0: none)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import avmm

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out: dict[str, Any] = {"avmm": str(Path(avmm.__file__).parent)}
        out.update(appends(tmp, args.micro))
        out.update(replay_cost(tmp, args.events, args.repeat))
        if args.runs > 0:
            out.update(paper_cost(tmp, args.data, args.span_s, args.speed, args.runs))
    for k, v in out.items():
        print(f"{k:32s} {v:.1f}" if isinstance(v, float) else f"{k:32s} {v}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
