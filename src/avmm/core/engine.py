"""``Engine``: the strategy core driven from Python (live runtime, paper trading, bench).

It owns one ``state.CoreMemory`` block (params, state, orders, actions) and exposes the compiled
``*_at`` entry points of ``entry.py`` as attributes bound to the block's address: each is the
handler's compiled entry point (``jit.bind``, no per-call type dispatch) wrapped in a C-level
``functools.partial``, so ``engine.on_quote(...)`` runs no Python bytecode of ours at all. Handlers
return the number of actions written to ``engine.actions``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from avmm.core.config import StrategyConfig, to_params
from avmm.core.risk import risk_summary
from avmm.core.signals import entry_module, signal_source
from avmm.core.state import ACTION_NAMES, AF_TAKE, LOG_CAP, CoreMemory
from avmm.jit import bind


class Engine:
    """The strategy core driven from Python: the live and paper runtimes, ``avmm bench``, ``avmm quote``.

    Parameters
    ----------
    cfg : StrategyConfig, optional
        The strategy (default: the defaults); validated, so the core never sees a bad value.
    params : ndarray, optional
        A ready ``PARAMS_DTYPE`` record (default: ``to_params(cfg)``).

    Handlers (all times int64 ns, prices/sizes float, sides +1 bid/buy, -1 ask/sell) return the
    number of actions written to ``engine.actions`` (``ACTION_DTYPE``: place / cancel / amend):

    * ``on_quote(ts_ns, bid, bid_qty, ask, ask_qty) -> n_actions``
    * ``on_trade(ts_ns, px, qty, aggressor_side) -> n_actions``
    * ``on_fill(ts_ns, oid, side, px, qty, fee) -> n_actions``
    * ``on_ack(oid)``, ``on_reject(oid)``, ``on_canceled(oid)``
    * ``on_timer(ts_ns) -> n_actions``
    * ``cancel_all(ts_ns) -> n_actions``: cancel every working order (an unhealthy feed); the next
      market event requotes
    * ``halt(ts_ns) -> n_actions``: cancel every working order and quote nothing until ``resume``
      (the kill switch); ``flatten(ts_ns) -> n_actions``: halt, then taker orders (``flags`` =
      ``AF_TAKE``: a marketable limit at the touch, immediate-or-cancel) until the position is 0;
      ``resume(ts_ns) -> n_actions``: lift a halt or reduce-only, the next event requotes.
      ``state["halted"]``, ``state["reduce_only"]`` and ``risk()`` say what the limits did
    * ``on_depth(kind, side, px, qty)``: a depth row (``events.DEPTH`` / ``SNAPSHOT`` / ``CLEAR``) for
      the signals' book beyond the touch (nothing when no signal reads depth)
    """

    __slots__ = (
        "cfg",
        "mem",
        "params",
        "state",
        "orders",
        "actions",
        "_log_read",
        "on_quote",
        "on_trade",
        "on_fill",
        "on_ack",
        "on_reject",
        "on_canceled",
        "on_timer",
        "on_depth",
        "cancel_all",
        "halt",
        "flatten",
        "resume",
        "targets",
    )

    def __init__(self, cfg: StrategyConfig | None = None, params: np.ndarray | None = None) -> None:
        self.cfg = cfg if cfg is not None else StrategyConfig()
        params = params if params is not None else to_params(self.cfg)
        self.mem = CoreMemory(params, int(params["seed"][0]))
        self.params, self.state = self.mem.params, self.mem.state
        self.orders, self.actions = self.mem.orders, self.mem.actions
        self._log_read = 0
        # compile/bind against a scratch block so that binding leaves no trace in the real one
        scratch_mem = CoreMemory(params)  # kept alive until binding is done
        scratch = scratch_mem.address
        addr, i64, f64 = self.mem.address, 0, 0.0
        core = entry_module(
            signal_source(self.cfg.signals.file, self.cfg.signals.function, self.cfg.signals.builtins_on())
        )
        self.on_quote = partial(bind(core.on_quote_at, scratch, i64, f64, f64, f64, f64), addr)
        self.on_trade = partial(bind(core.on_trade_at, scratch, i64, f64, f64, i64), addr)
        self.on_fill = partial(bind(core.on_fill_at, scratch, i64, i64, i64, f64, f64, f64), addr)
        self.on_ack = partial(bind(core.on_ack_at, scratch, i64), addr)
        self.on_reject = partial(bind(core.on_reject_at, scratch, i64), addr)
        self.on_canceled = partial(bind(core.on_canceled_at, scratch, i64), addr)
        self.on_timer = partial(bind(core.on_timer_at, scratch, i64), addr)
        self.on_depth = partial(bind(core.on_depth_at, scratch, i64, i64, f64, f64), addr)
        self.cancel_all = partial(bind(core.cancel_all_at, scratch, i64), addr)
        self.halt = partial(bind(core.halt_at, scratch, i64), addr)
        self.flatten = partial(bind(core.flatten_at, scratch, i64), addr)
        self.resume = partial(bind(core.resume_at, scratch, i64), addr)
        self.targets = partial(bind(core.targets_at, scratch, i64), addr)
        del scratch_mem

    # --- inspection (not the hot path) ------------------------------------------------------------
    def value(self, name: str) -> Any:
        return self.state[name][0]

    def action_list(self, n: int) -> list[dict]:
        out = []
        for row in self.actions[:n]:
            d = {
                "action": ACTION_NAMES[int(row["kind"])],
                "side": "bid" if row["side"] > 0 else "ask",
                "oid": int(row["oid"]),
                "level": int(row["level"]),
                "px": float(row["px"]),
                "qty": float(row["qty"]),
            }
            if row["flags"] & AF_TAKE:
                d["take"] = True
            out.append(d)
        return out

    def risk(self) -> dict[str, Any]:
        """What the risk limits did (``core.risk.risk_summary``)."""
        return risk_summary(self.state)

    def ladder(self) -> dict:
        s = self.state[0]
        nb, na = int(s["lad_n"][0]), int(s["lad_n"][1])
        return {
            "bids": [[float(s["lad_px"][0, i]), float(s["lad_qty"][0, i])] for i in range(nb)],
            "asks": [[float(s["lad_px"][1, i]), float(s["lad_qty"][1, i])] for i in range(na)],
        }

    def drain_log(self) -> tuple[np.ndarray, int]:
        """Sampled log records written since the last drain, and how many were overwritten."""
        n = int(self.state["log_n"][0])
        start = self._log_read
        dropped = max(0, n - start - LOG_CAP)
        start = max(start, n - LOG_CAP)
        idx = np.arange(start, n) % LOG_CAP
        self._log_read = n
        return self.state["log"][0][idx].copy(), dropped

    # --- the venue's truth (a live reconciliation) ------------------------------------------------
    def set_position(self, pos: float, cash: float | None = None) -> None:
        """The position (base units) the venue reports, and optionally the cash, written into the
        core's state (not the hot path: a reconciliation after a restart or a reconnect). The next
        requote sees the change (``fill_requote``'s trigger: the position moved)."""
        s = self.state
        s["pos"] = float(pos)
        if cash is not None:
            s["cash"] = float(cash)
        s["dirty"] = 1
