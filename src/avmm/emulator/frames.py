"""Binance's market-data frames, encoded from the replay's steps with byte templates (no dict per
frame): field names, order and types as Binance documents them, prices and sizes as decimal
strings.

Spot: ``bookTicker {u,s,b,B,a,A}``, ``trade {e,E,s,t,p,q,T,m,M}``, ``aggTrade {e,E,s,a,p,q,f,l,T,m,M}``,
``depthUpdate {e,E,s,U,u,b,a}``, REST depth ``{lastUpdateId,bids,asks}``.
USD-M: ``bookTicker {e,u,s,b,B,a,A,T,E}``, ``aggTrade {e,E,s,a,p,q,f,l,T,m}``, ``trade {e,E,T,s,t,p,q,X,m}``,
``depthUpdate {e,E,T,s,U,u,pu,b,a}``, REST depth ``{lastUpdateId,E,T,bids,asks}``.
"""

from __future__ import annotations

from decimal import Decimal

from avmm.emulator.replay import Step

SPOT = "binance-spot"
UM = "binance-um"
VENUES = (SPOT, UM)


def decimals(step: float | None, default: int = 8) -> int:
    """The number of decimals of a tick or lot size (0.01 -> 2, 1e-8 -> 8, 10 -> 0)."""
    if step is None or not step > 0:
        return default
    exp = Decimal(repr(float(step))).normalize().as_tuple().exponent
    return max(0, -int(exp)) if isinstance(exp, int) else default


class Encoder:
    """Frames of one symbol on one venue. ``off_ms`` arguments are the shift from the capture's
    clock to the venue clock, in ms (added to every ``exch`` time)."""

    def __init__(self, venue: str, symbol: str, price_dec: int, qty_dec: int) -> None:
        self.venue = venue
        self.um = venue == UM
        self.symbol = symbol
        s = symbol.encode()
        self.pf = b"%%.%df" % price_dec
        self.qf = b"%%.%df" % qty_dec
        pf, qf = self.pf.decode(), self.qf.decode()
        self.pfs, self.qfs = pf, qf
        P, Q = pf.encode(), qf.encode()
        if self.um:
            self._bt = (b'{"e":"bookTicker","u":%d,"s":"' + s + b'","b":"' + P + b'","B":"' + Q + b'","a":"' + P) + (
                b'","A":"' + Q + b'","T":%d,"E":%d}'
            )
            self._agg = (
                b'{"e":"aggTrade","E":%d,"s":"' + s + b'","a":%d,"p":"' + P + b'","q":"' + Q + b'","f":%d,"l":%d,'
                b'"T":%d,"m":%s}'
            )
            self._diff = b'{"e":"depthUpdate","E":%d,"T":%d,"s":"' + s + b'","U":%d,"u":%d,"pu":%d,"b":[%s],"a":[%s]}'
        else:
            self._bt = b'{"u":%d,"s":"' + s + b'","b":"' + P + b'","B":"' + Q + b'","a":"' + P + b'","A":"' + Q + b'"}'
            self._agg = (
                b'{"e":"aggTrade","E":%d,"s":"' + s + b'","a":%d,"p":"' + P + b'","q":"' + Q + b'","f":%d,"l":%d,'
                b'"T":%d,"m":%s,"M":true}'
            )
            self._diff = b'{"e":"depthUpdate","E":%d,"s":"' + s + b'","U":%d,"u":%d,"b":[%s],"a":[%s]}'
        if self.um:
            self._trade = (
                b'{"e":"trade","E":%d,"T":%d,"s":"' + s + b'","t":%d,"p":"' + P + b'","q":"' + Q + b'","X":"MARKET",'
                b'"m":%s}'
            )
        else:
            self._trade = (
                b'{"e":"trade","E":%d,"s":"' + s + b'","t":%d,"p":"' + P + b'","q":"' + Q + b'","T":%d,"m":%s,"M":true}'
            )
        self._lvl = b'["' + P + b'","' + Q + b'"]'

    # -- streams ----------------------------------------------------------------------------
    def book_ticker(self, st: Step, off_ms: int) -> bytes:
        _, _, exch, u, b, bq, a, aq = st
        if self.um:
            ms = exch // 1_000_000 + off_ms
            return self._bt % (u, b, bq, a, aq, ms, ms)
        return self._bt % (u, b, bq, a, aq)

    def trade(self, st: Step, off_ms: int) -> bytes:
        _, _, exch, tid, px, q, side = st
        ms = exch // 1_000_000 + off_ms
        m = b"true" if side < 0 else b"false"
        if self.um:
            return self._trade % (ms, ms, tid, px, q, m)
        return self._trade % (ms, tid, px, q, ms, m)

    def agg_trade(self, st: Step, off_ms: int) -> bytes:
        _, _, exch, tid, px, q, side = st
        ms = exch // 1_000_000 + off_ms
        return self._agg % (ms, tid, px, q, tid, tid, ms, b"true" if side < 0 else b"false")

    def levels(self, lv: list[tuple[float, float]]) -> bytes:
        f = self._lvl
        return b",".join([f % pq for pq in lv])

    def depth(
        self, U: int, u: int, pu: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]], E: int, T: int
    ) -> bytes:
        """A ``depthUpdate`` (``E`` event time, ``T`` transaction time, ms)."""
        if self.um:
            return self._diff % (E, T, U, u, pu, self.levels(bids), self.levels(asks))
        return self._diff % (E, U, u, self.levels(bids), self.levels(asks))

    def shutdown(self, E: int) -> bytes:
        return b'{"e":"serverShutdown","E":%d}' % E

    # -- REST -------------------------------------------------------------------------------
    def snapshot(
        self, last_u: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]], E: int, T: int
    ) -> bytes:
        """The REST ``depth`` answer."""
        if self.um:
            return b'{"lastUpdateId":%d,"E":%d,"T":%d,"bids":[%s],"asks":[%s]}' % (
                last_u,
                E,
                T,
                self.levels(bids),
                self.levels(asks),
            )
        return b'{"lastUpdateId":%d,"bids":[%s],"asks":[%s]}' % (last_u, self.levels(bids), self.levels(asks))


def wrap(stream: bytes, data: bytes) -> bytes:
    """The combined-stream payload ``{"stream":..,"data":..}``."""
    return b'{"stream":"' + stream + b'","data":' + data + b"}"
