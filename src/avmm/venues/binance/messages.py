"""Binance market-data messages as msgspec structs: what the streams send, decoded without a
dict per message.

Field names are Binance's own (one letter each: ``u`` update id, ``b``/``B`` best bid price and
size, ``T`` transaction time in ms, ...); prices and sizes arrive as decimal strings and are decoded
as floats (``strict=False``). ``Env*`` are the combined-stream envelopes ``{"stream", "data"}``.

* ``BookTicker`` -- ``<symbol>@bookTicker`` (spot has no ``T``/``E``);
* ``Trade`` -- ``<symbol>@trade`` (``X`` on USD-M only, ``M`` on spot only);
* ``AggTrade`` -- ``<symbol>@aggTrade`` (``f``/``l``: the first and last trade id it aggregates);
* ``Depth`` -- ``<symbol>@depth@100ms`` diffs (``pu`` on USD-M only; -1 when absent);
* ``Snapshot`` -- the REST ``depth`` answer (``lastUpdateId``; USD-M adds ``E``/``T``);
* ``Control`` -- whatever else a stream connection sends: ``serverShutdown`` (``{"e", "E"}``,
  bare or in an envelope), the answers to SUBSCRIBE / LIST_SUBSCRIPTIONS (``{"result", "id"}``)
  and errors (``{"error": {"code", "msg"}, "id"}``);
* ``ApiError`` -- a REST error body ``{"code", "msg"}``.

Every struct is ``gc=False`` (not tracked by the garbage collector: a decode ~25 % faster, and
nothing for a collection to walk): decoded JSON holds no reference cycles.

Numbers at their limits fail decoding (``msgspec.ValidationError``, which a reader counts) instead
of reaching NumPy: an id outside int64 (``Id``), a time in ms that is negative or whose ns value
would not fit int64 (``Ms``: past the year 2262), a price or size beyond float64 (``1e400``).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

Levels = list[tuple[float, float]]
_T = TypeVar("_T")

MAX_MS = (2**63 - 1) // 1_000_000  # the last ms whose ns value fits int64 (2262-04-11)
Id = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]  # an id stored in int64
Ms = Annotated[int, msgspec.Meta(ge=0, le=MAX_MS)]  # a time in ms (0: absent)


class BookTicker(msgspec.Struct, gc=False):
    u: Id
    b: float
    B: float
    a: float
    A: float
    s: str = ""
    T: Ms = 0
    E: Ms = 0


class Trade(msgspec.Struct, gc=False):
    t: Id
    p: float
    q: float
    T: Ms
    m: bool
    s: str = ""
    X: str = ""  # USD-M only (order type)
    M: bool | None = None  # spot only ("ignore")


class AggTrade(msgspec.Struct, gc=False):
    a: Id
    p: float
    q: float
    T: Ms
    m: bool
    s: str = ""
    f: Id = -1  # first and last trade id
    l: Id = -1  # noqa: E741
    M: bool | None = None  # spot only


class Depth(msgspec.Struct, gc=False):
    U: Id
    u: Id
    b: Levels
    a: Levels
    E: Ms = 0
    T: Ms = 0
    pu: Id = -1
    s: str = ""


class Snapshot(msgspec.Struct, gc=False):
    lastUpdateId: Id
    bids: Levels
    asks: Levels
    E: Ms = 0
    T: Ms = 0


class EnvBookTicker(msgspec.Struct, gc=False):
    data: BookTicker


class EnvTrade(msgspec.Struct, gc=False):
    data: Trade


class EnvAggTrade(msgspec.Struct, gc=False):
    data: AggTrade


class EnvDepth(msgspec.Struct, gc=False):
    data: Depth


class EnvSnapshot(msgspec.Struct, gc=False):
    data: Snapshot
    stream: str = ""


class Control(msgspec.Struct, gc=False):
    e: str = ""
    E: int = 0
    id: Any = None
    result: Any = None
    error: Any = None


class EnvControl(msgspec.Struct, gc=False):
    """Any frame of a stream connection, read for what it is: the stream name of an envelope, or a
    bare control message's fields."""

    stream: str = ""
    data: Control | None = None
    e: str = ""
    E: int = 0
    id: Any = None
    result: Any = None
    error: Any = None


class ApiError(msgspec.Struct, gc=False):
    code: int = 0
    msg: str = ""


SERVER_SHUTDOWN = "serverShutdown"


def _decoder(t: type[_T]) -> msgspec.json.Decoder[_T]:
    return msgspec.json.Decoder(t, strict=False)


DECODE_BOOK_TICKER = _decoder(EnvBookTicker)
DECODE_TRADE = _decoder(EnvTrade)
DECODE_AGG_TRADE = _decoder(EnvAggTrade)
DECODE_DEPTH = _decoder(EnvDepth)
DECODE_SNAPSHOT_ENV = _decoder(EnvSnapshot)
DECODE_SNAPSHOT = _decoder(Snapshot)
DECODE_CONTROL_ENV = _decoder(EnvControl)
DECODE_API_ERROR = _decoder(ApiError)

# by stream kind (``data.readers.binance_ws``)
DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "bt": DECODE_BOOK_TICKER,
    "tr": DECODE_TRADE,
    "agg": DECODE_AGG_TRADE,
    "depth": DECODE_DEPTH,
    "snap_env": DECODE_SNAPSHOT_ENV,
    "snap": DECODE_SNAPSHOT,
}
