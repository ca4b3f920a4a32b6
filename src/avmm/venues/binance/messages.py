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

import msgspec

Levels = list[tuple[float, float]]


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


DECODERS = {
    name: msgspec.json.Decoder(t, strict=False)
    for name, t in (
        ("bt", EnvBookTicker),
        ("tr", EnvTrade),
        ("agg", EnvAggTrade),
        ("depth", EnvDepth),
        ("snap_env", EnvSnapshot),
        ("snap", Snapshot),
    )
}
