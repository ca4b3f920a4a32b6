"""Hostile but structured inputs for the fuzz targets: real-looking rows, mutated.

``mutate_lines`` draws edits of a list of lines (drop, duplicate, swap, cut short, a field replaced
by a hostile value, a field added or removed, bytes that are not UTF-8, shuffled order);
``pack`` draws how the file is stored (plain, gzip, gzip cut short, zip, zip cut short or
damaged); ``outcome`` runs the convert in this process and checks the promise: it returns, or it
raises ``UserError`` -- never another exception, never a hang (``time_limit``).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import signal
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import event, settings
from hypothesis import strategies as st

from avmm.data.convert import convert
from avmm.errors import UserError

# the profile registered in conftest.py: "ci" unless HYPOTHESIS_PROFILE names another
fuzz_settings = settings(settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci")))
EXAMPLE_LIMIT_S = 30  # a convert of these few rows that takes longer than this has hung

NUMBERS = [
    "",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "-1e308",
    "1e400",
    "-0",
    "-0.0",
    "0",
    "-1",
    "99999999999999999999",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "1.5e15",
    "0x10",
    "1_000",
    "abc",
    '"',
    "true",
    "null",
    "[]",
    "{}",
]
hostile_number = st.one_of(
    st.sampled_from(NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
garbage = st.one_of(
    st.binary(min_size=1, max_size=40),
    st.sampled_from([b"\xe9", b"\xff\xfe", b"\x00", b"\x80abc", b"caf\xe9", b"\r", b'"', b"\xef\xbb\xbf"]),
)


class TimedOut(Exception):
    """The per-example time limit passed: the convert hung."""


@contextmanager
def time_limit(seconds: float = EXAMPLE_LIMIT_S) -> Iterator[None]:
    """Raise ``TimedOut`` in the main thread when the block takes longer than ``seconds``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimedOut(f"no result after {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _replace_field(line: bytes, data: st.DataObject, sep: bytes) -> bytes:
    parts = line.split(sep)
    i = data.draw(st.integers(0, len(parts) - 1), label="field")
    how = data.draw(st.sampled_from(["number", "garbage", "drop", "add"]), label="field edit")
    if how == "number":
        parts[i] = data.draw(hostile_number, label="value").encode()
    elif how == "garbage":
        parts[i] = data.draw(garbage, label="bytes")
    elif how == "drop" and len(parts) > 1:
        del parts[i]
    else:
        parts.insert(i, data.draw(hostile_number, label="extra").encode())
    return sep.join(parts)


_JSON_VALUE = re.compile(rb'("[A-Za-z]+":)("[^"]*"|-?[0-9.eE+-]+|true|false|null)')


def _replace_json_value(line: bytes, data: st.DataObject) -> bytes:
    """A value of a JSON line replaced by a hostile number (quoted or not) or garbage."""
    spots = list(_JSON_VALUE.finditer(line))
    if not spots:
        return _replace_field(line, data, b" ")
    m = data.draw(st.sampled_from(spots), label="json key")
    v = data.draw(hostile_number, label="json value").encode()
    style = data.draw(st.sampled_from(["bare", "quoted", "garbage"]), label="json style")
    new = v if style == "bare" else b'"' + v + b'"' if style == "quoted" else data.draw(garbage)
    return line[: m.start(2)] + new + line[m.end(2) :]


def mutate_lines(lines: list[bytes], data: st.DataObject, json: bool = False, keep_first: int = 0) -> list[bytes]:
    """A few edits of ``lines`` (the first ``keep_first`` -- a header -- untouched, unless the edit
    is to drop everything after it)."""
    lines = list(lines)
    n_edits = data.draw(st.integers(0, 6), label="edits")
    for _ in range(n_edits):
        body = len(lines) - keep_first
        if body <= 0:
            break
        i = keep_first + data.draw(st.integers(0, body - 1), label="line")
        op = data.draw(
            st.sampled_from(["field", "field", "field", "drop", "dup", "swap", "cut", "garbage", "shuffle", "empty"]),
            label="op",
        )
        if op == "field":
            lines[i] = _replace_json_value(lines[i], data) if json else _replace_field(lines[i], data, b",")
        elif op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = keep_first + data.draw(st.integers(0, body - 1), label="other line")
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "cut":
            lines[i] = lines[i][: data.draw(st.integers(0, max(len(lines[i]) - 1, 0)), label="cut at")]
        elif op == "garbage":
            lines.insert(i, data.draw(garbage, label="garbage line"))
        elif op == "shuffle":
            tail = lines[i:]
            lines[i:] = data.draw(st.permutations(tail), label="shuffled")
        else:
            lines = lines[:keep_first]
    return lines


def pack(path: Path, text: bytes, data: st.DataObject, zip_ok: bool = False) -> Path:
    """Write ``text`` to ``path`` as drawn: plain, gzip (``.gz``), a gzip cut short, or (archives)
    a zip, a zip cut short or damaged. Returns the path written."""
    how = data.draw(
        st.sampled_from(["plain", "plain", "gzip", "gzip-cut"] + (["zip", "zip-cut", "zip-damaged"] if zip_ok else [])),
        label="packing",
    )
    if how == "plain":
        path.write_bytes(text)
        return path
    if how.startswith("gzip"):
        z = gzip.compress(text)
        if how == "gzip-cut":
            z = z[: data.draw(st.integers(0, max(len(z) - 1, 0)), label="gzip cut")]
        p = path.with_name(path.name + ".gz") if not zip_ok else path
        p.write_bytes(z)
        return p
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.with_suffix(".csv").name, text)
    z = buf.getvalue()
    if how == "zip-cut":
        z = z[: data.draw(st.integers(0, max(len(z) - 1, 0)), label="zip cut")]
    elif how == "zip-damaged":
        i = data.draw(st.integers(0, max(len(z) - 1, 0)), label="zip damage at")
        z = z[:i] + data.draw(st.binary(min_size=1, max_size=16), label="zip damage") + z[i + 16 :]
    p = path.with_suffix(".zip")
    p.write_bytes(z)
    return p


def outcome(sources: list[Path], out: Path, **kw: object) -> str:
    """Run the convert in this process: ``"ok"`` or ``"error"`` (a ``UserError``, one line, naming
    something); any other exception, or a hang, fails the test."""
    out.unlink(missing_ok=True)
    with time_limit():
        try:
            convert(sources, out, **kw)  # type: ignore[arg-type]
        except UserError as e:
            msg = str(e)
            assert msg and "\n" not in msg, msg
            event(f"error: {msg.split(': ', 1)[-1][:40]}")
            return "error"
    event("ok")
    return "ok"
