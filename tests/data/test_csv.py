"""Exact ``FILE:LINE`` in the counters after rows the CSV parser rejects (too few / too many fields).

The shared CSV loop (``csv.csv_batches``) numbers the rows of each Arrow batch; a rejected row
is not in any batch, so it must still be counted as a line, wherever it falls (first data row, runs
of them, a block of nothing else, at a read-block boundary, the last line), in plain and gzip files,
with and without a header. The trade id of every row here is its line number, so ``seq == lines``
checks every kept row's line, not only the few noted examples.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from avmm.data import store
from avmm.data.convert import convert
from avmm.data.csv import csv_batches
from avmm.data.issues import Counters
from avmm.data.readers.binance_archive import read_binance_archive
from avmm.data.readers.tardis import read_tardis
from avmm.errors import UserError
from tests.builders import QUOTES_HDR, TRADES_HDR, assert_one_line_error, quote_rows, write_lines

T0 = 1_600_000_000_000_000  # µs


def trade(line: int, price: str = "100.5", amount: str = "0.1", t: int | None = None) -> str:
    """A tardis trade row whose id is ``line`` (its line number in the file)."""
    t = T0 + line * 1000 if t is None else t
    return f"binance-futures,BTCUSDT,{t},{t + 50},{line},{'buy' if line % 2 else 'sell'},{price},{amount}"


def short(line: int) -> str:
    return f"binance-futures,BTCUSDT,{T0 + line * 1000},{T0}"  # 4 of 8 fields


def long(line: int) -> str:
    return trade(line) + ",extra"  # 9 of 8 fields


def read(path: Path, reader=read_tardis, **kw):
    c = Counters()
    evs, lines = [], []
    for ev, ln, _ in reader(path, c, **kw):
        evs.append(ev)
        lines.append(ln)
    ev = np.concatenate(evs) if evs else np.empty(0)
    return ev, (np.concatenate(lines).tolist() if lines else []), c


def at(name: str, notes: list[str]) -> list[str]:
    """``FILE:LINE`` of each note (the CSV notes go on with the field count and the text)."""
    out = []
    for n in notes:
        assert n.startswith(name + ":"), n
        out.append(name + ":" + n[len(name) + 1 :].split(":", 1)[0])
    return out


# ---------------------------------------------------------------- the reported case
def test_bad_value_after_rejected_row_has_its_own_line(tmp_path):
    f = write_lines(tmp_path / "t.csv", [TRADES_HDR, trade(2), short(3), trade(4, price="abc"), trade(5)])
    ev, lines, c = read(f)
    assert c.issues == {"truncated_line": 1, "non_numeric": 1}
    assert c.notes["non_numeric"] == ["t.csv:4"]  # was t.csv:3
    assert at("t.csv", c.notes["truncated_line"]) == ["t.csv:3"]
    assert lines == [2, 5] and ev["seq"].tolist() == lines


# ---------------------------------------------------------------- every position, every block size
def _mixed_file() -> tuple[list[str], dict[str, list[int]], list[int]]:
    """Rows with rejected and bad rows everywhere; returns (lines, bad lines by kind, good lines)."""
    rows = [TRADES_HDR]
    bad: dict[str, list[int]] = {}

    def add(kind: str | None, row: str) -> None:
        rows.append(row)
        if kind:
            bad.setdefault(kind, []).append(len(rows))

    def ln() -> int:
        return len(rows) + 1

    add("truncated_line", short(ln()))  # 2: the first data row
    add(None, trade(ln()))
    add("truncated_line", short(ln()))  # two in a row
    add("truncated_line", short(ln()))
    add("non_numeric", trade(ln(), price="abc"))  # right after them
    add(None, trade(ln()))
    add("malformed_row", long(ln()))
    add("non_positive_size", trade(ln(), amount="-1"))
    add("malformed_row", long(ln()))
    add("truncated_line", short(ln()))  # a long row then a short one
    add("non_finite_price", trade(ln(), price="nan"))
    for _ in range(7):
        add(None, trade(ln()))
    for _ in range(8):  # a run longer than a small read block: batches with no row at all
        add("malformed_row", long(ln()))
    add("bad_timestamp", trade(ln(), t=0))
    for _ in range(30):
        add(None, trade(ln()))
    add("non_numeric", trade(ln(), amount=""))
    add(None, trade(ln()))
    add("truncated_line", short(ln()))  # the last line, cut (written without a newline)
    good = [i for i in range(2, len(rows) + 1) if not any(i in v for v in bad.values())]
    return rows, bad, good


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("block_size", [128, 150, 173, 211, 256, 307, 401, 512, 1000, 1 << 22])
def test_lines_exact_after_rejected_rows(tmp_path, gz, block_size):
    rows, bad, good = _mixed_file()
    name = "t.csv.gz" if gz else "t.csv"
    f = write_lines(tmp_path / name, rows, end=False)
    ev, lines, c = read(f, block_size=block_size)
    assert c.issues == {k: len(v) for k, v in bad.items()}
    for k, v in bad.items():
        want = [f"{name}:{i}" for i in v[:5]]
        got = at(name, c.notes[k]) if k in ("truncated_line", "malformed_row") else c.notes[k]
        assert got == want, k
    assert lines == good and ev["seq"].tolist() == good


def test_crlf_line_endings(tmp_path):
    rows, bad, good = _mixed_file()
    f = write_lines(tmp_path / "t.csv", rows, newline="\r\n")
    ev, lines, c = read(f, block_size=200)
    assert c.issues == {k: len(v) for k, v in bad.items()}
    assert c.notes["non_numeric"] == [f"t.csv:{i}" for i in bad["non_numeric"]]
    assert at("t.csv", c.notes["malformed_row"]) == [f"t.csv:{i}" for i in bad["malformed_row"][:5]]
    assert lines == good and ev["seq"].tolist() == good


def test_rejected_row_note_keeps_field_count_and_text(tmp_path):
    f = write_lines(tmp_path / "t.csv", [TRADES_HDR, trade(2), "binance-futures,BTCUSDT,1", trade(4)])
    _, lines, c = read(f)
    assert c.notes["truncated_line"] == ["t.csv:3: 3 fields: 'binance-futures,BTCUSDT,1'"]
    assert lines == [2, 4]


def test_csv_batches_first_line_per_batch(tmp_path):
    """The contract itself: row i of a yielded batch is line first + i."""
    rows, bad, good = _mixed_file()
    f = write_lines(tmp_path / "t.csv", rows, end=False)
    for bs in (128, 173, 1 << 22):
        c = Counters()
        seen = []
        for batch, first in csv_batches(f, c, include=["id"], block_size=bs):
            ids = [int(x) for x in batch.column("id").to_pylist()]
            assert ids == list(range(first, first + batch.num_rows))
            seen += ids
        rejected = sorted(bad["truncated_line"] + bad["malformed_row"])
        assert seen == [i for i in range(2, len(rows) + 1) if i not in rejected]
        assert c.issues == {"truncated_line": len(bad["truncated_line"]), "malformed_row": len(bad["malformed_row"])}


# ---------------------------------------------------------------- through convert
def test_convert_summary_and_store(tmp_path):
    f = write_lines(
        tmp_path / "t.csv.gz",
        [
            TRADES_HDR,
            trade(2),
            short(3),
            long(4),
            short(5),
            trade(6, price="x"),
            trade(7),
            trade(8, price="0"),
            long(9),
            trade(10),
        ],
    )
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"truncated_line": 2, "malformed_row": 2, "non_numeric": 1, "non_positive_price": 1}
    assert at(f.name, s.notes["truncated_line"]) == ["t.csv.gz:3", "t.csv.gz:5"]
    assert at(f.name, s.notes["malformed_row"]) == ["t.csv.gz:4", "t.csv.gz:9"]
    assert s.notes["non_numeric"] == ["t.csv.gz:6"] and s.notes["non_positive_price"] == ["t.csv.gz:8"]
    assert store.read_meta(tmp_path / "o.parquet")["counters"] == s.issues
    ev = store.read_events(tmp_path / "o.parquet")
    assert ev["seq"].tolist() == [2, 7, 10]


def test_error_line_after_rejected_rows(tmp_path, run_cli):
    t = [T0 + i * 1_000_000 for i in range(12)]  # 1 s apart
    rows = [
        TRADES_HDR,
        trade(2, t=t[0]),
        short(3),
        long(4),
        trade(5, t=t[3]),
        trade(6, t=t[4]),
        trade(7, t=t[5]),
        trade(8, t=t[0]),
    ]  # line 8 goes back 5 s: beyond the 1 s window
    f = write_lines(tmp_path / "t.csv", rows)
    with pytest.raises(UserError, match=r"t\.csv:8: local timestamp goes back"):
        convert([f], tmp_path / "o.parquet")
    r = run_cli("data", "convert", str(f), "-o", str(tmp_path / "o2.parquet"))
    assert r.returncode == 2 and "t.csv:8: local timestamp goes back" in r.stderr, r.stderr


# ---------------------------------------------------------------- Binance archive (same loop)
def _archive_rows(header: bool) -> tuple[list[str], list[int]]:
    t0 = 1_700_000_000_000  # ms

    def row(line, price="42000.5"):
        return f"{line},{price},0.01,420.005,{t0 + line},{'true' if line % 2 else 'false'},true"

    rows = ["id,price,qty,quote_qty,time,is_buyer_maker,is_best_match"] if header else []
    off = len(rows)
    body = [
        row(1 + off),
        "2,42000.5",
        row(3 + off, price="x"),
        row(4 + off) + ",1,2",
        row(5 + off),
        row(6 + off, price="-1"),
    ]
    body += [row(i + off) for i in range(7, 40)]
    rows += body
    good = [i + off for i in [1, 5] + list(range(7, 40))]
    return rows, good


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("container", ["csv", "zip"])
@pytest.mark.parametrize("block_size", [128, 333, 1 << 22])
def test_binance_archive_lines(tmp_path, header, container, block_size):
    rows, good = _archive_rows(header)
    o = 1 if header else 0
    csv_name = "BTCUSDT-trades-2024-01-01.csv"
    text = "\n".join(rows) + "\n"
    if container == "zip":
        f = tmp_path / "BTCUSDT-trades-2024-01-01.zip"
        with zipfile.ZipFile(f, "w") as z:
            z.writestr(csv_name, text)
    else:
        f = tmp_path / csv_name
        f.write_text(text)
    ev, lines, c = read(f, reader=read_binance_archive, block_size=block_size)
    assert c.issues == {"truncated_line": 1, "malformed_row": 1, "non_numeric": 1, "non_positive_price": 1}
    n = f.name
    assert at(n, c.notes["truncated_line"]) == [f"{n}:{2 + o}"]
    assert at(n, c.notes["malformed_row"]) == [f"{n}:{4 + o}"]
    assert c.notes["non_numeric"] == [f"{n}:{3 + o}"]
    assert c.notes["non_positive_price"] == [f"{n}:{6 + o}"]
    assert lines == good and ev["seq"].tolist() == good


# ---------------------------------------------------------------- LOBSTER (same loop)
def test_lobster_cut_last_line_noted_at_its_line(tmp_path):
    base = tmp_path / "TEST_2012-06-21_34200000_57600000"
    n = 20
    msg = [
        f"{34200 + i},{4 if i % 3 == 0 else 1},{1000 + i},10,{1000000 + i * 100},{1 if i % 2 else -1}" for i in range(n)
    ]
    ob = [f"{1010000 + i * 100},5,{1000000 + i * 100},7" for i in range(n + 1)]
    m = Path(str(base) + "_message_1.csv")
    o = Path(str(base) + "_orderbook_1.csv")
    m.write_text("Time,Type,OrderId,Size,Price,Direction\n" + "\n".join(msg) + "\n34300,4,99")
    o.write_text("\n".join(ob) + "\n")
    s = convert([m], tmp_path / "o.parquet")
    assert s.issues == {"truncated_line": 1, "unpaired_row": 1}
    assert at(m.name, s.notes["truncated_line"]) == [f"{m.name}:22"]  # header + 20 rows + the cut one


# ---------------------------------------------------------------- a cut last line (tardis)
def test_truncated_last_line(tmp_path):
    f = write_lines(tmp_path / "q.csv", [QUOTES_HDR] + quote_rows(10) + ["x,BTCUSDT,1600000000010000,16000"], end=False)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"truncated_line": 1} and s.rows == 10


# ---------------------------------------------------------------- bytes that are not UTF-8, files without rows


@pytest.mark.parametrize("bad", [b"x,BTC\xe9USDT", b"\x80\x81\xfe\xff" * 40])
def test_latin1_or_binary_rows_are_one_line_and_stderr_stays_ours(tmp_path, run_cli, bad):
    """A Latin-1 symbol, a row of binary garbage: one line naming the file (before: Arrow printed an
    "Exception ignored ... UnicodeDecodeError" traceback on stderr, or the message held raw bytes)."""
    rows = "\n".join(quote_rows(3)).encode()
    f = tmp_path / "q.csv"
    f.write_bytes(QUOTES_HDR.encode() + b"\n" + rows + b"\n" + bad + b",1,2,3\n")
    r = run_cli("data", "convert", f, "-o", tmp_path / "o.parquet")
    assert_one_line_error(r, "q.csv")
    assert r.stderr.isascii() and "Exception ignored" not in r.stderr


@pytest.mark.parametrize("text", ["", QUOTES_HDR + "\n", QUOTES_HDR + "\n\n\n"])
def test_header_without_rows_is_zero_events_with_a_note(tmp_path, text):
    f = tmp_path / "q.csv"
    f.write_text(text)
    if not text:  # an empty file: not a tardis file by its (missing) header, unless told
        with pytest.raises(UserError, match="cannot detect the format"):
            convert([f], tmp_path / "o.parquet")
        s = convert([f], tmp_path / "o.parquet", fmt="tardis")
        assert s.rows == 0 and s.issues == {"empty_file": 1} and s.notes["empty_file"] == ["q.csv:1: no data rows"]
        return
    s = convert([f], tmp_path / "o.parquet")
    assert s.rows == 0 and s.issues == {"empty_file": 1} and s.notes["empty_file"] == ["q.csv:2: no data rows"]
