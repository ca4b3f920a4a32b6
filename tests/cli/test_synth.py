"""`avmm data synth` under hostile numbers and outputs: one line naming the option and exit 2,
checked before any work; the disk space checked up front; a failed run leaves neither a partial
store nor a temp file, and the previous store untouched."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from tests.cli.mounts import listing, tmpfs


def _one_line(code: int, err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--events", "99999999999999999999"], ["--events 99999999999999999999:", "past the int64 ns clock"]),
        (["--events", "1000", "--quote-rate", "1e-9", "--trade-rate", "1e-9"], ["span 2.1e+04 years"]),
        (["--events", "0"], ["--events"]),
        (["--seed", "-1"], ["--seed"]),
        (["--mid", "1e308"], ["--mid must be between 1e-09 and 1e+12, got 1e+308"]),
        (["--mid", "1e11", "--tick", "1e-6"], ["--mid / tick must be below 2**52"]),
        (["--tick", "0"], ["--tick must be positive, got 0"]),
        (["--lot", "-1"], ["--lot must be positive"]),
        (["--sigma", "nan"], ["--sigma must be >= 0, got nan"]),
        (["--quote-rate", "inf"], ["--quote-rate must be positive"]),
        (["--k", "1e308"], ["--k must be between"]),
    ],
)
def test_numbers_at_their_limits(run_main, tmp_path, argv, needles):
    out = tmp_path / "s.parquet"
    code, _, err = run_main("data", "synth", "-o", out, *argv)
    _one_line(code, err, *needles)
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    "target, needle",
    [("folder", "is a folder"), ("missing", "does not exist"), ("device", "not a regular file")],
)
def test_bad_output_refused_up_front(run_main, tmp_path, target, needle):
    if target == "device" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    out = {"folder": tmp_path, "missing": tmp_path / "no" / "s.parquet", "device": "/dev/full"}[target]
    code, _, err = run_main("data", "synth", "-o", out, "--events", "1000")
    _one_line(code, err, f"-o {out}", needle)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode) if os.path.exists("/dev/full") else True


def test_disk_space_checked_up_front(run_main, tmp_path):
    with tmpfs(tmp_path / "small", "1m") as d:
        code, _, err = run_main("data", "synth", "-o", d / "s.parquet", "--events", "100000")
        line = _one_line(code, err, f"-o {d / 's.parquet'}: needs about 6.9 MiB of disk", "lower --events")
        assert "1.0 MiB free" in line
        assert listing(d) == []


def test_full_disk_mid_write_leaves_nothing(run_main, tmp_path, monkeypatch):
    """The estimate passes but the disk fills up while writing: one line, no partial store, no
    temp file, and the previous store kept."""
    import avmm.outputs

    monkeypatch.setattr(avmm.outputs, "check_space", lambda *a, **k: None)
    with tmpfs(tmp_path / "small", "1m", {"s.parquet": b"previous store"}) as d:
        code, _, err = run_main("data", "synth", "-o", d / "s.parquet", "--events", "100000")
        _one_line(code, err, "cannot write (no space left on the device); nothing was written")
        assert listing(d) == ["s.parquet"] and (d / "s.parquet").read_bytes() == b"previous store"


def test_error_at_the_writer_leaves_nothing(run_main, tmp_path, monkeypatch):
    """The same without a mount: an ENOSPC injected after the writer has written part of its file."""
    import avmm.data.store as store

    real = store.write_events

    def failing(path, chunks, meta, **kw):
        def some():
            for i, ch in enumerate(chunks):
                if i == 1:
                    raise OSError(errno.ENOSPC, "No space left on device")
                yield ch

        return real(path, some(), meta, **kw)

    monkeypatch.setattr(store, "write_events", failing)
    out = tmp_path / "s.parquet"
    out.write_bytes(b"previous store")
    code, _, err = run_main("data", "synth", "-o", out, "--events", "3000000")
    _one_line(code, err, f"-o {out}: cannot write (no space left on the device)")
    assert listing(tmp_path) == ["s.parquet"] and out.read_bytes() == b"previous store"


def test_store_written_and_named(run_main, tmp_path):
    out = tmp_path / "s.parquet"
    code, stdout, err = run_main("data", "synth", "-o", out, "--events", "2000", "--seed", "99999999999999999999")
    assert code == 0, err
    assert "wrote 2,000 synthetic events" in stdout and listing(tmp_path) == ["s.parquet"]
