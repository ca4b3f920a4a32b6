"""`avmm replicate as2008 | glft`: the JSON and the figure, bad arguments, a missing extra."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avmm.cli.replicate import app
from avmm.replicate.as2008 import ROW_KEYS as AS2008_ROW_KEYS
from avmm.replicate.as2008 import run_as2008
from avmm.replicate.glft import run_glft


class TestAS2008:
    def test_cli_writes_json_and_plot(self, tmp_path):
        jp, pp = tmp_path / "as.json", tmp_path / "as.png"
        res = CliRunner().invoke(
            app,
            [
                "as2008",
                "--paths",
                "50",
                "--gamma",
                "0.1",
                "--gamma",
                "1",
                "--seed",
                "5",
                "--json",
                str(jp),
                "--plot",
                str(pp),
            ],
        )
        assert res.exit_code == 0, res.output
        assert "inventory" in res.output and "symmetric" in res.output
        doc = json.loads(jp.read_text())
        assert doc["parameters"]["paths"] == 50 and doc["parameters"]["gammas"] == [0.1, 1.0]
        assert [(r["gamma"], r["strategy"]) for r in doc["rows"]] == [
            (0.1, "inventory"),
            (0.1, "symmetric"),
            (1.0, "inventory"),
            (1.0, "symmetric"),
        ]
        assert all(tuple(r) == AS2008_ROW_KEYS for r in doc["rows"])
        assert doc["rows"] == run_as2008(paths=50, seed=5, gammas=(0.1, 1.0)).rows
        assert pp.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_cli_bad_arguments_exit_2(self, tmp_path, run_main):
        for argv in (
            ["--paths", "0"],
            ["--gamma", "0"],
            ["--json", str(tmp_path / "no" / "x.json")],
            ["--plot", str(tmp_path)],
        ):
            code, _, err = run_main("replicate", "as2008", *argv)
            assert code == 2
            assert err.startswith("avmm") and "error: " in err and err.count("\n") == 1, err


class TestGLFT:
    def test_cli_writes_json_and_plot(self, tmp_path):
        jp, pp = tmp_path / "glft.json", tmp_path / "glft.png"
        res = CliRunner().invoke(app, ["glft", "--q-max", "10", "--json", str(jp), "--plot", str(pp)])
        assert res.exit_code == 0, res.output
        assert "max |exact - approx|" in res.output
        doc = json.loads(jp.read_text())
        assert doc["parameters"]["Q"] == 10 and len(doc["rows"]) == 21
        assert doc["rows"][0]["ask_exact"] is None and doc["rows"][-1]["bid_exact"] is None
        assert doc["rows"] == run_glft(Q=10).rows
        assert pp.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_cli_bad_arguments_exit_2(self, tmp_path, run_main):
        bad = (["-Q", "0"], ["--json", str(tmp_path / "no" / "x.json")], ["--plot", str(tmp_path)])
        for argv in bad:
            code, _, err = run_main("replicate", "glft", *argv)
            assert code == 2
            assert err.startswith("avmm") and "error: " in err and err.count("\n") == 1, err


# matplotlib and plotly made unimportable before the console entry point runs
WITHOUT_PLOTTING = """
import sys
sys.modules["matplotlib"] = None
sys.modules["plotly"] = None
sys.argv = ["avmm", *sys.argv[1:]]
from avmm.cli import main
main()
"""


def test_missing_optional_dependency_is_one_line_exit_2(tmp_path):
    png = tmp_path / "x.png"
    r = subprocess.run(
        [sys.executable, "-c", WITHOUT_PLOTTING, "replicate", "as2008", "--paths", "10", "--plot", str(png)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("avmm: error: ") and "matplotlib" in lines[0]
    assert "pip install 'avmm[report]'" in lines[0]
    assert not png.exists()


# --- numbers at their limits and outputs ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["as2008", "--paths", "100000000"], "needs 340 GiB for --paths 100000000 (this machine has "),
        (["as2008", "--paths", "99999999999999999999"], "PiB for --paths 99999999999999999999"),
        (["as2008", "--paths", "10", "--gamma", "1e308"], "gamma must be a number > 0 and <= 1e+06, got 1e+308"),
        (["glft", "-Q", "100000000"], "needs 1137 PiB for --q-max 100000000"),
        (["glft", "-Q", "99999999999999999999"], "for --q-max 99999999999999999999"),
    ],
)
def test_memory_checked_up_front(run_main, argv, needle):
    """Sizes the machine cannot hold are one line naming the need and the option, before any
    allocation -- never a MemoryError or numpy's 'Maximum allowed size exceeded'; a gamma whose
    spread overflows is refused by name, not as 'the symmetric strategy needs a spread > 0'."""
    code, out, err = run_main("replicate", *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("avmm: error: "), err
    assert needle in lines[0] and (lines[0].endswith("; lower it") or "gamma" in needle), lines[0]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_full_disk_is_one_line(run_main):
    code, _, err = run_main("replicate", "glft", "-Q", "5", "--json", "/dev/full")
    assert code == 2 and err.strip().splitlines()[-1] == (
        "avmm: error: --json /dev/full: cannot write (no space left on the device); nothing was written"
    )
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # the device was not renamed over


def test_failed_plot_keeps_the_previous_file(run_main, monkeypatch, tmp_path):
    """An error at the writer half-way through the figure: the previous figure stays, no temp file."""
    from avmm.replicate import glft

    png = tmp_path / "g.png"
    png.write_bytes(b"previous figure")

    def full_disk(result, path):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(glft, "plot_glft", full_disk)
    code, _, err = run_main("replicate", "glft", "-Q", "5", "--plot", str(png))
    assert code == 2 and "--plot" in err and "no space left" in err
    assert png.read_bytes() == b"previous figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]


def test_plot_and_json_on_one_file_refused_up_front(run_main, tmp_path):
    out = tmp_path / "x"
    code, _, err = run_main("replicate", "glft", "--json", str(out), "--plot", str(out))
    assert code == 2 and "the same file as --json" in err and not out.exists()
