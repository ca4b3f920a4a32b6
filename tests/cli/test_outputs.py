"""``avmm.outputs``: complete or nothing, never a truncated or clobbered file, one line for every
failure -- a full disk, a read-only folder, a folder or an input as the output -- and a device
(``/dev/full``, ``/dev/null``) written in place, never replaced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from avmm.errors import UserError, require_memory, size_text
from avmm.outputs import atomic_output, check_output, check_space, kept, write_text
from tests.cli.mounts import listing, tmpfs


def _is_device(p: str) -> bool:
    return stat.S_ISCHR(os.stat(p).st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_dev_full_is_one_line_and_stays_a_device():
    with pytest.raises(UserError, match="no space left") as ei:
        write_text("/dev/full", "x" * 100_000, "--json")
    assert str(ei.value).startswith("--json /dev/full: cannot write")
    assert _is_device("/dev/full")  # written in place: the device node was not renamed over
    assert not [n for n in os.listdir("/dev") if n.startswith(".full")]


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_dev_null_is_written_in_place():
    write_text("/dev/null", "hello", "--json")
    assert _is_device("/dev/null")
    assert Path("/dev/null") in kept()


def test_symlink_is_followed_not_replaced(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    write_text(link, "new", "--json")
    assert link.is_symlink() and target.read_text() == "new"


def test_error_at_the_writer_leaves_the_old_file(tmp_path):
    out = tmp_path / "out.json"
    out.write_text("previous run")
    with pytest.raises(UserError, match="no space left"), atomic_output(out, "--json") as tmp:
        tmp.write_text("half")
        raise OSError(28, "No space left on device")
    assert out.read_text() == "previous run"
    assert listing(tmp_path) == ["out.json"]


def test_interrupt_leaves_nothing(tmp_path):
    out = tmp_path / "out.json"

    class Stop(BaseException):
        pass

    with pytest.raises(Stop), atomic_output(out, "--json") as tmp:
        tmp.write_text("half")
        raise Stop
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    "case, needle",
    [("folder", "is a folder"), ("input", "is one of the inputs"), ("missing", "does not exist")],
)
def test_checks_up_front(tmp_path, case, needle):
    inp = tmp_path / "in.parquet"
    inp.write_bytes(b"data")
    path = {"folder": tmp_path, "input": tmp_path / "." / "in.parquet", "missing": tmp_path / "no" / "x"}[case]
    with pytest.raises(UserError, match=needle) as ei:
        check_output(path, "-o", [inp])
    assert "\n" not in str(ei.value) and str(ei.value).startswith("-o ")
    assert inp.read_bytes() == b"data"


def test_full_tmpfs_keeps_the_old_file(tmp_path):
    with tmpfs(tmp_path / "small", "64k", {"out.json": b"previous run"}) as d:
        with pytest.raises(UserError, match="no space left"):
            write_text(d / "out.json", "x" * 200_000, "--json")
        assert (d / "out.json").read_bytes() == b"previous run"
        assert listing(d) == ["out.json"]


def test_read_only_mount_is_refused_up_front(tmp_path):
    with tmpfs(tmp_path / "ro", "64k", {"out.json": b"previous run"}, ro=True) as d:
        with pytest.raises(UserError, match="not writable"):
            write_text(d / "out.json", "new", "--json")
        assert (d / "out.json").read_bytes() == b"previous run"


def test_check_space(tmp_path):
    check_space(tmp_path / "x", 1, "-o")
    with pytest.raises(UserError, match="needs about 8192 PiB") as ei:
        check_space(tmp_path / "x", 2.0**63, "-o", "lower --events")
    assert str(ei.value).startswith(f"-o {tmp_path / 'x'}: needs about ")


def test_require_memory():
    require_memory(1024, "--paths 1")
    with pytest.raises(UserError) as ei:
        require_memory(2.0**70, "--paths 100000000")
    msg = str(ei.value)
    assert msg.startswith("needs 1e+06 PiB for --paths 100000000 (this machine has ") and msg.endswith("; lower it")


def test_size_text():
    assert size_text(512) == "512 bytes"
    assert size_text(1.5 * 2**20) == "1.5 MiB"
    assert size_text(149 * 2**30) == "149 GiB"


def test_temp_of_a_writer_that_writes_atomically_itself_is_removed(tmp_path):
    """A writer given the temp path that itself writes ``.{name}.PID.tmp`` beside it (the event
    store does) and is stopped before its own cleanup: nothing is left."""
    out = tmp_path / "s.parquet"

    class Stop(BaseException):
        pass

    with pytest.raises(Stop), atomic_output(out, "-o") as tmp:
        (tmp.parent / f".{tmp.name}.{os.getpid()}.tmp").write_bytes(b"inner, half written")
        raise Stop
    assert listing(tmp_path) == []
