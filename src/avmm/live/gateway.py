"""Where the core's orders go: one gateway interface.

``Gateway`` is what the runtime talks to: ``send(t, actions, n)`` (the core's place / cancel /
amend records, as ``Engine`` writes them; ``place`` / ``cancel`` / ``amend`` for one order), and
the responses come back through the ``Responses`` the runtime gives it: ``ack``, ``reject``,
``canceled``, ``fill``. ``advance(t)`` lets the gateway deliver what is due by ``t``. The next
issue's Binance gateway implements the same interface over the WebSocket API.

The paper gateway is the backtester's exchange model driven one call at a time
(``backtest/venue.py`` ``PaperGateway``): the same methods, its answers to the same ``Responses``.
"""

from __future__ import annotations

import numpy as np

from avmm.backtest.venue import one_action
from avmm.core.config import StrategyConfig
from avmm.core.state import ACT_AMEND, ACT_CANCEL, ACT_PLACE


class Responses:
    """What a gateway calls with the venue's answers (the runtime: journal, then the core)."""

    def ack(self, t: int, oid: int) -> None:
        pass

    def reject(self, t: int, oid: int) -> None:
        pass

    def canceled(self, t: int, oid: int) -> None:
        pass

    def fill(self, t: int, oid: int, side: int, px: float, qty: float, fee: float) -> None:
        pass


class Gateway:
    """The orders' way to a venue (paper or real). Times are int64 ns on the venue's clock."""

    def send(self, t: int, actions: np.ndarray, n: int) -> None:
        """The first ``n`` records of ``actions`` (``ACTION_DTYPE``) leave at ``t``."""
        raise NotImplementedError

    def advance(self, t: int, inclusive: bool = True) -> None:
        """Deliver the responses due by ``t``."""
        raise NotImplementedError

    def params_changed(self, cfg: StrategyConfig, params: np.ndarray) -> None:
        """The strategy's parameters changed while running (``avmm ctl set``): ``cfg`` and the
        core's ``params`` record as they are now."""

    # one order at a time (scripts, tests): the same path as ``send``
    def place(self, t: int, oid: int, side: int, px: float, qty: float) -> None:
        self.send(t, one_action(ACT_PLACE, oid, side, px, qty), 1)

    def cancel(self, t: int, oid: int) -> None:
        self.send(t, one_action(ACT_CANCEL, oid, 0, 0.0, 0.0), 1)

    def amend(self, t: int, oid: int, side: int, px: float, qty: float) -> None:
        self.send(t, one_action(ACT_AMEND, oid, side, px, qty), 1)
