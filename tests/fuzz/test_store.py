"""Fuzz target for the event store's readers (``avmm.data.store``, ``avmm data inspect``, the
backtest's column reader): a small valid store, damaged -- bytes flipped anywhere (footer, pages,
metadata), cut short, extended, its avmm metadata replaced by hostile JSON, its rows shuffled,
nulled or given hostile times. The promise: every reader returns or raises ``UserError`` (one
line naming the file) -- never another exception, never a hang.

Profiles as the other fuzz targets (``conftest.py``): ``ci`` in the default suite, ``fuzz`` for
``make fuzz``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import event, given
from hypothesis import strategies as st

from avmm.data import inspect, store, synth
from avmm.errors import UserError
from avmm.events import ARROW_SCHEMA, EVENT_DTYPE
from tests.fuzz.hostile import fuzz_settings, time_limit

_EV = np.concatenate(list(synth.generate(600, 5)))
_META = {"symbol": "X", "source": "fuzz", "tick_size": 0.01, "lot_size": 0.001, "schema_version": 1}
HOSTILE_JSON = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'"x"',
    b"\xff\xfe",
    b'{"schema_version": 2}',
    b'{"schema_version": "1"}',
    b'{"schema_version": 1, "rows": -1}',
    b'{"schema_version": 1, "rows": 1e400}',
    b'{"schema_version": 1, "tick_size": NaN}',
    b'{"schema_version": 1, "start_ns": 99999999999999999999999}',
    b'{"schema_version": 1, "counters": [1]}',
    b"[" * 100_000,
]
I64 = st.integers(-(2**63), 2**63 - 1)


def _table(ev: np.ndarray, null_col: str | None, null_row: int) -> pa.Table:
    arrays = []
    for f in ARROW_SCHEMA:
        mask = (np.arange(len(ev)) == null_row) if f.name == null_col else None
        arrays.append(pa.array(ev[f.name], mask=mask))
    fields = [pa.field(f.name, f.type, nullable=null_col is not None) for f in ARROW_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


@st.composite
def damaged_store(draw: st.DrawFn, d: Path) -> Path:
    ev = _EV.copy()
    if draw(st.booleans(), label="hostile times"):
        k = draw(st.integers(0, 20), label="rows changed")
        for _ in range(k):
            i = draw(st.integers(0, len(ev) - 1))
            ev["local_ts" if draw(st.booleans()) else "exch_ts"][i] = draw(I64)
    if draw(st.booleans(), label="swap rows"):
        i, j = draw(st.integers(0, len(ev) - 1)), draw(st.integers(0, len(ev) - 1))
        ev[[i, j]] = ev[[j, i]]
    null_col = draw(st.one_of(st.none(), st.sampled_from(EVENT_DTYPE.names)), label="null column")
    t = _table(ev, null_col, draw(st.integers(0, len(ev) - 1)))
    meta = dict(_META, rows=len(ev), start_ns=int(ev["local_ts"][0]), end_ns=int(ev["local_ts"][-1]))
    raw = draw(st.one_of(st.just(json.dumps(meta).encode()), st.sampled_from(HOSTILE_JSON)), label="meta")
    t = t.replace_schema_metadata({b"avmm": raw})
    p = d / "s.parquet"
    pq.write_table(t, str(p), row_group_size=draw(st.sampled_from([50, 200, 10_000])), write_page_checksum=True)
    data = bytearray(p.read_bytes())
    for _ in range(draw(st.integers(0, 4), label="byte edits")):
        where = draw(st.one_of(st.integers(0, len(data) - 1), st.integers(max(0, len(data) - 300), len(data) - 1)))
        data[where] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))), label="cut at")
    if cut is not None:
        data = data[:cut]
    data += draw(st.sampled_from([b"", b"PAR1", b"\x00" * 10]), label="appended")
    p.write_bytes(bytes(data))
    return p


def _readers(p: Path) -> list:
    from avmm.backtest.runner import _read_columns

    return [
        lambda: store.read_meta(p),
        lambda: sum(len(c) for c in store.iter_events(p, 100)),
        lambda: inspect.format_report(inspect.inspect_store(p, chunk_events=100)),
        lambda: sum(len(c.local_ts) for c in _read_columns(p, 100)),
        lambda: sum(len(c) for c in store.iter_events(p, 100, start_ns=int(_EV["local_ts"][300]))),
    ]


@fuzz_settings
@given(st.data())
def test_fuzz_store_readers(data):
    with tempfile.TemporaryDirectory() as d:
        p = data.draw(damaged_store(Path(d)), label="store")
        for i, read in enumerate(_readers(p)):
            with time_limit():
                try:
                    read()
                except UserError as e:
                    msg = str(e)
                    assert msg.startswith(str(p)) and "\n" not in msg, msg
                    event(f"reader {i} error: {msg.split(': ', 1)[-1][:30]}")
                    continue
            event(f"reader {i} ok")
