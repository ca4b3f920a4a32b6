"""The one event format every data source is converted to.

Each market-data event is one row of ``EVENT_DTYPE`` (NumPy) / ``ARROW_SCHEMA`` (Arrow, Parquet).
Times are int64 nanoseconds since the Unix epoch, on two clocks:

* ``exch_ts``  -- when the exchange stamped the event (``F_EXCH_TS`` clear when the source has none,
  in which case ``exch_ts`` equals ``local_ts``);
* ``local_ts`` -- when our side received it. Stores are sorted by ``local_ts``.

Columns and their meaning by ``kind``:

========== =========================================== =====================================
kind       px / qty                                    px2 / qty2
========== =========================================== =====================================
QUOTE      best bid price / size                       best ask price / size
TRADE      trade price / size; ``side`` = aggressor    unused (0)
DEPTH      level price / new total size (0 = removed)  unused; ``side`` = book side
SNAPSHOT   level price / size of a depth snapshot      unused; ``side`` = book side
CLEAR      unused: the book is cleared (resync)        unused
========== =========================================== =====================================

``side`` is +1 for buy / bid, -1 for sell / ask, 0 when unknown. ``seq`` carries the exchange's
sequence number (update id, trade id) where there is one, else 0. ``level`` is the 0-based depth of
a snapshot row where the source gives it, else -1. ``flags`` is a bit set of the ``F_*`` constants.

A source file with depth rows but no quotes of its own (tardis.dev ``incremental_book_L2``, a Binance
capture without ``bookTicker``) also gets QUOTE rows derived from its reconstructed book, flagged
``F_DERIVED`` (see ``avmm.data.book``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# kinds
QUOTE = 1
TRADE = 2
DEPTH = 3
SNAPSHOT = 4
CLEAR = 5
KIND_NAMES = {QUOTE: "quote", TRADE: "trade", DEPTH: "depth", SNAPSHOT: "snapshot", CLEAR: "clear"}

# sides
BUY = 1
SELL = -1
UNKNOWN_SIDE = 0

# flags (bit set)
F_EXCH_TS = 1 << 0  # exch_ts is the exchange's own stamp (else copied from local_ts)
F_LAST_IN_BATCH = 1 << 1  # last row of one source message (depth diff, snapshot): act after it
F_SEQ_GAP = 1 << 2  # a sequence gap was detected before this row (book resynchronised after)
F_REORDERED = 1 << 3  # the row was moved to restore local_ts order
F_DERIVED = 1 << 4  # QUOTE derived from the depth book by the converter (the source had no quotes)

EVENT_FIELDS: list[tuple[str, str]] = [
    ("exch_ts", "i8"),
    ("local_ts", "i8"),
    ("seq", "i8"),
    ("px", "f8"),
    ("qty", "f8"),
    ("px2", "f8"),
    ("qty2", "f8"),
    ("kind", "u1"),
    ("side", "i1"),
    ("flags", "u2"),
    ("level", "i4"),
]

EVENT_DTYPE = np.dtype(EVENT_FIELDS)

ARROW_SCHEMA = pa.schema(
    [
        pa.field("exch_ts", pa.int64(), nullable=False),
        pa.field("local_ts", pa.int64(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("px", pa.float64(), nullable=False),
        pa.field("qty", pa.float64(), nullable=False),
        pa.field("px2", pa.float64(), nullable=False),
        pa.field("qty2", pa.float64(), nullable=False),
        pa.field("kind", pa.uint8(), nullable=False),
        pa.field("side", pa.int8(), nullable=False),
        pa.field("flags", pa.uint16(), nullable=False),
        pa.field("level", pa.int32(), nullable=False),
    ]
)

assert [f.name for f in ARROW_SCHEMA] == list(EVENT_DTYPE.names or ())


def empty(n: int) -> np.ndarray:
    """A zeroed event array of length ``n`` (level = -1)."""
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["level"] = -1
    return ev
