"""Binance market-data messages as msgspec structs: what the streams send, decoded without a
dict per message.

Field names are Binance's own (one letter each: ``u`` update id, ``b``/``B`` best bid price and
size, ``T`` transaction time in ms, ...); prices and sizes arrive as decimal strings and are decoded
as floats (``strict=False``). ``Env*`` are the combined-stream envelopes ``{"stream", "data"}``.

* ``BookTicker`` -- ``<symbol>@bookTicker`` (spot has no ``T``/``E``);
* ``Trade`` -- ``<symbol>@trade`` (``X`` on USD-M only, ``M`` on spot only);
* ``AggTrade`` -- ``<symbol>@aggTrade`` (``f``/``l``: the first and last trade id it aggregates);
* ``Depth`` -- ``<symbol>@depth@100ms`` diffs (``pu`` on USD-M only; -1 when absent);
* ``Snapshot`` -- the REST ``depth`` answer (``lastUpdateId``; USD-M adds ``E``/``T``).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

Levels = list[tuple[float, float]]
_T = TypeVar("_T")


class BookTicker(msgspec.Struct):
    u: int
    b: float
    B: float
    a: float
    A: float
    s: str = ""
    T: int = 0
    E: int = 0


class Trade(msgspec.Struct):
    t: int
    p: float
    q: float
    T: int
    m: bool
    s: str = ""
    X: str = ""  # USD-M only (order type)
    M: bool | None = None  # spot only ("ignore")


class AggTrade(msgspec.Struct):
    a: int
    p: float
    q: float
    T: int
    m: bool
    s: str = ""
    f: int = -1  # first and last trade id
    l: int = -1  # noqa: E741
    M: bool | None = None  # spot only


class Depth(msgspec.Struct):
    U: int
    u: int
    b: Levels
    a: Levels
    E: int = 0
    T: int = 0
    pu: int = -1
    s: str = ""


class Snapshot(msgspec.Struct):
    lastUpdateId: int
    bids: Levels
    asks: Levels
    E: int = 0
    T: int = 0


class EnvBookTicker(msgspec.Struct):
    data: BookTicker


class EnvTrade(msgspec.Struct):
    data: Trade


class EnvAggTrade(msgspec.Struct):
    data: AggTrade


class EnvDepth(msgspec.Struct):
    data: Depth


class EnvSnapshot(msgspec.Struct):
    data: Snapshot
    stream: str = ""


def _decoder(t: type[_T]) -> msgspec.json.Decoder[_T]:
    return msgspec.json.Decoder(t, strict=False)


DECODE_BOOK_TICKER = _decoder(EnvBookTicker)
DECODE_TRADE = _decoder(EnvTrade)
DECODE_AGG_TRADE = _decoder(EnvAggTrade)
DECODE_DEPTH = _decoder(EnvDepth)
DECODE_SNAPSHOT_ENV = _decoder(EnvSnapshot)
DECODE_SNAPSHOT = _decoder(Snapshot)

# by stream kind (``data.readers.binance_ws``)
DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "bt": DECODE_BOOK_TICKER,
    "tr": DECODE_TRADE,
    "agg": DECODE_AGG_TRADE,
    "depth": DECODE_DEPTH,
    "snap_env": DECODE_SNAPSHOT_ENV,
    "snap": DECODE_SNAPSHOT,
}
